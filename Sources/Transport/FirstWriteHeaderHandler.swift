// FirstWriteHeaderHandler: puts a protocol's request header in front of the first bytes written
// (trojan's and vless's `Conn.Write`: one record with the payload), or sends it alone when nothing
// was written within `wait` (sing-box's `connectionCopyEarly`, 300 ms), or before a half-close.
package import NIOCore

/// Outbound-only handler sitting right after TLS / the transport (or the socket). Loop-confined.
package final class FirstWriteHeaderHandler: ChannelOutboundHandler, RemovableChannelHandler {
    package typealias OutboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    /// The request, until it is sent.
    private var request: ByteBuffer?
    private var timer: Scheduled<Void>?
    private let wait: TimeAmount

    /// `request` is the encoded header; it goes out alone after `wait` without a write (Go: 300 ms).
    package init(request: ByteBuffer, wait: TimeAmount = .milliseconds(300)) {
        self.request = request
        self.wait = wait
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: wait) {
            let (handler, context) = bound.value
            handler.sendRequestAlone(context)
        }
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    package func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard var request else {
            context.write(data, promise: promise)
            return
        }
        self.request = nil
        timer?.cancel()
        var payload = unwrapOutboundIn(data)
        request.writeBuffer(&payload)
        context.write(wrapOutboundOut(request), promise: promise)
    }

    package func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        // A client that only half-closes still reaches its destination, as in Go (the copy writes
        // the request with an empty payload before CloseWrite).
        if mode == .output { sendRequestAlone(context) }
        context.close(mode: mode, promise: promise)
    }

    private func sendRequestAlone(_ context: ChannelHandlerContext) {
        guard let request else { return }
        self.request = nil
        timer?.cancel()
        timer = nil
        context.writeAndFlush(wrapOutboundOut(request), promise: nil)
    }
}
