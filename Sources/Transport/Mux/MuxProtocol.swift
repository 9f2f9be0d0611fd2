// sing-mux's wire format (github.com/sagernet/sing-mux v0.3.4, protocol.go), the layer above the
// stream multiplexer:
// 1. A session is a proxy stream to the magic destination `sp.mux.sing-box.arpa:444`. It opens with
//    the session request: version (0 or 1), protocol (0 smux, 1 yamux, 2 h2mux); version 1 adds a
//    padding flag byte and, when set, a big-endian u16 length and that many padding bytes. Then the
//    multiplexer's own bytes follow (padded by `MuxPaddingHandler` when the flag is set).
// 2. Each stream opens with its request: flags u16 BE (1 UDP, 2 packet addresses), the destination
//    as a SOCKS5 address (sing's `M.SocksaddrSerializer`).
// 3. The server answers a stream with one status byte before its first bytes: 0 success, or 1 then
//    a uvarint length and an error message (the client reports `remote error: <message>`).
// 4. UDP streams carry packets as length u16 BE ‖ payload, or with packet addresses
//    address ‖ length ‖ payload (the same SOCKS5 address form).
package import Adapter
package import NIOCore

/// sing-mux's constants and the session and stream headers.
package enum Mux {
    /// The destination a client opens a session to (sing-mux's `Destination`).
    package static let magicDomain = "sp.mux.sing-box.arpa"
    /// The port of the magic destination.
    package static let magicPort: UInt16 = 444
    /// `sp.mux.sing-box.arpa:444`.
    package static var destination: Destination { Destination(domain: magicDomain, port: magicPort) }

    /// The multiplexer under a session (sing-mux's `ProtocolSmux`, `ProtocolYAMux`, `ProtocolH2Mux`).
    package enum StreamProtocol: UInt8, Sendable, CustomStringConvertible {
        case smux = 0
        case yamux = 1
        case h2mux = 2

        /// The config name (`"h2mux"` is the default for an empty name, as Go's `NewClient`).
        package init?(name: String) {
            switch name {
            case "", "h2mux": self = .h2mux
            case "smux": self = .smux
            case "yamux": self = .yamux
            default: return nil
            }
        }

        package var description: String {
            switch self {
            case .smux: "smux"
            case .yamux: "yamux"
            case .h2mux: "h2mux"
            }
        }
    }

    /// Stream request flag: the stream carries UDP.
    static let flagUDP: UInt16 = 1
    /// Stream request flag: each UDP packet carries its address.
    static let flagAddr: UInt16 = 2
    /// Stream response status: the server dialed the destination.
    static let statusSuccess: UInt8 = 0
    /// Stream response status: an error message follows.
    static let statusError: UInt8 = 1
    /// The address form of stream requests and packet addresses.
    static let addresses = AddressSerializer.socks
}

/// Why mux bytes could not be read. Descriptions follow sing-mux's wording where it has one.
package enum MuxError: Error, Equatable, CustomStringConvertible {
    /// A session version other than 0 and 1.
    case unsupportedVersion(UInt8)
    /// A protocol byte other than 0, 1 and 2.
    case unexpectedProtocol(UInt8)
    /// The server requires padding (`padding: true`) and the client did not pad.
    case nonPaddedRejected
    /// A bad address in a stream request or packet.
    case badAddress(AddressSerializerError)
    /// The stream or session ended before a header was whole.
    case truncated
    /// The server answered a stream with an error status.
    case remote(String)
    /// A status byte other than 0 and 1.
    case badStatus(UInt8)
    /// A multiplexer frame that breaks its protocol (smux/yamux version, type, flags, window).
    case badFrame(String)

    package var description: String {
        switch self {
        case .unsupportedVersion(let version): "unsupported version: \(version)"
        case .unexpectedProtocol(let value): "unexpected protocol \(value)"
        case .nonPaddedRejected: "non-padded connection rejected"
        case .badAddress(.badFamily(let family)): "unknown address family: \(family)"
        case .badAddress(.emptyDomain): "empty domain name"
        case .badAddress(.domainTooLong(let length)): "domain name too long: \(length)"
        case .truncated: "EOF"
        case .remote(let message): "remote error: \(message)"
        case .badStatus(let status): "unexpected stream status: \(status)"
        case .badFrame(let reason): reason
        }
    }
}

/// The session request (sing-mux's `Request`).
package struct MuxSessionRequest: Equatable, Sendable {
    package var version: UInt8
    package var streamProtocol: Mux.StreamProtocol
    package var padding: Bool

    package init(streamProtocol: Mux.StreamProtocol, padding: Bool) {
        self.version = padding ? 1 : 0
        self.streamProtocol = streamProtocol
        self.padding = padding
    }

    /// Reads a request at the reader index (skipping its padding); nil, consuming nothing, when the
    /// bytes end early. Throws Go's errors for a bad version or protocol.
    package static func read(from buffer: inout ByteBuffer) throws(MuxError) -> MuxSessionRequest? {
        let start = buffer.readerIndex
        guard let version = buffer.getInteger(at: start, as: UInt8.self) else { return nil }
        guard version <= 1 else { throw .unsupportedVersion(version) }
        guard let protocolByte = buffer.getInteger(at: start + 1, as: UInt8.self) else { return nil }
        var consumed = 2
        var padding = false
        if version == 1 {
            guard let flag = buffer.getInteger(at: start + 2, as: UInt8.self) else { return nil }
            consumed += 1
            padding = flag != 0
            if padding {
                guard let length = buffer.getInteger(at: start + 3, as: UInt16.self) else { return nil }
                consumed += 2 + Int(length)
                guard buffer.readableBytes >= consumed else { return nil }
            }
        }
        // Go checks the protocol only when it builds the session, after the padding was read.
        guard let streamProtocol = Mux.StreamProtocol(rawValue: protocolByte) else { throw .unexpectedProtocol(protocolByte) }
        buffer.moveReaderIndex(forwardBy: consumed)
        var request = MuxSessionRequest(streamProtocol: streamProtocol, padding: padding)
        request.version = version
        return request
    }

    /// Writes the request; with padding, `paddingLength` zero bytes (by default a random 256–767, as
    /// Go's `EncodeRequest`; a fuzzer passes its own draw to stay a function of its seed).
    package func write(to buffer: inout ByteBuffer, paddingLength: Int = Int.random(in: 256..<768)) {
        buffer.writeInteger(version)
        buffer.writeInteger(streamProtocol.rawValue)
        guard version == 1 else { return }
        buffer.writeInteger(padding ? 1 : 0 as UInt8)
        guard padding else { return }
        buffer.writeInteger(UInt16(paddingLength))
        buffer.writeRepeatingByte(0, count: paddingLength)
    }
}

/// A stream request (sing-mux's `StreamRequest`).
package struct MuxStreamRequest: Equatable, Sendable {
    package var isUDP: Bool
    package var packetAddress: Bool
    package var destination: Destination

    package init(isUDP: Bool, packetAddress: Bool, destination: Destination) {
        self.isUDP = isUDP
        self.packetAddress = packetAddress
        self.destination = destination
    }

    /// Reads a request at the reader index; nil, consuming nothing, when the bytes end early.
    package static func read(from buffer: inout ByteBuffer) throws(MuxError) -> MuxStreamRequest? {
        let start = buffer.readerIndex
        guard let flags = buffer.readInteger(as: UInt16.self) else { return nil }
        let destination: Destination?
        do { destination = try Mux.addresses.read(from: &buffer) } catch { throw .badAddress(error) }
        guard let destination else {
            buffer.moveReaderIndex(to: start)
            return nil
        }
        let isUDP = flags & Mux.flagUDP != 0
        return MuxStreamRequest(isUDP: isUDP, packetAddress: isUDP && flags & Mux.flagAddr != 0, destination: destination)
    }

    /// Writes the request (Go's `EncodeStreamRequest`). Throws for a name longer than 255 bytes.
    package func write(to buffer: inout ByteBuffer) throws(MuxError) {
        var flags: UInt16 = 0
        if isUDP { flags |= Mux.flagUDP }
        if packetAddress { flags |= Mux.flagAddr }
        buffer.writeInteger(flags)
        do { try Mux.addresses.write(destination, to: &buffer) } catch { throw .badAddress(error) }
    }
}

/// The stream response (sing-mux's `StreamResponse`): status, and a message for an error.
package enum MuxStreamResponse: Equatable, Sendable {
    case success
    case failure(String)

    /// Reads a response at the reader index; nil, consuming nothing, when the bytes end early.
    package static func read(from buffer: inout ByteBuffer) throws(MuxError) -> MuxStreamResponse? {
        let start = buffer.readerIndex
        guard let status = buffer.readInteger(as: UInt8.self) else { return nil }
        switch status {
        case Mux.statusSuccess:
            return .success
        case Mux.statusError:
            guard let length = readUvarint(from: &buffer), length <= UInt64(Int32.max),
                  let bytes = buffer.readBytes(length: Int(length)) else {
                buffer.moveReaderIndex(to: start)
                return nil
            }
            return .failure(String(decoding: bytes, as: UTF8.self))
        default:
            throw .badStatus(status)
        }
    }

    /// Writes the response (Go's `serverConn.HandshakeFailure` for an error).
    package func write(to buffer: inout ByteBuffer) {
        switch self {
        case .success:
            buffer.writeInteger(Mux.statusSuccess)
        case .failure(let message):
            buffer.writeInteger(Mux.statusError)
            var length = UInt64(message.utf8.count)
            while length >= 0x80 {
                buffer.writeInteger(UInt8(truncatingIfNeeded: length) | 0x80)
                length >>= 7
            }
            buffer.writeInteger(UInt8(length))
            buffer.writeString(message)
        }
    }

    /// A Go uvarint (binary.ReadUvarint); nil when the bytes end early or it overflows 64 bits.
    private static func readUvarint(from buffer: inout ByteBuffer) -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        for _ in 0..<10 {
            guard let byte = buffer.readInteger(as: UInt8.self) else { return nil }
            value |= UInt64(byte & 0x7f) << shift
            if byte < 0x80 { return value }
            shift += 7
        }
        return nil
    }
}
