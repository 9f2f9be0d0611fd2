// SOCKS4 and SOCKS4A (the two memos at openssh.com/txt/socks4.protocol and socks4a.protocol):
//   request  VN=4 CD DSTPORT(2) DSTIP(4) USERID… NUL [HOSTNAME… NUL when DSTIP is 0.0.0.x, x≠0]
//   reply    VN=0 CD DSTPORT(2) DSTIP(4)
package import Adapter
package import NIOCore

/// SOCKS4 constants, named as the memo names them.
package enum SOCKS4 {
    package static let version: UInt8 = 4
    package static let commandConnect: UInt8 = 1
    package static let commandBind: UInt8 = 2
    /// CD 90: request granted.
    package static let granted: UInt8 = 90
    /// CD 91: request rejected or failed.
    package static let rejectedOrFailed: UInt8 = 91
    /// Longest USERID or HOSTNAME we accept: sing reads at most 255 bytes before the NUL.
    package static let maximumStringLength = 255
}

/// A SOCKS4/4A request. `destination` holds a domain when the client used the 4A form.
package struct SOCKS4Request: Hashable, Sendable {
    package var command: UInt8
    package var destination: Destination
    package var userID: String

    package init(command: UInt8, destination: Destination, userID: String = "") {
        self.command = command
        self.destination = destination
        self.userID = userID
    }

    /// Reads a request that starts with the version byte. Nil (nothing consumed) until a whole
    /// request is buffered; throws on a wrong version or a string over 255 bytes.
    package static func read(from buffer: inout ByteBuffer) throws(SOCKSError) -> SOCKS4Request? {
        let start = buffer.readerIndex
        guard let version = buffer.getInteger(at: start, as: UInt8.self) else { return nil }
        guard version == SOCKS4.version else { throw .badVersion(version) }
        guard let command = buffer.getInteger(at: start + 1, as: UInt8.self),
              let port = buffer.getInteger(at: start + 2, as: UInt16.self),
              let ip = buffer.getInteger(at: start + 4, as: UInt32.self) else { return nil }
        guard let (userID, afterUserID) = try readString(buffer, at: start + 8, field: .userID) else { return nil }
        // 4A: 0.0.0.x with x ≠ 0 means "the host name follows the user id".
        if ip != 0, ip <= 0xff {
            guard let (name, end) = try readString(buffer, at: afterUserID, field: .domain) else { return nil }
            guard !name.isEmpty else { throw .emptyDomain }
            buffer.moveReaderIndex(to: end)
            return SOCKS4Request(command: command, destination: Destination(host: Host(name), port: port), userID: userID)
        }
        buffer.moveReaderIndex(to: afterUserID)
        return SOCKS4Request(command: command, destination: Destination(ip: .v4(ip), port: port), userID: userID)
    }

    /// A NUL-terminated string at `offset`: its text and the index after the NUL, or nil when
    /// the NUL has not arrived yet. Throws once more than 255 bytes came without one.
    private static func readString(_ buffer: ByteBuffer, at offset: Int,
                                   field: SOCKSError.Field) throws(SOCKSError) -> (String, Int)? {
        let available = buffer.writerIndex - offset
        guard available > 0 else { return nil }
        let window = min(available, SOCKS4.maximumStringLength + 1)
        let nul: Int? = buffer.withUnsafeReadableBytes { raw in
            let base = offset - buffer.readerIndex
            for index in 0..<window where raw[base + index] == 0 { return index }
            return nil
        }
        guard let nul else {
            if available > SOCKS4.maximumStringLength { throw .fieldTooLong(field, length: available) }
            return nil
        }
        return (buffer.getString(at: offset, length: nul) ?? "", offset + nul + 1)
    }

    /// Writes the request. A domain destination uses the 4A form (DSTIP 0.0.0.1); an IPv6
    /// destination cannot be said in SOCKS4 and is written as its text in the 4A form, as sing does.
    /// Throws when the user id or host name is over 255 bytes or contains NUL.
    package func write(to buffer: inout ByteBuffer) throws(SOCKSError) {
        guard userID.utf8.count <= SOCKS4.maximumStringLength, !userID.utf8.contains(0) else {
            throw .fieldTooLong(.userID, length: userID.utf8.count)
        }
        var hostName: String?
        var ip: UInt32 = 1
        switch destination.host {
        case .ip(let address):
            if case .v4(let v4) = address.unmapped { ip = v4 } else { hostName = address.description }
        case .domain(let name):
            hostName = name
        }
        if let hostName {
            guard !hostName.isEmpty else { throw .emptyDomain }
            guard hostName.utf8.count <= SOCKS4.maximumStringLength, !hostName.utf8.contains(0) else {
                throw .fieldTooLong(.domain, length: hostName.utf8.count)
            }
        }
        buffer.writeInteger(SOCKS4.version)
        buffer.writeInteger(command)
        buffer.writeInteger(destination.port)
        buffer.writeInteger(ip)
        buffer.writeString(userID)
        buffer.writeInteger(UInt8(0))
        if let hostName {
            buffer.writeString(hostName)
            buffer.writeInteger(UInt8(0))
        }
    }
}

/// A SOCKS4 reply: 8 bytes, version 0.
package struct SOCKS4Reply: Hashable, Sendable {
    package static let length = 8
    package var code: UInt8
    package var port: UInt16
    package var ipv4: UInt32

    package init(code: UInt8, port: UInt16 = 0, ipv4: UInt32 = 0) {
        self.code = code
        self.port = port
        self.ipv4 = ipv4
    }

    /// Reads 8 bytes; nil until they are all there; throws when VN is not 0.
    package static func read(from buffer: inout ByteBuffer) throws(SOCKSError) -> SOCKS4Reply? {
        let start = buffer.readerIndex
        guard let version = buffer.getInteger(at: start, as: UInt8.self) else { return nil }
        guard version == 0 else { throw .badVersion(version) }
        guard let code = buffer.getInteger(at: start + 1, as: UInt8.self),
              let port = buffer.getInteger(at: start + 2, as: UInt16.self),
              let ip = buffer.getInteger(at: start + 4, as: UInt32.self) else { return nil }
        buffer.moveReaderIndex(forwardBy: length)
        return SOCKS4Reply(code: code, port: port, ipv4: ip)
    }

    package func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(code)
        buffer.writeInteger(port)
        buffer.writeInteger(ipv4)
    }
}
