// One multiplexed stream as a NIO `Channel`, so the router relays it like any other flow: an smux or
// yamux stream (its `MuxStreamSession` is the session handler that frames it) or an h2mux stream
// (the session is `H2MuxStreamBridge` inside NIOHTTP2's child channel, whose options and half-close
// fall short of what the relay needs). The stream lives on its session channel's event loop; its
// bytes move between this channel and the session without leaving the loop.
import Adapter
package import NIOCore

/// What a stream channel needs from the session that carries it. Called on the session's loop.
package protocol MuxStreamSession: AnyObject {
    /// Frames as much of `data` as the stream's send window allows and reads it off `data`.
    func send(_ data: inout ByteBuffer, on id: UInt32)
    /// The stream's writes are over (smux FIN, yamux FIN flag).
    func finishOutput(_ id: UInt32)
    /// The channel is closed: forget the stream (and tell the peer, FIN or RST, if not yet done).
    func closeStream(_ id: UInt32, reset: Bool)
    /// The pipeline took `byteCount` bytes of the stream (yamux opens the receive window).
    func consumed(_ byteCount: Int, on id: UInt32)
    /// Pushes framed bytes to the session's channel.
    func flushFrames()
    /// The session's own stream has room (its channel's writability).
    var canWriteFrames: Bool { get }
}

/// A multiplexed stream. Loop-bound: every method runs on the session's event loop.
/// - Reads: bytes from the session queue here until the pipeline asks (`read()` or autoRead).
/// - Writes: queued; `flush()` hands them to the session as its window allows; the rest waits for
///   `windowOpened()`. Writability follows the queue against the water marks and the session's own.
/// - Close: `.output` sends the protocol's FIN after queued data; `.all` closes the stream. A peer FIN
///   surfaces as `ChannelEvent.inputClosed` with `allowRemoteHalfClosure`, else closes the channel
///   once the data is read; a peer reset or the session's end closes it with an error.
final class MuxStreamChannel: Channel, ChannelCore, StreamChannelOptions, @unchecked Sendable {
    let eventLoop: any EventLoop
    let streamID: UInt32
    private weak var session: (any MuxStreamSession)?
    private var _pipeline: ChannelPipeline!
    private let closePromise: EventLoopPromise<Void>
    private let sessionChannel: any Channel

    private var isOpen = true
    private var registered = false
    private var readPending = false
    private var autoRead = false
    private var allowRemoteHalfClosure = false
    private var maxMessagesPerRead = 4
    private var waterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 32 * 1024, high: 64 * 1024)
    private var queueWritable = true
    private var lastWritable = true
    private var inputFinished = false
    private var inputClosed = false
    private var outputClosed = false
    private var finishAfterFlush = false
    /// A close waiting for flushed bytes the send window holds back.
    private var lingerTimer: Scheduled<Void>?
    private var lingerPromise: EventLoopPromise<Void>?
    static let lingerTime = TimeAmount.seconds(5)

    private var received = CircularBuffer<ByteBuffer>(initialCapacity: 4)
    /// Bytes in `received`: what the peer sent that the pipeline has not read yet.
    private(set) var unreadByteCount = 0
    private var pending = CircularBuffer<(data: ByteBuffer, promise: EventLoopPromise<Void>?)>(initialCapacity: 8)
    private var flushedCount = 0
    /// Bytes written and not yet handed to the session (its window is closed, or not flushed yet).
    private(set) var pendingBytes = 0

    /// A stream of `session` on `parent` (the session's channel). autoRead starts off: whoever takes
    /// the stream asks for its bytes.
    init(session: any MuxStreamSession, id: UInt32, parent: any Channel) {
        self.session = session
        self.streamID = id
        self.eventLoop = parent.eventLoop
        self.sessionChannel = parent
        self.closePromise = parent.eventLoop.makePromise()
        self._pipeline = ChannelPipeline(channel: self)
    }

    /// Registers and activates the channel (no handlers yet). On the loop.
    func activate() {
        registered = true
        pipeline.syncOperations.fireChannelRegistered()
        pipeline.syncOperations.fireChannelActive()
    }

    // MARK: Channel

    let allocator = ByteBufferAllocator()
    var closeFuture: EventLoopFuture<Void> { closePromise.futureResult }
    var pipeline: ChannelPipeline { _pipeline }
    var localAddress: SocketAddress? { sessionChannel.localAddress }
    var remoteAddress: SocketAddress? { sessionChannel.remoteAddress }
    var parent: (any Channel)? { sessionChannel }
    var isWritable: Bool { queueWritable && (session?.canWriteFrames ?? false) }
    var isActive: Bool { isOpen }
    var _channelCore: any ChannelCore { self }


    func setOption0<Option: ChannelOption>(_ option: Option, value: Option.Value) {
        switch option {
        case is ChannelOptions.Types.AutoReadOption:
            autoRead = value as? Bool ?? autoRead
            if autoRead && isActive { read0() }
        case is ChannelOptions.Types.AllowRemoteHalfClosureOption:
            allowRemoteHalfClosure = value as? Bool ?? allowRemoteHalfClosure
        case is ChannelOptions.Types.MaxMessagesPerReadOption:
            maxMessagesPerRead = max(1, Int(value as? UInt ?? 4))
        case is ChannelOptions.Types.WriteBufferWaterMarkOption:
            if let mark = value as? ChannelOptions.Types.WriteBufferWaterMark { waterMark = mark }
            updateWritability()
        default:
            break  // socket options have no meaning on a stream: accepted and ignored
        }
    }


    func getOption0<Option: ChannelOption>(_ option: Option) throws -> Option.Value {
        let value: Any
        switch option {
        case is ChannelOptions.Types.AutoReadOption: value = autoRead
        case is ChannelOptions.Types.AllowRemoteHalfClosureOption: value = allowRemoteHalfClosure
        case is ChannelOptions.Types.MaxMessagesPerReadOption: value = UInt(maxMessagesPerRead)
        case is ChannelOptions.Types.WriteBufferWaterMarkOption: value = waterMark
        default: throw ChannelError.operationUnsupported
        }
        guard let typed = value as? Option.Value else { throw ChannelError.operationUnsupported }
        return typed
    }

    // MARK: ChannelCore

    func localAddress0() throws -> SocketAddress {
        guard let address = sessionChannel.localAddress else { throw ChannelError.operationUnsupported }
        return address
    }
    func remoteAddress0() throws -> SocketAddress {
        guard let address = sessionChannel.remoteAddress else { throw ChannelError.operationUnsupported }
        return address
    }
    func register0(promise: EventLoopPromise<Void>?) { promise?.succeed(()) }
    func registerAlreadyConfigured0(promise: EventLoopPromise<Void>?) { promise?.succeed(()) }
    func bind0(to: SocketAddress, promise: EventLoopPromise<Void>?) { promise?.fail(ChannelError.operationUnsupported) }
    func connect0(to: SocketAddress, promise: EventLoopPromise<Void>?) { promise?.fail(ChannelError.operationUnsupported) }

    func write0(_ data: NIOAny, promise: EventLoopPromise<Void>?) {
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

    func flush0() {
        eventLoop.preconditionInEventLoop()
        guard isOpen else { return }
        flushedCount = pending.count
        writeFlushed()
    }

    /// Hands flushed writes to the session as far as its window takes them.
    private func writeFlushed() {
        guard let session else { return }
        var sent = false
        while flushedCount > 0, var head = pending.first {
            let before = head.data.readableBytes
            session.send(&head.data, on: streamID)
            let taken = before - head.data.readableBytes
            pendingBytes -= taken
            if taken > 0 { sent = true }
            if head.data.readableBytes > 0 {
                pending[pending.startIndex].data = head.data
                break  // window closed: wait for `windowOpened`
            }
            pending.removeFirst()
            flushedCount -= 1
            head.promise?.succeed(())
        }
        if finishAfterFlush && pending.isEmpty {
            finishAfterFlush = false
            session.finishOutput(streamID)
            sent = true
        }
        if sent { session.flushFrames() }
        if lingerTimer != nil && pending.isEmpty {
            completeClose(promise: nil)
            return
        }
        updateWritability()
    }

    private func updateWritability() {
        if queueWritable && pendingBytes > waterMark.high {
            queueWritable = false
        } else if !queueWritable && pendingBytes < waterMark.low {
            queueWritable = true
        }
        sessionWritabilityChanged()
    }

    func read0() {
        eventLoop.preconditionInEventLoop()
        guard isOpen else { return }
        readPending = true
        deliverReads()
    }

    /// Delivers up to `maxMessagesPerRead` chunks if the pipeline asked for a read.
    private func deliverReads() {
        guard readPending, isOpen, registered else { return }
        var delivered = 0
        var byteCount = 0
        while delivered < maxMessagesPerRead, let chunk = received.popFirst() {
            delivered += 1
            byteCount += chunk.readableBytes
            unreadByteCount -= chunk.readableBytes
            pipeline.syncOperations.fireChannelRead(NIOAny(chunk))
        }
        if delivered > 0 {
            readPending = false
            session?.consumed(byteCount, on: streamID)
            pipeline.syncOperations.fireChannelReadComplete()
        }
        if isOpen && inputFinished && !inputClosed && received.isEmpty {
            peerFinished()
        } else if delivered > 0 && autoRead && isOpen {
            pipeline.syncOperations.read()
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

    func close0(error: any Error, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        eventLoop.preconditionInEventLoop()
        guard isOpen else {
            promise?.fail(ChannelError.alreadyClosed)
            return
        }
        switch mode {
        case .output:
            guard !outputClosed else { promise?.fail(ChannelError.outputClosed); return }
            outputClosed = true
            if pending.isEmpty {
                session?.finishOutput(streamID)
                session?.flushFrames()
            } else {
                finishAfterFlush = true
            }
            promise?.succeed(())
            pipeline.syncOperations.fireUserInboundEventTriggered(ChannelEvent.outputClosed)
        case .input:
            promise?.fail(ChannelError.operationUnsupported)
        case .all:
            guard lingerTimer == nil else {
                promise?.fail(ChannelError.alreadyClosed)
                return
            }
            // Flushed bytes the send window still holds go out first, then the FIN, as a socket's
            // close keeps its send buffer (the relay closes right after a half-close); for at most
            // `lingerTime`, Go's yamux StreamCloseTimeout. Unflushed writes are dropped.
            if flushedCount > 0, session != nil {
                while pending.count > flushedCount, let (_, p) = pending.popLast() { p?.fail(ChannelError.ioOnClosedChannel) }
                finishAfterFlush = true
                outputClosed = true
                dropReceived()
                lingerPromise = promise
                lingerTimer = eventLoop.scheduleTask(in: Self.lingerTime) { [self] in completeClose(promise: nil) }
                return
            }
            completeClose(promise: promise)
        }
    }

    /// The close after the linger: the stream leaves the session, the channel closes.
    private func completeClose(promise: EventLoopPromise<Void>?) {
        guard isOpen else { return }
        lingerTimer?.cancel()
        let promises = [promise, lingerPromise]
        lingerPromise = nil
        session?.closeStream(streamID, reset: false)
        session?.flushFrames()
        finishClose(promise: nil)
        for promise in promises { promise?.succeed(()) }
    }

    /// Unread bytes are dropped and count as taken: the session's receive budget must not keep them.
    private func dropReceived() {
        let unread = unreadByteCount
        unreadByteCount = 0
        received.removeAll()
        if unread > 0 { session?.consumed(unread, on: streamID) }
    }

    func triggerUserOutboundEvent0(_ event: Any, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }

    func channelRead0(_ data: NIOAny) {}
    func errorCaught0(error: any Error) {}

    /// Fails queued writes, fires inactive/unregistered, completes the close future.
    private func finishClose(promise: EventLoopPromise<Void>?) {
        isOpen = false
        lingerTimer?.cancel()
        lingerPromise?.succeed(())
        lingerPromise = nil
        while let (_, p) = pending.popFirst() { p?.fail(ChannelError.ioOnClosedChannel) }
        flushedCount = 0
        pendingBytes = 0
        dropReceived()
        promise?.succeed(())
        if registered {
            pipeline.syncOperations.fireChannelInactive()
            pipeline.syncOperations.fireChannelUnregistered()
        }
        eventLoop.execute {
            self.removeHandlers(pipeline: self._pipeline)
            self.closePromise.succeed(())
        }
    }

    // MARK: From the session

    /// Bytes the peer sent on this stream.
    func receive(_ data: ByteBuffer) {
        guard isOpen, !inputFinished else { return }
        guard lingerTimer == nil else {
            session?.consumed(data.readableBytes, on: streamID)  // closing: dropped, window reopened
            return
        }
        received.append(data)
        unreadByteCount += data.readableBytes
        deliverReads()
    }

    /// The peer's FIN: no more bytes will come.
    func receiveFinish() {
        guard isOpen, !inputFinished else { return }
        inputFinished = true
        deliverReads()
    }

    /// The peer reset the stream or the session ended: close with `error` (nil: a plain EOF).
    func terminate(_ error: (any Error)?) {
        guard isOpen else { return }
        if let error, registered { pipeline.syncOperations.fireErrorCaught(error) }
        finishClose(promise: nil)
    }

    /// The send window grew: continue flushed writes.
    func windowOpened() {
        guard isOpen else { return }
        writeFlushed()
    }

    /// The session channel's writability or our queue changed: tell the pipeline if ours did.
    func sessionWritabilityChanged() {
        let now = isWritable
        guard now != lastWritable else { return }
        lastWritable = now
        if registered && isOpen { pipeline.syncOperations.fireChannelWritabilityChanged() }
    }
}


/// A stream channel for a session framed outside this module (vmess's mux.cool TCP sessions): the
/// `Channel` for the router and the session's handle on it. The stream holds its session weakly.
/// Loop-bound like the channel.
package struct MuxStreamHandle {
    private let stream: MuxStreamChannel

    /// A registered, active stream of `session` on `parent`, autoRead off.
    package init(session: any MuxStreamSession, id: UInt32, parent: any Channel) {
        stream = MuxStreamChannel(session: session, id: id, parent: parent)
        stream.activate()
    }

    package var channel: any Channel { stream }
    /// Bytes the peer sent that the pipeline has not read yet.
    package var unreadByteCount: Int { stream.unreadByteCount }
    package func receive(_ data: ByteBuffer) { stream.receive(data) }
    package func receiveFinish() { stream.receiveFinish() }
    package func terminate(_ error: (any Error)?) { stream.terminate(error) }
    package func sessionWritabilityChanged() { stream.sessionWritabilityChanged() }
}
