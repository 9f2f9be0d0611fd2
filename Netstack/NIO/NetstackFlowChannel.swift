package import NIOCore
import NetstackWire
package import Netstack

/// Closes a flow channel with a RST (TCP) instead of a FIN: `channel.triggerUserOutboundEvent(NetstackAbort())`.
package struct NetstackAbort: Sendable {
    package init() {}
}

/// A netstack flow as a NIO `Channel`: a TCP flow reads and writes `ByteBuffer` streams; a UDP flow
/// reads and writes one `ByteBuffer` per datagram (the flow's peer is fixed).
///
/// Loop-bound: every method runs on the driver's event loop.
/// - Reads: `read()` (or autoRead) pulls up to `maxMessagesPerRead` chunks from the stack; until the
///   pipeline asks, TCP data stays in the connection and its window closes (back-pressure).
/// - Writes: queued in the channel; `flush()` moves them into the TCP send buffer as it has room
///   (a write's promise succeeds when the stack has taken all of it); the rest waits for `.writable`.
///   Writability follows the queued bytes against the write-buffer water marks.
/// - Close: `.output` half-closes (FIN after queued data); `.all` closes gracefully (unread data is
///   dropped, a FIN follows); `NetstackAbort` resets. A peer FIN surfaces as `ChannelEvent.inputClosed`
///   with `allowRemoteHalfClosure`, else closes the channel once the data is read.
package final class NetstackFlowChannel: Channel, ChannelCore, @unchecked Sendable {
    package let eventLoop: any EventLoop
    package let id: FlowID
    package let key: FlowKey
    unowned let driver: NetstackDriver
    private var _pipeline: ChannelPipeline!
    private let closePromise: EventLoopPromise<Void>
    var connectPromise: EventLoopPromise<any Channel>?

    private var isOpen = true
    private var active: Bool
    private var registered = false
    private var readPending = false
    private var autoRead = true
    private var allowRemoteHalfClosure = false
    /// Chunks (up to 64 KiB of TCP data, or one datagram) per read cycle. NIO's sockets read 4, but a
    /// flow's data is already here, lent without a copy: 16 lets a relay write one TUN batch to its
    /// partner in one writev and sends one window update for it (a single-stream upload through
    /// bench/netstack.sh's relay, alternating 5 s runs: 11.9 -> 12.6 Gbit/s median over 10 pairs).
    private var maxMessagesPerRead = 16
    private var waterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 32 * 1024, high: 64 * 1024)
    private var writable = true
    private var inputClosed = false
    private var outputClosed = false
    private var shutdownAfterFlush = false

    private var pending = CircularBuffer<(data: ByteBuffer, promise: EventLoopPromise<Void>?)>(initialCapacity: 8)
    private var flushedCount = 0
    private var pendingBytes = 0

    init(driver: NetstackDriver, id: FlowID, key: FlowKey, active: Bool) {
        self.driver = driver
        self.eventLoop = driver.eventLoop
        self.id = id
        self.key = key
        self.active = active
        self.closePromise = driver.eventLoop.makePromise()
        self._pipeline = ChannelPipeline(channel: self)
    }

    private var isTCP: Bool { key.proto == .tcp }
    private var stack: Stack { driver.stack }

    /// Runs the initializer, registers, and (if already active) fires channelActive.
    func register(initializer: @escaping (any Channel) -> EventLoopFuture<Void>) -> EventLoopFuture<any Channel> {
        initializer(self).flatMap { () -> EventLoopFuture<any Channel> in
            self.registered = true
            self.pipeline.syncOperations.fireChannelRegistered()
            if self.active {
                self.pipeline.syncOperations.fireChannelActive()
                if self.autoRead { self.pipeline.syncOperations.read() }
            }
            return self.eventLoop.makeSucceededFuture(self)
        }.flatMapError { error in
            self.close0(error: error, mode: .all, promise: nil)
            return self.eventLoop.makeFailedFuture(error)
        }
    }

    // MARK: Channel

    package let allocator = ByteBufferAllocator()
    package var closeFuture: EventLoopFuture<Void> { closePromise.futureResult }
    package var pipeline: ChannelPipeline { _pipeline }
    package var localAddress: SocketAddress? { try? NetstackFlowChannel.socketAddress(key.local) }
    package var remoteAddress: SocketAddress? { try? NetstackFlowChannel.socketAddress(key.remote) }
    package var parent: (any Channel)? { nil }
    package var isWritable: Bool { writable }
    package var isActive: Bool { active && isOpen }
    package var _channelCore: any ChannelCore { self }
    /// Synchronous options on the loop (Net's `Relay` turns autoRead and half-closure on through them;
    /// with nil here a relayed netstack flow stalled after its first read — added for issue #7).
    package var syncOptions: (any NIOSynchronousChannelOptions)? { SynchronousOptions(channel: self) }

    static func socketAddress(_ endpoint: Endpoint) throws -> SocketAddress {
        try SocketAddress(ipAddress: endpoint.address.description, port: Int(endpoint.port))
    }

    package func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) -> EventLoopFuture<Void> {
        if eventLoop.inEventLoop {
            setOption0(option, value: value)
            return eventLoop.makeSucceededVoidFuture()
        }
        return eventLoop.submit { self.setOption0(option, value: value) }
    }

    fileprivate func setOption0<Option: ChannelOption>(_ option: Option, value: Option.Value) {
        switch option {
        case is ChannelOptions.Types.AutoReadOption:
            autoRead = value as! Bool
            if autoRead && isActive { read0() }
        case is ChannelOptions.Types.AllowRemoteHalfClosureOption:
            allowRemoteHalfClosure = value as! Bool
        case is ChannelOptions.Types.MaxMessagesPerReadOption:
            maxMessagesPerRead = max(1, Int(value as! UInt))
        case is ChannelOptions.Types.WriteBufferWaterMarkOption:
            waterMark = value as! ChannelOptions.Types.WriteBufferWaterMark
            updateWritability()
        default:
            break  // socket options (TCP_NODELAY, buffers) have no meaning here: accepted and ignored
        }
    }

    package func getOption<Option: ChannelOption>(_ option: Option) -> EventLoopFuture<Option.Value> {
        if eventLoop.inEventLoop {
            do { return eventLoop.makeSucceededFuture(try getOption0(option)) } catch { return eventLoop.makeFailedFuture(error) }
        }
        return eventLoop.submit { try self.getOption0(option) }
    }

    fileprivate func getOption0<Option: ChannelOption>(_ option: Option) throws -> Option.Value {
        switch option {
        case is ChannelOptions.Types.AutoReadOption: return autoRead as! Option.Value
        case is ChannelOptions.Types.AllowRemoteHalfClosureOption: return allowRemoteHalfClosure as! Option.Value
        case is ChannelOptions.Types.MaxMessagesPerReadOption: return UInt(maxMessagesPerRead) as! Option.Value
        case is ChannelOptions.Types.WriteBufferWaterMarkOption: return waterMark as! Option.Value
        default: throw ChannelError.operationUnsupported
        }
    }

    // MARK: ChannelCore

    package func localAddress0() throws -> SocketAddress { try NetstackFlowChannel.socketAddress(key.local) }
    package func remoteAddress0() throws -> SocketAddress { try NetstackFlowChannel.socketAddress(key.remote) }
    package func register0(promise: EventLoopPromise<Void>?) { promise?.succeed(()) }
    package func registerAlreadyConfigured0(promise: EventLoopPromise<Void>?) { promise?.succeed(()) }
    package func bind0(to: SocketAddress, promise: EventLoopPromise<Void>?) { promise?.fail(ChannelError.operationUnsupported) }
    package func connect0(to: SocketAddress, promise: EventLoopPromise<Void>?) { promise?.fail(ChannelError.operationUnsupported) }

    package func write0(_ data: NIOAny, promise: EventLoopPromise<Void>?) {
        eventLoop.preconditionInEventLoop()
        guard isOpen, !outputClosed else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        let buffer = unwrapData(data, as: ByteBuffer.self)
        pending.append((buffer, promise))
        pendingBytes += buffer.readableBytes
        updateWritability()
    }

    package func flush0() {
        eventLoop.preconditionInEventLoop()
        guard isOpen else { return }
        flushedCount = pending.count
        writeFlushed()
        driver.pump()
    }

    /// Moves flushed writes into the stack as far as it takes them.
    private func writeFlushed() {
        while flushedCount > 0, var head = pending.first {
            if isTCP {
                let before = head.data.readableBytes
                let taken = head.data.withUnsafeReadableBytes { (try? stack.send(bytes: $0, on: id)) ?? 0 }
                head.data.moveReaderIndex(forwardBy: taken)
                pendingBytes -= taken
                if head.data.readableBytes > 0 {
                    pending[pending.startIndex].data = head.data
                    guard taken > 0 || before == 0 else { break }  // full: wait for .writable
                    if taken == 0 { break }
                    continue
                }
            } else {
                do {
                    try head.data.withUnsafeReadableBytes { (bytes) throws(FlowError) in try stack.sendDatagram(bytes: bytes, on: id) }
                } catch {
                    pending.removeFirst()
                    flushedCount -= 1
                    pendingBytes -= head.data.readableBytes
                    head.promise?.fail(NetstackChannelError.flow(error))
                    continue
                }
                pendingBytes -= head.data.readableBytes
            }
            pending.removeFirst()
            flushedCount -= 1
            head.promise?.succeed(())
        }
        updateWritability()
        if shutdownAfterFlush && pending.isEmpty {
            shutdownAfterFlush = false
            try? stack.shutdownWrite(id)
        }
    }

    private func updateWritability() {
        if writable && pendingBytes > waterMark.high {
            writable = false
            if registered { pipeline.syncOperations.fireChannelWritabilityChanged() }
        } else if !writable && pendingBytes < waterMark.low {
            writable = true
            if registered { pipeline.syncOperations.fireChannelWritabilityChanged() }
        }
    }

    package func read0() {
        eventLoop.preconditionInEventLoop()
        guard isOpen else { return }
        readPending = true
        deliverReads()
    }

    /// Delivers up to `maxMessagesPerRead` chunks if the pipeline asked for a read.
    private func deliverReads() {
        guard readPending, isActive, registered else { return }
        var delivered = 0
        while delivered < maxMessagesPerRead {
            let next: PacketBuffer?
            if isTCP {
                next = try? stack.read(on: id, max: 64 * 1024)
            } else {
                next = try? stack.receiveDatagram(on: id)
            }
            guard let chunk = next else { break }
            let data = ByteBuffer(lending: chunk, allocator: allocator)
            delivered += 1
            pipeline.syncOperations.fireChannelRead(NIOAny(data))
        }
        if delivered > 0 {
            readPending = false
            pipeline.syncOperations.fireChannelReadComplete()
            driver.pump()  // reading opened the window: the update may go out now
            if autoRead && isOpen { pipeline.syncOperations.read() }
        }
        if isTCP && isOpen && !inputClosed && stack.readableBytes(on: id) == 0 && stack.isReadClosed(id) {
            peerFinished()
        }
    }

    private func peerFinished() {
        inputClosed = true
        if allowRemoteHalfClosure {
            pipeline.syncOperations.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        } else {
            close0(error: ChannelError.eof, mode: .all, promise: nil)
        }
    }

    package func close0(error: any Error, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        eventLoop.preconditionInEventLoop()
        guard isOpen else {
            promise?.fail(ChannelError.alreadyClosed)
            return
        }
        switch mode {
        case .output:
            guard !outputClosed else { promise?.fail(ChannelError.outputClosed); return }
            outputClosed = true
            if isTCP {
                if pending.isEmpty { try? stack.shutdownWrite(id) } else { shutdownAfterFlush = true }
            }
            promise?.succeed(())
            pipeline.syncOperations.fireUserInboundEventTriggered(ChannelEvent.outputClosed)
            driver.pump()
        case .input:
            promise?.fail(ChannelError.operationUnsupported)
        case .all:
            try? stack.close(id)
            driver.forget(id)
            finishClose(error: error, promise: promise)
            driver.pump()
        }
    }

    package func triggerUserOutboundEvent0(_ event: Any, promise: EventLoopPromise<Void>?) {
        guard event is NetstackAbort else {
            promise?.fail(ChannelError.operationUnsupported)
            return
        }
        guard isOpen else { promise?.fail(ChannelError.alreadyClosed); return }
        try? stack.close(id, abort: true)
        driver.forget(id)
        finishClose(error: ChannelError.ioOnClosedChannel, promise: promise)
        driver.pump()
    }

    package func channelRead0(_ data: NIOAny) {}
    package func errorCaught0(error: any Error) {}

    /// Fails queued writes, fires inactive/unregistered, completes the close future.
    private func finishClose(error: any Error, promise: EventLoopPromise<Void>?) {
        isOpen = false
        let wasActive = active
        active = false
        while let (_, p) = pending.popFirst() { p?.fail(ChannelError.ioOnClosedChannel) }
        flushedCount = 0
        pendingBytes = 0
        connectPromise?.fail(error)
        connectPromise = nil
        promise?.succeed(())
        if registered {
            if wasActive { pipeline.syncOperations.fireChannelInactive() }
            pipeline.syncOperations.fireChannelUnregistered()
        }
        eventLoop.execute {
            self.removeHandlers(pipeline: self._pipeline)
            self.closePromise.succeed(())
        }
    }

    // MARK: From the driver

    func stackConnected() {
        guard isOpen, !active else { return }
        active = true
        connectPromise?.succeed(self)
        connectPromise = nil
        if registered {
            pipeline.syncOperations.fireChannelActive()
            if autoRead { pipeline.syncOperations.read() }
        }
        writeFlushed()
    }

    func stackReadable() {
        deliverReads()
    }

    func stackWritable() {
        writeFlushed()
    }

    func stackClosed(_ reason: FlowCloseReason) {
        // The stack reports CLOSED only after the reader drained a normally closed flow, so nothing
        // readable is left here; a reset discards unread data as a socket would.
        guard isOpen else { return }
        let error: NetstackChannelError?
        switch reason {
        case .reset: error = .connectionReset
        case .timedOut: error = .timedOut
        case .idle: error = nil  // an idle UDP flow just ends, as sing-box's udp_timeout does
        case .unreachable: error = .unreachable
        case .finished, .local, .rejected: error = nil
        }
        if let error, registered { pipeline.syncOperations.fireErrorCaught(error) }
        finishClose(error: error ?? ChannelError.eof, promise: nil)
    }
}


extension NetstackFlowChannel {
    /// `syncOptions`: the same options as `setOption`/`getOption`, applied at once; on the loop only.
    fileprivate struct SynchronousOptions: NIOSynchronousChannelOptions {
        let channel: NetstackFlowChannel

        func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) throws {
            channel.eventLoop.preconditionInEventLoop()
            channel.setOption0(option, value: value)
        }

        func getOption<Option: ChannelOption>(_ option: Option) throws -> Option.Value {
            channel.eventLoop.preconditionInEventLoop()
            return try channel.getOption0(option)
        }
    }
}
