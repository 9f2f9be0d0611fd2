// PacketPeeking: lets the router's packet sniffers see a UDP flow's first datagrams before the
// relay takes the connection (Go's PeekPacket over the cached first packets).
package import NIOCore

/// A `PacketConnection` that queues the datagrams it receives until `setReceiver` and can show
/// them. Inbounds whose connections queue (tproxy) adopt it; the router sniffs UDP only through it.
package protocol PacketPeeking: PacketConnection {
    /// The payloads queued so far, oldest first, without removing them. Called on `eventLoop`
    /// before `setReceiver`.
    func queuedPayloads() -> [ByteBuffer]
}
