// A stream the client opened on a server session: its destination (SOCKS address) is read from its
// first data, then the stream goes to the router (UoT streams to the UDP-over-TCP handler) with a
// responder that answers the client's SYN with SYN-ACK once the router dialed (v2 clients).
import Adapter
import Config
import NIOCore
import Net

/// Reads a stream's destination from its first data, then gives the stream to the router.
final class AnyTLSStreamRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let shared: AnyTLSServerContext
    private let session: AnyTLSSession
    private let user: String
    private let source: Destination?
    private let flowHandler: any FlowHandler
    private let flowID = FlowID()
    private var buffer = ByteBuffer()
    private var done = false

    init(context: AnyTLSServerContext, session: AnyTLSSession, user: String, source: Destination?, flowHandler: any FlowHandler) {
        self.shared = context
        self.session = session
        self.user = user
        self.source = source
        self.flowHandler = flowHandler
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        var bytes = unwrapInboundIn(data)
        if buffer.readableBytes == 0 { buffer = bytes } else { buffer.writeBuffer(&bytes) }
        let destination: Destination?
        do {
            destination = try AddressSerializer.socks.read(from: &buffer)
        } catch {
            done = true
            shared.logger.error("ReadAddrPort:\(error)", flow: flowID)
            return context.close(promise: nil)
        }
        guard var destination else { return context.read() }
        done = true
        if let ip = destination.ip { destination.host = .ip(ip.unmapped) }
        var metadata = FlowMetadata(inbound: shared.tag, inboundType: "anytls", network: .tcp, source: source,
                                    destination: destination, flowID: flowID)
        if let listen = shared.listenOptions { metadata.applyListenOptions(listen) }
        if user.isEmpty {
            shared.logger.info("inbound connection to \(destination)", flow: flowID)
        } else {
            metadata.user = user
            shared.logger.info("[\(user)] inbound connection to \(destination)", flow: flowID)
        }
        let holder = FlowBufferHandler()
        do {
            try context.pipeline.syncOperations.addHandler(holder, position: .after(self))
        } catch {
            return context.close(promise: nil)
        }
        let rest = buffer
        buffer = ByteBuffer()
        if rest.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(rest)) }
        let channel = context.channel
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        flowHandler.handleTCP(channel, metadata: metadata, responder: AnyTLSStreamResponder(session: session, channel: channel))
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !done {
            done = true
            shared.logger.error("ReadAddrPort:EOF", flow: flowID)
        }
        context.fireChannelInactive()
    }
}

/// Answers the client's SYN once the router dialed (Go's `HandshakeSuccess`/`HandshakeFailure`:
/// a SYN-ACK, with the error's text on failure; v2 clients only).
struct AnyTLSStreamResponder: HandshakeResponder, @unchecked Sendable {
    let session: AnyTLSSession
    let channel: any Channel

    func succeed(_ channel: any Channel) -> EventLoopFuture<Void> {
        report(error: nil)
        return channel.eventLoop.makeSucceededVoidFuture()
    }

    func fail(_ channel: any Channel, error: any Error) -> EventLoopFuture<Void> {
        report(error: "\(error)")
        return channel.eventLoop.makeSucceededVoidFuture()
    }

    private func report(error: String?) {
        guard let stream = channel as? AnyTLSStreamChannel else { return }
        stream.eventLoop.preconditionInEventLoop()
        guard stream.takeHandshakeReport() else { return }
        session.writeSynAck(stream: stream.streamID, error: error)
    }
}
