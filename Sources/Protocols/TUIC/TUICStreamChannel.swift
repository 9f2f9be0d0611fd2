// TUICStreamChannel: one bidirectional QUIC stream as a NIO `Channel`, so the router and the relay
// treat a TUIC TCP flow like any connection.
//
// - Loop: the session's (its UDP socket's) loop; every call runs there.
// - Reads pull from the QUIC stream only when the pipeline asks (`read()` or autoRead): QUIC
//   returns flow-control credit (MAX_STREAM_DATA / MAX_DATA) as bytes are read, so an unread
//   stream stops its sender instead of growing a buffer here.
// - Writes go into the stream's QUIC send buffer at once; the channel is unwritable while more
//   than the high water mark is buffered and unacknowledged (the peer's flow control and our
//   congestion window hold it there), writable again below the low mark. `flush()` sends.
// - Half-close: `close(mode: .output)` is FIN after the data; the peer's FIN is
//   `ChannelEvent.inputClosed` with `allowRemoteHalfClosure`, else the channel closes once read.
//   `close()` is Go's `Close`: FIN (buffered data still goes out) and STOP_SENDING(0) when input
//   is still open. A peer's STOP_SENDING ends output only (Go sends it with its FIN on `Close`);
//   a RESET_STREAM or the connection ending closes the channel.
import Adapter
package import NIOCore
@_implementationOnly import QUIC

/// One TUIC stream. Loop-confined (the unchecked `Sendable` lets references travel to the loop).
package final class TUICStreamChannel: Channel, ChannelCore, StreamChannelOptions, @unchecked Sendable {
    package let eventLoop: any EventLoop
    /// The QUIC stream id.
    package let streamID: UInt64
    let session: TUICSession
    private var _pipeline: ChannelPipeline!
    private let closePromise: EventLoopPromise<Void>

    private var isOpen = true
    private var registered = false
    private var readPending = false
    private var autoRead = false
    private var allowRemoteHalfClosure = false
    private var waterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 256 * 1024, high: 1024 * 1024)
    private var lastWritable = true
    private var inputClosed = false
    private var outputClosed = false
    /// Bytes put back by a reader (the Connect header's parser) to be delivered first.
    private var unread = CircularBuffer<ByteBuffer>()
    static let readChunk = 64 * 1024

    init(session: TUICSession, id: UInt64) {
        self.session = session
        self.streamID = id
        self.eventLoop = session.eventLoop
        self.closePromise = session.eventLoop.makePromise()
        self._pipeline = ChannelPipeline(channel: self)
    }

    /// Fires registered and active once the creator set up the pipeline; on the loop.
    func activate() {
        guard isOpen, !registered else { return }
        registered = true
        pipeline.syncOperations.fireChannelRegistered()
        pipeline.syncOperations.fireChannelActive()
        if autoRead { read0() }
    }

    // MARK: Channel

    package let allocator = ByteBufferAllocator()
    package var closeFuture: EventLoopFuture<Void> { closePromise.futureResult }
    package var pipeline: ChannelPipeline { _pipeline }
    package var localAddress: SocketAddress? { session.localAddress }
    package var remoteAddress: SocketAddress? { session.remoteAddress }
    package var parent: (any Channel)? { session.socket }
    package var isWritable: Bool { isOpen && lastWritable }
    package var isActive: Bool { isOpen }
    package var _channelCore: any ChannelCore { self }


    package func setOption0<Option: ChannelOption>(_ option: Option, value: Option.Value) {
        switch option {
        case is ChannelOptions.Types.AutoReadOption:
            autoRead = value as? Bool ?? autoRead
            if autoRead && isOpen && registered { read0() }
        case is ChannelOptions.Types.AllowRemoteHalfClosureOption:
            allowRemoteHalfClosure = value as? Bool ?? allowRemoteHalfClosure
        case is ChannelOptions.Types.WriteBufferWaterMarkOption:
            if let mark = value as? ChannelOptions.Types.WriteBufferWaterMark { waterMark = mark }
            updateWritability()
        default:
            break  // socket options mean nothing on a stream: accepted and ignored
        }
    }


    package func getOption0<Option: ChannelOption>(_ option: Option) throws -> Option.Value {
        let value: Any
        switch option {
        case is ChannelOptions.Types.AutoReadOption: value = autoRead
        case is ChannelOptions.Types.AllowRemoteHalfClosureOption: value = allowRemoteHalfClosure
        case is ChannelOptions.Types.WriteBufferWaterMarkOption: value = waterMark
        default: throw ChannelError.operationUnsupported
        }
        guard let typed = value as? Option.Value else { throw ChannelError.operationUnsupported }
        return typed
    }

    // MARK: ChannelCore

    package func localAddress0() throws -> SocketAddress {
        guard let address = localAddress else { throw ChannelError.operationUnsupported }
        return address
    }

    package func remoteAddress0() throws -> SocketAddress {
        guard let address = remoteAddress else { throw ChannelError.operationUnsupported }
        return address
    }

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
        do {
            if buffer.readableBytes > 0 { try session.connection.writeStream(streamID, buffer) }
            promise?.succeed(())
        } catch {
            promise?.fail(ChannelError.ioOnClosedChannel)
        }
        updateWritability()
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
        switch mode {
        case .output:
            guard !outputClosed else { promise?.fail(ChannelError.outputClosed); return }
            finishOutput()
            session.flush()
            promise?.succeed(())
            pipeline.syncOperations.fireUserInboundEventTriggered(ChannelEvent.outputClosed)
        case .input:
            promise?.fail(ChannelError.operationUnsupported)
        case .all:
            // Go's `Close`: CancelRead(0), then FIN; QUIC keeps sending what is buffered.
            finishOutput()
            if !session.connection.isStreamFinished(streamID) { session.connection.stopSending(streamID, errorCode: 0) }
            session.flush()
            finishClose(error: error, promise: promise)
        }
    }

    package func triggerUserOutboundEvent0(_ event: Any, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }

    package func channelRead0(_ data: NIOAny) {}
    package func errorCaught0(error: any Error) {}

    // MARK: From the session and the request handler

    /// Bytes a reader took but did not use (after the Connect header): delivered first.
    func putBack(_ data: ByteBuffer) {
        guard data.readableBytes > 0 else { return }
        unread.append(data)
    }

    /// The stream has bytes or its end to read.
    func readable() { deliver() }

    /// Acknowledgements may have drained the send buffer.
    func checkWritability() { updateWritability() }

    /// The peer sent STOP_SENDING (Go's `Close` does, with its FIN): nothing more goes out, but
    /// what it sent before its FIN is still read; the channel closes once input ended too.
    func peerStoppedReading() {
        guard isOpen else { return }
        outputClosed = true
        if inputClosed { finishClose(error: ChannelError.eof, promise: nil) }
    }

    /// The peer reset the stream, or the connection ended.
    func terminate(_ error: any Error) {
        guard isOpen else { return }
        if registered { pipeline.syncOperations.fireErrorCaught(error) }
        finishClose(error: error, promise: nil)
    }

    // MARK: Internals

    private func finishOutput() {
        guard !outputClosed else { return }
        outputClosed = true
        try? session.connection.writeStream(streamID, ByteBuffer(), fin: true)
    }

    private func updateWritability() {
        guard isOpen else { return }
        let buffered = session.connection.bufferedBytes(stream: streamID)
        var now = lastWritable
        if lastWritable && buffered > waterMark.high { now = false } else if !lastWritable && buffered < waterMark.low { now = true }
        guard now != lastWritable else { return }
        lastWritable = now
        if registered { pipeline.syncOperations.fireChannelWritabilityChanged() }
    }

    private func deliver() {
        guard readPending, registered, isOpen, !inputClosed else { return }
        var delivered = false
        while let data = unread.popFirst() {
            delivered = true
            pipeline.syncOperations.fireChannelRead(NIOAny(data))
            guard isOpen else { return }
        }
        // One chunk per read call past the put-back bytes: the reader's demand paces the peer.
        if let data = session.connection.readStream(streamID, maxBytes: Self.readChunk) {
            delivered = true
            pipeline.syncOperations.fireChannelRead(NIOAny(data))
            guard isOpen else { return }
            session.flush()  // the credit just returned goes out
        }
        if delivered {
            readPending = false
            pipeline.syncOperations.fireChannelReadComplete()
            guard isOpen else { return }
        }
        if session.connection.isStreamFinished(streamID) {
            inputClosed = true
            if allowRemoteHalfClosure && !outputClosed {
                pipeline.syncOperations.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            } else {
                finishOutput()
                session.flush()
                finishClose(error: ChannelError.eof, promise: nil)
            }
            return
        }
        if delivered && autoRead { pipeline.syncOperations.read() }
    }

    private func finishClose(error: any Error, promise: EventLoopPromise<Void>?) {
        isOpen = false
        unread.removeAll()
        session.streamClosed(streamID)
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
}

