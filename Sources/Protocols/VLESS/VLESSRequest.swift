// The request header as the inbound reads it (sing-vmess vless/protocol.go `ReadRequest`, read for
// facts): version 0 ‖ UUID (16) ‖ addons length ‖ addons ‖ command ‖ address (port first, VMess's
// layout; absent for mux). Handshake-time code: one small array per attempt.
//
// 1. `read(_:ended:)` takes what the stream has delivered; nil means "wait for more" unless the
//    client has ended its side, when the shortfall is Go's error (`EOF`, `unexpected EOF`, with the
//    address serializer's `read port: ` style prefix).
// 2. The addons are a protobuf message whose field 1 is the flow and field 2 the seed, read the
//    way sing-vmess reads them (tag 0x0A first, then length-prefixed strings, the seed's tag not
//    checked); a missing flow length is no flow.
// Nothing a client sends can trap: every length is checked against what is there.
package import Adapter
package import NIOCore

/// One client request.
package struct VLESSRequest: Equatable, Sendable {
    /// The user's UUID as sent (16 bytes).
    package var uuid: [UInt8]
    /// The addons' flow (`""` when none).
    package var flow: String
    /// 1 TCP, 2 UDP, 3 mux; anything else is read (with an address) and refused by the caller.
    package var command: UInt8
    /// Nil for mux.
    package var destination: Destination?

    package init(uuid: [UInt8], flow: String, command: UInt8, destination: Destination?) {
        self.uuid = uuid
        self.flow = flow
        self.command = command
        self.destination = destination
    }
}

/// Why a request could not be read. `description` is Go's text for the same failure.
package enum VLESSRequestError: Error, Equatable, CustomStringConvertible {
    /// Not a failure: the request is not whole yet (never thrown once the client has ended).
    case incomplete
    case unknownVersion(UInt8)
    /// The stream (or the addons block) ended inside `field`; `partial`: some of its bytes came.
    case ended(field: Field, partial: Bool)
    case unknownProtobufHeader(UInt8)
    /// A flow or seed length varint longer than 64 bits.
    case varintOverflow
    case unknownAddressFamily(UInt8)

    /// The field a read stopped in, for the address serializer's error prefix.
    package enum Field: Sendable { case plain, port, fqdn, ipv4, ipv6 }

    package var description: String {
        switch self {
        case .incomplete: "incomplete request"
        case .unknownVersion(let version): "unknown version: \(version)"
        case .ended(let field, let partial):
            switch field {
            case .plain: partial ? "unexpected EOF" : "EOF"
            case .port: "read port: " + (partial ? "unexpected EOF" : "EOF")
            case .fqdn: "read fqdn: " + (partial ? "unexpected EOF" : "EOF")
            case .ipv4: "read ipv4 address: " + (partial ? "unexpected EOF" : "EOF")
            case .ipv6: "read ipv6 address: " + (partial ? "unexpected EOF" : "EOF")
            }
        case .unknownProtobufHeader(let header): "unknown protobuf message header: \(header)"
        case .varintOverflow: "binary: varint overflows a 64-bit integer"
        case .unknownAddressFamily(let family): "unknown address family: \(family)"
        }
    }
}

extension VLESSModule {
    /// The longest request: version, UUID, addons (255 at most), command, port, type, 255-byte name.
    static let maximumRequestLength = 1 + 16 + 1 + 255 + 1 + 2 + 1 + 1 + 255

    /// Reads a request off the front of `bytes`. Returns it and how many bytes it took, or nil when
    /// more must come; `ended`: the client has closed its side, so a shortfall throws Go's EOF error.
    package static func readRequest(_ bytes: ByteBuffer, ended: Bool) throws(VLESSRequestError) -> (request: VLESSRequest, length: Int)? {
        let prefix = bytes.getBytes(at: bytes.readerIndex, length: min(bytes.readableBytes, maximumRequestLength)) ?? []
        var cursor = RequestCursor(bytes: prefix, ended: ended)
        do throws(VLESSRequestError) {
            let version = try cursor.take(1, .plain)[0]
            guard version == VLESSModule.version else { throw .unknownVersion(version) }
            let uuid = try cursor.take(16, .plain)
            let addonsLength = Int(try cursor.take(1, .plain)[0])
            var flow = ""
            if addonsLength > 0 { flow = try readAddons(try cursor.take(addonsLength, .plain)) }
            let command = try cursor.take(1, .plain)[0]
            var destination: Destination?
            if command != commandMux { destination = try cursor.readAddress() }
            return (VLESSRequest(uuid: uuid, flow: flow, command: command, destination: destination), cursor.offset)
        } catch .incomplete {
            return nil
        }
    }

    /// The flow from a whole addons block (sing-vmess `readAddons`).
    static func readAddons(_ addons: [UInt8]) throws(VLESSRequestError) -> String {
        guard addons[0] == 0x0A else { throw .unknownProtobufHeader(addons[0]) }
        var offset = 1
        // A missing length (the block ends) means no flow; the seed is read and dropped likewise.
        guard let flowLength = try readUvarint(addons, &offset) else { return "" }
        let flow = try readString(addons, &offset, length: flowLength)
        if let seedLength = try readUvarint(addons, &offset) { _ = try readString(addons, &offset, length: seedLength) }
        return flow
    }

    /// Go's `binary.ReadUvarint` over the block: nil at its end, `unexpected EOF` inside a varint.
    private static func readUvarint(_ bytes: [UInt8], _ offset: inout Int) throws(VLESSRequestError) -> UInt64? {
        guard offset < bytes.count else { return nil }
        var value: UInt64 = 0
        var shift: UInt64 = 0
        for index in 0..<10 {
            guard offset < bytes.count else { throw .ended(field: .plain, partial: true) }
            let byte = bytes[offset]
            offset += 1
            if byte < 0x80 {
                if index == 9 && byte > 1 { throw .varintOverflow }
                return value | UInt64(byte) << shift
            }
            value |= UInt64(byte & 0x7F) << shift
            shift += 7
        }
        throw .varintOverflow
    }

    private static func readString(_ bytes: [UInt8], _ offset: inout Int, length: UInt64) throws(VLESSRequestError) -> String {
        let left = bytes.count - offset
        guard length <= UInt64(left) else { throw .ended(field: .plain, partial: left > 0) }
        defer { offset += Int(length) }
        return String(decoding: bytes[offset..<offset + Int(length)], as: UTF8.self)
    }

    /// A UUID as gofrs prints it: lowercase 8-4-4-4-12.
    package static func uuidString(_ uuid: [UInt8]) -> String {
        let hex = uuid.map { byte -> String in
            let text = String(byte, radix: 16)
            return byte < 0x10 ? "0" + text : text
        }
        guard hex.count == 16 else { return hex.joined() }
        return [hex[0..<4], hex[4..<6], hex[6..<8], hex[8..<10], hex[10..<16]].map { $0.joined() }.joined(separator: "-")
    }
}

/// Reads fields off the request bytes; a shortfall is `incomplete`, or Go's EOF once `ended`.
private struct RequestCursor {
    let bytes: [UInt8]
    let ended: Bool
    var offset = 0

    mutating func take(_ count: Int, _ field: VLESSRequestError.Field) throws(VLESSRequestError) -> [UInt8] {
        let left = bytes.count - offset
        guard left >= count else {
            throw ended ? .ended(field: field, partial: left > 0) : .incomplete
        }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    /// Port, then type (1 IPv4, 2 domain, 3 IPv6) and address: sing-vmess `AddressSerializer`.
    mutating func readAddress() throws(VLESSRequestError) -> Destination {
        let portBytes = try take(2, .port)
        let port = UInt16(portBytes[portBytes.startIndex]) << 8 | UInt16(portBytes[portBytes.startIndex + 1])
        let family = try take(1, .plain)[0]
        switch family {
        case 1:
            guard let ip = IPAddress(bytes: try take(4, .ipv4)) else { throw .unknownAddressFamily(family) }
            return Destination(ip: ip, port: port)
        case 3:
            guard let ip = IPAddress(bytes: try take(16, .ipv6)) else { throw .unknownAddressFamily(family) }
            return Destination(ip: ip.unmapped, port: port)
        case 2:
            let length = Int(try take(1, .fqdn)[0])
            let name = String(decoding: try take(length, .fqdn), as: UTF8.self)
            // Go's `ParseSocksaddrHostPort`: a name that is an IP literal is that IP.
            return Destination(host: Host(name), port: port)
        default:
            throw .unknownAddressFamily(family)
        }
    }
}
