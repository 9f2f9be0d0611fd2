// The outbound's TCP codec: first in the dialed server channel's pipeline, it turns the relay's
// plaintext into the method's stream and the server's stream back into plaintext.
//
// 1. First write: the request header goes out with that payload (Go's early conn). If the client
//    has sent nothing within `earlyPayloadTimeout` (Go's `C.ReadPayloadTimeout`), or half-closes
//    first, the header goes out alone (SIP022 pads it), so server-first protocols work.
// 2. Reads: the server's salt and (SIP022) response header are checked, then chunks are opened and
//    their payloads passed on. A bad tag, header or timestamp fails the channel with the error.
package import NIOCore

/// Client-side shadowsocks stream codec; loop-confined.
package final class ShadowsocksClientHandler: ChannelDuplexHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer
    package typealias OutboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    /// How long the header waits for a first payload (sing-box `C.ReadPayloadTimeout`).
    package static let earlyPayloadTimeout = TimeAmount.milliseconds(300)

    private var session: ShadowsocksClientSession
    private var timer: Scheduled<Void>?
    private var payloads: [ByteBuffer] = []
    private var failed = false

    /// Wraps a session that has not sent its request yet.
    package init(session: ShadowsocksClientSession) {
        self.session = session
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: Self.earlyPayloadTimeout) {
            let (handler, context) = bound.value
            handler.sendRequestAlone(context: context)
        }
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    private func sendRequestAlone(context: ChannelHandlerContext) {
        timer = nil
        guard !session.requestSent, !failed, context.channel.isActive else { return }
        context.writeAndFlush(wrapOutboundOut(session.request(payload: ByteBuffer())), promise: nil)
    }

    package func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let payload = unwrapOutboundIn(data)
        // An empty write is a marker (the relay's "everything before me is written"): pass it on.
        guard payload.readableBytes > 0 else {
            context.write(data, promise: promise)
            return
        }
        if !session.requestSent {
            timer?.cancel()
            timer = nil
            context.write(wrapOutboundOut(session.request(payload: payload)), promise: promise)
        } else {
            context.write(wrapOutboundOut(session.seal(payload)), promise: promise)
        }
    }

    package func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .output, !session.requestSent, !failed {
            // Go writes the header even for an empty upload before CloseWrite.
            timer?.cancel()
            timer = nil
            context.write(wrapOutboundOut(session.request(payload: ByteBuffer())), promise: nil)
            context.flush()
        }
        context.close(mode: mode, promise: promise)
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        do {
            try session.receive(unwrapInboundIn(data), into: &payloads)
        } catch {
            fail(context: context, error: error)
            return
        }
        for payload in payloads { context.fireChannelRead(wrapInboundOut(payload)) }
        payloads.removeAll(keepingCapacity: true)
    }

    private func fail(context: ChannelHandlerContext, error: ShadowsocksError) {
        failed = true
        payloads.removeAll()
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }
}
