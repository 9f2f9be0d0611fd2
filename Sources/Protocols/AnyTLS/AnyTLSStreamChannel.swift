// AnyTLSStreamChannel: one anytls stream as a NIO `Channel`, so the router, the relay and the
// UDP-over-TCP codec treat it like any TCP connection.
//
// - Loop: the session's (its connection's) loop; every call runs there.
// - Reads: the session hands data in (`received`); it waits here until the pipeline asks
//   (`read()` or autoRead), so an unread stream holds the session's reading (see AnyTLSSession).
// - Writes: each write becomes data frames in the session at once (not flushed); `flush()`
//   flushes the connection. Writability is the connection's.
// - Close: anytls has no half-close. Closing (`.output` or `.all`) sends FIN and ends the stream;
//   a FIN from the peer ends it after its data was read, without an answer; the session ending
//   ends it without FIN. A SYN-ACK with an error ends it with `AnyTLSError.remote`.
import Adapter
package import NIOCore

/// One stream. Loop-confined (the unchecked `Sendable` lets references travel to the loop).
package final class AnyTLSStreamChannel: Channel, ChannelCore, StreamChannelOptions, @unchecked Sendable {
    /// The session's loop.
    package let eventLoop: any EventLoop
    /// The stream id in the session.
    package let streamID: UInt32
    private let session: AnyTLSSession
    private let parentChannel: any Channel
    private var _pipeline: ChannelPipeline!
    private let closePromise: EventLoopPromise<Void>

    private var isOpen = true
    private var registered = false
    private var readPending = false
    private var autoRead = true
    private var allowRemoteHalfClosure = false
    private var remoteFinished_ = false
    private var wasWritable = true
    private var inbound = CircularBuffer<ByteBuffer>(initialCapacity: 4)
    /// Bytes received and not yet read by the pipeline.
    package private(set) var bufferedBytes = 0
    /// Called once when the stream ends, however it ends (the client's pool takes the session back).
    package var onClose: (() -> Void)?
    private var handshakeReported = false
    /// The server's SYN-ACK error, for the next read.
    private var pendingError: AnyTLSError?

    init(session: AnyTLSSession, id: UInt32, parent: any Channel) {
        self.session = session
        self.streamID = id
        self.parentChannel = parent
        self.eventLoop = session.eventLoop
        self.closePromise = session.eventLoop.makePromise()
        self._pipeline = ChannelPipeline(channel: self)
    }

    /// Fires registered and active once the creator set up the pipeline (and options); on the loop.
    package func activate() {
        eventLoop.preconditionInEventLoop()
        guard isOpen, !registered else { return }
        registered = true
        pipeline.syncOperations.fireChannelRegistered()
        pipeline.syncOperations.fireChannelActive()
        if autoRead { pipeline.syncOperations.read() }
    }

    // MARK: Channel

    package let allocator = ByteBufferAllocator()
    package var closeFuture: EventLoopFuture<Void> { closePromise.futureResult }
    package var pipeline: ChannelPipeline { _pipeline }
    package var localAddress: SocketAddress? { parentChannel.localAddress }
    package var remoteAddress: SocketAddress? { parentChannel.remoteAddress }
    package var parent: (any Channel)? { parentChannel }
    package var isWritable: Bool { isOpen && session.isWritable }
    package var isActive: Bool { isOpen }
    package var _channelCore: any ChannelCore { self }


    package func setOption0<Option: ChannelOption>(_ option: Option, value: Option.Value) {
        switch option {
        case is ChannelOptions.Types.AutoReadOption:
            autoRead = value as! Bool
            if autoRead && isOpen && registered { read0() }
        case is ChannelOptions.Types.AllowRemoteHalfClosureOption:
            allowRemoteHalfClosure = value as! Bool  // kept for getOption; a FIN still ends the stream
        default:
            break  // socket options mean nothing on a stream: accepted and ignored
        }
    }


    package func getOption0<Option: ChannelOption>(_ option: Option) throws -> Option.Value {
        switch option {
        case is ChannelOptions.Types.AutoReadOption: return autoRead as! Option.Value
        case is ChannelOptions.Types.AllowRemoteHalfClosureOption: return allowRemoteHalfClosure as! Option.Value
        default: throw ChannelError.operationUnsupported
        }
    }

    // MARK: ChannelCore

    package func localAddress0() throws -> SocketAddress {
        guard let address = parentChannel.localAddress else { throw ChannelError.operationUnsupported }
        return address
    }

    package func remoteAddress0() throws -> SocketAddress {
        guard let address = parentChannel.remoteAddress else { throw ChannelError.operationUnsupported }
        return address
    }

    package func register0(promise: EventLoopPromise<Void>?) { promise?.succeed(()) }
    package func registerAlreadyConfigured0(promise: EventLoopPromise<Void>?) { promise?.succeed(()) }
    package func bind0(to: SocketAddress, promise: EventLoopPromise<Void>?) { promise?.fail(ChannelError.operationUnsupported) }
    package func connect0(to: SocketAddress, promise: EventLoopPromise<Void>?) { promise?.fail(ChannelError.operationUnsupported) }

    package func write0(_ data: NIOAny, promise: EventLoopPromise<Void>?) {
        eventLoop.preconditionInEventLoop()
        guard isOpen else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        let buffer = unwrapData(data, as: ByteBuffer.self)
        guard buffer.readableBytes > 0 else {
            promise?.succeed(())
            return
        }
        session.writeData(stream: streamID, buffer, promise: promise)
    }

    package func flush0() {
        guard isOpen else { return }
        session.flush()
    }

    package func read0() {
        eventLoop.preconditionInEventLoop()
        guard isOpen else { return }
        readPending = true
        deliver()
    }

    package func close0(error: any Error, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        eventLoop.preconditionInEventLoop()
        guard isOpen else {
            promise?.fail(ChannelError.alreadyClosed)
            return
        }
        guard mode != .input else {
            promise?.fail(ChannelError.operationUnsupported)
            return
        }
        session.flush()
        session.streamClosed(streamID)
        finishClose(error: error, promise: promise)
    }

    package func triggerUserOutboundEvent0(_ event: Any, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }

    package func channelRead0(_ data: NIOAny) {}
    package func errorCaught0(error: any Error) {}

    /// True the first time only (Go's `reportOnce`: one SYN-ACK per stream).
    func takeHandshakeReport() -> Bool {
        defer { handshakeReported = true }
        return !handshakeReported
    }

    // MARK: From the session

    /// Data for this stream.
    func received(_ data: ByteBuffer) {
        guard isOpen else { return }
        inbound.append(data)
        bufferedBytes += data.readableBytes
        deliver()
    }

    /// The peer's FIN: end once what it sent before was read.
    func remoteFinished() {
        guard isOpen else { return }
        remoteFinished_ = true
        if inbound.isEmpty { finishClose(error: ChannelError.eof, promise: nil) }
    }

    /// The session ended: end now, without FIN.
    func sessionClosed() {
        guard isOpen else { return }
        finishClose(error: AnyTLSError.closedPipe, promise: nil)
    }

    /// A SYN-ACK with the server's error: FIN goes out now (Go's `closeWithError`); the pipeline
    /// hears the error at its next read, after any data before it, and then the stream ends. (The
    /// error may come before the router installed its relay, so it waits for a reader.)
    func fail(_ error: AnyTLSError) {
        guard isOpen, pendingError == nil else { return }
        pendingError = error
        remoteFinished_ = true
        session.streamClosed(streamID)
        deliver()
    }

    func parentWritabilityChanged() {
        let now = isWritable
        guard now != wasWritable, registered, isOpen else { return }
        wasWritable = now
        pipeline.syncOperations.fireChannelWritabilityChanged()
    }

    // MARK: Internals

    private func deliver() {
        guard readPending, registered, isOpen else { return }
        var delivered = false
        if !inbound.isEmpty {
            readPending = false
            delivered = true
            while let data = inbound.popFirst() {
                bufferedBytes -= data.readableBytes
                pipeline.syncOperations.fireChannelRead(NIOAny(data))
                guard isOpen else { return }
            }
            pipeline.syncOperations.fireChannelReadComplete()
            session.streamDrained()
            guard isOpen else { return }
        }
        if remoteFinished_ {
            if let error = pendingError {
                pipeline.syncOperations.fireErrorCaught(error)
                guard isOpen else { return }
            }
            finishClose(error: pendingError ?? ChannelError.eof, promise: nil)
            return
        }
        if delivered && autoRead { pipeline.syncOperations.read() }
    }

    private func finishClose(error: any Error, promise: EventLoopPromise<Void>?) {
        isOpen = false
        inbound.removeAll()
        bufferedBytes = 0
        promise?.succeed(())
        if registered {
            pipeline.syncOperations.fireChannelInactive()
            pipeline.syncOperations.fireChannelUnregistered()
        }
        let hook = onClose
        onClose = nil
        hook?()
        session.streamDrained()
        eventLoop.execute {
            self.removeHandlers(pipeline: self._pipeline)
            self.closePromise.succeed(())
        }
    }
}

