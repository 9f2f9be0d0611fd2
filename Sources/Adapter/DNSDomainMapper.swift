// DNSDomainMapper: how the router learns which domain a plain-IP connection was for.

/// What a fake-IP lookup found for a connection's destination address.
package enum FakeIPMapping: Sendable, Equatable {
    /// The address is not in a fakeip range.
    case notFake
    /// The address is a fake one this box handed out for `domain`.
    case domain(String)
    /// The address is in a fakeip range but has no record (e.g. handed out before a restart).
    case missing
}

/// The DNS side of naming connections (sing-box route.go before rule matching): fakeip addresses
/// become their domain again, and with `dns.reverse_mapping` a real address answered earlier gives
/// the rules its domain. Implemented by the DNS module, handed to the router by the box.
/// Thread-safe; cheap enough to call once per new flow.
package protocol DNSDomainMapper: AnyObject, Sendable {
    /// The fakeip store's answer for `address`.
    func fakeIPMapping(for address: IPAddress) -> FakeIPMapping
    /// The domain `address` was last answered for while that answer's TTL lasts (reverse mapping).
    func reverseDomain(for address: IPAddress) -> String?
}

/// A resolver that lets DNS rules see the flow a lookup is for (the route `resolve` action: Go
/// passes the connection's metadata, so `inbound`, `source_ip_cidr`, … match). The DNS router
/// implements it; the box hands it to the flow router.
package protocol FlowDNSResolver: AnyObject, Sendable {
    /// Resolves `domain` for `flow` (its destination is the domain being resolved).
    func lookup(_ domain: String, options: DNSLookupOptions, flow: FlowMetadata) async throws -> [IPAddress]
}
