// The server side of an HTTP proxy on one accepted connection.
//
// 1. read until a whole request head is buffered (bounded: 431 and close past the limit;
//    a malformed head closes, as Go's proxy does)
// 2. with users: Basic credentials must match, else 407 with sing's realm and close
// 3. CONNECT → router with a responder that writes `200 Connection established`; bytes after the
//    head are the tunnel's first payload
// 4. absolute-form → router with a responder that, once connected, replays the rewritten head
//    and any body bytes already read into the relay; the response comes back raw
// 5. anything else → 400 and close
import Config
package import Adapter
package import NIOCore
import Net

/// Runs the HTTP proxy handshake on an accepted channel. Loop-confined; one per connection.
package final class HTTPProxyServerHandler: ChannelDuplexHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer
    package typealias OutboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    private enum State {
        case readingHead
        case waitingForOutbound(connect: Bool, version: String)
        case replaying
        case done
    }

    private let settings: HTTPInboundContext
    private let flowID: FlowID
    private var state: State = .readingHead
    private var buffer = ByteBuffer()
    /// Where the scan of the request head stands between reads (`examinedByteCount` is a test hook).
    package private(set) var resume = HTTPHeadProgress()
    private var timeout: Scheduled<Void>?
    /// A `read()` arrived while the router was dialing: whoever sits behind us (the relay) wants
    /// bytes, so the early payload is replayed as soon as the router answers.
    private var heldRead = false
    /// The client half-closed after its request: replayed after the early bytes, so the relay
    /// forwards the FIN (NIO reads to EOF even with autoRead off).
    private var heldInputClosed = false
    /// Writes and a close toward the client that arrive before our reply (the relay may forward a
    /// server's first bytes, or its hang-up, in the loop turn the router answers): sent after it.
    private let held = HeldOutput()
    private var source: Destination?

    package init(context settings: HTTPInboundContext, flowID: FlowID = FlowID()) {
        self.settings = settings
        self.flowID = flowID
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        source = context.channel.remoteAddress.flatMap { Destination($0) }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timeout = context.eventLoop.scheduleTask(in: settings.handshakeTimeout) {
            let (handler, context) = bound.value
            guard case .readingHead = handler.state else { return }
            handler.state = .done
            handler.settings.logger.debug("connection closed: handshake timed out", flow: handler.flowID)
            context.close(promise: nil)
        }
        if context.channel.isActive { context.read() }
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        timeout?.cancel()
        timeout = nil
    }

    package func channelActive(context: ChannelHandlerContext) {
        source = context.channel.remoteAddress.flatMap { Destination($0) }
        context.fireChannelActive()
        context.read()
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        switch state {
        case .readingHead:
            buffer.writeBuffer(&bytes)
            process(context: context)
        case .waitingForOutbound:
            buffer.writeBuffer(&bytes)
        case .replaying:
            buffer.writeBuffer(&bytes)
            replay(context: context, thenRead: false)
        case .done:
            break
        }
    }

    package func read(context: ChannelHandlerContext) {
        switch state {
        case .waitingForOutbound:
            heldRead = true  // held until the router answers
        case .replaying:
            replay(context: context, thenRead: true)
        case .readingHead, .done:
            context.read()
        }
    }

    package func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        held.write(context: context, data: data, promise: promise, holding: waitingForOutbound)
    }

    package func flush(context: ChannelHandlerContext) {
        held.flush(context: context, holding: waitingForOutbound)
    }

    package func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        held.close(context: context, mode: mode, promise: promise, holding: waitingForOutbound) { [self] in
            guard waitingForOutbound else { return false }
            state = .done
            return true
        }
    }

    private var waitingForOutbound: Bool {
        if case .waitingForOutbound = state { return true }
        return false
    }

    package func channelInactive(context: ChannelHandlerContext) {
        timeout?.cancel()
        if case .readingHead = state {
            settings.logger.debug("connection closed: read http request: EOF", flow: flowID)
        }
        state = .done
        context.fireChannelInactive()
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, event == .inputClosed else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        switch state {
        case .readingHead:
            // The client gave up mid-handshake (Go: "EOF").
            settings.logger.debug("connection closed: EOF", flow: flowID)
            state = .done
            context.close(promise: nil)
        case .waitingForOutbound, .replaying:
            heldInputClosed = true
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if case .readingHead = state {
            settings.logger.debug("connection closed: \(error)", flow: flowID)
            state = .done
            context.close(promise: nil)
            return
        }
        context.fireErrorCaught(error)
    }

    // MARK: Request

    private func process(context: ChannelHandlerContext) {
        let head: HTTPRequestHead
        do {
            guard let parsed = try HTTPRequestHead.read(from: &buffer, limit: settings.maximumHeadLength, resume: &resume) else {
                context.read()
                return
            }
            head = parsed
        } catch .headTooLarge(let limit) {
            finish(context: context, reply: HTTPProxyResponse.status(431, "Request Header Fields Too Large", version: "HTTP/1.1"),
                   reason: "read http request: header larger than \(limit) bytes")
            return
        } catch {
            finish(context: context, reply: nil, reason: "read http request: \(error)")
            return
        }
        timeout?.cancel()
        timeout = nil
        buffer.discardReadBytes()

        var user: String?
        if !settings.users.isEmpty {
            let authorization = head.headers["Proxy-Authorization"]
            let credentials = authorization.flatMap { HTTPBasicCredentials(proxyAuthorization: $0) }
            guard let credentials, settings.users.verify(username: credentials.username, password: credentials.password) else {
                let reason: String
                if let credentials {
                    reason = "http: authentication failed, username=\(credentials.username), password=\(credentials.password)"
                } else if let authorization {
                    reason = "http: authentication failed, Proxy-Authorization=\(authorization)"
                } else {
                    reason = "http: authentication failed, no Proxy-Authorization header"
                }
                finish(context: context, reply: HTTPProxyResponse.proxyAuthenticationRequired(version: head.version),
                       reason: reason)
                return
            }
            user = credentials.username
        }

        let request: HTTPProxyRequest
        do {
            request = try HTTPProxyRequest(head)
        } catch {
            finish(context: context, reply: HTTPProxyResponse.status(400, "Bad Request", version: head.version),
                   reason: "http: bad request target \(head.target)")
            return
        }

        // Go takes the client address from X-Forwarded-For when it holds an IP.
        var flowSource = source
        if let forwarded = head.headers["X-Forwarded-For"] {
            for part in forwarded.split(separator: ",") {
                if let ip = IPAddress(part.trimmingSpaces) {
                    flowSource = Destination(ip: ip, port: source?.port ?? 0)
                    break
                }
            }
        }

        let destination: Destination
        switch request {
        case .connect(let target):
            destination = target
            state = .waitingForOutbound(connect: true, version: head.version)
        case .forward(let target, let rewritten, _):
            destination = target
            var replay = ByteBuffer()
            rewritten.write(to: &replay)
            replay.writeBuffer(&buffer)
            buffer = replay
            state = .waitingForOutbound(connect: false, version: head.version)
        }
        var metadata = FlowMetadata(inbound: settings.tag, inboundType: settings.type, network: .tcp,
                                    source: flowSource, destination: destination, flowID: flowID)
        metadata.user = user
        if let listenOptions = settings.listenOptions { metadata.applyListenOptions(listenOptions) }
        settings.logger.info("\(user.map { "[\($0)] " } ?? "")inbound connection to \(destination)", flow: flowID)
        let responder = HTTPProxyResponder(handler: NIOLoopBound((self, context), eventLoop: context.eventLoop))
        settings.flowHandler.handleTCP(context.channel, metadata: metadata, responder: responder)
    }

    /// Writes `reply` if any, logs `reason` and closes.
    private func finish(context: ChannelHandlerContext, reply: ByteBuffer?, reason: String) {
        state = .done
        timeout?.cancel()
        settings.logger.error("process connection from \(source.map { "\($0)" } ?? "unknown"): \(reason)", flow: flowID)
        let channel = context.channel
        if let reply {
            context.writeAndFlush(wrapOutboundOut(reply)).whenComplete { _ in channel.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }

    fileprivate func outboundSucceeded(context: ChannelHandlerContext) -> EventLoopFuture<Void> {
        guard case .waitingForOutbound(let connect, let version) = state else {
            return context.eventLoop.makeSucceededVoidFuture()
        }
        state = .replaying
        let written = connect ? context.writeAndFlush(wrapOutboundOut(HTTPProxyResponse.connectionEstablished(version: version)))
            : context.eventLoop.makeSucceededVoidFuture()
        held.release(context: context)
        replayIfRead(context: context)
        return written
    }

    /// The router installed the relay before answering (its read is held): hand the bytes on now.
    private func replayIfRead(context: ChannelHandlerContext) {
        guard heldRead else { return }
        heldRead = false
        replay(context: context, thenRead: true)
    }

    fileprivate func outboundFailed(context: ChannelHandlerContext, error: any Error) -> EventLoopFuture<Void> {
        guard case .waitingForOutbound(_, let version) = state else { return context.eventLoop.makeSucceededVoidFuture() }
        state = .done
        held.dropWrites()
        let written = context.writeAndFlush(wrapOutboundOut(HTTPProxyResponse.status(502, "Bad Gateway", version: version)))
        held.releaseClose(context: context)
        return written
    }

    /// Every event goes out before the handler leaves: a removed context drops what it is given.
    private func replay(context: ChannelHandlerContext, thenRead: Bool) {
        guard case .replaying = state else { return }
        state = .done
        if buffer.readableBytes > 0 {
            let early = buffer
            buffer = ByteBuffer()
            context.fireChannelRead(wrapInboundOut(early))
            context.fireChannelReadComplete()
        }
        if heldInputClosed {
            heldInputClosed = false
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        }
        if thenRead { context.read() }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

/// Answers the client once the router has dialed (or failed to).
private struct HTTPProxyResponder: HandshakeResponder {
    let handler: NIOLoopBound<(HTTPProxyServerHandler, ChannelHandlerContext)>

    func succeed(_ channel: any Channel) -> EventLoopFuture<Void> {
        let (handler, context) = handler.value
        return handler.outboundSucceeded(context: context)
    }

    func fail(_ channel: any Channel, error: any Error) -> EventLoopFuture<Void> {
        let (handler, context) = handler.value
        return handler.outboundFailed(context: context, error: error)
    }
}
