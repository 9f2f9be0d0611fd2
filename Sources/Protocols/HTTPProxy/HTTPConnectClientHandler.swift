// The client side of CONNECT on a freshly dialed channel to an HTTP proxy.
//
// 1. on add: write the request head, ask for a read (dialed channels come with autoRead off)
// 2. read until the response head is complete (bounded like a request head)
// 3. 200 → `result` succeeds; bytes after the head are replayed to whoever reads next, then the
//    handler leaves. Anything else fails with sing's words (`authentication required`, …)
package import Adapter
package import NIOCore

/// The CONNECT request sing's HTTP client writes, and its handler.
package final class HTTPConnectClientHandler: ChannelDuplexHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer
    package typealias OutboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    private let request: HTTPRequestHead
    private let result: EventLoopPromise<Void>
    private var buffer = ByteBuffer()
    private(set) var resume = HTTPHeadProgress()
    private var finished = false
    /// The server half-closed right after its reply: replayed after the held bytes.
    private var heldInputClosed = false

    package init(request: HTTPRequestHead, result: EventLoopPromise<Void>) {
        self.request = request
        self.result = result
    }

    /// The request head for a tunnel to `destination`, as Go's `http.Client` in sing writes it:
    /// `CONNECT host:port` (or `path`), `Host`, credentials, `Proxy-Connection: Keep-Alive`, then
    /// the configured headers. A configured `Host` that differs from the destination's name goes
    /// in the Host field; it and `path` together are refused, as sing refuses them.
    package static func request(to destination: Destination, path: String?, headers: [(String, [String])],
                                username: String?, password: String?) throws -> HTTPRequestHead {
        var host = destination.description
        var extra: [HTTPHeader] = []
        var customHost: String?
        for (name, values) in headers {
            if HTTPHeaders.same(name, "Host") { customHost = values.first; continue }
            for value in values { extra.append(HTTPHeader(name, value)) }
        }
        if let customHost, customHost != destination.domain {
            if let path, !path.isEmpty { throw AdapterError(.other, "Host header and path are not allowed at the same time") }
            host = customHost
        }
        var target = destination.description
        if let path, !path.isEmpty { target = path.hasPrefix("/") ? path : "/" + path }
        var head = HTTPRequestHead(method: "CONNECT", target: target)
        head.headers.add("Host", host)
        if let username, !username.isEmpty {
            head.headers.add("Proxy-Authorization", HTTPBasicCredentials(username: username, password: password ?? "").headerValue)
        }
        head.headers.add("Proxy-Connection", "Keep-Alive")
        head.headers.fields += extra
        return head
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        var out = context.channel.allocator.buffer(capacity: 256)
        request.write(to: &out)
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        context.read()
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        if !finished {
            finished = true
            result.fail(ChannelError.ioOnClosedChannel)
        }
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        buffer.writeBuffer(&bytes)
        guard !finished else { return }
        let head: HTTPResponseHead
        do {
            guard let parsed = try HTTPResponseHead.read(from: &buffer, resume: &resume) else {
                context.read()
                return
            }
            head = parsed
        } catch {
            fail(context: context, error: error)
            return
        }
        guard head.status == 200 else {
            fail(context: context, error: HTTPProxyError.status(head.status, reason: head.reason))
            return
        }
        finished = true
        result.succeed(())
        if buffer.readableBytes == 0 { context.pipeline.syncOperations.removeHandler(context: context, promise: nil) }
    }

    package func read(context: ChannelHandlerContext) {
        if finished, buffer.readableBytes > 0 {
            let early = buffer
            buffer = ByteBuffer()
            context.fireChannelRead(wrapInboundOut(early))
            context.fireChannelReadComplete()
            if heldInputClosed {
                heldInputClosed = false
                context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            }
            // Read before leaving: a removed context drops what it is given.
            context.read()
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        context.read()
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, event == .inputClosed else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        if !finished {
            fail(context: context, error: AdapterError(.other, "unexpected EOF"))
        } else if buffer.readableBytes > 0 {
            heldInputClosed = true
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    package func channelInactive(context: ChannelHandlerContext) {
        if !finished { fail(context: context, error: AdapterError(.other, "unexpected EOF")) }
        context.fireChannelInactive()
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard finished else { fail(context: context, error: error); return }
        context.fireErrorCaught(error)
    }

    private func fail(context: ChannelHandlerContext, error: any Error) {
        guard !finished else { return }
        finished = true
        result.fail(error)
        context.close(promise: nil)
    }
}
