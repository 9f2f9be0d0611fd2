// HeldOutput: what a proxy handshake handler (SOCKS, HTTP CONNECT) holds back while the router
// dials. The relay may write before the client has its reply (a server that greets first, or one
// that answers and hangs up at once); those bytes and that close must reach the client after the
// reply, in order, or be dropped when the flow fails.
package import NIOCore

/// Writes and a close held until a handshake's reply is out. One per connection, used only on the
/// connection's event loop. A class, not a struct: releasing a close runs pipeline code that can
/// re-enter the owning handler (channelInactive), so no access may span the call.
package final class HeldOutput {
    private var writes: [(NIOAny, EventLoopPromise<Void>?)] = []
    private var close: (CloseMode, EventLoopPromise<Void>?)?

    package init() {}

    /// Whether a close is already held.
    package var holdsClose: Bool { close != nil }

    /// Holds one write until `release`.
    package func hold(_ data: NIOAny, promise: EventLoopPromise<Void>?) {
        writes.append((data, promise))
    }

    /// Holds a close until `release` or `releaseClose`.
    package func holdClose(mode: CloseMode, promise: EventLoopPromise<Void>?) {
        close = (mode, promise)
    }

    /// Performs the held close, if any.
    package func releaseClose(context: ChannelHandlerContext) {
        guard let (mode, promise) = close else { return }
        close = nil
        context.close(mode: mode, promise: promise)
    }

    /// Sends the held writes, in order, and flushes once.
    package func releaseWrites(context: ChannelHandlerContext) {
        guard !writes.isEmpty else { return }
        let taken = writes
        writes.removeAll()
        for (data, promise) in taken { context.write(data, promise: promise) }
        context.flush()
    }

    /// After the reply: the held writes, then the held close.
    package func release(context: ChannelHandlerContext) {
        releaseWrites(context: context)
        releaseClose(context: context)
    }

    /// A handler's outbound `write`: held while `holding` (the router is dialing), else passed on.
    package func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?, holding: Bool) {
        if holding {
            hold(data, promise: promise)
        } else {
            context.write(data, promise: promise)
        }
    }

    /// A handler's outbound `flush`: swallowed while `holding` (`release` flushes), else passed on.
    package func flush(context: ChannelHandlerContext, holding: Bool) {
        if !holding { context.flush() }
    }

    /// A handler's outbound `close`: while `holding`, the first close is held. The router answers in
    /// the turn it installs the relay; if nobody has answered by the next turn, the close is honoured
    /// anyway rather than leak the connection: `abandon` (run then) returns whether the handler was
    /// still waiting and, if so, marks it done; the held writes are then failed and the close made.
    package func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?, holding: Bool,
                       abandon: @escaping () -> Bool) {
        guard holding, !holdsClose else {
            context.close(mode: mode, promise: promise)
            return
        }
        holdClose(mode: mode, promise: promise)
        let bound = NIOLoopBound((self, context, abandon), eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let (held, context, abandon) = bound.value
            guard abandon() else { return }
            held.dropWrites()
            held.releaseClose(context: context)
        }
    }

    /// Fails the held writes: the flow ended before it began.
    package func dropWrites() {
        let taken = writes
        writes.removeAll()
        for (_, promise) in taken { promise?.fail(ChannelError.ioOnClosedChannel) }
    }
}
