// FlowPreMatcher: the route rules asked about a flow before anything answers its first packet
// (sing-box 1.12's `Router.PreMatch`, which sing-tun calls for every new TCP SYN and UDP flow).

/// What the rules decide before a flow is accepted.
package enum PreMatchVerdict: Sendable, Equatable {
    /// No final `reject` before the first rule that needs payload or a lookup: accept and route it.
    case accept
    /// `reject` (method `default`): TCP answers the SYN with RST, UDP with ICMP port unreachable.
    case reject
    /// `reject` with method `drop`: say nothing.
    case drop
}

/// Implemented by the router. An inbound that terminates TCP and UDP itself (tun) asks it once per
/// new flow, on the flow's loop, before the handshake. Must not block: it walks rules, never resolves
/// or sniffs (Go stops pre-matching at the first `sniff` rule, and so do we).
package protocol FlowPreMatcher: AnyObject, Sendable {
    /// The verdict for a flow whose metadata holds only what the first packet says.
    func preMatch(_ metadata: FlowMetadata) -> PreMatchVerdict
}
