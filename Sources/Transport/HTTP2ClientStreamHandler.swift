// The client side of one v2ray HTTP/2 stream: the client half of the v2ray `grpc` transport (Go's
// v2raygrpclite client) and of `http` over TLS (v2rayhttp's http2.Transport path). Sits right after
// NIOHTTP2's connection handler (frame mode, no multiplexer) on a connection of its own, carries
// stream 1 only, and hands the outbound that stream as a `V2RayHTTP2Stream` channel (`stream`):
// a channel of its own, so that bytes NIOHTTP2 holds for the server's window make it unwritable.
//
// 1. On add: HEADERS (POST /<service>/Tun for grpc; the configured method and path for http)
//    without END_STREAM, then the stream is ready at once — Go's DialContext returns a "late"
//    conn whose writes go out before the response (the server answers only once its protocol
//    writes), so waiting for the response would deadlock.
// 2. The stream's writes become DATA frames (gun-framed for grpc, raw for http); its
//    `close(mode: .output)` sends END_STREAM. Back-pressure on writes: the stream is unwritable
//    while more than `V2RayHTTP2Stream.highWater` bytes wait for the server's window or the socket.
// 3. The response HEADERS must say 200 (else `v2ray-grpc: unexpected status: 404 Not Found`, as
//    Go); DATA is unframed and queued in the stream; END_STREAM (on DATA or trailers) ends its input.
// 4. Flow control: in frame mode nobody else returns window. The connection is always read (so
//    PINGs, SETTINGS and WINDOW_UPDATEs for our writes keep coming while the reader is slow); the
//    connection window goes back per read batch, the stream window only as the stream's reader
//    takes the bytes (one update per batch while it keeps up), so a slow reader holds the server
//    back by one window (`streamWindow`).
// 5. Keepalive (Go's http2.Transport ReadIdleTimeout/PingTimeout): after `idle` without a frame a
//    PING goes out; no frame within `pingTimeout` closes the connection.
// 6. The stream and the connection live and die together: closing either closes the other.
import Adapter
package import NIOCore
import NIOHPACK
import NIOHTTP2

/// The client side of one v2ray HTTP/2 stream. Loop-confined.
final class HTTP2ClientStreamHandler: ChannelInboundHandler, V2RayHTTP2StreamCarrier, @unchecked Sendable {
    typealias InboundIn = HTTP2Frame
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
    private var context: ChannelHandlerContext?
    /// The stream channel the outbound writes to; made when the request goes out, nil once closed.
    private(set) var stream: V2RayHTTP2Stream?
    private var sent = false
    private var responded = false
    private var inputEnded = false
    private var failed = false
    /// Flow-controlled bytes of the connection read since the last connection WINDOW_UPDATE.
    private var connectionUnreturned = 0
    /// Stream window the reader gave back, sent at once or with the end of the read batch.
    private var windowReturn = HTTP2WindowReturn()
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
        self.context = context
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        pingTimer?.cancel()
        self.context = nil
    }

    private func start(_ context: ChannelHandlerContext) {
        guard !sent else { return }
        sent = true
        // The connection window starts at 64 KiB whatever SETTINGS say; open it to the stream's.
        let widen = V2RayTransportClient.streamWindow - 65_535
        context.write(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: widen))), promise: nil)
        let stream = V2RayHTTP2Stream(streamID: streamID, carrier: self, connection: context.channel, framing: framing)
        self.stream = stream
        // The outbound adds its handlers to a live channel, as to a dialed socket.
        stream.activate()
        let headers = HTTP2Frame(streamID: streamID, payload: .headers(.init(headers: request, endStream: false)))
        context.writeAndFlush(wrapOutboundOut(headers)).whenComplete { [ready] result in
            switch result {
            case .success: ready.succeed(())
            case .failure(let error): ready.fail(error)
            }
        }
        // The server's SETTINGS want an ACK even before the protocol reads; from here on the
        // connection is always read (`channelReadComplete`).
        context.read()
        lastFrame = context.eventLoop.now
        armIdleTimer(context)
    }

    // MARK: inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        windowReturn.beginReadBatch()
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
            if headers.endStream { endInput() }
        case .data(let data):
            let flowLength = data.data.readableBytes + (data.paddingBytes.map { $0 + 1 } ?? 0)
            connectionUnreturned += flowLength
            guard case .byteBuffer(let bytes) = data.data else { return }
            if data.endStream { inputEnded = true }
            stream?.receive(bytes, flowLength: flowLength, endStream: data.endStream)
        case .rstStream(let code):
            fail(context, AdapterError(.other, "\(errorPrefix): stream reset by server: \(code)"))
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // What a reader that keeps up took during the batch goes back in one WINDOW_UPDATE.
        if let increment = windowReturn.endReadBatch(), !failed, !inputEnded {
            context.write(wrapOutboundOut(HTTP2Frame(streamID: streamID, payload: .windowUpdate(windowSizeIncrement: increment))), promise: nil)
        }
        // The connection window goes back at once: the stream's window alone bounds what waits
        // for its reader.
        if connectionUnreturned > 0, !failed {
            let increment = connectionUnreturned
            connectionUnreturned = 0
            context.write(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: increment))), promise: nil)
        }
        context.flush()
        if !failed { context.read() }
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

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        stream?.connectionWritabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        ready.fail(AdapterError(.other, "\(errorPrefix): connection closed"))
        idleTimer?.cancel()
        pingTimer?.cancel()
        let stream = self.stream
        self.stream = nil
        stream?.peerClosed(error: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        ready.fail(error)
        // The connection's errors (TLS, NIOHTTP2) are the stream's: its relay decides.
        stream?.reportError(error)
    }

    /// END_STREAM from the server: the stream delivers its input end once its reader took the rest.
    private func endInput() {
        guard !inputEnded else { return }
        inputEnded = true
        stream?.receive(ByteBuffer(), flowLength: 0, endStream: true)
    }

    private func fail(_ context: ChannelHandlerContext, _ error: AdapterError) {
        guard !failed else { return }
        failed = true
        ready.fail(error)
        let stream = self.stream
        self.stream = nil
        stream?.peerClosed(error: error)
        context.close(promise: nil)
    }

    // MARK: V2RayHTTP2StreamCarrier

    func writeData(_ stream: V2RayHTTP2Stream, _ bytes: ByteBuffer, endStream: Bool, promise: EventLoopPromise<Void>?) {
        stream.writeData(bytes, endStream: endStream, through: failed ? nil : context, promise: promise)
    }

    func flush() {
        context?.flush()
    }

    func returnWindow(_ streamID: HTTP2StreamID, _ increment: Int) {
        guard let context, !failed, !inputEnded else { return }
        // Inside a read batch the update waits for its end (one frame and one flush per batch, not
        // per DATA frame); a reader catching up later returns its window at once.
        guard let increment = windowReturn.readerTook(increment) else { return }
        context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: streamID, payload: .windowUpdate(windowSizeIncrement: increment))), promise: nil)
    }

    /// The outbound closed the stream (or it ended): one stream per connection, so the connection goes.
    func streamClosed(_ stream: V2RayHTTP2Stream, reset: HTTP2ErrorCode?) {
        guard self.stream === stream else { return }
        self.stream = nil
        guard let context else { return }
        context.flush()
        context.close(promise: nil)
    }

    func framingFailed(_ stream: V2RayHTTP2Stream, _ error: any Error) {
        guard let context else {
            stream.end(error: error, reset: nil)
            return
        }
        fail(context, AdapterError(.other, "\(errorPrefix): \(error)"))
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
