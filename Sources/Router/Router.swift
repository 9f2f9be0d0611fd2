// Router: route rules and actions, and the hand-off of every flow to an outbound and a relay.
//
// A TCP flow, step by step (`Router.handleTCP`):
// 1. Match rules in order (`Router.match`). Each hit is logged `match[i] <rule> => <action>`.
//    Non-final actions (`route-options`, `resolve`, `sniff`) change the metadata and matching
//    continues; `route`, `reject`, `hijack-dns` end it. No final hit: the default outbound.
// 2. Reject: the inbound answers its error reply, the flow closes (`connection closed: rejected`).
// 3. Route: with the Clash API served, the flow joins the box's `ConnectionTracker` (metadata, rule,
//    outbound chain; the relay then counts its bytes). The outbound dials on the flow's event loop; a
//    dial error is logged as Go logs it
//    (`connection: open connection to <dest> using outbound/<type>[<tag>]: <error>`).
// 4. The relay joins both channels, then the inbound sends its success reply.
// UDP flows take the same decision and join a `PacketRelay` with the route's UDP timeout.
//
// Imports: Rules, Net, Adapter, Config, NIOCore (STYLE.md §1). Never a protocol or the box.

/// The module's name, for log lines and diagnostics.
package enum RouterModule {
    package static let name = "Router"
}
