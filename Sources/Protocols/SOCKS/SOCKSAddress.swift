// The SOCKS5 address field (RFC 1928 §4/§5): ATYP, then 4 bytes, a length-prefixed domain or
// 16 bytes, then the port in network order. Shared by requests, replies and UDP headers.
package import Adapter
package import NIOCore

/// RFC 1928 address types.
package enum SOCKS5AddressType {
    package static let ipv4: UInt8 = 1
    package static let domain: UInt8 = 3
    package static let ipv6: UInt8 = 4
}

extension Destination {
    /// Reads an RFC 1928 address and port at the buffer's reader index.
    ///
    /// Returns nil, consuming nothing, when the bytes end early; on success the reader index moves
    /// past the port. A domain that spells an IP literal becomes that IP, as Go's
    /// `M.ParseSocksaddrHostPort` does. Throws on an unknown type or an empty domain.
    package static func readSOCKS5(from buffer: inout ByteBuffer) throws(SOCKSError) -> Destination? {
        let start = buffer.readerIndex
        guard let type = buffer.getInteger(at: start, as: UInt8.self) else { return nil }
        let host: Host
        let portOffset: Int
        switch type {
        case SOCKS5AddressType.ipv4:
            guard let value = buffer.getInteger(at: start + 1, as: UInt32.self) else { return nil }
            host = .ip(.v4(value))
            portOffset = start + 5
        case SOCKS5AddressType.ipv6:
            guard let high = buffer.getInteger(at: start + 1, as: UInt64.self),
                  let low = buffer.getInteger(at: start + 9, as: UInt64.self) else { return nil }
            host = .ip(.v6(IPv6Bits(high: high, low: low)))
            portOffset = start + 17
        case SOCKS5AddressType.domain:
            guard let length = buffer.getInteger(at: start + 1, as: UInt8.self) else { return nil }
            guard length > 0 else { throw .emptyDomain }
            guard let name = buffer.getString(at: start + 2, length: Int(length)) else { return nil }
            host = Host(name)
            portOffset = start + 2 + Int(length)
        default:
            throw .badAddressType(type)
        }
        guard let port = buffer.getInteger(at: portOffset, as: UInt16.self) else { return nil }
        buffer.moveReaderIndex(to: portOffset + 2)
        return Destination(host: host, port: port)
    }

    /// Bytes `writeSOCKS5` will write; the domain form counts its UTF-8 bytes.
    package var socks5EncodedLength: Int {
        switch host {
        case .ip(let ip): return ip.unmapped.isIPv4 ? 7 : 19
        case .domain(let name): return 4 + name.utf8.count
        }
    }

    /// Writes this destination as an RFC 1928 address. IPv4-mapped IPv6 goes out as IPv4, as Go
    /// unwraps it. Throws when a domain does not fit its length byte; then nothing is written.
    package func writeSOCKS5(to buffer: inout ByteBuffer) throws(SOCKSError) {
        switch host {
        case .ip(let ip):
            switch ip.unmapped {
            case .v4(let value):
                buffer.writeInteger(SOCKS5AddressType.ipv4)
                buffer.writeInteger(value)
            case .v6(let value):
                buffer.writeInteger(SOCKS5AddressType.ipv6)
                buffer.writeInteger(value.high)
                buffer.writeInteger(value.low)
            }
        case .domain(let name):
            let length = name.utf8.count
            guard length <= 255 else { throw .fieldTooLong(.domain, length: length) }
            guard length > 0 else { throw .emptyDomain }
            buffer.writeInteger(SOCKS5AddressType.domain)
            buffer.writeInteger(UInt8(length))
            buffer.writeString(name)
        }
        buffer.writeInteger(port)
    }
}
