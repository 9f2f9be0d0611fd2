// Plain VMess UDP (command 2): one stream carries datagrams to and from the one destination of
// its request, one datagram per chunk (the codec handlers cut and seal the chunks).
//
// Client: `VMessClientPacketConnection` writes each datagram through `VMessClientHandler`; whatever
// the destination of a write, it goes to the request's (as in sing-vmess); replies come from it.
// Server: `VMessServerPacketConnection` is what the router gets for a command-2 request.
package import Adapter
package import NIOCore
import Net

/// A UDP flow through a VMess server. Loop-confined to the stream's loop.
package final class VMessClientPacketConnection: PacketConnection, @unchecked Sendable {
    let channel: any Channel
    let destination: Destination
    package var eventLoop: any EventLoop { channel.eventLoop }
    package var closeFuture: EventLoopFuture<Void> { closed.futureResult }
    private let closed: EventLoopPromise<Void>
    private var inbox = PacketInbox(maximumCount: 512, maximumBytes: 256 * 1024)
    private var isClosed = false

    /// Takes over `channel` (codec installed, nothing written): installs the datagram reader at its
    /// tail. Call on the channel's loop; the caller then removes the dialer's early-bytes holder.
    init(channel: any Channel, destination: Destination) throws {
        self.channel = channel
        self.destination = destination
        self.closed = channel.eventLoop.makePromise()
        try channel.pipeline.syncOperations.addHandler(VMessDatagramReader(sink: self), position: .last)
        channel.closeFuture.whenComplete { [self] _ in close() }
    }

    package func setReceiver(_ receiver: any PacketReceiver) {
        guard !isClosed else { receiver.packetConnectionClosed(); return }
        inbox.install(receiver)
        _ = try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        channel.read()
    }

    package func writePacket(_ payload: ByteBuffer, to destination: Destination) {
        // UDP may drop: a stream that cannot take more does not queue without bound.
        guard !isClosed, channel.isWritable, payload.readableBytes > 0 else { return }
        channel.write(payload, promise: nil)
    }

    package func flush() { channel.flush() }

    package func close() {
        guard !isClosed else { return }
        isClosed = true
        channel.close(promise: nil)
        inbox.close()?.packetConnectionClosed()
        closed.succeed(())
    }
}

extension VMessClientPacketConnection: VMessDatagramSink {
    func received(_ payload: ByteBuffer) { inbox.deliver(payload, from: destination) }
}

/// One client's UDP flow on a VMess inbound, for the router. Loop-confined to the stream's loop.
final class VMessServerPacketConnection: ControlledPacketConnection, @unchecked Sendable {
    let control: any Channel
    let destination: Destination
    var eventLoop: any EventLoop { control.eventLoop }
    var closeFuture: EventLoopFuture<Void> { closed.futureResult }
    private let closed: EventLoopPromise<Void>
    private var inbox = PacketInbox(maximumCount: 512, maximumBytes: 256 * 1024)
    private var isClosed = false

    /// `channel` runs `VMessServerHandler` with the request read; the reader goes last. On its loop.
    init(channel: any Channel, destination: Destination) throws {
        self.control = channel
        self.destination = destination
        self.closed = channel.eventLoop.makePromise()
        try channel.pipeline.syncOperations.addHandler(VMessDatagramReader(sink: self), position: .last)
        channel.closeFuture.whenComplete { [self] _ in close() }
    }

    func setReceiver(_ receiver: any PacketReceiver) {
        guard !isClosed else { receiver.packetConnectionClosed(); return }
        inbox.install(receiver)
        _ = try? control.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        control.read()
    }

    /// A reply: one chunk to the client (the source address is implied by the request).
    func writePacket(_ payload: ByteBuffer, to destination: Destination) {
        guard !isClosed, control.isWritable, payload.readableBytes > 0 else { return }
        control.write(payload, promise: nil)
    }

    func flush() { control.flush() }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        control.close(promise: nil)
        inbox.close()?.packetConnectionClosed()
        closed.succeed(())
    }
}

extension VMessServerPacketConnection: VMessDatagramSink {
    func received(_ payload: ByteBuffer) { inbox.deliver(payload, from: destination) }
}

/// Where a datagram reader hands what it reads.
protocol VMessDatagramSink: AnyObject {
    func received(_ payload: ByteBuffer)
}

/// Last in a UDP stream's pipeline: each read (one opened chunk) is one datagram. Loop-confined.
final class VMessDatagramReader: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private weak var sink: (any VMessDatagramSink)?

    init(sink: any VMessDatagramSink) {
        self.sink = sink
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        sink?.received(unwrapInboundIn(data))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
