// FlowBufferHandler: holds a flow's early bytes until the relay is in place.
//
// Why: NIO drains a socket on EPOLLRDHUP even with autoRead off (readEOF), so a client that sends
// its bytes and a FIN before the router has dialed would lose them at the pipeline's tail. This
// handler sits last in the pipeline from accept (or connect) until `Relay.start` removes it; on
// removal it replays what it held (bytes, then end of input) into the handler after it.
package import NIOCore

/// Buffers reads and end-of-input until removed, then replays them in order. Loop-confined.
/// Bounded by what the kernel had buffered: reads only happen on EOF drain or explicit `read()`.
package final class FlowBufferHandler: ChannelInboundHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer

    private var buffered: [NIOAny] = []
    private var sawInputClosed = false

    package init() {}

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        buffered.append(data)
    }

    package func channelReadComplete(context: ChannelHandlerContext) {}

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            sawInputClosed = true
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    package func removeHandler(context: ChannelHandlerContext, removalToken: ChannelHandlerContext.RemovalToken) {
        let pending = buffered
        buffered.removeAll()
        for data in pending { context.fireChannelRead(data) }
        if !pending.isEmpty { context.fireChannelReadComplete() }
        if sawInputClosed { context.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
        context.leavePipeline(removalToken: removalToken)
    }
}
