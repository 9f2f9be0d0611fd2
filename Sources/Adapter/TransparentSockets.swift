// TransparentSockets: the Linux socket calls the `redirect` and `tproxy` inbounds need, as a protocol
// so those protocols never import Appliance (STYLE.md §1). Appliance/LinuxSockets implements it; the
// box hands it in through `AdapterContext.transparentSockets`.
package import NIOCore

/// Original destinations and transparent sockets (Linux SO_ORIGINAL_DST, IP_TRANSPARENT,
/// IP_RECVORIGDSTADDR). Every method is safe to call from any thread.
package protocol TransparentSockets: Sendable {
    /// The destination an accepted TCP connection had before an nftables `redirect`/DNAT
    /// (SO_ORIGINAL_DST, or IP6T_SO_ORIGINAL_DST for IPv6 peers). Fails for a connection that was
    /// not redirected (the kernel's ENOENT).
    func originalDestination(of channel: any Channel) -> EventLoopFuture<Destination>

    /// Sets IP_TRANSPARENT (and IPV6_TRANSPARENT on an IPv6 socket) on a server channel before it
    /// binds, so it accepts connections that `tproxy` delivers for foreign addresses.
    func setTransparent(_ channel: any Channel, ipv6: Bool) -> EventLoopFuture<Void>

    /// Binds a transparent UDP socket at `address` that reports each datagram's original
    /// destination. `receive` is called on a reader thread of the implementation with the datagrams
    /// read in one wake-up (so the consumer crosses to its event loop once per batch), in arrival
    /// order, until the listener is closed. Throws `AdapterError` (`listen udp <addr>: …`).
    func listenUDP(at address: SocketAddress, routingMark: UInt32?,
                   receive: @escaping @Sendable ([TransparentDatagram]) -> Void) throws
        -> any TransparentPacketListener

    /// Opens a UDP socket bound to the foreign address `source` (IP_TRANSPARENT, SO_REUSEADDR), so
    /// datagrams sent through it appear to come from `source`: how tproxy replies reach the client.
    func openReplySocket(from source: SocketAddress, routingMark: UInt32?) throws -> any TransparentPacketSender
}

/// One datagram a transparent UDP socket received.
package struct TransparentDatagram: Sendable {
    /// The payload (a slice of the batch's one buffer).
    package var payload: ByteBuffer
    /// The client that sent it.
    package var source: SocketAddress
    /// Where the client sent it (IP_ORIGDSTADDR); IPv4-mapped addresses arrive as IPv4.
    package var destination: SocketAddress

    /// A datagram.
    package init(payload: ByteBuffer, source: SocketAddress, destination: SocketAddress) {
        self.payload = payload
        self.source = source
        self.destination = destination
    }
}

/// A bound transparent UDP socket with its reader running.
package protocol TransparentPacketListener: AnyObject, Sendable {
    /// The bound address (the real port when bound to port 0).
    var localAddress: SocketAddress { get }
    /// Stops the reader and closes the socket; no `receive` call starts after it returns. Idempotent.
    func close()
}

/// A UDP socket that sends from a fixed (possibly foreign) address.
package protocol TransparentPacketSender: AnyObject, Sendable {
    /// Sends one datagram to `destination` without blocking; a full socket buffer drops it, as UDP
    /// may. Throws `AdapterError` for other failures.
    func send(_ payload: ByteBuffer, to destination: SocketAddress) throws
    /// Closes the socket. Idempotent.
    func close()
}
