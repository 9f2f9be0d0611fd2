// Destination: where a flow goes — a domain or an IP, plus a port (sing's M.Socksaddr).
package import NIOCore

/// The host half of a `Destination`.
package enum Host: Hashable, Sendable, CustomStringConvertible {
    case ip(IPAddress)
    /// A fully qualified domain name as the client sent it (no trailing dot normalisation).
    case domain(String)

    /// Parses a literal IP; anything else is a domain. `[::1]` brackets are stripped.
    package init(_ text: some StringProtocol) {
        var s = Substring(text)
        if s.hasPrefix("["), s.hasSuffix("]") { s = s.dropFirst().dropLast() }
        if let ip = IPAddress(s) { self = .ip(ip) } else { self = .domain(String(s)) }
    }

    /// The IP when the host is one.
    package var ip: IPAddress? { if case .ip(let a) = self { a } else { nil } }
    /// The domain when the host is one.
    package var domain: String? { if case .domain(let d) = self { d } else { nil } }

    package var description: String {
        switch self {
        case .ip(let a): return a.description
        case .domain(let d): return d
        }
    }
}

/// A flow's destination or source: host and port. Printed as Go prints `M.Socksaddr`:
/// `example.com:80`, `1.2.3.4:80`, `[::1]:80`.
package struct Destination: Hashable, Sendable, CustomStringConvertible {
    package var host: Host
    package var port: UInt16

    package init(host: Host, port: UInt16) {
        self.host = host
        self.port = port
    }

    package init(ip: IPAddress, port: UInt16) {
        self.init(host: .ip(ip), port: port)
    }

    package init(domain: String, port: UInt16) {
        self.init(host: .domain(domain), port: port)
    }

    /// Parses `host:port`, `[v6]:port`. Returns nil without a valid port.
    package init?(_ text: some StringProtocol) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else { return nil }
        let hostPart = text[..<colon]
        if hostPart.contains(":") && !(hostPart.hasPrefix("[") && hostPart.hasSuffix("]")) { return nil }
        self.init(host: Host(hostPart), port: port)
    }

    /// The IP when the destination is an address.
    @inlinable package var ip: IPAddress? { host.ip }
    /// The domain when the destination is a name.
    @inlinable package var domain: String? { host.domain }
    /// True for a domain destination (a name still to resolve).
    @inlinable package var isDomain: Bool { host.domain != nil }

    package var description: String {
        switch host {
        case .ip(let ip) where ip.isIPv6: return "[\(host)]:\(port)"
        default: return "\(host):\(port)"
        }
    }
}

extension Destination {
    /// The destination of a kernel socket address; nil for unix sockets.
    package init?(_ address: SocketAddress) {
        // Read the sockaddr bytes directly (family 2, port 2 big-endian, then the address at
        // offset 4 for sockaddr_in and 8 for sockaddr_in6) instead of formatting a string.
        let parsed: Destination? = address.withSockAddr { pointer, length in
            let raw = UnsafeRawBufferPointer(start: pointer, count: length)
            guard length >= 8 else { return nil }
            let port = UInt16(raw[2]) << 8 | UInt16(raw[3])
            switch address {
            case .v4:
                guard let ip = IPAddress(bytes: raw[4..<8]) else { return nil }
                return Destination(ip: ip, port: port)
            case .v6:
                guard length >= 24, let ip = IPAddress(bytes: raw[8..<24]) else { return nil }
                return Destination(ip: ip, port: port)
            case .unixDomainSocket:
                return nil
            }
        }
        guard let parsed else { return nil }
        self = parsed
    }
}

extension SocketAddress {
    /// The kernel socket address for an IP and port (no name resolution).
    package init(ip: IPAddress, port: UInt16) {
        var packed = ByteBuffer()
        packed.writeBytes(ip.bytes)
        // 4 or 16 bytes always: the initializer cannot fail here.
        try! self.init(packedIPAddress: packed, port: Int(port))
    }
}
