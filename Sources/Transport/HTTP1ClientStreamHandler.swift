// The v2ray `http` transport without TLS (Go's v2rayhttp HTTPConn): HTTP/1.1 with a raw stream.
// The request head goes out with the first write (no Content-Length, no chunking: the payload
// simply follows the blank line); the first read waits for the response head, which must say 200
// (`v2ray-http: unexpected status: 404 Not Found`), and everything after it is the stream.
import Adapter
import NIOCore

/// Client side of `http` over plain TCP. Loop-confined.
final class HTTP1ClientStreamHandler: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let requestHead: String
    private var requestWritten = false
    private var responseRead = false
    private var buffered = ByteBuffer()
    /// The search for the end of the response head in `buffered`.
    private(set) var headEnd = HTTPHeadEnd()

    init(requestHead: String) {
        self.requestHead = requestHead
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !requestWritten else {
            context.write(data, promise: promise)
            return
        }
        requestWritten = true
        var payload = unwrapOutboundIn(data)
        var out = context.channel.allocator.buffer(capacity: requestHead.utf8.count + payload.readableBytes)
        out.writeString(requestHead)
        out.writeBuffer(&payload)
        context.write(wrapOutboundOut(out), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !responseRead else {
            context.fireChannelRead(data)
            return
        }
        var bytes = unwrapInboundIn(data)
        buffered.writeBuffer(&bytes)
        do {
            guard let head = try HTTPResponseHead.read(from: &buffered, headEnd: &headEnd) else {
                context.read()
                return
            }
            guard head.status == 200 else { throw AdapterError(.other, "v2ray-http: unexpected status: \(head.statusLine)") }
            responseRead = true
            if buffered.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(buffered)) }
            buffered = ByteBuffer()
        } catch {
            context.fireErrorCaught(error)
            context.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if responseRead { context.fireChannelReadComplete() }
    }
}
