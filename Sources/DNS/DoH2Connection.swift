// DNS over HTTPS on HTTP/2 (RFC 8484 §5.2 recommends it; Go's https transport offers h2 first):
// one TLS connection, one stream per query, so concurrent queries share the connection.
//
// 1. `DoHNegotiationHandler` waits for the TLS handshake's ALPN; "h2" puts NIOHTTP2's client
//    handler behind TLS, anything else (http/1.1, or no ALPN at all) the HTTP/1.1 reader
// 2. `send` opens a stream; `DoH2StreamHandler` writes HEADERS then one DATA frame with END_STREAM
// 3. the response's :status and DATA frames are collected until END_STREAM; the stream then closes
// 4. a GOAWAY or the connection closing marks it unusable: the transport dials a new one for the
//    next query (streams the server accepted before GOAWAY still finish)

import Adapter
import NIOCore
import NIOHPACK
import NIOHTTP2
import Synchronization

/// A TLS connection that negotiated h2, carrying any number of concurrent DoH streams.
final class DoH2Connection: Sendable {
    let channel: any Channel
    private let multiplexer: NIOLoopBound<NIOHTTP2Handler.StreamMultiplexer>
    private let usable = Atomic<Bool>(true)

    /// On the channel's loop, right after the HTTP/2 handler was added.
    init(channel: any Channel, multiplexer: NIOHTTP2Handler.StreamMultiplexer) {
        self.channel = channel
        self.multiplexer = NIOLoopBound(multiplexer, eventLoop: channel.eventLoop)
    }

    /// False once the server sent GOAWAY or the connection closed: new queries need a new one.
    var isUsable: Bool { usable.load(ordering: .relaxed) }

    /// Called on the loop by `DoH2ConnectionWatcher`.
    func markUnusable() { usable.store(false, ordering: .relaxed) }

    /// Sends one request on a new stream; fails with `DNSError.timeout` after `timeout`, with
    /// `DoHConnection.Failure.closed` when the stream or connection ends before the response.
    func send(headers: HPACKHeaders, body: ByteBuffer, timeout: TimeAmount) async throws -> DoHResponse {
        let loop = channel.eventLoop
        let promise = loop.makePromise(of: DoHResponse.self)
        loop.execute {
            guard self.isUsable else { return promise.fail(DoHConnection.Failure.closed) }
            let opened = loop.makePromise(of: (any Channel).self)
            self.multiplexer.value.createStreamChannel(promise: opened) { stream in
                stream.eventLoop.makeCompletedFuture {
                    try stream.pipeline.syncOperations.addHandler(
                        DoH2StreamHandler(headers: headers, body: body, timeout: timeout, promise: promise))
                }
            }
            // The handler owns the promise once it is added; before that only this can fail it.
            opened.futureResult.whenFailure { error in promise.fail(error) }
        }
        return try await promise.futureResult.get()
    }

    func close() {
        markUnusable()
        channel.close(promise: nil)
    }
}

/// Sits behind the HTTP/2 handler on the connection's pipeline: a GOAWAY (forwarded there as a
/// stream-0 frame) or the channel going inactive makes the connection unusable for new queries.
final class DoH2ConnectionWatcher: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTP2Frame

    let connection: DoH2Connection

    init(connection: DoH2Connection) { self.connection = connection }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .goAway = unwrapInboundIn(data).payload { connection.markUnusable() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.markUnusable()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        connection.markUnusable()
        context.close(promise: nil)
    }
}

/// One DoH request and its response on one HTTP/2 stream. Loop-confined; completes `promise`
/// exactly once. Bodies over 64 KiB fail the query (a DNS message is at most 65535 octets).
final class DoH2StreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private let headers: HPACKHeaders
    private let body: ByteBuffer
    private let timeout: TimeAmount
    private let promise: EventLoopPromise<DoHResponse>
    private var sent = false
    private var done = false
    private var status: Int?
    private var response: [UInt8] = []
    private var timer: Scheduled<Void>?

    init(headers: HPACKHeaders, body: ByteBuffer, timeout: TimeAmount, promise: EventLoopPromise<DoHResponse>) {
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.promise = promise
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: timeout) {
            let (handler, context) = bound.value
            handler.finish(.failure(DNSError.timeout))
            context.close(promise: nil)
        }
        if context.channel.isActive { sendRequest(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        sendRequest(context)
        context.fireChannelActive()
    }

    private func sendRequest(_ context: ChannelHandlerContext) {
        guard !sent else { return }
        sent = true
        context.write(wrapOutboundOut(.headers(.init(headers: headers))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.data(.init(data: .byteBuffer(body), endStream: true))), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .headers(let frame):
            // The first HEADERS carry :status; later ones are trailers (RFC 9113 §8.1).
            if status == nil {
                guard let text = frame.headers.first(name: ":status"), let code = Int(text) else {
                    return fail(context, DoHResponseHandler.BadResponse(reason: "no :status"))
                }
                // 1xx responses are interim (RFC 9110 §15.2); the final one follows.
                if code >= 200 { status = code }
            }
            if frame.endStream { complete(context) }
        case .data(let frame):
            if case .byteBuffer(let bytes) = frame.data {
                guard response.count + bytes.readableBytes <= 65_536 else {
                    return fail(context, DoHResponseHandler.BadResponse(reason: "response too large"))
                }
                response += bytes.readableBytesView
            }
            if frame.endStream { complete(context) }
        case .rstStream(let code):
            fail(context, DoHResponseHandler.BadResponse(reason: "stream reset: \(code)"))
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.failure(DoHConnection.Failure.closed))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(context, error)
    }

    private func complete(_ context: ChannelHandlerContext) {
        guard let status else { return fail(context, DoHResponseHandler.BadResponse(reason: "no :status")) }
        finish(.success(DoHResponse(status: status, reason: Self.statusText(status), keepAlive: true, body: response)))
        context.close(promise: nil)
    }

    private func fail(_ context: ChannelHandlerContext, _ error: any Error) {
        finish(.failure(error))
        context.close(promise: nil)
    }

    private func finish(_ result: Result<DoHResponse, any Error>) {
        guard !done else { return }
        done = true
        timer?.cancel()
        promise.completeWith(result)
    }

    /// HTTP/2 has no reason phrase; Go's `resp.Status` says `404 Not Found` from its own table.
    static func statusText(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 406: "Not Acceptable"
        case 413: "Request Entity Too Large"
        case 415: "Unsupported Media Type"
        case 429: "Too Many Requests"
        case 500: "Internal Server Error"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        default: ""
        }
    }
}

/// What a new DoH connection turned out to speak.
enum DoHNegotiated: Sendable {
    case http2(DoH2Connection)
    case http1(DoHConnection)
}

/// Waits behind the TLS handler for the handshake's ALPN, then sets the pipeline up for h2 or
/// HTTP/1.1 (Go's http.Transport speaks h2 only when the server picked it) and removes itself.
/// Fails `promise` if the connection ends or TLS fails first.
final class DoHNegotiationHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let promise: EventLoopPromise<DoHNegotiated>
    private var settled = false

    init(promise: EventLoopPromise<DoHNegotiated>) { self.promise = promise }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let handshake = event as? DNSTLSHandshakeCompleted, !settled else {
            return context.fireUserInboundEventTriggered(event)
        }
        settled = true
        let channel = context.channel
        do {
            let sync = context.pipeline.syncOperations
            let negotiated: DoHNegotiated
            if handshake.alpn == "h2" {
                let multiplexer = try sync.configureHTTP2Pipeline(
                    mode: .client, connectionConfiguration: .init(), streamConfiguration: .init(),
                    inboundStreamInitializer: { stream in stream.close() })  // servers do not push DoH
                let connection = DoH2Connection(channel: channel, multiplexer: multiplexer)
                try sync.addHandler(DoH2ConnectionWatcher(connection: connection))
                negotiated = .http2(connection)
            } else {
                let connection = DoHConnection(channel: channel)
                try sync.addHandler(DoHResponseHandler(connection: connection))
                negotiated = .http1(connection)
            }
            sync.removeHandler(context: context, promise: nil)
            promise.succeed(negotiated)
        } catch {
            promise.fail(error)
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        settle(DoHConnection.Failure.closed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        settle(error)
        context.close(promise: nil)
    }

    /// Fails the negotiation unless it already settled.
    func settle(_ error: any Error) {
        guard !settled else { return }
        settled = true
        promise.fail(error)
    }
}
