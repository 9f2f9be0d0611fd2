// The server half of the `grpc` and `http` transports on one connection: after TLS (or on plain
// TCP) `V2RayHTTPServerHandler` looks at the first bytes — the HTTP/2 preface (h2 by ALPN, or h2c
// with prior knowledge) puts NIOHTTP2 and this demuxer in its place; an HTTP/1.1 request is
// answered there (Go's http.Server serves both on one listener).
//
// Per request stream, Go's checks in Go's order, each failure answered and logged
// (`process connection from 127.0.0.1:4242: bad path: /wrong`):
// - grpc (v2raygrpclite server.go): path `/<service_name>/Tun` → 404 `bad path: …`; POST → 404
//   `bad method: …`; content-type `application/grpc…` → 404 `bad content type: …`. Then 200 with
//   `content-type: application/grpc`.
// - http (v2rayhttp server.go): a configured host list must hold `:authority` → 400 `bad host: …`;
//   the path must start with the configured one → 404 `bad path: …`; a configured method must
//   match → 404 `bad method: …`. Then 200 with `cache-control: no-store` and the configured headers.
// `idle_timeout`: a connection with no stream open that long gets GOAWAY and is closed (Go's
// http2.Server IdleTimeout).
// An accepted stream becomes a `V2RayHTTP2Stream` channel that the inbound's setup fills with its
// protocol handlers; the first stream keeps the connection's flow id, later ones get their own.
import Config
package import Adapter
package import NIOCore
import NIOHPACK
import NIOHTTP2

/// A protocol's answer to one HTTP/2 request stream it judges itself (naive's CONNECT): Go's
/// status and the log reason, or the answer's headers after `:status 200` and the handlers to put
/// on the stream.
package enum HTTP2StreamDecision: Sendable {
    case reject(status: Int, reason: String)
    case accept(headers: [(String, String)], setup: V2RayTransportServer.StreamSetup)
}

/// Judges a request stream by its header fields (pseudo-headers included, names lower-case, in
/// wire order). Runs on the connection's loop.
package typealias HTTP2StreamGate = @Sendable (_ fields: [(name: String, value: String)]) -> HTTP2StreamDecision

/// An HTTP/2 server whose streams a protocol judges itself (`HTTP2StreamGate`), on a connection
/// that already spoke the preface's first bytes to nobody: naive over TLS with ALPN h2.
package enum HTTP2StreamServer {
    /// Now as an HTTP `Date` value (RFC 9110 §5.6.7), as Go's servers send it.
    package static func httpDate() -> String { V2RayHTTPServerHandler.httpDate() }

    /// Puts NIOHTTP2 (server, Go's http2.Server settings) and the stream demuxer after `handler`.
    /// `onReject` logs a rejected stream or a connection error. Call on the channel's loop.
    package static func install(after handler: any ChannelHandler, on pipeline: ChannelPipeline.SynchronousOperations, flowID: FlowID,
                                gate: @escaping HTTP2StreamGate, onReject: @escaping @Sendable (String) -> Void) throws {
        let route = V2RayHTTPRoute(kind: .gate(gate), path: "")
        try install(after: handler, on: pipeline, route: route, flowID: flowID, onReject: onReject) { _, _ in
            preconditionFailure("a gated stream is set up by its decision")
        }
    }

    static func install(after handler: any ChannelHandler, on pipeline: ChannelPipeline.SynchronousOperations, route: V2RayHTTPRoute,
                        flowID: FlowID, onReject: @escaping @Sendable (String) -> Void, setup: @escaping V2RayTransportServer.StreamSetup) throws {
        let connection = NIOHTTP2Handler(mode: .server, initialSettings: [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: 250),
            HTTP2Setting(parameter: .initialWindowSize, value: HTTP2ServerStreamDemuxer.window),
            HTTP2Setting(parameter: .maxHeaderListSize, value: HPACKDecoder.defaultMaxHeaderListSize),
        ])
        let demuxer = HTTP2ServerStreamDemuxer(route: route, flowID: flowID, onReject: onReject, setup: setup)
        try pipeline.addHandler(connection, position: .after(handler))
        try pipeline.addHandler(demuxer, position: .after(connection))
    }
}

/// What a stream's request must look like, and what the answer carries.
struct V2RayHTTPRoute: Sendable {
    enum Kind: Sendable {
        case grpc
        case http(hosts: [String], method: String?, headers: [(String, String)])
        /// The protocol judges each request (`HTTP2StreamServer`); never over HTTP/1.1 here.
        case gate(HTTP2StreamGate)
    }

    let kind: Kind
    /// grpc: the exact path; http: the prefix.
    let path: String
    /// `idle_timeout` (Go's http2.Server IdleTimeout): a connection without streams this long is
    /// closed with GOAWAY; nil for never.
    var idleTimeout: TimeAmount? = nil

    /// Go's checks for one request; the status and reason on failure.
    func check(method: String, target: String, host: String, contentType: String) -> (status: Int, reason: String)? {
        let path = Self.decodedPath(target)
        switch kind {
        case .grpc:
            if path != self.path { return (404, "bad path: \(path)") }
            if method != "POST" { return (404, "bad method: \(method)") }
            if !contentType.hasPrefix("application/grpc") { return (404, "bad content type: \(contentType)") }
        case .http(let hosts, let wanted, _):
            if !hosts.isEmpty, !hosts.contains(host) { return (400, "bad host: \(host)") }
            if !path.hasPrefix(self.path) { return (404, "bad path: \(path)") }
            if let wanted, method != wanted { return (404, "bad method: \(method)") }
        case .gate:
            break
        }
        return nil
    }

    /// The answer's headers after `:status` (HTTP/2 names, lower-case).
    var answerHeaders: [(String, String)] {
        switch kind {
        case .grpc:
            return [("content-type", "application/grpc"), ("te", "trailers")]
        case .http(_, _, let headers):
            return [("cache-control", "no-store")] + headers.map { ($0.0.lowercased(), $0.1) }
        case .gate:
            return []
        }
    }

    /// Go's `URL.Path` of a request target: the part before `?`, %-decoded (undecodable text stays).
    static func decodedPath(_ target: String) -> String {
        let raw = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        var bytes: [UInt8] = []
        var utf8 = Array(raw.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "%"), utf8.count >= 2,
               let high = asciiHexValue(utf8[utf8.startIndex]), let low = asciiHexValue(utf8[utf8.startIndex + 1]) {
                bytes.append(high << 4 | low)
                utf8 = utf8.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

}

/// Turns the request streams of one HTTP/2 connection into `V2RayHTTP2Stream` channels.
/// Sits after NIOHTTP2's handler (frame mode). Loop-confined.
final class HTTP2ServerStreamDemuxer: ChannelInboundHandler, V2RayHTTP2StreamCarrier, @unchecked Sendable {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    /// The stream window we advertise (Go's http2.Server: 1 MiB); also what the connection window is opened to.
    static let window = 1 << 20

    private let route: V2RayHTTPRoute
    private let flowID: FlowID
    private let onReject: @Sendable (String) -> Void
    private let setup: V2RayTransportServer.StreamSetup
    private var streams: [HTTP2StreamID: V2RayHTTP2Stream] = [:]
    private var context: ChannelHandlerContext?
    private var usedConnectionFlow = false
    private var widened = false
    private var connectionUnreturned = 0
    /// Stream window readers gave back during the current read batch (sent with its end).
    private var streamsUnreturned: [(HTTP2StreamID, Int)] = []
    /// Between a read of the connection and its read-complete.
    private var inReadBatch = false
    private var idleTimer: Scheduled<Void>?
    private var lastStreamID = HTTP2StreamID(0)

    init(route: V2RayHTTPRoute, flowID: FlowID, onReject: @escaping @Sendable (String) -> Void, setup: @escaping V2RayTransportServer.StreamSetup) {
        self.route = route
        self.flowID = flowID
        self.onReject = onReject
        self.setup = setup
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        armIdleTimer()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        self.context = nil
    }

    /// Starts the idle clock when no stream is open (Go's http2.Server IdleTimeout).
    private func armIdleTimer() {
        guard let idle = route.idleTimeout, streams.isEmpty, let context else { return }
        idleTimer?.cancel()
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        idleTimer = context.eventLoop.scheduleTask(in: idle) {
            let demuxer = bound.value
            guard demuxer.streams.isEmpty, let context = demuxer.context else { return }
            let goAway = HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: demuxer.lastStreamID, errorCode: .noError, opaqueData: nil))
            context.writeAndFlush(demuxer.wrapOutboundOut(goAway)).whenComplete { _ in context.close(promise: nil) }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        inReadBatch = true
        if !widened {
            // The connection window starts at 64 KiB whatever SETTINGS say.
            widened = true
            context.write(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: Self.window - 65_535))),
                          promise: nil)
        }
        guard frame.streamID != .rootStream else { return }
        switch frame.payload {
        case .headers(let headers):
            if let stream = streams[frame.streamID] {
                // Trailers: only END_STREAM matters.
                if headers.endStream { stream.receive(ByteBuffer(), flowLength: 0, endStream: true) }
            } else {
                open(context, streamID: frame.streamID, headers: headers)
            }
        case .data(let data):
            let flowLength = data.data.readableBytes + (data.paddingBytes.map { $0 + 1 } ?? 0)
            connectionUnreturned += flowLength
            guard case .byteBuffer(let bytes) = data.data else { return }
            streams[frame.streamID]?.receive(bytes, flowLength: flowLength, endStream: data.endStream)
        case .rstStream:
            streams[frame.streamID]?.peerClosed(error: nil)
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        inReadBatch = false
        // What readers that keep up took during the batch: one WINDOW_UPDATE per stream, unless
        // the stream was closed or half-closed by the client later in the batch.
        for (streamID, increment) in streamsUnreturned {
            guard let stream = streams[streamID], !stream.inputEnded else { continue }
            context.write(wrapOutboundOut(HTTP2Frame(streamID: streamID, payload: .windowUpdate(windowSizeIncrement: increment))), promise: nil)
        }
        streamsUnreturned.removeAll(keepingCapacity: true)
        if connectionUnreturned > 0 {
            context.write(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: connectionUnreturned))),
                          promise: nil)
            connectionUnreturned = 0
        }
        context.flush()
        // The connection always reads; each stream's window bounds what waits for its reader.
        context.read()
    }

    func channelActive(context: ChannelHandlerContext) {
        context.read()
        context.fireChannelActive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        for stream in streams.values { stream.connectionWritabilityChanged() }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // A stream NIOHTTP2 closed with an error (a reset either way) is gone; a clean close is the
        // stream channel's own business (it may still hold bytes for its reader).
        if let closed = event as? StreamClosedEvent, closed.reason != nil {
            streams[closed.streamID]?.peerClosed(error: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        for stream in Array(streams.values) { stream.peerClosed(error: nil) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A stream error (NIOHTTP2 has reset that stream) ends that stream only; anything else is a
        // connection error, for which NIOHTTP2 has sent GOAWAY: the connection goes.
        if let streamError = error as? NIOHTTP2Errors.StreamError {
            streams[streamError.streamID]?.peerClosed(error: streamError.baseError)
            return
        }
        // Go's http2 server keeps a peer's reset or hang-up out of the log (`condlogf` on a closed
        // connection); a gated server (naive) does the same.
        if case .gate = route.kind, error is IOError {
            context.close(promise: nil)
            return
        }
        onReject("http2: \(error)")
        context.close(promise: nil)
    }

    private func open(_ context: ChannelHandlerContext, streamID: HTTP2StreamID, headers: HTTP2Frame.FramePayload.Headers) {
        let fields = headers.headers
        var setup = self.setup
        var answerHeaders: [(String, String)]
        let refusal: (status: Int, reason: String)?
        if case .gate(let gate) = route.kind {
            switch gate(fields.map { (name: $0.name, value: $0.value) }) {
            case .reject(let status, let reason):
                refusal = (status, reason)
                answerHeaders = []
            case .accept(let headers, let streamSetup):
                refusal = nil
                answerHeaders = headers
                setup = streamSetup
            }
        } else {
            refusal = route.check(method: fields.first(name: ":method") ?? "", target: fields.first(name: ":path") ?? "",
                                  host: fields.first(name: ":authority") ?? "", contentType: fields.first(name: "content-type") ?? "")
            answerHeaders = route.answerHeaders
        }
        if let (status, reason) = refusal {
            onReject(reason)
            let answer = HPACKHeaders([(":status", "\(status)"), ("content-length", "0"), ("date", V2RayHTTPServerHandler.httpDate())])
            context.write(wrapOutboundOut(HTTP2Frame(streamID: streamID, payload: .headers(.init(headers: answer, endStream: true)))), promise: nil)
            if case .gate = route.kind, !headers.endStream {
                // Go's server resets (NO_ERROR) a stream whose handler returned before the client
                // ended its body (seen from Go's naive inbound; the v2ray transports keep their answer).
                context.write(wrapOutboundOut(HTTP2Frame(streamID: streamID, payload: .rstStream(.noError))), promise: nil)
            }
            context.flush()
            return
        }
        idleTimer?.cancel()
        idleTimer = nil
        lastStreamID = max(lastStreamID, streamID)
        let answer = HPACKHeaders([(":status", "200")] + answerHeaders + [("date", V2RayHTTPServerHandler.httpDate())])
        context.write(wrapOutboundOut(HTTP2Frame(streamID: streamID, payload: .headers(.init(headers: answer, endStream: false)))), promise: nil)
        context.flush()
        let framing: HTTP2ClientStreamHandler.Framing = if case .grpc = route.kind { .gun } else { .raw }
        let stream = V2RayHTTP2Stream(streamID: streamID, carrier: self, connection: context.channel, framing: framing)
        streams[streamID] = stream
        let id = usedConnectionFlow ? FlowID() : flowID
        usedConnectionFlow = true
        do {
            try setup(stream, id)
        } catch {
            onReject("\(error)")
            stream.peerClosed(error: nil)
            context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: streamID, payload: .rstStream(.internalError))), promise: nil)
            return
        }
        stream.activate()
        if headers.endStream { stream.receive(ByteBuffer(), flowLength: 0, endStream: true) }
    }

    // MARK: from the streams

    func writeData(_ stream: V2RayHTTP2Stream, _ bytes: ByteBuffer, endStream: Bool, promise: EventLoopPromise<Void>?) {
        stream.writeData(bytes, endStream: endStream, through: context, promise: promise)
    }

    func flush() {
        context?.flush()
    }

    func returnWindow(_ streamID: HTTP2StreamID, _ increment: Int) {
        guard let context else { return }
        // Inside a read batch the update waits for its end (one frame and one flush per stream and
        // batch, not per DATA frame); a reader catching up later returns its window at once.
        if inReadBatch {
            if let index = streamsUnreturned.firstIndex(where: { $0.0 == streamID }) {
                streamsUnreturned[index].1 += increment
            } else {
                streamsUnreturned.append((streamID, increment))
            }
            return
        }
        context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: streamID, payload: .windowUpdate(windowSizeIncrement: increment))), promise: nil)
    }

    func streamClosed(_ stream: V2RayHTTP2Stream, reset: HTTP2ErrorCode?) {
        streams[stream.streamID] = nil
        armIdleTimer()
        if let reset, let context {
            context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: stream.streamID, payload: .rstStream(reset))), promise: nil)
        }
    }

    /// Garbage gun framing from a client: logged as a rejected request, the stream reset.
    func framingFailed(_ stream: V2RayHTTP2Stream, _ error: any Error) {
        onReject("\(error)")
        stream.end(error: error, reset: .protocolError)
    }
}
