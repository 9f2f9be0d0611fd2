// sing's UDP-over-TCP wire format (github.com/sagernet/sing common/uot), versions 1 and 2.
//
// A UoT stream is a TCP connection through any proxy to a magic destination name:
// - version 2 (`sp.v2.udp-over-tcp.arpa`): the client first sends a request, `isConnect` (1 byte)
//   then the destination as a SOCKS5 address (ATYP 1/3/4); then packets.
// - version 1 (`sp.udp-over-tcp.arpa`, legacy): no request; packets only.
// A packet is `address` (only when not connect-mode; UoT's own family bytes: 0 IPv4, 1 IPv6,
// 2 name) + 2-byte big-endian length + payload, the same framing both ways.
package import Adapter
package import NIOCore

/// sing's UoT constants and codecs.
package enum UDPOverTCP {
    /// The version with a request header (sing's `uot.Version`), the default when the config says 0.
    package static let version: UInt8 = 2
    /// The legacy version without a request (sing's `uot.LegacyVersion`).
    package static let legacyVersion: UInt8 = 1
    /// The destination name a version 2 stream is opened to.
    package static let magicAddress = "sp.v2.udp-over-tcp.arpa"
    /// The destination name a version 1 stream is opened to.
    package static let legacyMagicAddress = "sp.udp-over-tcp.arpa"
    /// The largest payload a packet's 2-byte length can carry.
    package static let maximumPayload = Int(UInt16.max)

    /// The TCP destination a client of `version` dials (port 0, as sing's `RequestDestination`).
    /// Throws Go's error for a version other than 0, 1 or 2.
    package static func requestDestination(version: UInt8) throws(AdapterError) -> Destination {
        switch version {
        case 0, Self.version: return Destination(domain: magicAddress, port: 0)
        case legacyVersion: return Destination(domain: legacyMagicAddress, port: 0)
        default: throw AdapterError(.other, "unknown protocol version: \(version)")
        }
    }

    /// The address families of a packet header (sing's `uot.AddrParser`).
    static let packetFamilies = AddressSerializer.udpOverTCP
    /// The address families of the version 2 request (sing's `M.SocksaddrSerializer`, RFC 1928 ATYP).
    static let requestFamilies = AddressSerializer.socks
}

/// Why UoT bytes could not be read.
package enum UDPOverTCPError: Error, Equatable, CustomStringConvertible {
    /// An address family byte the format does not define.
    case badAddressFamily(UInt8)
    /// A name of length zero.
    case emptyDomain
    /// The stream ended before the request was whole.
    case truncated
    /// A name longer than 255 bytes (cannot be written).
    case domainTooLong

    package var description: String {
        switch self {
        case .badAddressFamily(let family): "unknown address family: \(family)"
        case .emptyDomain: "empty domain name"
        case .truncated: "EOF"
        case .domainTooLong: "domain name too long"
        }
    }
}

/// The version 2 request: connect mode (one destination, no per-packet address) and the destination.
package struct UDPOverTCPRequest: Equatable, Sendable {
    /// Packets carry no address; they all go to `destination`.
    package var isConnect: Bool
    /// The destination of connect mode, or the first one the client named.
    package var destination: Destination

    package init(isConnect: Bool, destination: Destination) {
        self.isConnect = isConnect
        self.destination = destination
    }

    /// Reads a request at the reader index; nil (consuming nothing) when the bytes end early.
    package static func read(from buffer: inout ByteBuffer) throws(UDPOverTCPError) -> UDPOverTCPRequest? {
        let start = buffer.readerIndex
        guard let flag = buffer.readInteger(as: UInt8.self) else { return nil }
        guard let destination = try UDPOverTCP.requestFamilies.readUoT(from: &buffer) else {
            buffer.moveReaderIndex(to: start)
            return nil
        }
        return UDPOverTCPRequest(isConnect: flag != 0, destination: destination)
    }

    /// Writes the request; throws when the destination name does not fit its length byte.
    package func write(to buffer: inout ByteBuffer) throws(UDPOverTCPError) {
        buffer.writeInteger(isConnect ? 1 : 0 as UInt8)
        try UDPOverTCP.requestFamilies.writeUoT(destination, to: &buffer)
    }
}

extension UDPOverTCPError {
    /// The UoT wording of an address field error.
    init(_ error: AddressSerializerError) {
        switch error {
        case .badFamily(let family): self = .badAddressFamily(family)
        case .emptyDomain: self = .emptyDomain
        case .domainTooLong: self = .domainTooLong
        }
    }
}

extension AddressSerializer {
    /// `read` with UoT's errors.
    func readUoT(from buffer: inout ByteBuffer) throws(UDPOverTCPError) -> Destination? {
        do { return try read(from: &buffer) } catch { throw UDPOverTCPError(error) }
    }

    /// `write` with UoT's errors.
    func writeUoT(_ destination: Destination, to buffer: inout ByteBuffer) throws(UDPOverTCPError) {
        do { try write(destination, to: &buffer) } catch { throw UDPOverTCPError(error) }
    }
}

/// Frames and unframes UoT packets for one stream: connect mode (no addresses, all to one
/// destination) or per-packet addresses.
package struct UDPOverTCPFraming: Sendable {
    /// The destination of every packet in connect mode; nil when packets carry addresses.
    package let connectDestination: Destination?
    /// The packet address form: UoT's own family bytes, or SOCKS5's for sing-mux's UDP streams.
    package let addresses: AddressSerializer

    package init(connectDestination: Destination?, addresses: AddressSerializer = .udpOverTCP) {
        self.connectDestination = connectDestination
        self.addresses = addresses
    }

    /// Appends one packet for `destination`; false (nothing written) when it cannot be framed:
    /// a payload over 65,535 bytes or an address the format cannot carry.
    package func write(_ payload: ByteBuffer, to destination: Destination, into out: inout ByteBuffer) -> Bool {
        guard payload.readableBytes <= UDPOverTCP.maximumPayload else { return false }
        let mark = out.writerIndex
        if connectDestination == nil {
            do { try addresses.writeUoT(destination, to: &out) } catch {
                out.moveWriterIndex(to: mark)
                return false
            }
        }
        out.writeInteger(UInt16(payload.readableBytes))
        var payload = payload
        out.writeBuffer(&payload)
        return true
    }

    /// Reads the next whole packet at the reader index; nil (consuming nothing) when more bytes are
    /// needed. Throws on an address the format does not define.
    package func read(from buffer: inout ByteBuffer) throws(UDPOverTCPError) -> (payload: ByteBuffer, address: Destination)? {
        let start = buffer.readerIndex
        let address: Destination
        if let connectDestination {
            address = connectDestination
        } else {
            guard let read = try addresses.readUoT(from: &buffer) else { return nil }
            address = read
        }
        guard let length = buffer.readInteger(as: UInt16.self), let payload = buffer.readSlice(length: Int(length)) else {
            buffer.moveReaderIndex(to: start)
            return nil
        }
        return (payload, address)
    }
}
