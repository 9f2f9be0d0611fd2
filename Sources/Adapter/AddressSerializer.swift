// AddressSerializer: the address-and-port field several protocols share (sing's `M.NewSerializer`):
// a family byte, then 4 bytes (IPv4), 16 bytes (IPv6) or a length-prefixed name, then the port in
// network order. SOCKS5, shadowsocks, trojan and vmess use RFC 1928's family bytes (1, 4, 3); sing's
// UDP-over-TCP packets use 0, 1, 2. Reads never trap on peer bytes.
package import NIOCore

/// Why an address field could not be read or written.
package enum AddressSerializerError: Error, Equatable, Sendable {
    /// A family byte the serializer does not define.
    case badFamily(UInt8)
    /// A name of length zero.
    case emptyDomain
    /// A name longer than its length byte can say.
    case domainTooLong(Int)
}

/// One address layout: which byte means which family.
package struct AddressSerializer: Sendable {
    package let ipv4: UInt8
    package let ipv6: UInt8
    package let domain: UInt8

    package init(ipv4: UInt8, ipv6: UInt8, domain: UInt8) {
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.domain = domain
    }

    /// RFC 1928 §5 (SOCKS5, shadowsocks, trojan, vmess, sing's `M.SocksaddrSerializer`).
    package static let socks = AddressSerializer(ipv4: 1, ipv6: 4, domain: 3)
    /// sing's UDP-over-TCP packet addresses (`uot.AddrParser`).
    package static let udpOverTCP = AddressSerializer(ipv4: 0, ipv6: 1, domain: 2)

    /// Reads an address and port at the reader index. Nil, consuming nothing, when the bytes end
    /// early. A name that spells an IP literal becomes that IP (Go's `ParseSocksaddrHostPort`).
    package func read(from buffer: inout ByteBuffer) throws(AddressSerializerError) -> Destination? {
        let start = buffer.readerIndex
        guard let family = buffer.getInteger(at: start, as: UInt8.self) else { return nil }
        let host: Host
        let portOffset: Int
        switch family {
        case ipv4:
            guard let value = buffer.getInteger(at: start + 1, as: UInt32.self) else { return nil }
            host = .ip(.v4(value))
            portOffset = start + 5
        case ipv6:
            guard let high = buffer.getInteger(at: start + 1, as: UInt64.self),
                  let low = buffer.getInteger(at: start + 9, as: UInt64.self) else { return nil }
            host = .ip(.v6(IPv6Bits(high: high, low: low)))
            portOffset = start + 17
        case domain:
            guard let length = buffer.getInteger(at: start + 1, as: UInt8.self) else { return nil }
            guard length > 0 else { throw .emptyDomain }
            guard let bytes = buffer.getBytes(at: start + 2, length: Int(length)) else { return nil }
            host = Host(String(decoding: bytes, as: UTF8.self))
            portOffset = start + 2 + Int(length)
        default:
            throw .badFamily(family)
        }
        guard let port = buffer.getInteger(at: portOffset, as: UInt16.self) else { return nil }
        buffer.moveReaderIndex(to: portOffset + 2)
        return Destination(host: host, port: port)
    }

    /// The bytes `write` takes for `destination`.
    package func encodedLength(_ destination: Destination) -> Int {
        switch destination.host {
        case .ip(let ip): ip.unmapped.isIPv4 ? 7 : 19
        case .domain(let name): 4 + name.utf8.count
        }
    }

    /// Writes `destination`; IPv4-mapped IPv6 goes out as IPv4, as Go unwraps it. Throws, writing
    /// nothing, for an empty name or one longer than 255 bytes.
    package func write(_ destination: Destination, to buffer: inout ByteBuffer) throws(AddressSerializerError) {
        switch destination.host {
        case .ip(let ip):
            switch ip.unmapped {
            case .v4(let value):
                buffer.writeInteger(ipv4)
                buffer.writeInteger(value)
            case .v6(let value):
                buffer.writeInteger(ipv6)
                buffer.writeInteger(value.high)
                buffer.writeInteger(value.low)
            }
        case .domain(let name):
            let length = name.utf8.count
            guard length > 0 else { throw .emptyDomain }
            guard length <= 255 else { throw .domainTooLong(length) }
            buffer.writeInteger(domain)
            buffer.writeInteger(UInt8(length))
            buffer.writeString(name)
        }
        buffer.writeInteger(destination.port)
    }
}
