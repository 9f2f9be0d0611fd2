// SystemResolver: getaddrinfo(3) on NIO's thread pool, used until the DNS router is wired in.
package import Adapter
import NIOPosix
import Glibc

/// Resolves through the C library (`/etc/hosts`, `/etc/resolv.conf`). Blocking calls run on
/// `NIOThreadPool.singleton`, never on an event loop. Throws `AdapterError` naming the domain.
package struct SystemResolver: DNSResolver {
    package init() {}

    package func lookup(_ domain: String, options: DNSLookupOptions) async throws -> [IPAddress] {
        let addresses = try await NIOThreadPool.singleton.runIfActive {
            try SystemResolver.getaddrinfo(domain)
        }
        let ordered = options.strategy.apply(addresses)
        if ordered.isEmpty {
            throw AdapterError(.notFound, "lookup \(domain): no such host")
        }
        return ordered
    }

    /// Blocking lookup of A and AAAA, deduplicated, in the order the C library returned them.
    static func getaddrinfo(_ domain: String) throws -> [IPAddress] {
        if let ip = IPAddress(domain) { return [ip] }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let status = Glibc.getaddrinfo(domain, nil, &hints, &result)
        guard status == 0 else {
            throw AdapterError(.notFound, "lookup \(domain): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(result) }
        var out: [IPAddress] = []
        var cursor = result
        while let entry = cursor {
            if let sockaddr = entry.pointee.ai_addr {
                let raw = UnsafeRawBufferPointer(start: sockaddr, count: Int(entry.pointee.ai_addrlen))
                var ip: IPAddress?
                if entry.pointee.ai_family == AF_INET, raw.count >= 8 {
                    ip = IPAddress(bytes: raw[4..<8])
                } else if entry.pointee.ai_family == AF_INET6, raw.count >= 24 {
                    ip = IPAddress(bytes: raw[8..<24])
                }
                if let ip, !out.contains(ip) { out.append(ip) }
            }
            cursor = entry.pointee.ai_next
        }
        return out
    }
}
