// SOCKS5 (RFC 1928) and its username/password sub-negotiation (RFC 1929):
//   greeting          VER=5 NMETHODS METHODS…
//   method selection  VER=5 METHOD
//   password request  VER=1 ULEN UNAME PLEN PASSWD          (RFC 1929 §2)
//   password reply    VER=1 STATUS
//   request           VER=5 CMD RSV=0 ATYP DST.ADDR DST.PORT (§4)
//   reply             VER=5 REP RSV=0 ATYP BND.ADDR BND.PORT (§6)
//   UDP header        RSV=0(2) FRAG ATYP DST.ADDR DST.PORT DATA (§7)
package import Adapter
package import NIOCore

/// RFC 1928/1929 constants with the RFC's names.
package enum SOCKS5 {
    package static let version: UInt8 = 5
    package static let methodNoAuthentication: UInt8 = 0x00
    package static let methodUsernamePassword: UInt8 = 0x02
    package static let methodNoAcceptable: UInt8 = 0xFF
    /// RFC 1929 sub-negotiation version.
    package static let passwordVersion: UInt8 = 1
    package static let passwordSuccess: UInt8 = 0
    package static let passwordFailure: UInt8 = 1
    package static let commandConnect: UInt8 = 1
    package static let commandBind: UInt8 = 2
    package static let commandUDPAssociate: UInt8 = 3
    package static let replySucceeded: UInt8 = 0
    package static let replyGeneralFailure: UInt8 = 1
    package static let replyNotAllowed: UInt8 = 2
    package static let replyNetworkUnreachable: UInt8 = 3
    package static let replyHostUnreachable: UInt8 = 4
    package static let replyConnectionRefused: UInt8 = 5
    package static let replyTTLExpired: UInt8 = 6
    package static let replyCommandNotSupported: UInt8 = 7
    package static let replyAddressTypeNotSupported: UInt8 = 8
}

/// The client's first message: the methods it can do.
package struct SOCKS5Greeting: Hashable, Sendable {
    package var methods: [UInt8]

    package init(methods: [UInt8]) { self.methods = methods }

    /// Reads VER NMETHODS METHODS; nil until complete; throws when VER is not 5.
    package static func read(from buffer: inout ByteBuffer) throws(SOCKSError) -> SOCKS5Greeting? {
        let start = buffer.readerIndex
        guard let version = buffer.getInteger(at: start, as: UInt8.self) else { return nil }
        guard version == SOCKS5.version else { throw .badVersion(version) }
        guard let count = buffer.getInteger(at: start + 1, as: UInt8.self),
              let methods = buffer.getBytes(at: start + 2, length: Int(count)) else { return nil }
        buffer.moveReaderIndex(forwardBy: 2 + Int(count))
        return SOCKS5Greeting(methods: methods)
    }

    /// Writes the greeting; at most 255 methods are written.
    package func write(to buffer: inout ByteBuffer) {
        let methods = methods.prefix(255)
        buffer.writeInteger(SOCKS5.version)
        buffer.writeInteger(UInt8(methods.count))
        buffer.writeBytes(methods)
    }
}

/// The server's choice of method.
package struct SOCKS5MethodSelection: Hashable, Sendable {
    package var method: UInt8

    package init(method: UInt8) { self.method = method }

    package static func read(from buffer: inout ByteBuffer) throws(SOCKSError) -> SOCKS5MethodSelection? {
        guard let (version, method) = buffer.getMultipleIntegers(at: buffer.readerIndex, as: (UInt8, UInt8).self) else {
            return nil
        }
        guard version == SOCKS5.version else { throw .badVersion(version) }
        buffer.moveReaderIndex(forwardBy: 2)
        return SOCKS5MethodSelection(method: method)
    }

    package func write(to buffer: inout ByteBuffer) {
        buffer.writeMultipleIntegers(SOCKS5.version, method)
    }
}

/// RFC 1929 username/password request. The fields are bytes on the wire; we keep them as text
/// (lossy for invalid UTF-8, which then simply fails to match a configured user).
package struct SOCKS5PasswordRequest: Hashable, Sendable {
    package var username: String
    package var password: String

    package init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    /// Reads VER ULEN UNAME PLEN PASSWD; nil until complete; throws when VER is not 1.
    package static func read(from buffer: inout ByteBuffer) throws(SOCKSError) -> SOCKS5PasswordRequest? {
        let start = buffer.readerIndex
        guard let version = buffer.getInteger(at: start, as: UInt8.self) else { return nil }
        guard version == SOCKS5.passwordVersion else { throw .badVersion(version) }
        guard let userLength = buffer.getInteger(at: start + 1, as: UInt8.self),
              let username = buffer.getString(at: start + 2, length: Int(userLength)),
              let passwordLength = buffer.getInteger(at: start + 2 + Int(userLength), as: UInt8.self),
              let password = buffer.getString(at: start + 3 + Int(userLength), length: Int(passwordLength))
        else { return nil }
        buffer.moveReaderIndex(forwardBy: 3 + Int(userLength) + Int(passwordLength))
        return SOCKS5PasswordRequest(username: username, password: password)
    }

    /// Writes the request; throws when a field is over 255 bytes.
    package func write(to buffer: inout ByteBuffer) throws(SOCKSError) {
        let userLength = username.utf8.count, passwordLength = password.utf8.count
        guard userLength <= 255 else { throw .fieldTooLong(.username, length: userLength) }
        guard passwordLength <= 255 else { throw .fieldTooLong(.password, length: passwordLength) }
        buffer.writeInteger(SOCKS5.passwordVersion)
        buffer.writeInteger(UInt8(userLength))
        buffer.writeString(username)
        buffer.writeInteger(UInt8(passwordLength))
        buffer.writeString(password)
    }
}

/// RFC 1929 reply: status 0 is success.
package struct SOCKS5PasswordReply: Hashable, Sendable {
    package var status: UInt8

    package init(status: UInt8) { self.status = status }

    package static func read(from buffer: inout ByteBuffer) throws(SOCKSError) -> SOCKS5PasswordReply? {
        guard let (version, status) = buffer.getMultipleIntegers(at: buffer.readerIndex, as: (UInt8, UInt8).self) else {
            return nil
        }
        guard version == SOCKS5.passwordVersion else { throw .badVersion(version) }
        buffer.moveReaderIndex(forwardBy: 2)
        return SOCKS5PasswordReply(status: status)
    }

    package func write(to buffer: inout ByteBuffer) {
        buffer.writeMultipleIntegers(SOCKS5.passwordVersion, status)
    }
}

/// A request (client → server) or reply (server → client): the same layout, CMD or REP second.
package struct SOCKS5Message: Hashable, Sendable {
    /// CMD in a request, REP in a reply.
    package var code: UInt8
    /// DST in a request, BND in a reply.
    package var address: Destination

    package init(code: UInt8, address: Destination) {
        self.code = code
        self.address = address
    }

    /// Reads VER CODE RSV ADDRESS; nil until complete. RSV is not checked: RFC 1928 reserves it
    /// and sing ignores it, so a client that sets it still works.
    package static func read(from buffer: inout ByteBuffer) throws(SOCKSError) -> SOCKS5Message? {
        let start = buffer.readerIndex
        guard let version = buffer.getInteger(at: start, as: UInt8.self) else { return nil }
        guard version == SOCKS5.version else { throw .badVersion(version) }
        guard let code = buffer.getInteger(at: start + 1, as: UInt8.self),
              buffer.readableBytes >= 3 else { return nil }
        var rest = buffer
        rest.moveReaderIndex(forwardBy: 3)
        guard let address = try Destination.readSOCKS5(from: &rest) else { return nil }
        buffer.moveReaderIndex(to: rest.readerIndex)
        return SOCKS5Message(code: code, address: address)
    }

    /// Writes the message; throws (writing nothing) when the address is a domain over 255 bytes.
    package func write(to buffer: inout ByteBuffer) throws(SOCKSError) {
        var body = ByteBufferAllocator().buffer(capacity: 3 + address.socks5EncodedLength)
        body.writeMultipleIntegers(SOCKS5.version, code, UInt8(0))
        try address.writeSOCKS5(to: &body)
        buffer.writeImmutableBuffer(body)
    }
}

/// The header in front of every UDP ASSOCIATE datagram (RFC 1928 §7).
package enum SOCKS5UDPHeader {
    /// Reads the header of a whole datagram and leaves the reader index at DATA. Throws when the
    /// datagram is shorter than its header or its FRAG is not 0 (we do not reassemble, so §7 says
    /// drop it); the caller drops the datagram on any throw.
    package static func read(from datagram: inout ByteBuffer) throws(SOCKSError) -> Destination {
        let have = datagram.readableBytes
        guard have >= 4 else { throw .truncated(need: 4, have: have) }
        let fragment = datagram.getInteger(at: datagram.readerIndex + 2, as: UInt8.self) ?? 0
        guard fragment == 0 else { throw .fragmented(fragment) }
        var rest = datagram
        rest.moveReaderIndex(forwardBy: 3)
        guard let destination = try Destination.readSOCKS5(from: &rest) else {
            throw .truncated(need: have + 1, have: have)
        }
        datagram.moveReaderIndex(to: rest.readerIndex)
        return destination
    }

    /// Bytes the header for `destination` takes.
    package static func length(for destination: Destination) -> Int { 3 + destination.socks5EncodedLength }

    /// Writes RSV RSV FRAG=0 and the address.
    package static func write(_ destination: Destination, to buffer: inout ByteBuffer) throws(SOCKSError) {
        buffer.writeMultipleIntegers(UInt16(0), UInt8(0))
        try destination.writeSOCKS5(to: &buffer)
    }
}
