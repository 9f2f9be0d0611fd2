// TUICConnectRequestHandler: the first handler of a client's bidirectional stream on the server.
// Reads the Connect header (version, command, address), waits for the connection's
// authentication, then gives the stream to the router (UDP-over-TCP magic names become UDP flows
// through the inbound's UoT handler). Bytes after the header stay in the stream, in order.
import Adapter
import Config
import NIOCore
import Net

/// Reads a Connect header, then hands the stream to the router.
final class TUICConnectRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let session: TUICSession
    private let context: TUICServerContext
    private var buffer = ByteBuffer()
    private var done = false

    init(session: TUICSession, context: TUICServerContext) {
        self.session = session
        self.context = context
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        var bytes = unwrapInboundIn(data)
        buffer.writeBuffer(&bytes)
        let destination: Destination?
        do {
            destination = try TUICCodec.readConnect(from: &buffer)
        } catch {
            done = true
            // Go: `handle stream request: …`, then CancelRead(0) and Close.
            let text: String
            switch error {
            case .unknownVersion, .unsupportedStreamCommand: text = "\(error)"
            default: text = "read request destination: \(error)"
            }
            self.context.logger.error("handle stream request: \(text)")
            return context.close(promise: nil)
        }
        guard let destination else { return context.read() }
        done = true
        let channel = context.channel
        session.whenAuthenticated { [session, shared = self.context] in
            guard let user = session.user, channel.isActive else { return }
            Self.route(channel: channel, destination: destination, user: user, session: session, context: shared)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !done {
            done = true
            self.context.logger.error("handle stream request: read request: EOF")
        }
        context.fireChannelInactive()
    }

    /// Hands the stream to the router with Go's log lines; bytes read past the header go first.
    private static func route(channel: any Channel, destination: Destination, user: (index: Int, name: String),
                              session: TUICSession, context: TUICServerContext) {
        guard let stream = channel as? TUICStreamChannel,
              let handler = try? channel.pipeline.syncOperations.handler(type: TUICConnectRequestHandler.self) else { return }
        let rest = handler.buffer
        handler.buffer = ByteBuffer()
        stream.putBack(rest)
        let flowID = FlowID()
        var metadata = FlowMetadata(inbound: context.tag, inboundType: "tuic", network: .tcp,
                                    source: session.remoteAddress.flatMap { Destination($0) }, destination: destination, flowID: flowID)
        metadata.applyListenOptions(context.listenOptions)
        context.logger.info("inbound connection from \(metadata.source.map { "\($0)" } ?? "")", flow: flowID)
        if user.name.isEmpty {
            context.logger.info("inbound connection to \(destination)", flow: flowID)
        } else {
            metadata.user = user.name
            context.logger.info("[\(user.name)] inbound connection to \(destination)", flow: flowID)
        }
        do {
            try channel.pipeline.syncOperations.addHandler(FlowBufferHandler(), position: .after(handler))
        } catch {
            channel.close(promise: nil)
            return
        }
        channel.pipeline.syncOperations.removeHandler(handler, promise: nil)
        context.flowHandler.handleTCP(channel, metadata: metadata, responder: nil)
    }
}
