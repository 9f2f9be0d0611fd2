// One accepted naive connection (after TLS when `tls` is on), as Go's http.Server serves it:
// 1. Over TLS the HTTP/2 preface hands the connection to Transport's HTTP/2 server, whose streams
//    this inbound judges (`gate`); each accepted stream is one tunnel. Plain TCP is HTTP/1.1 only
//    (Go serves no h2c here).
// 2. Otherwise the bytes are an HTTP/1.1 request head (HTTPProxy's codec). A head Go's server
//    refuses gets its plain-text answer and a close, no log line (Go's handler never runs): 400,
//    431 past 1 MiB, 505 for a version other than 1.x. A request that fails the naive checks is logged and the connection closed as Go's
//    hijack does: SO_LINGER 0 (a reset) on plain TCP, a clean TLS close over TLS.
// 3. Success: Go's `200 OK` head (`Padding`, `Date`, `Transfer-Encoding: chunked` that is never
//    used: the connection is hijacked), then `NaivePaddingHandler` and the router. Bytes the client
//    sent after its head go into the tunnel (Go's hijack drops what its reader had buffered).
import Adapter
import Config
import HTTPProxy
import NIOCore
import Net
import Transport
#if canImport(Glibc)
import Glibc  // struct linger for SO_LINGER
#endif

/// What every connection of one naive inbound shares.
struct NaiveServerContext: Sendable {
    var tag: String
    var users: NaiveUsers
    var logger: ContextLogger
    var listenOptions: ListenOptions
    var tls: Bool
}

/// Reads the first request of a connection (HTTP/1.1) or switches it to HTTP/2. Loop-confined.
final class NaiveServerHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// RFC 9113 §3.4.
    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    /// Go's `http.DefaultMaxHeaderBytes` plus the 4,096 bytes of slack its server reads past it.
    static let maximumHeadLength = (1 << 20) + 4_096

    private let shared: NaiveServerContext
    private let flowID: FlowID
    private let flowHandler: any FlowHandler
    private var buffer = ByteBuffer()
    private(set) var resume = HTTPHeadProgress()
    private var done = false

    init(context: NaiveServerContext, flowID: FlowID, flowHandler: any FlowHandler) {
        self.shared = context
        self.flowID = flowID
        self.flowHandler = flowHandler
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { context.read() }
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        var bytes = unwrapInboundIn(data)
        buffer.writeBuffer(&bytes)
        if shared.tls {
            let view = buffer.readableBytesView
            let count = min(view.count, Self.preface.count)
            if view.prefix(count).elementsEqual(Self.preface.prefix(count)) {
                if count == Self.preface.count { switchToHTTP2(context) } else { context.read() }
                return
            }
        }
        // Go's HTTP/1 server takes `PRI * HTTP/2.0` (the h2c preface) as a request and hands it to
        // the handler, which finds no CONNECT.
        if buffer.readableBytesView.starts(with: Self.preface.prefix(16)) {
            return reject(context, "not CONNECT request")
        }
        let head: HTTPRequestHead
        do {
            guard let read = try HTTPRequestHead.read(from: &buffer, limit: Self.maximumHeadLength, resume: &resume) else { return context.read() }
            head = read
        } catch .headTooLarge {
            return badHead(context, "header too large", answer: "431 Request Header Fields Too Large")
        } catch .unsupportedVersion {
            return badHead(context, "unsupported protocol version",
                           answer: "505 HTTP Version Not Supported: unsupported protocol version")
        } catch {
            return badHead(context, "\(error)")
        }
        // Go's `ReadRequest` refuses a target that is no URI before any handler runs; CONNECT takes
        // an authority.
        guard head.method == "CONNECT" || Self.isRequestURI(head.target) else { return badHead(context, "invalid URI for request") }
        let authority = head.method == "CONNECT" && !head.target.hasPrefix("/") ? head.target : (head.headers["Host"] ?? "")
        let check = NaiveRequestCheck(method: head.method, padding: head.headers["Padding"],
                                      authorization: head.headers["Proxy-Authorization"], authority: authority, users: shared.users)
        switch check {
        case .reject(_, let reason):
            reject(context, reason)
        case .accept(let user, let destination):
            accept(context, user: user, destination: destination, forwardedFor: head.headers["X-Forwarded-For"])
        }
    }

    /// Go's `url.ParseRequestURI` for a non-CONNECT target: `*`, an absolute path, or a scheme.
    static func isRequestURI(_ target: String) -> Bool {
        if target == "*" || target.hasPrefix("/") { return true }
        guard let colon = target.firstIndex(of: ":"), let first = target.first, first.isASCII, first.isLetter else { return false }
        return target[..<colon].allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "+" || $0 == "-" || $0 == "." ) }
    }

    private func source(_ channel: any Channel) -> Destination? {
        channel.remoteAddress.flatMap { Destination($0) }.map { source -> Destination in
            var out = source
            if let ip = source.ip { out.host = .ip(ip.unmapped) }
            return out
        }
    }

    private func sourceText(_ channel: any Channel) -> String {
        source(channel).map { "\($0)" } ?? "unknown"
    }

    // MARK: HTTP/2

    private func switchToHTTP2(_ context: ChannelHandlerContext) {
        done = true
        let shared = self.shared
        let flowHandler = self.flowHandler
        let source = self.source(context.channel)
        let sourceText = self.sourceText(context.channel)
        let logger = shared.logger
        let flowID = self.flowID
        do {
            try HTTP2StreamServer.install(after: self, on: context.pipeline.syncOperations, flowID: flowID, gate: { fields in
                func field(_ name: String) -> String? { fields.first { $0.name == name }?.value }
                let check = NaiveRequestCheck(method: field(":method") ?? "", padding: field("padding"),
                                              authorization: field("proxy-authorization"), authority: field(":authority") ?? "",
                                              users: shared.users)
                switch check {
                case .reject(let status, let reason):
                    return .reject(status: status, reason: reason)
                case .accept(let user, let destination):
                    let source = NaiveModule.source(source, forwardedFor: field("x-forwarded-for"))
                    return .accept(headers: [("padding", NaiveModule.paddingHeader())]) { stream, streamFlowID in
                        try stream.pipeline.syncOperations.addHandler(NaiveHTTP2CloseHandler())
                        try Self.tunnel(stream, shared: shared, flowID: streamFlowID, flowHandler: flowHandler,
                                        source: source, user: user, destination: destination)
                    }
                }
            }, onReject: { reason in
                logger.error("process connection from \(sourceText): \(reason)", flow: flowID)
            })
        } catch {
            logger.error("process connection from \(sourceText): http2: \(error)", flow: flowID)
            context.close(promise: nil)
            return
        }
        let bytes = buffer
        buffer = ByteBuffer()
        context.fireChannelRead(wrapInboundOut(bytes))
        context.fireChannelReadComplete()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    // MARK: HTTP/1.1

    /// A head Go's server cannot read: its plain-text answer (400 unless told), then close.
    private func badHead(_ context: ChannelHandlerContext, _ reason: String, answer status: String = "400 Bad Request") {
        done = true
        shared.logger.debug("process connection from \(sourceText(context.channel)): read request: \(reason)", flow: flowID)
        let answer = "HTTP/1.1 \(status)\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n\(status)"
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: answer))).whenComplete { _ in context.close(promise: nil) }
    }

    /// Go's `rejectHTTP` on HTTP/1.1: no answer; the hijacked connection is closed with SO_LINGER 0
    /// when it is a TCP socket (a reset), plainly over TLS.
    private func reject(_ context: ChannelHandlerContext, _ reason: String) {
        done = true
        buffer = ByteBuffer()
        shared.logger.error("process connection from \(sourceText(context.channel)): \(reason)", flow: flowID)
        let channel = context.channel
        if !shared.tls, let provider = channel as? any SocketOptionProvider {
            provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }

    private func accept(_ context: ChannelHandlerContext, user: String, destination: Destination, forwardedFor: String?) {
        done = true
        let answer = "HTTP/1.1 200 OK\r\nPadding: \(NaiveModule.paddingHeader())\r\nDate: \(HTTP2StreamServer.httpDate())\r\n"
            + "Transfer-Encoding: chunked\r\n\r\n"
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: answer)), promise: nil)
        let rest = buffer
        buffer = ByteBuffer()
        do {
            try Self.tunnel(context.channel, shared: shared, flowID: flowID, flowHandler: flowHandler,
                            source: NaiveModule.source(source(context.channel), forwardedFor: forwardedFor),
                            user: user, destination: destination, after: self) {
                if rest.readableBytes > 0 { context.fireChannelRead(self.wrapInboundOut(rest)) }
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            }
        } catch {
            shared.logger.error("process connection from \(sourceText(context.channel)): \(error)", flow: flowID)
            context.close(promise: nil)
        }
    }

    /// Puts the padding and the early-bytes holder on `channel` (after `handler`, else last), logs
    /// Go's two lines and hands the tunnel to the router. `beforeHandoff` runs once the handlers
    /// are in place (to pass on bytes already read).
    static func tunnel(_ channel: any Channel, shared: NaiveServerContext, flowID: FlowID, flowHandler: any FlowHandler,
                       source: Destination?, user: String, destination: Destination, after handler: (any ChannelHandler)? = nil,
                       beforeHandoff: (() -> Void)? = nil) throws {
        let pipeline = channel.pipeline.syncOperations
        let padding = NaivePaddingHandler()
        let holder = FlowBufferHandler()
        if let handler {
            try pipeline.addHandler(padding, position: .after(handler))
        } else {
            try pipeline.addHandler(padding)
        }
        try pipeline.addHandler(holder, position: .after(padding))
        let prefix = user.isEmpty ? "" : "[\(user)] "
        shared.logger.info("\(prefix)inbound connection from \(source.map { "\($0)" } ?? "unknown")", flow: flowID)
        shared.logger.info("\(prefix)inbound connection to \(destination)", flow: flowID)
        var metadata = FlowMetadata(inbound: shared.tag, inboundType: "naive", network: .tcp, source: source,
                                    destination: destination, flowID: flowID)
        metadata.applyListenOptions(shared.listenOptions)
        if !user.isEmpty { metadata.user = user }
        beforeHandoff?()
        flowHandler.handleTCP(channel, metadata: metadata, responder: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        done = true
        context.fireChannelInactive()
    }
}

/// Go's HTTP/2 tunnel (`naiveH2Conn`) cannot half-close: when the target's side ends, Go closes the
/// whole tunnel and its server ends the answer (END_STREAM) and resets the client's half
/// (RST_STREAM NO_ERROR). Turns the relay's output close into that full close. Loop-confined.
final class NaiveHTTP2CloseHandler: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode == .output else { return context.close(mode: mode, promise: promise) }
        // The reset waits until END_STREAM (after every DATA frame still waiting for the client's
        // window) went out, as Go's handler returns only once its writes are done.
        let ended = context.eventLoop.makePromise(of: Void.self)
        context.close(mode: .output, promise: ended)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        ended.futureResult.whenComplete { _ in bound.value.close(mode: .all, promise: promise) }
    }
}
