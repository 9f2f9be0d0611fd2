// Relay: splices two channels both ways.
//
// 1. `Relay.start` puts one `RelayHandler` at the tail of each pipeline and links them.
// 2. A read on one side is written (not flushed) to the other; `channelReadComplete` flushes once
//    per read batch.
// 3. Back-pressure: a side holds its `read()` while its partner's channel is unwritable and
//    re-issues it when the partner drains (`channelWritabilityChanged`).
// 4. Half-close: end of input on one side shuts the partner's output (FIN forwarded); once both
//    inputs ended, or either side fails or closes, both channels close.
// 5. Idle timeout: one timer per relay, re-armed from the last read; no timer work per chunk.
// 6. Counting for the Clash API: with a `TrackedFlow`, each read adds its size to the flow's atomic
//    counters (upload: client reads, download: remote reads); without one, nothing.
package import Adapter
package import NIOCore

/// Bytes moved by a relay: `upload` from the first channel to the second, `download` back.
package struct RelayStatistics: Sendable, Equatable {
    package var upload: UInt64
    package var download: UInt64
    package init(upload: UInt64 = 0, download: UInt64 = 0) {
        self.upload = upload
        self.download = download
    }
}

/// Why a relay ended, for the router's closing log line.
package enum RelayEnd: Sendable, Equatable {
    /// Both sides finished (FIN both ways) or one side closed cleanly.
    case closed
    /// No bytes in either direction for the idle timeout.
    case idleTimeout
    /// A side reported an error; the text is for logs.
    case error(String)
}

/// Splices two TCP-like channels. Both must be registered on the same event loop; call from
/// that loop or any other (the install hops to the loop).
package enum Relay {
    /// Joins `client` and `remote`. The returned future completes (on their loop) once both channels
    /// are closed, with the byte counts and why it ended. The relay owns both channels from here.
    /// `autoRead` is turned on for both; half-closure is enabled where the channel supports it.
    /// `counter` (the Clash API's flow) is told every read's size.
    package static func start(client: any Channel, remote: any Channel, idleTimeout: TimeAmount? = nil,
                              counter: TrackedFlow? = nil) -> EventLoopFuture<(RelayStatistics, RelayEnd)> {
        let loop = client.eventLoop
        precondition(loop === remote.eventLoop, "Relay joins channels on one event loop")
        if loop.inEventLoop {
            return install(client: client, remote: remote, idleTimeout: idleTimeout, counter: counter)
        }
        return loop.flatSubmit { install(client: client, remote: remote, idleTimeout: idleTimeout, counter: counter) }
    }

    private static func install(client: any Channel, remote: any Channel, idleTimeout: TimeAmount?,
                                counter: TrackedFlow?) -> EventLoopFuture<(RelayStatistics, RelayEnd)> {
        let loop = client.eventLoop
        let state = RelayState(loop: loop, idleTimeout: idleTimeout, counter: counter)
        let clientHandler = RelayHandler(state: state, isClient: true)
        let remoteHandler = RelayHandler(state: state, isClient: false)
        clientHandler.partner = remoteHandler
        remoteHandler.partner = clientHandler
        state.handlers = (clientHandler, remoteHandler)
        do {
            try client.pipeline.syncOperations.addHandler(clientHandler)
            try remote.pipeline.syncOperations.addHandler(remoteHandler)
        } catch {
            client.close(promise: nil)
            remote.close(promise: nil)
            return loop.makeFailedFuture(error)
        }
        for channel in [client, remote] {
            // Early bytes held since accept/connect flow into the relay now.
            var basicOptionsOnly = false
            if let buffer = try? channel.pipeline.syncOperations.handler(type: FlowBufferHandler.self) {
                basicOptionsOnly = buffer.channelTakesOnlyBasicOptions
                channel.pipeline.syncOperations.removeHandler(buffer, promise: nil)
            }
            // Not every channel type knows the option (test channels); those close fully on end of
            // input instead of half-closing.
            setOptionNow(channel, ChannelOptions.allowRemoteHalfClosure, value: true)
            if !basicOptionsOnly {
                // Bulk relaying: reads of up to 256 KiB and a write queue above one read, so a full
                // read does not flip the partner to unwritable and stall reading every time (NIO's
                // defaults, 64 KiB reads against a 64 KiB high-water mark, did that on every chunk).
                setOptionNow(channel, ChannelOptions.recvAllocator,
                             value: AdaptiveRecvByteBufferAllocator(minimum: 2048, initial: 65_536, maximum: relayMaximumRead))
                setOptionNow(channel, ChannelOptions.writeBufferWaterMark,
                             value: .init(low: relayMaximumRead / 2, high: 2 * relayMaximumRead))
            }
            setOptionNow(channel, ChannelOptions.autoRead, value: true)
            channel.read()
        }
        state.armIdleTimer()
        // A side that closed before (or while) we were installed never fires channelInactive for
        // us; its close future always completes. (A side not yet active is fine: reading starts
        // when it becomes active, since autoRead is on.)
        for (channel, handler) in [(client, clientHandler), (remote, remoteHandler)] {
            let bound = NIOLoopBound(handler, eventLoop: loop)
            channel.closeFuture.whenComplete { _ in bound.value.markClosed() }
        }
        return state.done.futureResult
    }
}

/// The largest single read a relay side makes (bytes).
let relayMaximumRead = 1 << 18

/// Shared state of one relay; touched only on its loop (hence the unchecked conformance).
final class RelayState: @unchecked Sendable {
    let loop: any EventLoop
    let idleTimeout: TimeAmount?
    let counter: TrackedFlow?
    var handlers: (client: RelayHandler, remote: RelayHandler)?
    let done: EventLoopPromise<(RelayStatistics, RelayEnd)>
    var statistics = RelayStatistics()
    var end: RelayEnd?
    var lastActivity: NIODeadline = .now()
    var idleTimer: Scheduled<Void>?
    var closedChannels = 0

    init(loop: any EventLoop, idleTimeout: TimeAmount?, counter: TrackedFlow?) {
        self.loop = loop
        self.idleTimeout = idleTimeout
        self.counter = counter
        self.done = loop.makePromise()
    }

    func armIdleTimer() {
        guard let idleTimeout, end == nil else { return }
        idleTimer = loop.scheduleTask(deadline: lastActivity + idleTimeout) { [self] in
            guard end == nil else { return }
            if NIODeadline.now() >= lastActivity + idleTimeout {
                finish(.idleTimeout)
            } else {
                armIdleTimer()
            }
        }
    }

    /// Closes both sides once; the promise completes when both channels report inactive.
    func finish(_ reason: RelayEnd) {
        guard end == nil else { return }
        end = reason
        idleTimer?.cancel()
        idleTimer = nil
        guard let handlers else { return }
        // A clean end keeps bytes already forwarded: close each side after its queued writes.
        let graceful = reason == .closed
        handlers.client.closeChannel(afterPendingWrites: graceful)
        handlers.remote.closeChannel(afterPendingWrites: graceful)
    }

    func channelClosed() {
        closedChannels += 1
        if end == nil { finish(.closed) }
        if closedChannels == 2 {
            let handlers = self.handlers
            self.handlers = nil
            handlers?.client.partner = nil
            handlers?.remote.partner = nil
            done.succeed((statistics, end ?? .closed))
        }
    }
}

/// One side of a relay, last in its channel's pipeline.
final class RelayHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let state: RelayState
    let isClient: Bool
    var partner: RelayHandler?
    var context: ChannelHandlerContext?
    /// A `read()` we held back because the partner could not take more.
    var pendingRead = false
    var inputEnded = false
    var outputShut = false
    var isClosed = false

    init(state: RelayState, isClient: Bool) {
        self.state = state
        self.isClient = isClient
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: Data

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        let count = UInt64(buffer.readableBytes)
        if isClient { state.statistics.upload &+= count } else { state.statistics.download &+= count }
        if let counter = state.counter {
            if isClient { counter.countUpload(Int(count)) } else { counter.countDownload(Int(count)) }
        }
        if state.idleTimeout != nil { state.lastActivity = .now() }
        partner?.writeFromPartner(buffer)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.context?.flush()
    }

    private func writeFromPartner(_ buffer: ByteBuffer) {
        guard let context, !outputShut else { return }
        context.write(wrapOutboundOut(buffer), promise: nil)
    }

    // MARK: Back-pressure

    func read(context: ChannelHandlerContext) {
        if let partnerContext = partner?.context, !partnerContext.channel.isWritable {
            pendingRead = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.resumeRead() }
        context.fireChannelWritabilityChanged()
    }

    private func resumeRead() {
        guard pendingRead, let context else { return }
        pendingRead = false
        context.read()
    }

    // MARK: Close

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            inputEnded = true
            // Forward the FIN: shut the partner's write side after what is queued there.
            partner?.shutOutput()
            if partner?.inputEnded ?? true { state.finish(.closed) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func shutOutput() {
        guard let context, !outputShut else { return }
        outputShut = true
        context.flush()
        context.close(mode: .output).whenFailure { [state] _ in
            // The channel cannot half-close: end the whole relay instead.
            state.finish(.closed)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        markClosed()
        context.fireChannelInactive()
    }

    func markClosed() {
        guard !isClosed else { return }
        isClosed = true
        state.channelClosed()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        state.finish(.error("\(error)"))
    }

    func closeChannel(afterPendingWrites: Bool) {
        guard let context, !isClosed else { return }
        guard afterPendingWrites, !outputShut else {
            context.close(promise: nil)
            return
        }
        // Writes complete in order: once this empty write is done, everything before it is too.
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(ByteBuffer())).whenComplete { _ in
            channel.close(promise: nil)
        }
    }
}

/// Sets an option on the loop right away: through `syncOptions` where the channel has them (kernel
/// sockets), else through `setOption`, which a netstack flow channel applies at once on its loop (it
/// has no `syncOptions`; without this its autoRead stayed off and a tun flow stalled after one read).
private func setOptionNow<Option: ChannelOption>(_ channel: any Channel, _ option: Option, value: Option.Value) {
    if let sync = channel.syncOptions {
        _ = try? sync.setOption(option, value: value)
    } else {
        channel.setOption(option, value: value).whenFailure { _ in }
    }
}
