// Dialer and DNSResolver: how outbounds and DNS transports reach the network.
package import NIOCore

/// Opens kernel (or detour) connections for an outbound or a DNS transport, honouring its dial
/// fields (`detour`, `bind_interface`, `inet4_bind_address`, `routing_mark`, `connect_timeout`,
/// `tcp_fast_open`, `domain_strategy`, `fallback_delay`, …). The default implementation lives in
/// `Net`; a detour dialer wraps another outbound.
///
/// Contract: results are registered on `eventLoop` and owned by the caller. A domain destination
/// is resolved through the `DNSResolver` the dialer was built with, then dialed with happy
/// eyeballs per its strategy. May be called from any thread.
package protocol Dialer: Sendable {
    /// Connects TCP to `destination`; the channel is active, `autoRead` off, early bytes held
    /// (see `Outbound.dialTCP`), payload `ByteBuffer`.
    func dialTCP(to destination: Destination, on eventLoop: any EventLoop) async throws -> any Channel
    /// Opens an unconnected UDP socket as a packet path (datagrams to any destination).
    func listenPacket(on eventLoop: any EventLoop) async throws -> any PacketConnection
}

/// Options for one lookup (sing-box `domain_resolver` / rule action `resolve`).
package struct DNSLookupOptions: Hashable, Sendable {
    /// Tag of the DNS server to ask; nil means the DNS router decides.
    package var server: String?
    /// Which address families to return and in which order.
    package var strategy: DomainStrategy
    /// Skip the cache for this lookup.
    package var disableCache: Bool
    /// Override the answer TTL in the cache.
    package var rewriteTTL: UInt32?
    /// EDNS client subnet to send.
    package var clientSubnet: IPPrefix?

    package init(server: String? = nil, strategy: DomainStrategy = .asIs, disableCache: Bool = false,
                 rewriteTTL: UInt32? = nil, clientSubnet: IPPrefix? = nil) {
        self.server = server
        self.strategy = strategy
        self.disableCache = disableCache
        self.rewriteTTL = rewriteTTL
        self.clientSubnet = clientSubnet
    }
}

/// Turns a domain into addresses. The DNS router implements it; until it exists the box uses the
/// system resolver (`Net.SystemResolver`). Called from any thread; never blocks an event loop.
/// Throws when nothing was found (an empty answer is an error, as in Go's `DNS.Lookup`).
package protocol DNSResolver: Sendable {
    func lookup(_ domain: String, options: DNSLookupOptions) async throws -> [IPAddress]
}

extension DomainStrategy {
    /// Orders and filters `addresses` as this strategy says (prefer_* sorts, *_only filters).
    package func apply(_ addresses: [IPAddress]) -> [IPAddress] {
        switch self {
        case .asIs: return addresses
        case .ipv4Only: return addresses.filter { $0.unmapped.isIPv4 }
        case .ipv6Only: return addresses.filter { !$0.unmapped.isIPv4 }
        case .preferIPv4: return addresses.filter { $0.unmapped.isIPv4 } + addresses.filter { !$0.unmapped.isIPv4 }
        case .preferIPv6: return addresses.filter { !$0.unmapped.isIPv4 } + addresses.filter { $0.unmapped.isIPv4 }
        }
    }
}
