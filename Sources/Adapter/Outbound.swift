// Outbound: carries a routed flow towards its destination.
package import NIOCore

/// Sends flows somewhere: the kernel (`direct`), nowhere (`block`), a proxy server (`socks`, …).
///
/// Contract:
/// - `dialTCP` returns a channel already connected (handshakes done), registered on `eventLoop`
///   (the flow's loop, so the relay needs no hop), active, with `ByteBuffer` payload in both
///   directions and `autoRead` OFF, with early bytes held: NIO drains a socket on EOF even with
///   autoRead off, so the last handler must buffer (Net's `FlowBufferHandler`, which `Relay`
///   removes and replays, or the protocol handler's own buffer). The caller owns the channel.
///   Protocol handlers stay in its pipeline; the caller appends its handlers at the end.
/// - `listenPacket` returns a packet path for one UDP flow on `eventLoop`; the caller owns it.
/// - Both may be called from any thread and complete on `eventLoop`.
/// - Errors are `AdapterError`s or kernel errors; the router logs them with the outbound's name.
package protocol Outbound: Lifecycle {
    /// The config type string, e.g. `"direct"`.
    var type: String { get }
    /// The config tag.
    var tag: String { get }
    /// The networks this outbound can carry (`direct`: tcp and udp).
    var networks: Set<NetworkKind> { get }
    /// Tags of outbounds this one dials through (`detour`); the box starts them first.
    var dependencies: [String] { get }
    /// Opens a TCP flow to `metadata.destination` on `eventLoop`.
    func dialTCP(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any Channel
    /// Opens a UDP packet path for the flow described by `metadata` on `eventLoop`.
    func listenPacket(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any PacketConnection
}

extension Outbound {
    package var dependencies: [String] { [] }
    /// `outbound/direct[direct]`, the name Go's logs and errors use.
    package var logName: String { "outbound/\(type)[\(tag)]" }
}

extension Inbound {
    /// `inbound/mixed[mixed-in]`, the name Go's logs and errors use.
    package var logName: String { "inbound/\(type)[\(tag)]" }
}

/// An adapter that is both sides at once (`wireguard`, `tailscale`): it dials like an outbound and
/// feeds flows from its peers to the router like an inbound.
package protocol Endpoint: Outbound {}

extension Endpoint {
    /// `endpoint/wireguard[wg-ep]`.
    package var logName: String { "endpoint/\(type)[\(tag)]" }
}

/// A background service (`resolved`, `ssm-api`, `derp`). Started first and closed last.
package protocol Service: Lifecycle {
    /// The config type string.
    var type: String { get }
    /// The config tag.
    var tag: String { get }
}

extension Service {
    /// `service/resolved[resolved]`.
    package var logName: String { "service/\(type)[\(tag)]" }
}
