// The SOCKS5-style address every shadowsocks header carries (SIP002 §3 / RFC 1928 §5): ATYP 1
// (IPv4), 3 (length-prefixed domain) or 4 (IPv6), then the port in network order.
package import Adapter
package import NIOCore

extension Destination {
    /// Reads an address at the reader index. Nil (nothing consumed) when the bytes end early;
    /// throws `.badAddress` on an unknown type or an empty domain. A domain spelling an IP literal
    /// becomes that IP, as Go's `M.ParseSocksaddrHostPort` does.
    package static func readShadowsocks(from buffer: inout ByteBuffer) throws(ShadowsocksError) -> Destination? {
        do { return try AddressSerializer.socks.read(from: &buffer) } catch { throw .badAddress }
    }

    /// Bytes `writeShadowsocks` writes (a domain longer than 255 bytes is cut to 255).
    package var shadowsocksAddressLength: Int {
        AddressSerializer.socks.encodedLength(shadowsocksWritable)
    }

    /// Writes the address; IPv4-mapped IPv6 goes out as IPv4, as Go unwraps it. A name longer than
    /// its length byte is cut to 255 bytes (a name that long resolves nowhere anyway).
    package func writeShadowsocks(to buffer: inout ByteBuffer) {
        try? AddressSerializer.socks.write(shadowsocksWritable, to: &buffer)
    }

    /// This destination with a name cut to what the length byte can say.
    private var shadowsocksWritable: Destination {
        guard case .domain(let name) = host, name.utf8.count > 255 else { return self }
        return Destination(domain: String(decoding: Array(name.utf8.prefix(255)), as: UTF8.self), port: port)
    }
}
