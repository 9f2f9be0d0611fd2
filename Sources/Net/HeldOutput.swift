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

    /// Fails the held writes: the flow ended before it began.
    package func dropWrites() {
        let taken = writes
        writes.removeAll()
        for (_, promise) in taken { promise?.fail(ChannelError.ioOnClosedChannel) }
    }
}
