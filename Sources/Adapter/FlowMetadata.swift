// FlowMetadata: what is known about one flow, filled by the inbound, the sniffer and the router
// (sing-box's adapter.InboundContext).
package import NIOCore

/// The transport of a flow.
package enum NetworkKind: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case tcp, udp
    package var description: String { rawValue }
}

/// How a domain is turned into addresses (sing-box `domain_strategy` / `strategy`).
package enum DomainStrategy: String, Hashable, Sendable {
    /// Both families, as the resolver returns them (Go's "" default).
    case asIs = ""
    case preferIPv4 = "prefer_ipv4"
    case preferIPv6 = "prefer_ipv6"
    case ipv4Only = "ipv4_only"
    case ipv6Only = "ipv6_only"
}

/// A flow's log identity: Go prints `[<id> <elapsed>]` before every line about a flow.
package struct FlowID: Hashable, Sendable {
    /// A random 32-bit number, as Go's `log.ContextWithNewID`.
    package let id: UInt32
    /// When the flow was accepted.
    package let start: NIODeadline

    package init(id: UInt32 = .random(in: .min ... .max), start: NIODeadline = .now()) {
        self.id = id
        self.start = start
    }
}

/// Everything known about one flow. Value type: an inbound fills the first block, copies travel
/// with the flow, and the router fills the rest before dialing. Not shared across loops mutably.
package struct FlowMetadata: Sendable {
    // Filled by the inbound.
    /// Log identity of the flow.
    package var flowID: FlowID
    /// Tag of the inbound that accepted the flow (`mixed-in`).
    package var inbound: String
    /// Type of that inbound (`mixed`).
    package var inboundType: String
    /// tcp or udp.
    package var network: NetworkKind
    /// The client's address as seen by the inbound.
    package var source: Destination?
    /// Where the client wants to go (may be a domain).
    package var destination: Destination
    /// The authenticated user, when the inbound has users.
    package var user: String?
    /// The destination before any override or sniff rewrote it (Go's `OriginDestination`).
    package var originalDestination: Destination?
    /// Inbound-level domain strategy (`listen.domain_strategy`, deprecated but honoured).
    package var inboundDomainStrategy: DomainStrategy?
    /// Legacy inbound `sniff` (deprecated in 1.11, still honoured in 1.12): sniff before any rule.
    package var inboundSniff: InboundSniff?
    /// The listen `detour`: the router hands the connection to this inbound instead of routing it
    /// (Go's `InboundDetour`; only the inbounds whose Go counterparts set it fill it in).
    package var inboundDetour: String?
    /// The inbound that accepted the flow before a detour handed it on (Go's `LastInbound`).
    package var lastInbound: String?

    // Filled by sniffing.
    /// Sniffed protocol (`tls`, `http`, `quic`, `dns`, …).
    package var sniffedProtocol: String?
    /// Sniffed domain (TLS SNI, HTTP Host, …).
    package var sniffedDomain: String?
    /// Sniffed client name (e.g. `chromium` for QUIC), Go's `Client`.
    package var sniffedClient: String?

    // Filled by the router.
    /// Tag of the chosen outbound.
    package var outbound: String?
    /// Addresses the destination domain resolved to (by the `resolve` action or the dialer).
    package var destinationAddresses: [IPAddress]
    /// `route-options`: dial the original destination even if it was overridden (`override_*`).
    package var udpDisableDomainUnmapping: Bool
    /// `route-options`: make UDP `connect(2)`ed.
    package var udpConnect: Bool
    /// `route-options`: UDP NAT idle time; nil means the default (5 minutes).
    package var udpTimeout: TimeAmount?
    /// `route-options` / `resolve`: strategy for dialing a domain destination.
    package var domainStrategy: DomainStrategy?
    /// `route-options`: `fallback_delay` for happy eyeballs.
    package var fallbackDelay: TimeAmount?
    /// The local process owning the flow's source socket, once the router looked it up
    /// (only when a rule needs it or `route.find_process` is set).
    package var process: OwnerProcess?
    /// The Clash API's mode when the flow was routed (nil without a Clash API): `clash_mode` items
    /// compare with it.
    package var clashMode: String?
    /// Index of the route rule whose `route` action chose the outbound (nil: the default outbound),
    /// for the Clash API's `rule` (Go's `selectedRule`).
    package var matchedRule: Int?

    /// A fresh flow from an inbound; router fields start empty.
    package init(inbound: String, inboundType: String, network: NetworkKind,
                 source: Destination?, destination: Destination, flowID: FlowID = FlowID()) {
        self.flowID = flowID
        self.inbound = inbound
        self.inboundType = inboundType
        self.network = network
        self.source = source
        self.destination = destination
        self.destinationAddresses = []
        self.udpDisableDomainUnmapping = false
        self.udpConnect = false
    }

    /// The domain rules match against: the sniffed domain, else the destination's (Go's
    /// `metadata.Domain` before `Destination.Fqdn`).
    package var matchDomain: String? { sniffedDomain ?? destination.domain }
}

/// The legacy inbound sniff fields (`sniff`, `sniff_override_destination`, `sniff_timeout`).
package struct InboundSniff: Sendable, Equatable {
    package var overrideDestination: Bool
    package var timeout: TimeAmount?

    package init(overrideDestination: Bool, timeout: TimeAmount?) {
        self.overrideDestination = overrideDestination
        self.timeout = timeout
    }
}
