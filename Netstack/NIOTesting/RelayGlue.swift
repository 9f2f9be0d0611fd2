// RelayGlue: joins two NIO channels on one loop, for tests and benches that relay netstack flows to
// kernel sockets without the engine's Net.Relay (NetstackTests' kernel-peer tests, netstack-bench).
package import NIOCore

/// Joins two channels: what one reads the other writes. A side reads only while the other is
/// writable (back-pressure both ways), an EOF is passed on as a half-close after the data before it,
/// and each channel closes once both of its directions ended.
package final class RelayGlue: ChannelDuplexHandler, @unchecked Sendable {
    // Invariant: touched only on the one loop both channels live on.
    package typealias InboundIn = ByteBuffer
    package typealias OutboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer
    private var partner: RelayGlue?
    private var context: ChannelHandlerContext?
    private var readWanted = false
    private var inputEnded = false, outputEnded = false

    /// An unpaired side; `join` pairs it once both channels exist.
    package init() {}

    /// Pairs `a` and `b`; reads held while unpaired start now.
    package static func join(_ a: RelayGlue, _ b: RelayGlue) {
        a.partner = b
        b.partner = a
        a.partnerWritable()
        b.partnerWritable()
    }

    package func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    package func handlerRemoved(context: ChannelHandlerContext) { self.context = nil; partner = nil }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) { partner?.context?.write(data, promise: nil) }
    package func channelReadComplete(context: ChannelHandlerContext) { partner?.context?.flush() }

    package func channelInactive(context: ChannelHandlerContext) {
        let partner = self.partner
        self.partner = nil
        partner?.context?.close(promise: nil)
        context.fireChannelInactive()
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case ChannelEvent.inputClosed = event else { return context.fireUserInboundEventTriggered(event) }
        inputEnded = true
        partner?.partnerEnded()
        closeIfDone()
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }

    package func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.partnerWritable() }
        context.fireChannelWritabilityChanged()
    }

    package func read(context: ChannelHandlerContext) {
        if let partner, partner.context?.channel.isWritable ?? false { context.read() } else { readWanted = true }
    }

    private func partnerWritable() {
        guard readWanted, let context else { return }
        readWanted = false
        context.read()
    }

    /// The partner's input ended: shut our output once what came before is written (NIO turns an
    /// output close after an input EOF into a full close that fails queued writes; an empty write's
    /// promise completes only after every earlier write).
    private func partnerEnded() {
        guard let context else { return }
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(NIOAny(ByteBuffer()), promise: written)
        written.futureResult.assumeIsolated().whenComplete { _ in
            self.outputEnded = true
            self.context?.close(mode: .output, promise: nil)
            self.closeIfDone()
        }
    }

    private func closeIfDone() {
        if inputEnded && outputEnded { context?.close(promise: nil) }
    }
}
