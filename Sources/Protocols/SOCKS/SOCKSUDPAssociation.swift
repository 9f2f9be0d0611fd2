// One UDP ASSOCIATE (RFC 1928 §7) as a packet path for the router.
//
// Client → us: datagrams must come from the IP of the TCP client (§7 says drop others); the
// header is parsed and stripped, the payload delivered with its DST as the destination; FRAG ≠ 0
// and malformed headers are dropped. Us → client: the header with the reply's source is put in
// front and the datagram goes to the client's last seen address. The association lives as long
// as the TCP connection that made it; closing either closes both.
package import Adapter
package import NIOCore
package import Net

/// A SOCKS5 UDP association seen from the inbound: what the client sends and what goes back.
/// Loop-confined to the control connection's loop (the UDP socket is bound on the same loop).
package final class SOCKSUDPAssociation: ControlledPacketConnection, @unchecked Sendable {
    /// The TCP connection that asked for the association.
    package let control: any Channel
    /// The only IP datagrams are accepted from.
    package let clientIP: IPAddress
    package var eventLoop: any EventLoop { control.eventLoop }
    package var closeFuture: EventLoopFuture<Void> { closed.futureResult }
    /// Called once, with the first datagram's destination, before that datagram is delivered.
    var onFirstPacket: ((Destination) -> Void)?
    /// Datagrams dropped for a bad header, a fragment or a foreign source (for tests and stats).
    package private(set) var droppedCount = 0

    private let closed: EventLoopPromise<Void>
    private var udp: (any Channel)?
    private var clientAddress: SocketAddress?
    private var receiver: (any PacketReceiver)?
    private var queued: [(ByteBuffer, Destination)] = []
    private var isClosed = false
    private static let maxQueued = 64

    init(control: any Channel, clientIP: IPAddress) {
        self.control = control
        self.clientIP = clientIP
        self.closed = control.eventLoop.makePromise()
        control.closeFuture.whenComplete { [self] _ in close() }
    }

    /// Takes the bound socket; closing it ends the association.
    func attach(_ channel: any Channel) {
        guard !isClosed else { channel.close(promise: nil); return }
        udp = channel
        channel.closeFuture.whenComplete { [self] _ in close() }
    }

    package func setReceiver(_ receiver: any PacketReceiver) {
        eventLoop.preconditionInEventLoop()
        guard !isClosed else { receiver.packetConnectionClosed(); return }
        self.receiver = receiver
        let backlog = queued
        queued.removeAll()
        for (payload, destination) in backlog { receiver.packetReceived(payload, from: destination) }
    }

    /// Sends `payload` to the client as coming from `source`.
    package func writePacket(_ payload: ByteBuffer, to source: Destination) {
        guard !isClosed, let udp, let clientAddress else { return }
        var datagram = udp.allocator.buffer(capacity: SOCKS5UDPHeader.length(for: source) + payload.readableBytes)
        do {
            try SOCKS5UDPHeader.write(source, to: &datagram)
        } catch {
            droppedCount += 1
            return
        }
        datagram.writeImmutableBuffer(payload)
        udp.write(AddressedEnvelope(remoteAddress: clientAddress, data: datagram), promise: nil)
    }

    package func flush() { udp?.flush() }

    package func close() {
        guard !isClosed else { return }
        isClosed = true
        queued.removeAll()
        onFirstPacket = nil
        udp?.close(promise: nil)
        control.close(promise: nil)
        let receiver = self.receiver
        self.receiver = nil
        receiver?.packetConnectionClosed()
        closed.succeed(())
    }

    /// One datagram from the socket.
    func received(_ envelope: AddressedEnvelope<ByteBuffer>) {
        guard !isClosed else { return }
        guard let sender = Destination(envelope.remoteAddress), sender.ip?.unmapped == clientIP else {
            droppedCount += 1
            return
        }
        var payload = envelope.data
        let destination: Destination
        do {
            destination = try SOCKS5UDPHeader.read(from: &payload)
        } catch {
            droppedCount += 1
            return
        }
        clientAddress = envelope.remoteAddress
        if let first = onFirstPacket {
            onFirstPacket = nil
            first(destination)
        }
        if let receiver {
            receiver.packetReceived(payload, from: destination)
        } else if queued.count < Self.maxQueued {
            queued.append((payload, destination))
        }
    }
}

/// Delivers datagrams from the association's socket.
final class SOCKSAssociationReadHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    private weak var association: SOCKSUDPAssociation?

    init(association: SOCKSUDPAssociation) { self.association = association }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        association?.received(unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ICMP errors surface as read errors on UDP; they do not end the association.
    }
}
