// A UoT stream as a `PacketConnection`, for either end:
// - client (an outbound's `listenPacket`): the channel is a connected proxy stream to the magic
//   destination; a version 2 request goes out in front of the first packet (sing's lazy conn).
// - server (an inbound that answered a connect to the magic destination): the request, if any, is
//   read first (`UDPOverTCPFlowHandler` waits for it), then packets flow to the router.
// Reading starts with `setReceiver`; until then the channel's bytes wait in its buffer handler.
package import Adapter
package import NIOCore
import Net

/// One UoT stream, confined to its channel's event loop.
package final class UDPOverTCPConnection: PacketConnection, @unchecked Sendable {
    /// The stream.
    package let channel: any Channel
    package var eventLoop: any EventLoop { channel.eventLoop }
    package var closeFuture: EventLoopFuture<Void> { closed.futureResult }
    private let framing: UDPOverTCPFraming
    /// The version 2 request still to write in front of the first packet (client side).
    private var pendingRequest: UDPOverTCPRequest?
    private var receiver: (any PacketReceiver)?
    private var isClosed = false
    private let closed: EventLoopPromise<Void>
    private let decoder: UDPOverTCPDecoder

    /// A client stream over `channel` (connected, autoRead off, registered on its loop; call on
    /// that loop). `request` is written lazily (version 2); nil for version 1. Packets carry
    /// addresses unless `request.isConnect`.
    package convenience init(client channel: any Channel, request: UDPOverTCPRequest?) throws {
        let connect = request.flatMap { $0.isConnect ? $0.destination : nil }
        try self.init(channel: channel, framing: UDPOverTCPFraming(connectDestination: connect), pendingRequest: request)
    }

    /// Datagrams as length u16 ‖ payload on `channel`, all to and from `destination` (UoT's connect
    /// framing without a request: vless's command-2 stream, whose header a handler adds).
    package convenience init(lengthPrefixed channel: any Channel, destination: Destination) throws {
        try self.init(channel: channel, framing: UDPOverTCPFraming(connectDestination: destination), pendingRequest: nil)
    }

    /// A server stream over `channel` whose request (if any) was read; `decoder` holds what followed it.
    init(channel: any Channel, framing: UDPOverTCPFraming, pendingRequest: UDPOverTCPRequest?, decoder: UDPOverTCPDecoder? = nil) throws {
        channel.eventLoop.preconditionInEventLoop()
        self.channel = channel
        self.framing = framing
        self.pendingRequest = pendingRequest
        closed = channel.eventLoop.makePromise()
        if let decoder {
            self.decoder = decoder
        } else {
            self.decoder = UDPOverTCPDecoder()
            try channel.pipeline.syncOperations.addHandler(self.decoder)
        }
        self.decoder.connection = self
        channel.closeFuture.whenComplete { [self] _ in close() }
    }

    package func setReceiver(_ receiver: any PacketReceiver) {
        guard !isClosed else { receiver.packetConnectionClosed(); return }
        self.receiver = receiver
        decoder.startDelivering(framing)
        // Bytes the dialer's buffer holds (a reply that came with the handshake) flow on when it goes.
        if let holder = try? channel.pipeline.syncOperations.handler(type: FlowBufferHandler.self) {
            channel.pipeline.syncOperations.removeHandler(holder, promise: nil)
        }
        _ = try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        channel.read()
    }

    /// Frames one packet; dropped (as UDP may be) when the stream is not writable or the packet
    /// cannot be framed.
    package func writePacket(_ payload: ByteBuffer, to destination: Destination) {
        guard !isClosed, channel.isWritable else { return }
        var out = channel.allocator.buffer(capacity: payload.readableBytes + 24 + (pendingRequest == nil ? 0 : 24))
        if let request = pendingRequest {
            do { try request.write(to: &out) } catch {
                close()
                return
            }
        }
        guard framing.write(payload, to: destination, into: &out) else { return }
        pendingRequest = nil
        channel.write(out, promise: nil)
    }

    package func flush() { channel.flush() }

    package func close() {
        guard !isClosed else { return }
        isClosed = true
        channel.close(promise: nil)
        let receiver = self.receiver
        self.receiver = nil
        receiver?.packetConnectionClosed()
        closed.succeed(())
    }

    /// A packet from the stream.
    func deliver(_ payload: ByteBuffer, from address: Destination) {
        receiver?.packetReceived(payload, from: address)
    }
}

/// Collects a UoT stream's bytes: first (server side) until the request is whole, then packets for
/// the connection once it has a receiver. Bad bytes close the stream.
final class UDPOverTCPDecoder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    weak var connection: UDPOverTCPConnection?
    /// Called once with the version 2 request (server side), or with an error.
    var onRequest: ((Result<UDPOverTCPRequest, UDPOverTCPError>) -> Void)?
    private var buffered: ByteBuffer?
    private var framing: UDPOverTCPFraming?
    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if buffered == nil { buffered = bytes } else { buffered!.writeBuffer(&bytes) }
        process()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let onRequest {
            self.onRequest = nil
            onRequest(.failure(.truncated))
        }
        connection?.close()
        context.fireChannelInactive()
    }

    /// From here on whole packets go to the connection.
    func startDelivering(_ framing: UDPOverTCPFraming) {
        self.framing = framing
        process()
    }

    private func process() {
        guard var bytes = buffered else { return }
        if let onRequest {
            let request: UDPOverTCPRequest?
            do {
                request = try UDPOverTCPRequest.read(from: &bytes)
            } catch {
                self.onRequest = nil
                buffered = nil
                onRequest(.failure(error))
                return
            }
            guard let request else { return }  // nothing consumed: `buffered` waits for the rest
            self.onRequest = nil
            // What followed the request is stored before the callback: it may hand the connection on
            // to a router that sets its receiver at once, which runs `process` again from here; with
            // the request still in `buffered` its bytes were read as a packet (and the packets after
            // it delivered twice).
            keep(bytes)
            onRequest(.success(request))
            return
        }
        guard let framing else { return }
        defer { keep(bytes) }
        do {
            while let packet = try framing.read(from: &bytes) {
                connection?.deliver(packet.payload, from: packet.address)
            }
        } catch {
            bytes.clear()
            connection?.close()
        }
    }

    /// `bytes` (what is left) as the buffered input; nil when empty.
    private func keep(_ bytes: ByteBuffer) {
        if bytes.readableBytes == 0 {
            buffered = nil
        } else {
            buffered = bytes
            buffered!.discardReadBytes()
        }
    }
}
