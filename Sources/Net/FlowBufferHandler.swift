// FlowBufferHandler: holds a flow's early bytes until the relay is in place.
//
// Why: NIO drains a socket on EPOLLRDHUP even with autoRead off (readEOF), so a client that sends
// its bytes and a FIN before the router has dialed would lose them at the pipeline's tail. This
// handler sits last in the pipeline from accept (or connect) until `Relay.start` removes it; on
// removal it replays what it held (bytes, then end of input) into the handler after it.
package import NIOCore

/// Buffers reads and end-of-input until removed, then replays them in order. Loop-confined (the
/// unchecked `Sendable` only lets a reference travel to its loop through `submit`).
/// Bounded by what the kernel had buffered: reads only happen on EOF drain or explicit `read()`.
package final class FlowBufferHandler: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    package typealias InboundIn = ByteBuffer

    private var buffered: [NIOAny] = []
    private var bufferedBytes = 0
    private var sawInputClosed = false
    private var context: ChannelHandlerContext?
    /// The pipeline's loop, kept after removal: a flow reset before the sniffer asks (a SYN flood's
    /// spoofed clients answer our SYN-ACK with RST) tears the pipeline down first, and the sniffer
    /// must then get "ended" instead of a trap.
    private var eventLoop: (any EventLoop)?
    /// A sniffer waiting for more than `count` bytes.
    private var waiter: (count: Int, promise: EventLoopPromise<(bytes: [UInt8], ended: Bool)>, timer: Scheduled<Void>)?

    /// The channel takes only `autoRead` and `allowRemoteHalfClosure` (SwiftNIO SSH's child
    /// channels trap on any other option): the relay then leaves its read and write tuning alone.
    package let channelTakesOnlyBasicOptions: Bool

    /// `channelTakesOnlyBasicOptions`: see the property.
    package init(channelTakesOnlyBasicOptions: Bool = false) {
        self.channelTakesOnlyBasicOptions = channelTakesOnlyBasicOptions
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.eventLoop = context.eventLoop
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        completeWaiter()
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        bufferedBytes += unwrapInboundIn(data).readableBytes
        buffered.append(data)
        if let waiter, bufferedBytes > waiter.count { completeWaiter() }
    }

    package func channelInactive(context: ChannelHandlerContext) {
        completeWaiter()
        context.fireChannelInactive()
    }

    /// For sniffing: reads until more than `count` bytes are held, the input ends, or `timeout`
    /// passes; then returns a copy of everything held (the bytes stay here for the relay).
    /// Call on the channel's loop, one wait at a time.
    package func waitForBytes(moreThan count: Int, timeout: TimeAmount) -> EventLoopFuture<(bytes: [UInt8], ended: Bool)> {
        guard let context else { return currentFuture(on: nil) }
        if bufferedBytes > count || sawInputClosed || !context.channel.isActive { return currentFuture(on: context.eventLoop) }
        let promise = context.eventLoop.makePromise(of: (bytes: [UInt8], ended: Bool).self)
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let timer = context.eventLoop.scheduleTask(in: timeout) { bound.value.completeWaiter() }
        waiter = (count, promise, timer)
        context.read()
        return promise.futureResult
    }

    private func snapshot() -> (bytes: [UInt8], ended: Bool) {
        var out: [UInt8] = []
        out.reserveCapacity(bufferedBytes)
        for data in buffered {
            let buffer = unwrapInboundIn(data)
            out.append(contentsOf: buffer.readableBytesView)
        }
        return (out, sawInputClosed || !(context?.channel.isActive ?? false))
    }

    private func currentFuture(on loop: (any EventLoop)?) -> EventLoopFuture<(bytes: [UInt8], ended: Bool)> {
        let loop = loop ?? context?.eventLoop ?? eventLoop
        guard let loop else { preconditionFailure("FlowBufferHandler used outside a pipeline") }
        return loop.makeSucceededFuture(snapshot())
    }

    private func completeWaiter() {
        guard let waiter else { return }
        self.waiter = nil
        waiter.timer.cancel()
        waiter.promise.succeed(snapshot())
    }

    package func channelReadComplete(context: ChannelHandlerContext) {}

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            sawInputClosed = true
            completeWaiter()
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    package func removeHandler(context: ChannelHandlerContext, removalToken: ChannelHandlerContext.RemovalToken) {
        completeWaiter()
        let pending = buffered
        buffered.removeAll()
        bufferedBytes = 0
        for data in pending { context.fireChannelRead(data) }
        if !pending.isEmpty { context.fireChannelReadComplete() }
        if sawInputClosed { context.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
        context.leavePipeline(removalToken: removalToken)
    }
}
