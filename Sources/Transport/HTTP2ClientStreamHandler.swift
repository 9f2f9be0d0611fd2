// One HTTP/2 request stream as the byte stream of a dialed connection: the client half of the
// v2ray `grpc` transport (Go's v2raygrpclite client) and of `http` over TLS (v2rayhttp's
// http2.Transport path). Sits right after NIOHTTP2's connection handler (frame mode, no
// multiplexer) on a connection of its own, and carries stream 1 only.
//
// 1. On add: HEADERS (POST /<service>/Tun for grpc; the configured method and path for http)
//    without END_STREAM, then the stream is ready at once — Go's DialContext returns a "late"
//    conn whose writes go out before the response (the server answers only once its protocol
//    writes), so waiting for the response would deadlock.
// 2. Writes become DATA frames (gun-framed for grpc, raw for http); `close(mode: .output)` sends
//    END_STREAM.
// 3. The response HEADERS must say 200 (else `v2ray-grpc: unexpected status: 404 Not Found`, as
//    Go); DATA is unframed and read on; END_STREAM (on DATA or trailers) ends the input.
// 4. Flow control: in frame mode nobody else returns window, so each read batch returns what it
//    consumed, for the stream and the connection. Back-pressure is the connection's own reads.
// 5. Keepalive (Go's http2.Transport ReadIdleTimeout/PingTimeout): after `idle` without a frame a
//    PING goes out; no frame within `pingTimeout` closes the connection.
import Adapter
package import NIOCore
import NIOHPACK
import NIOHTTP2

/// The client side of one v2ray HTTP/2 stream. Loop-confined.
final class HTTP2ClientStreamHandler: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = HTTP2Frame
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = HTTP2Frame

    /// How stream bytes are framed.
    enum Framing: Sendable { case gun, raw }

    /// Keepalive timing; nil when `idle_timeout` is unset.
    struct Keepalive: Sendable {
        let idle: TimeAmount
        let pingTimeout: TimeAmount
    }

    private let streamID = HTTP2StreamID(1)
    private let request: HPACKHeaders
    private let framing: Framing
    /// Go's error prefix: `v2ray-grpc` or `v2ray-http`.
    private let errorPrefix: String
    private let ready: EventLoopPromise<Void>
    private let keepalive: Keepalive?
    private var decoder = GunFrameDecoder()
    private var sent = false
    private var responded = false
    private var inputEnded = false
    private var outputEnded = false
    private var failed = false
    /// Flow-controlled bytes consumed since the last WINDOW_UPDATE.
    private var unacknowledged = 0
    /// When the last frame arrived, on the loop's clock.
    private var lastFrame = NIODeadline.uptimeNanoseconds(0)
    private var idleTimer: Scheduled<Void>?
    private var pingTimer: Scheduled<Void>?

    init(request: HPACKHeaders, framing: Framing, errorPrefix: String, keepalive: Keepalive?, ready: EventLoopPromise<Void>) {
        self.request = request
        self.framing = framing
        self.errorPrefix = errorPrefix
        self.keepalive = keepalive
        self.ready = ready
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        pingTimer?.cancel()
    }

    private func start(_ context: ChannelHandlerContext) {
        guard !sent else { return }
        sent = true
        // The connection window starts at 64 KiB whatever SETTINGS say; open it to the stream's.
        let widen = V2RayTransportClient.streamWindow - 65_535
        context.write(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: widen))), promise: nil)
        let headers = HTTP2Frame(streamID: streamID, payload: .headers(.init(headers: request, endStream: false)))
        context.writeAndFlush(wrapOutboundOut(headers)).whenComplete { [ready] result in
            switch result {
            case .success: ready.succeed(())
            case .failure(let error): ready.fail(error)
            }
        }
        // The server's SETTINGS want an ACK even before the protocol reads.
        context.read()
        lastFrame = context.eventLoop.now
        armIdleTimer(context)
    }

    // MARK: inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        lastFrame = context.eventLoop.now
        pingTimer?.cancel()
        pingTimer = nil
        guard frame.streamID == streamID else {
            if case .goAway(let lastStreamID, let code, _) = frame.payload, lastStreamID < streamID, !inputEnded {
                fail(context, AdapterError(.other, "\(errorPrefix): connection closed by server: \(code)"))
            }
            return
        }
        switch frame.payload {
        case .headers(let headers):
            if !responded {
                responded = true
                let status = headers.headers.first(name: ":status") ?? ""
                guard status == "200" else {
                    fail(context, AdapterError(.other, "\(errorPrefix): unexpected status: \(Self.statusText(status))"))
                    return
                }
            }
            if headers.endStream { endInput(context) }
        case .data(let data):
            unacknowledged += data.data.readableBytes + (data.paddingBytes.map { $0 + 1 } ?? 0)
            guard case .byteBuffer(var bytes) = data.data else { return }
            switch framing {
            case .raw:
                if bytes.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(bytes)) }
            case .gun:
                do {
                    while let piece = try decoder.next(from: &bytes) { context.fireChannelRead(wrapInboundOut(piece)) }
                } catch {
                    fail(context, AdapterError(.other, "\(errorPrefix): \(error)"))
                    return
                }
            }
            if data.endStream { endInput(context) }
        case .rstStream(let code):
            fail(context, AdapterError(.other, "\(errorPrefix): stream reset by server: \(code)"))
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if unacknowledged > 0, !failed {
            let increment = unacknowledged
            unacknowledged = 0
            if !inputEnded {
                context.write(wrapOutboundOut(HTTP2Frame(streamID: streamID, payload: .windowUpdate(windowSizeIncrement: increment))), promise: nil)
            }
            context.write(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: increment))), promise: nil)
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // The connection's own input ended: the stream cannot go on.
            if !inputEnded { fail(context, AdapterError(.other, "\(errorPrefix): connection closed by server")) }
            return
        }
        // NIOHTTP2's stream and settings events stay here; they mean nothing to the protocol above.
        if event is NIOHTTP2StreamCreatedEvent || event is StreamClosedEvent || event is NIOHTTP2WindowUpdatedEvent
            || event is NIOHTTP2BulkStreamWindowChangeEvent { return }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        ready.fail(AdapterError(.other, "\(errorPrefix): connection closed"))
        idleTimer?.cancel()
        pingTimer?.cancel()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        ready.fail(error)
        context.fireErrorCaught(error)
    }

    /// END_STREAM from the server: half-close when the channel allows it, else close.
    private func endInput(_ context: ChannelHandlerContext) {
        guard !inputEnded else { return }
        inputEnded = true
        let halfClosure = (try? context.channel.syncOptions?.getOption(ChannelOptions.allowRemoteHalfClosure)) ?? false
        if halfClosure && !outputEnded {
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        } else {
            context.close(promise: nil)
        }
    }

    private func fail(_ context: ChannelHandlerContext, _ error: AdapterError) {
        guard !failed else { return }
        failed = true
        ready.fail(error)
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    // MARK: outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !outputEnded, !failed else {
            promise?.fail(ChannelError.outputClosed)
            return
        }
        let payload = unwrapOutboundIn(data)
        let bytes = framing == .gun ? GunFraming.encode(payload, allocator: context.channel.allocator) : payload
        context.write(wrapOutboundOut(HTTP2Frame(streamID: streamID, payload: .data(.init(data: .byteBuffer(bytes))))), promise: promise)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode == .output else {
            context.close(mode: mode, promise: promise)
            return
        }
        guard !outputEnded, !failed else {
            promise?.succeed(())
            return
        }
        outputEnded = true
        let end = HTTP2Frame(streamID: streamID, payload: .data(.init(data: .byteBuffer(ByteBuffer()), endStream: true)))
        context.writeAndFlush(wrapOutboundOut(end), promise: promise)
        if inputEnded { context.close(promise: nil) }
    }

    // MARK: keepalive

    private func armIdleTimer(_ context: ChannelHandlerContext) {
        guard let keepalive else { return }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        // With a PING outstanding the deadline may have passed: look again one period later.
        let due = lastFrame + keepalive.idle
        idleTimer = context.eventLoop.scheduleTask(deadline: due > context.eventLoop.now ? due : context.eventLoop.now + keepalive.idle) {
            let (handler, context) = bound.value
            handler.idleCheck(context)
        }
    }

    private func idleCheck(_ context: ChannelHandlerContext) {
        guard let keepalive, context.channel.isActive else { return }
        if context.eventLoop.now >= lastFrame + keepalive.idle, pingTimer == nil {
            context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .ping(HTTP2PingData(withInteger: .random(in: .min ... .max)), ack: false))),
                                  promise: nil)
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            pingTimer = context.eventLoop.scheduleTask(in: keepalive.pingTimeout) {
                let (handler, context) = bound.value
                handler.fail(context, AdapterError(.other, "\(handler.errorPrefix): ping timeout"))
            }
            lastFrame = context.eventLoop.now
        }
        armIdleTimer(context)
    }

    /// Go's `Response.Status` for an HTTP/2 answer: the code and its reason phrase.
    static func statusText(_ status: String) -> String {
        let reasons = [400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error",
                       502: "Bad Gateway", 503: "Service Unavailable"]
        guard let code = Int(status), let reason = reasons[code] else { return status }
        return "\(status) \(reason)"
    }
}
