// The server side of sing-mux on an inbound (Go's common/mux Router + sing-mux Service): a TCP flow
// to `sp.mux.sing-box.arpa:444` is a session, not a connection.
// 1. The session request is read (version, protocol, padding); a server with `padding: true` refuses
//    an unpadded session ("non-padded connection rejected").
// 2. The multiplexer the request names (smux, yamux or h2mux) takes the rest of the stream.
// 3. Each stream's request is read; a TCP stream goes to the router as a TCP flow whose responder
//    writes the status byte (0, or 1 and the error), a UDP stream as a UDP flow (status 0 first,
//    then length-prefixed packets, with SOCKS addresses in packet-address mode).
// Every other flow passes through untouched.
package import Adapter
package import Config
package import NIOCore
import Net

/// Wraps the router for the inbounds with `multiplex.enabled` (`shadowsocks`, `vmess`, `trojan`).
package final class MuxFlowHandler: FlowHandler {
    private let next: any FlowHandler
    private let logger: ContextLogger
    private let requirePadding: Bool

    /// Throws `not implemented` for `brutal`, which this build does not carry.
    package init(next: any FlowHandler, logger: ContextLogger, options: InboundMultiplexOptions) throws {
        if options.brutal?.enabled == true { throw AdapterError.notImplemented("multiplex brutal") }
        self.next = next
        self.logger = logger
        self.requirePadding = options.padding
    }

    /// `next` when `options` is nil or disabled (Go's `NewRouterWithOptions`), else a mux handler.
    package static func wrap(_ next: any FlowHandler, logger: ContextLogger, options: InboundMultiplexOptions?) throws -> any FlowHandler {
        guard let options, options.enabled else { return next }
        return try MuxFlowHandler(next: next, logger: logger, options: options)
    }

    package func handleTCP(_ channel: any Channel, metadata: FlowMetadata, responder: (any HandshakeResponder)?) {
        guard metadata.destination.domain == Mux.magicDomain, metadata.destination.port == Mux.magicPort else {
            next.handleTCP(channel, metadata: metadata, responder: responder)
            return
        }
        channel.eventLoop.execute { [self] in
            do {
                try accept(channel, metadata: metadata, responder: responder)
            } catch {
                sessionFailed(channel, metadata: metadata, error: error)
            }
        }
    }

    package func handleUDP(_ connection: any PacketConnection, metadata: FlowMetadata) {
        next.handleUDP(connection, metadata: metadata)
    }

    private func sessionFailed(_ channel: any Channel, metadata: FlowMetadata, error: any Error) {
        logger.error("process multiplex connection from \(metadata.source.map(\.description) ?? "?"): \(error)", flow: metadata.flowID)
        channel.close(promise: nil)
    }

    /// On the loop: the session request decoder at the end of the pipeline, the inbound's held bytes
    /// released into it, the handshake answered, then reading.
    private func accept(_ channel: any Channel, metadata: FlowMetadata, responder: (any HandshakeResponder)?) throws {
        let decoder = MuxSessionRequestDecoder { [self] context, result in
            switch result {
            case .success(let request):
                do {
                    try startSession(context, request: request, metadata: metadata)
                } catch {
                    sessionFailed(context.channel, metadata: metadata, error: error)
                }
            case .failure(let error):
                sessionFailed(context.channel, metadata: metadata, error: error)
            }
        }
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(decoder)
        if let holder = try? sync.handler(type: FlowBufferHandler.self) { sync.removeHandler(holder, promise: nil) }
        let answered = responder?.succeed(channel) ?? channel.eventLoop.makeSucceededVoidFuture()
        answered.whenComplete { result in
            guard case .success = result else {
                channel.close(promise: nil)
                return
            }
            _ = try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
            channel.read()
        }
    }

    /// Installs padding and the multiplexer behind the decoder, then removes the decoder.
    private func startSession(_ context: ChannelHandlerContext, request: MuxSessionRequest, metadata: FlowMetadata) throws {
        if !request.padding && requirePadding { throw MuxError.nonPaddedRejected }
        let channel = context.channel
        let sync = context.pipeline.syncOperations
        var handlers: [any ChannelHandler] = []
        if request.padding { handlers.append(MuxPaddingHandler()) }
        let onStream: (MuxStreamChannel) -> Void = { [self] stream in serveStream(stream, session: metadata) }
        switch request.streamProtocol {
        case .smux:
            let session = SmuxSession(client: false)
            session.onStream = onStream
            handlers.append(session)
        case .yamux:
            let session = YamuxSession(client: false)
            session.onStream = onStream
            handlers.append(session)
        case .h2mux:
            break
        }
        try sync.addHandlers(handlers, position: .after(context.handler))
        if request.streamProtocol == .h2mux { try H2MuxSession.addServer(to: channel, onStream: onStream) }
        try sync.addHandler(MuxSessionErrorLogger(logger: logger, metadata: metadata))
        // The decoder leaves: what followed the request flows into the session's handlers.
        sync.removeHandler(context: context, promise: nil)
    }

    /// Reads one stream's request, then hands the stream to the router.
    private func serveStream(_ stream: MuxStreamChannel, session: FlowMetadata) {
        let decoder = MuxStreamRequestDecoder { [self] context, result in
            switch result {
            case .success(let request):
                route(stream, context: context, request: request, session: session)
            case .failure(let error):
                logger.error("process multiplex stream: read multiplex stream request: \(error)", flow: session.flowID)
                stream.close(promise: nil)
            }
        }
        do {
            try stream.pipeline.syncOperations.addHandler(decoder)
        } catch {
            stream.close(promise: nil)
            return
        }
        stream.read()
    }

    /// `context` is the request decoder's; what followed the request goes to the handler behind it.
    private func route(_ stream: MuxStreamChannel, context: ChannelHandlerContext, request: MuxStreamRequest, session: FlowMetadata) {
        var flow = session
        flow.flowID = FlowID()
        flow.destination = request.destination
        let sync = stream.pipeline.syncOperations
        do {
            if !request.isUDP {
                flow.network = .tcp
                logger.info("inbound multiplex connection to \(request.destination)", flow: flow.flowID)
                try sync.addHandler(FlowBufferHandler(), position: .after(context.handler))
                sync.removeHandler(context: context, promise: nil)
                next.handleTCP(stream, metadata: flow, responder: MuxStreamResponder())
            } else {
                flow.network = .udp
                if request.packetAddress {
                    logger.info("inbound multiplex packet connection", flow: flow.flowID)
                } else {
                    logger.info("inbound multiplex packet connection to \(request.destination)", flow: flow.flowID)
                }
                // The status goes out at once; Go writes it in front of the first reply packet.
                var status = stream.allocator.buffer(capacity: 1)
                MuxStreamResponse.success.write(to: &status)
                stream.writeAndFlush(status, promise: nil)
                let framing = UDPOverTCPFraming(connectDestination: request.packetAddress ? nil : request.destination, addresses: Mux.addresses)
                let connection = try UDPOverTCPConnection(channel: stream, framing: framing, pendingRequest: nil)
                sync.removeHandler(context: context, promise: nil)
                next.handleUDP(connection, metadata: flow)
            }
        } catch {
            stream.close(promise: nil)
        }
    }
}

/// Last in a server session's pipeline: logs the multiplexer's protocol error (the session handler
/// closes the channel) as Go's `process multiplex connection from <source>: <error>`.
final class MuxSessionErrorLogger: ChannelInboundHandler {
    typealias InboundIn = Any
    private let logger: ContextLogger
    private let metadata: FlowMetadata
    private var logged = false

    init(logger: ContextLogger, metadata: FlowMetadata) {
        self.logger = logger
        self.metadata = metadata
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    /// The client's end of input ends the session (h2mux: NIOHTTP2 passes it on).
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event as? ChannelEvent == .inputClosed { context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !logged else { return }
        logged = true
        logger.error("process multiplex connection from \(metadata.source.map(\.description) ?? "?"): \(error)", flow: metadata.flowID)
        context.close(promise: nil)
    }
}

/// Answers a TCP stream once the router dialed (or failed): the status byte, or the error.
struct MuxStreamResponder: HandshakeResponder {
    func succeed(_ channel: any Channel) -> EventLoopFuture<Void> {
        write(.success, to: channel)
    }

    func fail(_ channel: any Channel, error: any Error) -> EventLoopFuture<Void> {
        write(.failure("\(error)"), to: channel)
    }

    private func write(_ response: MuxStreamResponse, to channel: any Channel) -> EventLoopFuture<Void> {
        var buffer = channel.allocator.buffer(capacity: 16)
        response.write(to: &buffer)
        return channel.writeAndFlush(buffer)
    }
}

/// Collects bytes until a header is whole, then calls back once with its context (the bytes that
/// followed the header are passed on when the callback removes this handler). Asks for reads
/// itself while waiting, since the channel's autoRead is off.
class MuxHeaderDecoder<Header>: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias Callback = (ChannelHandlerContext, Result<Header, MuxError>) -> Void

    private var buffered: ByteBuffer?
    private var callback: Callback?

    init(_ callback: @escaping Callback) { self.callback = callback }

    /// Reads the header; nil when more bytes are needed.
    func decode(_ buffer: inout ByteBuffer) throws(MuxError) -> Header? { nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard callback != nil else {
            context.fireChannelRead(data)
            return
        }
        if buffered == nil { buffered = bytes } else { buffered!.writeBuffer(&bytes) }
        guard var buffer = buffered, let callback else { return }
        do {
            guard let header = try decode(&buffer) else { return }
            self.callback = nil
            buffered = nil
            // Removal delivers the rest: queue it first so it flows on after the handler is gone.
            if buffer.readableBytes > 0 { leftover = buffer }
            callback(context, .success(header))
        } catch {
            self.callback = nil
            buffered = nil
            callback(context, .failure(error))
        }
    }

    private var leftover: ByteBuffer?

    func handlerRemoved(context: ChannelHandlerContext) {
        if let leftover {
            self.leftover = nil
            context.fireChannelRead(wrapInboundOut(leftover))
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if callback != nil { context.read() }
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let callback {
            self.callback = nil
            callback(context, .failure(.truncated))
        }
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let callback, event as? ChannelEvent == .inputClosed {
            self.callback = nil
            callback(context, .failure(.truncated))
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

/// The session request at the head of a mux session (server).
final class MuxSessionRequestDecoder: MuxHeaderDecoder<MuxSessionRequest> {
    override func decode(_ buffer: inout ByteBuffer) throws(MuxError) -> MuxSessionRequest? {
        try MuxSessionRequest.read(from: &buffer)
    }

}

/// The stream request at the head of a server stream.
final class MuxStreamRequestDecoder: MuxHeaderDecoder<MuxStreamRequest> {
    override func decode(_ buffer: inout ByteBuffer) throws(MuxError) -> MuxStreamRequest? {
        try MuxStreamRequest.read(from: &buffer)
    }
}
