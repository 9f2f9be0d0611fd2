// The router's packet sniffers read a NAT flow's first datagrams while they wait for the relay.
package import NIOCore
package import Adapter

extension NATPacketConnection: PacketPeeking {
    /// The datagrams queued before `setReceiver`, oldest first. On the listener's loop.
    package func queuedPayloads() -> [ByteBuffer] { inbox.queuedPayloads }
}
