// packetaddr over a vless command-2 stream (Go's inbound: `packetaddr.NewConn` when the request
// names `sp.packet-addr.v2fly.arpa`): each length-prefixed datagram starts with its own address
// (VMess's packetaddr prefix: type 1 IPv4 / 2 IPv6, address, port), so one stream carries
// datagrams to and from any IP destination. A domain cannot be carried and is dropped, as Go.
package import Adapter
package import NIOCore
import Transport
import VMess

/// A packetaddr layer over a length-prefixed stream connection. Loop-confined to its stream's loop.
package final class VLESSPacketAddressConnection: PacketConnection, PacketReceiver, @unchecked Sendable {
    private let inner: UDPOverTCPConnection
    private var receiver: (any PacketReceiver)?
    package var eventLoop: any EventLoop { inner.eventLoop }
    package var closeFuture: EventLoopFuture<Void> { inner.closeFuture }

    /// Wraps `inner` (length-prefixed, its destination the magic name).
    init(_ inner: UDPOverTCPConnection) {
        self.inner = inner
    }

    package func setReceiver(_ receiver: any PacketReceiver) {
        self.receiver = receiver
        inner.setReceiver(self)
    }

    /// Prefixes the datagram with `destination` (the reply's source); a domain is dropped.
    package func writePacket(_ payload: ByteBuffer, to destination: Destination) {
        guard let framed = VMessPacketAddress.frame(payload, to: destination, allocator: inner.channel.allocator) else { return }
        inner.writePacket(framed, to: destination)
    }

    package func flush() { inner.flush() }

    package func close() { inner.close() }

    /// A datagram from the stream: its prefix names where it goes; a bad prefix drops it.
    package func packetReceived(_ payload: ByteBuffer, from source: Destination) {
        var packet = payload
        guard let target = VMessPacketAddress.read(&packet) else { return }
        receiver?.packetReceived(packet, from: target)
    }

    package func packetConnectionClosed() {
        let receiver = self.receiver
        self.receiver = nil
        receiver?.packetConnectionClosed()
    }
}
