// Inbound: accepts flows from clients and hands them to the router.

/// A listener of one type (`mixed`, `direct`, `tun`, …) with a tag. It accepts flows in
/// `start(.start)`, fills a `FlowMetadata` per flow and passes the flow to its `FlowHandler`
/// (the router) on the flow's event loop. It owns listening sockets, not the flows it handed off:
/// after `FlowHandler.handleTCP` the router owns the channel. `close()` stops listening and closes
/// flows still in their handshake.
package protocol Inbound: Lifecycle {
    /// The config type string, e.g. `"mixed"`.
    var type: String { get }
    /// The config tag (generated as `<type>` or the index when the config has none).
    var tag: String { get }
}
