package import Adapter

/// `Adapter.DNSResolver` over a `DNSClient` and tagged transports, without DNS rules: a lookup goes to
/// the server named in its options (`domain_resolver.server`), else to the default server. This is
/// what dialers use until the DNS router (rules, `final`, RDRC) is built on top of the same client.
/// Thread-safe; the transports are fixed at construction.
package final class DNSTransportResolver: DNSResolver {
    package let client: DNSClient
    private let transports: [String: any DNSTransport]
    private let defaultTag: String
    private let defaultStrategy: DomainStrategy

    /// A resolver over `transports`; `defaultTag` must name one of them (the config's `final`, or the
    /// first server). `defaultStrategy` is the `dns.strategy` applied when a lookup gives none.
    package init?(client: DNSClient, transports: [any DNSTransport], defaultTag: String? = nil, defaultStrategy: DomainStrategy = .asIs) {
        guard let tag = defaultTag ?? transports.first?.tag, transports.contains(where: { $0.tag == tag }) else { return nil }
        self.client = client
        self.transports = Dictionary(transports.map { ($0.tag, $0) }, uniquingKeysWith: { first, _ in first })
        self.defaultTag = tag
        self.defaultStrategy = defaultStrategy
    }

    /// The transport with `tag`.
    package func transport(_ tag: String) -> (any DNSTransport)? { transports[tag] }

    package func lookup(_ domain: String, options: DNSLookupOptions) async throws -> [IPAddress] {
        let tag = options.server ?? defaultTag
        guard let transport = transports[tag] else {
            throw AdapterError(.notFound, "lookup \(domain): DNS server not found: \(tag)")
        }
        let query = DNSQueryOptions(strategy: options.strategy == .asIs ? defaultStrategy : options.strategy,
                                    disableCache: options.disableCache, rewriteTTL: options.rewriteTTL,
                                    clientSubnet: options.clientSubnet)
        return try await client.lookup(domain, transport: transport, options: query)
    }
}
