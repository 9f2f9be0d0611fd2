// Flow relay for the bench: each TCP flow our stack terminates is joined to a kernel socket, as a
// tun inbound with a direct outbound does. Everything runs on the stack's one event loop.
import NIOCore
import NIOPosix
import NetstackNIO
import Netstack
import NetstackWire

/// Joins two channels: what one reads the other writes. A side reads only while the other is
/// writable (back-pressure both ways), an EOF is passed on as a half-close after the data before it,
/// and each channel closes once both of its directions ended.
final class RelayGlue: ChannelDuplexHandler, @unchecked Sendable {
    // Invariant: touched only on the one loop both channels live on.
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var partner: RelayGlue?
    private var context: ChannelHandlerContext?
    private var readWanted = false
    private var inputEnded = false, outputEnded = false

    /// Pairs `a` and `b`; reads held while unpaired start now.
    static func join(_ a: RelayGlue, _ b: RelayGlue) {
        a.partner = b
        b.partner = a
        a.partnerWritable()
        b.partnerWritable()
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil; partner = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { partner?.context?.write(data, promise: nil) }
    func channelReadComplete(context: ChannelHandlerContext) { partner?.context?.flush() }

    func channelInactive(context: ChannelHandlerContext) {
        let partner = self.partner
        self.partner = nil
        partner?.context?.close(promise: nil)
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case ChannelEvent.inputClosed = event else { return context.fireUserInboundEventTriggered(event) }
        inputEnded = true
        partner?.partnerEnded()
        closeIfDone()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.partnerWritable() }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
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

/// Relays every incoming TCP flow to the same port on `target` (a kernel socket); UDP is refused
/// with ICMP port unreachable.
func relayFlows(of driver: NetstackDriver, to target: String) {
    driver.onIncoming = { [unowned driver] flow in
        guard flow.key.proto == .tcp else { return driver.reject(flow, .unreachable) }
        let stackSide = RelayGlue(), kernelSide = RelayGlue()
        let accepted = driver.accept(flow) { channel in
            channel.setOption(ChannelOptions.allowRemoteHalfClosure, value: true).flatMapThrowing {
                try channel.pipeline.syncOperations.addHandler(stackSide)
            }
        }
        ClientBootstrap(group: driver.eventLoop)
            .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(kernelSide) }
            }
            .connect(host: target, port: Int(flow.key.local.port))
            .whenComplete { result in
                switch result {
                case .success: RelayGlue.join(stackSide, kernelSide)
                case .failure: accepted.whenSuccess { $0.close(promise: nil) }
                }
            }
    }
}
