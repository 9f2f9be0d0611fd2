// The SOCKS5-style address every shadowsocks header carries (SIP002 §3 / RFC 1928 §5): ATYP 1
// (IPv4), 3 (length-prefixed domain) or 4 (IPv6), then the port in network order.
package import Adapter
package import NIOCore

extension Destination {
    /// Reads an address at the reader index. Nil (nothing consumed) when the bytes end early;
    /// throws `.badAddress` on an unknown type or an empty domain. A domain spelling an IP literal
    /// becomes that IP, as Go's `M.ParseSocksaddrHostPort` does.
    package static func readShadowsocks(from buffer: inout ByteBuffer) throws(ShadowsocksError) -> Destination? {
        let start = buffer.readerIndex
        guard let type = buffer.getInteger(at: start, as: UInt8.self) else { return nil }
        let host: Host
        let portOffset: Int
        switch type {
        case 1:
            guard let value = buffer.getInteger(at: start + 1, as: UInt32.self) else { return nil }
            host = .ip(.v4(value))
            portOffset = start + 5
        case 4:
            guard let high = buffer.getInteger(at: start + 1, as: UInt64.self),
                  let low = buffer.getInteger(at: start + 9, as: UInt64.self) else { return nil }
            host = .ip(.v6(IPv6Bits(high: high, low: low)))
            portOffset = start + 17
        case 3:
            guard let length = buffer.getInteger(at: start + 1, as: UInt8.self) else { return nil }
            guard length > 0 else { throw .badAddress }
            guard let bytes = buffer.getBytes(at: start + 2, length: Int(length)) else { return nil }
            host = Host(String(decoding: bytes, as: UTF8.self))
            portOffset = start + 2 + Int(length)
        default:
            throw .badAddress
        }
        guard let port = buffer.getInteger(at: portOffset, as: UInt16.self) else { return nil }
        buffer.moveReaderIndex(to: portOffset + 2)
        return Destination(host: host, port: port)
    }

    /// Bytes `writeShadowsocks` writes (a domain longer than 255 bytes is cut to 255).
    package var shadowsocksAddressLength: Int {
        switch host {
        case .ip(let ip): ip.unmapped.isIPv4 ? 7 : 19
        case .domain(let name): 4 + min(name.utf8.count, 255)
        }
    }

    /// Writes the address; IPv4-mapped IPv6 goes out as IPv4, as Go unwraps it.
    package func writeShadowsocks(to buffer: inout ByteBuffer) {
        switch host {
        case .ip(let ip):
            switch ip.unmapped {
            case .v4(let value):
                buffer.writeInteger(UInt8(1))
                buffer.writeInteger(value)
            case .v6(let value):
                buffer.writeInteger(UInt8(4))
                buffer.writeInteger(value.high)
                buffer.writeInteger(value.low)
            }
        case .domain(let name):
            let bytes = Array(name.utf8.prefix(255))
            buffer.writeInteger(UInt8(3))
            buffer.writeInteger(UInt8(bytes.count))
            buffer.writeBytes(bytes)
        }
        buffer.writeInteger(port)
    }
}
