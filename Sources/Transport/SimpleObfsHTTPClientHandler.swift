// SimpleObfsHTTPClientHandler: simple-obfs `obfs=http` on the client side (Go's
// transport/simple-obfs/http.go). The first write goes out as the body of a fake websocket-upgrade
// `GET /`; the server's first bytes are an HTTP response header in front of its data, which this
// handler strips. Everything after that passes through unchanged in both directions.
import Foundation
package import NIOCore

/// Why a simple-obfs server's reply could not be unwrapped.
package enum SimpleObfsError: Error, Equatable, CustomStringConvertible {
    /// The HTTP reply did not start with `HTTP/` (its first bytes, hex).
    case notHTTPResponse(String)
    /// No end of the HTTP header within this many bytes.
    case httpHeaderTooLong(Int)
    /// The server closed before its reply header was complete.
    case closedBeforeResponse
    /// A TLS record of this type at this stage (`serverHello`, `changeCipherSpec`, `applicationData`).
    case unexpectedTLSRecord(type: UInt8, expected: String)

    package var description: String {
        switch self {
        case let .notHTTPResponse(head): "simple-obfs http: server reply is not an HTTP response (starts with \(head))"
        case let .httpHeaderTooLong(count): "simple-obfs http: no end of the response header in \(count) bytes"
        case .closedBeforeResponse: "simple-obfs: server closed before its response"
        case let .unexpectedTLSRecord(type, expected): "simple-obfs tls: record type \(type) where \(expected) was expected"
        }
    }

    /// Up to 8 leading bytes as hex, for an error message.
    static func head(_ buffer: ByteBuffer) -> String {
        buffer.readableBytesView.prefix(8).map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }
}

/// Client half of simple-obfs HTTP. Loop-confined (hence `@unchecked Sendable`, to be handed to the
/// loop); sits next to the socket, below shadowsocks.
package final class SimpleObfsHTTPClientHandler: ChannelDuplexHandler, RemovableChannelHandler, @unchecked Sendable {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer
    package typealias OutboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    /// Go reads the reply header from one read of its 32 KiB buffer; we gather across reads up to this.
    static let responseHeaderLimit = 32 * 1024

    private let host: String
    private let port: UInt16
    private var requestSent = false
    /// The reply header gathered so far; nil once it has been stripped.
    private var response: ByteBuffer? = ByteBuffer()
    /// The search for the end of the reply header in `response`.
    private(set) var headEnd = HTTPHeadEnd()
    private var failed = false
    /// We closed the channel: its end is no news.
    private var closingLocally = false

    /// `host` is `obfs-host` (Go sends it even when empty); `port` the server's, shown unless 80.
    package init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    package func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var payload = unwrapOutboundIn(data)
        // An empty write is the relay's marker, not the first request.
        guard !requestSent, payload.readableBytes > 0 else {
            context.write(data, promise: promise)
            return
        }
        requestSent = true
        var request = context.channel.allocator.buffer(capacity: 256 + payload.readableBytes)
        request.writeString(requestHeader(contentLength: payload.readableBytes))
        request.writeBuffer(&payload)
        context.write(wrapOutboundOut(request), promise: promise)
    }

    /// What Go's `http.Request.Write` emits for simple-obfs's request: Host, User-Agent,
    /// Content-Length, then the other headers sorted by canonical name.
    private func requestHeader(contentLength: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        let key = Data((0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        let hostHeader = port == 80 ? host : "\(host):\(port)"
        let agent = "curl/7.\(Int.random(in: 0..<54, using: &generator)).\(Int.random(in: 0..<2, using: &generator))"
        return "GET / HTTP/1.1\r\nHost: \(hostHeader)\r\nUser-Agent: \(agent)\r\nContent-Length: \(contentLength)\r\n"
            + "Connection: Upgrade\r\nSec-Websocket-Key: \(key)\r\nUpgrade: websocket\r\n\r\n"
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        guard var pending = response else {
            context.fireChannelRead(data)
            return
        }
        var incoming = unwrapInboundIn(data)
        response = nil  // keep the gathered bytes uniquely referenced while appending
        pending.writeBuffer(&incoming)
        if pending.readableBytes >= 5, !pending.readableBytesView.starts(with: "HTTP/".utf8) {
            return fail(context: context, error: .notHTTPResponse(SimpleObfsError.head(pending)))
        }
        guard let length = headEnd.find(in: pending) else {
            if pending.readableBytes > Self.responseHeaderLimit { return fail(context: context, error: .httpHeaderTooLong(pending.readableBytes)) }
            response = pending
            return
        }
        pending.moveReaderIndex(forwardBy: length)
        if pending.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(pending)) }
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event, response != nil, !failed {
            return fail(context: context, error: .closedBeforeResponse)
        }
        context.fireUserInboundEventTriggered(event)
    }

    package func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .all { closingLocally = true }
        context.close(mode: mode, promise: promise)
    }

    /// A server that hangs up before its reply is an error; our own close is not.
    package func channelInactive(context: ChannelHandlerContext) {
        if response != nil, requestSent, !failed, !closingLocally {
            failed = true
            context.fireErrorCaught(SimpleObfsError.closedBeforeResponse)
        }
        context.fireChannelInactive()
    }

    private func fail(context: ChannelHandlerContext, error: SimpleObfsError) {
        failed = true
        response = nil
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }
}
