// ResolverSwitch: a DNSResolver whose target is set after construction.
import Synchronization

/// Lets dialers be built before the DNS router exists (the DNS router's transports need those
/// dialers): everything resolves through the switch, and the box points it at the DNS router once
/// that is built. Starts at `initial` (the system resolver).
package final class ResolverSwitch: DNSResolver {
    private let target: Mutex<any DNSResolver>

    package init(_ initial: any DNSResolver) {
        target = Mutex(initial)
    }

    /// Where lookups go now (the `resolved` service reaches the DNS cache through it for FlushCaches).
    package var current: any DNSResolver { target.withLock { $0 } }

    /// Routes later lookups to `resolver`.
    package func set(_ resolver: any DNSResolver) {
        target.withLock { $0 = resolver }
    }

    package func lookup(_ domain: String, options: DNSLookupOptions) async throws -> [IPAddress] {
        let resolver = target.withLock { $0 }
        return try await resolver.lookup(domain, options: options)
    }
}
