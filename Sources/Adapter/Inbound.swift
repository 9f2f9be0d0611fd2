// Inbound: accepts flows from clients and hands them to the router.
package import NIOCore

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

/// An inbound that takes over a TCP connection another inbound accepted (Go's
/// `TCPInjectableInbound`): the target of a listen `detour`. The channel is active, with autoRead off
/// and the accepting inbound's `FlowBufferHandler` in front; the inbound runs its own handshake on it as
/// if it had accepted it. `metadata` is the detoured flow's (`lastInbound` set, `inbound` this one).
package protocol TCPInjectableInbound: Inbound {
    func injectTCP(_ channel: any Channel, metadata: FlowMetadata)
}
