// TrojanPacketConnection: a UDP flow over one trojan stream (command 3), on either end.
//
// 1. client: the first datagram carries the request (its destination is the request's address),
//    as Go's `ClientHandshakePacket` does; every datagram is one frame: address, length, CRLF,
//    payload. Server: the request was read by `TrojanServerHandler`; replies are frames whose
//    address is where the reply came from
// 2. bytes from the peer are cut into frames by `TrojanPacketReader` and handed to the receiver
//    with the frame's address (the client's frames name their destination, the server's their
//    source: either way the address `packetReceived(_:from:)` wants); frames that arrive before
//    the router installs its receiver wait in a bounded inbox
// 3. the stream's end ends the flow; a frame we cannot parse closes it
package import Adapter
package import NIOCore
package import Net

/// One UDP association through a trojan stream. Loop-confined to the stream's loop.
package final class TrojanPacketConnection: ControlledPacketConnection, @unchecked Sendable {
    let channel: any Channel
    package var eventLoop: any EventLoop { channel.eventLoop }
    package var closeFuture: EventLoopFuture<Void> { closed.futureResult }
    private let closed: EventLoopPromise<Void>
    private let key: [UInt8]
    private var requestSent = false
    private var inbox = PacketInbox(maximumCount: 256, maximumBytes: 256 * 1024)
    private var isClosed = false
    /// The stream; an inbound's listener stops tracking it once the router takes this flow.
    package var control: any Channel { channel }

    /// Takes over `channel` (TLS done, nothing written yet): installs the frame reader at its tail
    /// (the caller then removes the dialer's early-bytes holder). Call on the channel's loop.
    init(channel: any Channel, key: [UInt8]) throws {
        self.channel = channel
        self.key = key
        self.closed = channel.eventLoop.makePromise()
        try channel.pipeline.syncOperations.addHandler(TrojanPacketReader(connection: self), position: .last)
        channel.closeFuture.whenComplete { [self] _ in close() }
    }

    /// The server end of a stream whose request `TrojanServerHandler` read: installs the frame
    /// reader at the tail; the caller then fires the bytes that followed the request into it.
    /// Call on the channel's loop.
    init(serverChannel channel: any Channel) throws {
        self.channel = channel
        self.key = []
        self.requestSent = true
        self.closed = channel.eventLoop.makePromise()
        try channel.pipeline.syncOperations.addHandler(TrojanPacketReader(connection: self), position: .last)
        channel.closeFuture.whenComplete { [self] _ in close() }
    }

    package func setReceiver(_ receiver: any PacketReceiver) {
        guard !isClosed else {
            receiver.packetConnectionClosed()
            return
        }
        inbox.install(receiver)
        _ = try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        channel.read()
    }

    package func writePacket(_ payload: ByteBuffer, to destination: Destination) {
        // UDP may drop: a stream that cannot take more does not queue without bound.
        guard !isClosed, channel.isWritable else { return }
        var frame = channel.allocator.buffer(capacity: (requestSent ? 0 : TrojanCodec.requestLength(for: destination))
                                             + TrojanCodec.packetHeaderLength(for: destination) + payload.readableBytes)
        do {
            if !requestSent {
                try TrojanCodec.writeRequest(key: key, command: TrojanModule.commandUDPAssociate, destination: destination, to: &frame)
            }
            try TrojanCodec.writePacket(payload, to: destination, into: &frame)
        } catch {
            return  // a datagram the format cannot carry is dropped, as a too-long UDP datagram would be
        }
        requestSent = true
        channel.write(frame, promise: nil)
    }

    package func flush() { channel.flush() }

    package func close() {
        guard !isClosed else { return }
        isClosed = true
        channel.close(promise: nil)
        inbox.close()?.packetConnectionClosed()
        closed.succeed(())
    }

    fileprivate func received(_ payload: ByteBuffer, from source: Destination) {
        guard !isClosed else { return }
        inbox.deliver(payload, from: source)
    }
}

/// Cuts the server's stream into frames. Last in the pipeline; loop-confined.
final class TrojanPacketReader: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private weak var connection: TrojanPacketConnection?
    private var buffer = ByteBuffer()

    init(connection: TrojanPacketConnection) {
        self.connection = connection
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if buffer.readableBytes == 0 {
            buffer = bytes
        } else {
            buffer.writeBuffer(&bytes)
        }
        do {
            while let (source, payload) = try TrojanCodec.readPacket(from: &buffer) {
                connection?.received(payload, from: source)
            }
        } catch {
            context.close(promise: nil)
            return
        }
        // Slices handed on share storage: start afresh when all was read, compact only when large.
        if buffer.readableBytes == 0 {
            buffer = ByteBuffer()
        } else if buffer.readerIndex > 1 << 16 {
            buffer.discardReadBytes()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
