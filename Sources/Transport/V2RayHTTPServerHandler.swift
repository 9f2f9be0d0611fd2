// The first handler of a `grpc` or `http` server connection (after TLS): tells HTTP/2 from
// HTTP/1.1 by the first bytes, as Go's http.Server (with its h2c handler) does.
// - The HTTP/2 connection preface: NIOHTTP2 (server) and `HTTP2ServerStreamDemuxer` take our place
//   and get the bytes read so far.
// - An HTTP/1.1 request head (at most 16 KiB): checked with the same route; a bad one gets Go's
//   status and one log line, then the connection closes. For `http` a good one gets
//   `200 OK` with `Cache-Control: no-store` and the configured headers, and the rest of the
//   connection is the raw stream (Go hijacks the connection; body bytes already sent come first).
//   `grpc` over HTTP/1.1 is refused (400): Go would answer it chunked, no gRPC client sends it.
import Adapter
import Foundation
import NIOCore
import NIOHPACK
import NIOHTTP2

/// Sniffs HTTP/2 vs HTTP/1.1 on an accepted connection. Loop-confined.
final class V2RayHTTPServerHandler: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// RFC 9113 §3.4.
    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    private let route: V2RayHTTPRoute
    private let flowID: FlowID
    private let onReject: @Sendable (String) -> Void
    private let setup: V2RayTransportServer.StreamSetup
    private var buffered = ByteBuffer()
    /// The search for the end of an HTTP/1.1 request head in `buffered`.
    private(set) var headEnd = HTTPHeadEnd()
    private var state = State.sniffing

    enum State { case sniffing, raw, closed }

    init(route: V2RayHTTPRoute, flowID: FlowID, onReject: @escaping @Sendable (String) -> Void, setup: @escaping V2RayTransportServer.StreamSetup) {
        self.route = route
        self.flowID = flowID
        self.onReject = onReject
        self.setup = setup
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { context.read() }
    }

    func channelActive(context: ChannelHandlerContext) {
        context.read()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard state == .sniffing else {
            if state == .raw { context.fireChannelRead(data) }
            return
        }
        var bytes = unwrapInboundIn(data)
        buffered.writeBuffer(&bytes)
        let view = buffered.readableBytesView
        let prefix = min(view.count, Self.preface.count)
        if view.prefix(prefix).elementsEqual(Self.preface.prefix(prefix)) {
            if prefix == Self.preface.count { switchToHTTP2(context) } else { context.read() }
            return
        }
        guard let length = headEnd.find(in: buffered) else {
            if view.count > 16_384 { reject(context, status: 400, "request head too large") } else { context.read() }
            return
        }
        let head = buffered.readString(length: length) ?? ""
        answerHTTP1(context, head: head)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if state == .raw { context.fireChannelReadComplete() }
    }

    private func switchToHTTP2(_ context: ChannelHandlerContext) {
        let sync = context.pipeline.syncOperations
        do {
            try HTTP2StreamServer.install(after: self, on: sync, route: route, flowID: flowID, onReject: onReject, setup: setup)
        } catch {
            reject(context, status: 0, "http2: \(error)")
            return
        }
        state = .raw
        let bytes = buffered
        buffered = ByteBuffer()
        context.fireChannelRead(wrapInboundOut(bytes))
        context.fireChannelReadComplete()
        sync.removeHandler(context: context, promise: nil)
    }

    private func answerHTTP1(_ context: ChannelHandlerContext, head: String) {
        var lines = head.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        let requestLine = lines.isEmpty ? "" : lines.removeFirst()
        let parts = requestLine.split(separator: " ")
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else {
            reject(context, status: 400, "malformed HTTP request")
            return
        }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        if let (status, reason) = route.check(method: String(parts[0]), target: String(parts[1]), host: headers["host"] ?? "",
                                              contentType: headers["content-type"] ?? "") {
            reject(context, status: status, reason)
            return
        }
        guard case .http(_, _, let extra) = route.kind else {
            reject(context, status: 400, "grpc: HTTP/1.1 request (HTTP/2 required)")
            return
        }
        // Go's head, byte for byte: net/http adds Date and, flushing a body of unknown length,
        // `Transfer-Encoding: chunked` — then hijacks, so what follows is raw (its client never dechunks).
        var answer = "HTTP/1.1 200 OK\r\nCache-Control: no-store\r\n"
        for (name, value) in extra { answer += "\(name): \(value)\r\n" }
        answer += "Date: \(Self.httpDate())\r\nTransfer-Encoding: chunked\r\n\r\n"
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: answer)), promise: nil)
        state = .raw
        do {
            try setup(context.channel, flowID)
        } catch {
            reject(context, status: 0, "\(error)")
            return
        }
        if buffered.readableBytes > 0 {
            let rest = buffered
            buffered = ByteBuffer()
            context.fireChannelRead(wrapInboundOut(rest))
            context.fireChannelReadComplete()
        }
    }

    /// Go's answer to a bad request: the status (none when 0), one log line, then close.
    private func reject(_ context: ChannelHandlerContext, status: Int, _ reason: String) {
        state = .closed
        onReject(reason)
        guard status > 0 else {
            context.close(promise: nil)
            return
        }
        let text = [400: "Bad Request", 404: "Not Found"][status] ?? ""
        // Go's answer plus `Connection: close` (Go would keep the connection for another request).
        let response = "HTTP/1.1 \(status) \(text)\r\nDate: \(Self.httpDate())\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: response))).whenComplete { _ in context.close(promise: nil) }
    }

    /// An HTTP date (RFC 9110 §5.6.7), as Go's `Date` header.
    static func httpDate(_ date: Date = Date()) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: date)
    }
}
