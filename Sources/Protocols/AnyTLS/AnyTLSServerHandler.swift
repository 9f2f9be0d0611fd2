// The inbound's side of a connection (sing-anytls service.go, read for facts):
//
// 1. `AnyTLSServerHandler` reads the authentication from the first bytes delivered after TLS, as
//    Go's single `ReadOnceFrom` does: SHA-256 of a user's password (else `unknown user password`),
//    the padding length and the padding (fewer bytes: `EOF`, `EOF: read padding length`,
//    `EOF: read padding`). The inbound has no fallback, so a failure is logged as Go's
//    `process connection from <source>: <reason>: fallback disabled` and the connection closed.
// 2. then an `AnyTLSSession` (server) takes its place with the bytes that followed.
// 3. each stream the client opens runs `AnyTLSStreamRequestHandler`: the destination (SOCKS
//    address) is read from its first data, then the stream goes to the router (UoT streams to the
//    UDP-over-TCP handler) with a responder that answers SYN-ACK.
// Nothing a client sends can trap.
package import Adapter
package import Config
package import NIOCore
import Net

/// Per-inbound settings every connection shares.
package struct AnyTLSServerContext: Sendable {
    /// The inbound's tag for `FlowMetadata.inbound`.
    package var tag: String
    /// SHA-256(password) → user name (a later user with the same password wins, as Go's map).
    package var users: [[UInt8]: String]
    /// `padding_scheme` (or the default), sent to clients whose md5 differs.
    package var padding: AnyTLSPaddingScheme
    /// The legacy per-flow listen fields (`sniff`, `domain_strategy`, …).
    package var listenOptions: ListenOptions?
    /// `inbound/anytls[tag]`-named logger.
    package var logger: ContextLogger

    /// Built once per inbound (and by tests).
    package init(tag: String, users: [[UInt8]: String], padding: AnyTLSPaddingScheme, listenOptions: ListenOptions?,
                 logger: ContextLogger) {
        self.tag = tag
        self.users = users
        self.padding = padding
        self.listenOptions = listenOptions
        self.logger = logger
    }
}

/// Reads the authentication, then hands the connection to a server session. Loop-confined.
package final class AnyTLSServerHandler: ChannelInboundHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer

    private let shared: AnyTLSServerContext
    private let flowID: FlowID
    private let flowHandler: any FlowHandler
    private var done = false

    /// One accepted connection; `flowHandler` gets its streams.
    package init(context: AnyTLSServerContext, flowID: FlowID, flowHandler: any FlowHandler) {
        self.shared = context
        self.flowID = flowID
        self.flowHandler = flowHandler
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { context.read() }
    }

    package func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        context.read()
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        var bytes = unwrapInboundIn(data)
        guard bytes.readableBytes > 0 else { return context.read() }
        done = true
        guard let key = bytes.readBytes(length: 32) else { return reject(context, "EOF: fallback disabled") }
        guard let user = shared.users[key] else { return reject(context, "unknown user password: fallback disabled") }
        guard let paddingLength = bytes.readInteger(as: UInt16.self) else {
            return reject(context, "EOF: read padding length: fallback disabled")
        }
        guard bytes.readSlice(length: Int(paddingLength)) != nil else {
            return reject(context, "EOF: read padding: fallback disabled")
        }
        startSession(context, user: user, rest: bytes)
    }

    private func startSession(_ context: ChannelHandlerContext, user: String, rest: ByteBuffer) {
        let shared = self.shared
        let flowHandler = self.flowHandler
        let source = context.channel.remoteAddress.flatMap { Destination($0) }.map { source -> Destination in
            var out = source
            if let ip = source.ip { out.host = .ip(ip.unmapped) }
            return out
        }
        let loop = context.eventLoop
        let sessionFlow = flowID
        var sessionRef: AnyTLSSession?
        let session = AnyTLSSession(role: .server(shared.padding, onStream: { stream in
            guard let session = sessionRef else { return }
            let handler = AnyTLSStreamRequestHandler(context: shared, session: session, user: user, source: source,
                                                     flowHandler: flowHandler)
            do {
                try stream.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
                try stream.pipeline.syncOperations.addHandler(handler)
            } catch {
                stream.close(promise: nil)
                return
            }
            stream.activate()
        }), eventLoop: loop, logger: shared.logger, flowID: sessionFlow)
        sessionRef = session
        session.onClose = { sessionRef = nil }  // breaks the session ↔ closure cycle
        do {
            try context.pipeline.syncOperations.addHandler(session, position: .after(self))
        } catch {
            context.close(promise: nil)
            return
        }
        if rest.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(rest)) }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private func reject(_ context: ChannelHandlerContext, _ cause: String) {
        done = true
        let source = context.channel.remoteAddress.flatMap { Destination($0) }.map { "\($0)" } ?? "unknown"
        shared.logger.error("process connection from \(source): \(cause)", flow: flowID)
        context.close(promise: nil)
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if !done, let event = event as? ChannelEvent, event == .inputClosed {
            return reject(context, "EOF")  // nothing read: Go's ReadOnceFrom returns io.EOF
        }
        context.fireUserInboundEventTriggered(event)
    }

    package func channelInactive(context: ChannelHandlerContext) {
        if !done {
            done = true
            shared.logger.debug("connection closed: EOF", flow: flowID)
        }
        context.fireChannelInactive()
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard done else {
            done = true
            shared.logger.debug("connection closed: \(error)", flow: flowID)
            return context.close(promise: nil)
        }
        context.fireErrorCaught(error)
    }
}
