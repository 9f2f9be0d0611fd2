// One accepted HTTP/2 request stream as a `Channel` of its own: what the `grpc` and `http` server
// transports hand an inbound's protocol handlers for each stream (Go's clients pool connections,
// so one TCP connection carries many proxied flows).
//
// NIOHTTP2's own stream channels trap on any option but autoRead (the relay also sets half-closure,
// buffer sizes and water marks), so streams are this small channel instead:
// 1. `HTTP2ServerStreamDemuxer` (the connection's handler after NIOHTTP2's, frame mode) feeds it
//    DATA (gun-decoded for grpc) and END_STREAM; bytes wait here until the pipeline reads.
// 2. A read delivers what is queued and returns that many bytes of stream window to the client:
//    the client can run ahead by at most one window, which is the back-pressure.
// 3. Writes become DATA frames through the demuxer; it is unwritable while more than
//    `highWater` bytes wait for the peer's window or the socket.
// 4. `close(mode: .output)` sends END_STREAM; a full close before both ends finished resets the
//    stream (RST_STREAM CANCEL), as Go's server does when its handler returns early.
// Options: autoRead and allowRemoteHalfClosure are kept; any other is refused (never a trap).
import Adapter
import NIOCore
import NIOHTTP2

/// A server-side HTTP/2 stream carrying one proxied connection. Loop-confined: every method runs
/// on the connection's event loop (the unchecked `Sendable` only lets futures carry it).
final class HTTP2ServerStream: Channel, ChannelCore, @unchecked Sendable {
    /// Above this many bytes waiting to go out the stream reports unwritable; below half, writable again.
    static let highWater = 1 << 18

    let streamID: HTTP2StreamID
    private let demuxer: HTTP2ServerStreamDemuxer
    private let connection: any Channel
    private let framing: HTTP2ClientStreamHandler.Framing
    private var decoder = GunFrameDecoder()
    private var _pipeline: ChannelPipeline!
    private let closePromise: EventLoopPromise<Void>

    private var active = false
    private var closed = false
    private var autoRead = false
    private var allowHalfClosure = false
    private var readPending = false
    private var queue: [ByteBuffer] = []
    /// Flow-controlled bytes received and not yet returned to the client's window.
    private var unreturned = 0
    private var inputEnded = false
    private var inputEndDelivered = false
    private(set) var outputEnded = false
    private var pendingBytes = 0
    private var writable = true

    init(streamID: HTTP2StreamID, demuxer: HTTP2ServerStreamDemuxer, connection: any Channel, framing: HTTP2ClientStreamHandler.Framing) {
        self.streamID = streamID
        self.demuxer = demuxer
        self.connection = connection
        self.framing = framing
        self.closePromise = connection.eventLoop.makePromise()
        self._pipeline = ChannelPipeline(channel: self)
    }

    // MARK: Channel

    var allocator: ByteBufferAllocator { connection.allocator }
    var closeFuture: EventLoopFuture<Void> { closePromise.futureResult }
    var pipeline: ChannelPipeline { _pipeline }
    var localAddress: SocketAddress? { connection.localAddress }
    var remoteAddress: SocketAddress? { connection.remoteAddress }
    var parent: (any Channel)? { connection }
    var isWritable: Bool { writable && connection.isWritable }
    var isActive: Bool { active }
    var _channelCore: any ChannelCore { self }
    var eventLoop: any EventLoop { connection.eventLoop }

    func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) -> EventLoopFuture<Void> {
        eventLoop.makeCompletedFuture { try setOption0(option, value: value) }
    }

    func getOption<Option: ChannelOption>(_ option: Option) -> EventLoopFuture<Option.Value> {
        eventLoop.makeCompletedFuture { try getOption0(option) }
    }

    var syncOptions: (any NIOSynchronousChannelOptions)? { SyncOptions(stream: self) }

    private struct SyncOptions: NIOSynchronousChannelOptions {
        let stream: HTTP2ServerStream
        func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) throws {
            try stream.setOption0(option, value: value)
        }
        func getOption<Option: ChannelOption>(_ option: Option) throws -> Option.Value {
            try stream.getOption0(option)
        }
    }

    fileprivate func setOption0<Option: ChannelOption>(_ option: Option, value: Option.Value) throws {
        eventLoop.preconditionInEventLoop()
        switch option {
        case _ as ChannelOptions.Types.AutoReadOption:
            autoRead = value as? Bool ?? false
            if autoRead { read0() }
        case _ as ChannelOptions.Types.AllowRemoteHalfClosureOption:
            allowHalfClosure = value as? Bool ?? false
        default:
            throw ChannelError.operationUnsupported
        }
    }

    fileprivate func getOption0<Option: ChannelOption>(_ option: Option) throws -> Option.Value {
        eventLoop.preconditionInEventLoop()
        switch option {
        case _ as ChannelOptions.Types.AutoReadOption:
            if let value = autoRead as? Option.Value { return value }
        case _ as ChannelOptions.Types.AllowRemoteHalfClosureOption:
            if let value = allowHalfClosure as? Option.Value { return value }
        default:
            break
        }
        throw ChannelError.operationUnsupported
    }

    // MARK: lifecycle (from the demuxer)

    /// Registers and activates the stream once the protocol's handlers are in.
    func activate() {
        active = true
        pipeline.fireChannelRegistered()
        pipeline.fireChannelActive()
    }

    /// DATA from the client: `bytes` as carried, `flowLength` as counted by flow control.
    func receive(_ bytes: ByteBuffer, flowLength: Int, endStream: Bool) {
        guard !closed else { return }
        unreturned += flowLength
        var bytes = bytes
        switch framing {
        case .raw:
            if bytes.readableBytes > 0 { queue.append(bytes) }
        case .gun:
            do {
                while let piece = try decoder.next(from: &bytes) { queue.append(piece) }
            } catch {
                demuxer.reject(stream: self, reason: "\(error)")
                closeFully(error: error, reset: .protocolError)
                return
            }
        }
        if endStream { inputEnded = true }
        deliver()
    }

    /// The client reset the stream or the connection went away.
    func peerClosed(error: (any Error)?) {
        closeFully(error: error, reset: nil)
    }

    /// Bytes handed to NIOHTTP2 went out (or failed): writability may come back.
    func wrote(_ count: Int) {
        pendingBytes -= count
        updateWritability()
    }

    /// The connection's writability changed.
    func connectionWritabilityChanged() {
        guard active else { return }
        pipeline.fireChannelWritabilityChanged()
    }

    private func updateWritability() {
        let now = writable ? pendingBytes <= Self.highWater : pendingBytes <= Self.highWater / 2
        guard now != writable else { return }
        writable = now
        if active { pipeline.fireChannelWritabilityChanged() }
    }

    /// One read batch: everything queued, then read-complete; the window goes back to the client.
    private func deliver() {
        guard active, readPending else { return }
        guard !queue.isEmpty || (inputEnded && !inputEndDelivered) else { return }
        readPending = false
        let batch = queue
        queue.removeAll(keepingCapacity: true)
        for bytes in batch { pipeline.fireChannelRead(NIOAny(bytes)) }
        if !batch.isEmpty { pipeline.fireChannelReadComplete() }
        if unreturned > 0, !inputEnded, !closed {
            demuxer.returnWindow(streamID, unreturned)
            unreturned = 0
        }
        if inputEnded, queue.isEmpty, !inputEndDelivered, !closed {
            inputEndDelivered = true
            if allowHalfClosure && !outputEnded {
                pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            } else {
                closeFully(error: nil, reset: nil)
                return
            }
        }
        if autoRead, active, !closed {
            readPending = true
            if !queue.isEmpty { eventLoop.execute { self.deliver() } }
        }
    }

    /// Closes the channel once: resets the stream when asked, then inactive and handlers gone.
    private func closeFully(error: (any Error)?, reset: HTTP2ErrorCode?) {
        guard !closed else { return }
        closed = true
        let wasActive = active
        active = false
        queue.removeAll()
        demuxer.streamClosed(self, reset: reset)
        if let error, wasActive { pipeline.fireErrorCaught(error) }
        if wasActive { pipeline.fireChannelInactive() }
        eventLoop.execute {
            self.removeHandlers(pipeline: self.pipeline)
            self.closePromise.succeed()
        }
    }

    // MARK: ChannelCore

    func localAddress0() throws -> SocketAddress {
        guard let address = connection.localAddress else { throw ChannelError.operationUnsupported }
        return address
    }

    func remoteAddress0() throws -> SocketAddress {
        guard let address = connection.remoteAddress else { throw ChannelError.operationUnsupported }
        return address
    }

    func register0(promise: EventLoopPromise<Void>?) { promise?.succeed(()) }
    func registerAlreadyConfigured0(promise: EventLoopPromise<Void>?) { promise?.succeed(()) }
    func bind0(to: SocketAddress, promise: EventLoopPromise<Void>?) { promise?.fail(ChannelError.operationUnsupported) }
    func connect0(to: SocketAddress, promise: EventLoopPromise<Void>?) { promise?.fail(ChannelError.operationUnsupported) }

    func write0(_ data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !closed, !outputEnded else {
            promise?.fail(closed ? ChannelError.ioOnClosedChannel : ChannelError.outputClosed)
            return
        }
        let payload = unwrapData(data, as: ByteBuffer.self)
        let bytes = framing == .gun ? GunFraming.encode(payload, allocator: allocator) : payload
        pendingBytes += bytes.readableBytes
        updateWritability()
        demuxer.writeData(self, bytes, endStream: false, promise: promise)
    }

    func flush0() { demuxer.flush() }

    func read0() {
        guard !closed else { return }
        readPending = true
        deliver()
    }

    func close0(error: any Error, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard !closed else {
            promise?.fail(ChannelError.alreadyClosed)
            return
        }
        switch mode {
        case .output:
            guard !outputEnded else { promise?.succeed(()); return }
            outputEnded = true
            demuxer.writeData(self, ByteBuffer(), endStream: true, promise: promise)
            demuxer.flush()
            if inputEndDelivered { closeFully(error: nil, reset: nil) }
        case .input:
            promise?.fail(ChannelError.operationUnsupported)
        case .all:
            // Both ends finished: the stream is closed already; otherwise tell the client.
            let finished = outputEnded && inputEnded
            if !outputEnded, inputEnded {
                // The answer ends normally (END_STREAM), as a Go handler returning does.
                outputEnded = true
                demuxer.writeData(self, ByteBuffer(), endStream: true, promise: nil)
                demuxer.flush()
                closeFully(error: nil, reset: nil)
            } else {
                closeFully(error: nil, reset: finished ? nil : .cancel)
            }
            promise?.succeed(())
        }
    }

    func triggerUserOutboundEvent0(_ event: Any, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }

    func channelRead0(_ data: NIOAny) {}
    func errorCaught0(error: any Error) {}
}
