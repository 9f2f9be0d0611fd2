// PacketConnection: one UDP flow as datagrams with addresses (sing's N.PacketConn), on one loop.
package import NIOCore

/// Receives datagrams from a `PacketConnection`. Called on the connection's event loop only.
package protocol PacketReceiver: AnyObject {
    /// One datagram from `source`. The receiver owns `payload`.
    func packetReceived(_ payload: ByteBuffer, from source: Destination)
    /// Called once when the connection closed (by either side or an error).
    func packetConnectionClosed()
}

/// A UDP flow's packet path: an outbound's socket (`listenPacket`), or an inbound's view of one
/// client (a UDP NAT entry, a SOCKS UDP association). Used by the router's packet relay.
///
/// Contract: every method is called on `eventLoop`. `writePacket` takes ownership of the buffer;
/// datagrams are dropped (not queued without bound) when the socket is not writable, as UDP
/// allows. `setReceiver` is called once before datagrams flow; the connection keeps its receiver
/// strongly until closed. `close()` is idempotent and completes `closeFuture`.
package protocol PacketConnection: AnyObject, Sendable {
    /// The loop that owns this connection.
    var eventLoop: any EventLoop { get }
    /// Sends one datagram to `destination` (a domain is resolved by the implementation).
    func writePacket(_ payload: ByteBuffer, to destination: Destination)
    /// Pushes queued datagrams to the kernel (end of a batch).
    func flush()
    /// Installs the receiver and starts reading.
    func setReceiver(_ receiver: any PacketReceiver)
    /// Closes the flow and releases its socket.
    func close()
    /// Completes once closed.
    var closeFuture: EventLoopFuture<Void> { get }
}
