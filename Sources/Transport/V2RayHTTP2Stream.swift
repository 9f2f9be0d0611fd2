// One HTTP/2 request stream of the `grpc` and `http` transports as a `Channel` of its own, on
// either end: what the server transports hand an inbound's protocol handlers for each accepted
// stream (Go's clients pool connections, so one TCP connection carries many proxied flows), and
// what the client transport hands an outbound for the stream it opened.
//
// NIOHTTP2's own stream channels trap on any option but autoRead (the relay also sets half-closure,
// buffer sizes and water marks), so streams are this small channel instead. The handler after
// NIOHTTP2 on the connection (frame mode) is its `V2RayHTTP2StreamCarrier`:
// `HTTP2ServerStreamDemuxer` on a server, `HTTP2ClientStreamHandler` on a client.
// 1. The carrier feeds it DATA (gun-decoded for grpc) and END_STREAM; bytes wait here until the
//    pipeline reads. The carrier keeps reading its connection whatever the stream does.
// 2. A read delivers what is queued and returns that many bytes of stream window to the peer: the
//    peer can run ahead by at most one window, which is the back-pressure on what it sends.
// 3. Writes become DATA frames through the carrier; the stream is unwritable while more than
//    `highWater` bytes wait for the peer's window or the socket (NIOHTTP2 completes a DATA
//    frame's promise only once it went to the socket), writable again below half of it.
// 4. `close(mode: .output)` sends END_STREAM; a full close before both ends finished resets the
//    stream (RST_STREAM CANCEL) on a server, as Go's server does when its handler returns early;
//    a client's carrier closes its connection (one stream per connection).
// Options: autoRead and allowRemoteHalfClosure are kept; any other is refused (never a trap).
import Adapter
import NIOCore
import NIOHTTP2

/// What a stream needs from the handler that carries it on the connection. On the connection's loop.
protocol V2RayHTTP2StreamCarrier: AnyObject {
    /// Writes one DATA frame (not flushed); the stream is told `wrote(_:)` once NIOHTTP2 let it go.
    func writeData(_ stream: V2RayHTTP2Stream, _ bytes: ByteBuffer, endStream: Bool, promise: EventLoopPromise<Void>?)
    /// Flushes the connection.
    func flush()
    /// The stream's reader took `increment` flow-controlled bytes: WINDOW_UPDATE for the stream.
    func returnWindow(_ streamID: HTTP2StreamID, _ increment: Int)
    /// The stream closed (with `reset`: tell the peer so).
    func streamClosed(_ stream: V2RayHTTP2Stream, reset: HTTP2ErrorCode?)
    /// The peer's bytes broke the gun framing; the carrier ends the stream (`stream.end`).
    func framingFailed(_ stream: V2RayHTTP2Stream, _ error: any Error)
}

/// An HTTP/2 stream carrying one proxied connection. Loop-confined: every method runs on the
/// connection's event loop (the unchecked `Sendable` only lets futures carry it).
final class V2RayHTTP2Stream: Channel, ChannelCore, StreamChannelOptions, @unchecked Sendable {
    /// Above this many bytes waiting to go out the stream reports unwritable; below half, writable again.
    static let highWater = 1 << 18

    let streamID: HTTP2StreamID
    private let carrier: any V2RayHTTP2StreamCarrier
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
    /// Flow-controlled bytes received and not yet returned to the peer's window.
    private var unreturned = 0
    /// The peer sent END_STREAM: no window goes back any more (NIOHTTP2 refuses a WINDOW_UPDATE
    /// on a stream the peer half-closed).
    private(set) var inputEnded = false
    private var inputEndDelivered = false
    private(set) var outputEnded = false
    private var writable = true

    /// Bytes written and not yet let go by NIOHTTP2 (waiting for the peer's window or the socket).
    private(set) var pendingBytes = 0
    /// Bytes received and not yet read by the pipeline (at most one stream window).
    private(set) var queuedBytes = 0

    init(streamID: HTTP2StreamID, carrier: any V2RayHTTP2StreamCarrier, connection: any Channel, framing: HTTP2ClientStreamHandler.Framing) {
        self.streamID = streamID
        self.carrier = carrier
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

    func setOption0<Option: ChannelOption>(_ option: Option, value: Option.Value) throws {
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

    func getOption0<Option: ChannelOption>(_ option: Option) throws -> Option.Value {
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

    // MARK: lifecycle (from the carrier)

    /// Registers and activates the stream: on a server once the protocol's handlers are in, on a
    /// client at once (the outbound adds its handlers to a live channel, as to a dialed socket).
    func activate() {
        active = true
        pipeline.fireChannelRegistered()
        pipeline.fireChannelActive()
    }

    /// DATA from the peer: `bytes` as carried, `flowLength` as counted by flow control.
    func receive(_ bytes: ByteBuffer, flowLength: Int, endStream: Bool) {
        guard !closed else { return }
        unreturned += flowLength
        var bytes = bytes
        switch framing {
        case .raw:
            if bytes.readableBytes > 0 {
                queuedBytes += bytes.readableBytes
                queue.append(bytes)
            }
        case .gun:
            do {
                while let piece = try decoder.next(from: &bytes) {
                    queuedBytes += piece.readableBytes
                    queue.append(piece)
                }
            } catch {
                carrier.framingFailed(self, error)
                return
            }
        }
        if endStream { inputEnded = true }
        deliver()
    }

    /// The peer reset the stream or the connection went away.
    func peerClosed(error: (any Error)?) {
        closeFully(error: error, reset: nil)
    }

    /// An error of the connection under the stream, for the pipeline; the stream stays open.
    func reportError(_ error: any Error) {
        guard active else { return }
        pipeline.fireErrorCaught(error)
    }

    /// Ends the stream with `error` for the pipeline, resetting it when `reset` is given.
    func end(error: any Error, reset: HTTP2ErrorCode?) {
        closeFully(error: error, reset: reset)
    }

    /// A DATA frame of this stream through `context` (nil: the carrier is gone), with `wrote(_:)`
    /// once NIOHTTP2 sent or failed it. For both carriers (client handler, server demuxer).
    func writeData(_ bytes: ByteBuffer, endStream: Bool, through context: ChannelHandlerContext?, promise: EventLoopPromise<Void>?) {
        let count = bytes.readableBytes
        guard let context else {
            wrote(count)
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenComplete { result in
            self.wrote(count)
            switch result {
            case .success: promise?.succeed(())
            case .failure(let error): promise?.fail(error)
            }
        }
        context.write(NIOAny(HTTP2Frame(streamID: streamID, payload: .data(.init(data: .byteBuffer(bytes), endStream: endStream)))),
                      promise: written)
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

    /// One read batch: everything queued, then read-complete; the window goes back to the peer.
    private func deliver() {
        guard active, readPending else { return }
        guard !queue.isEmpty || (inputEnded && !inputEndDelivered) else { return }
        readPending = false
        let batch = queue
        queue.removeAll(keepingCapacity: true)
        queuedBytes = 0
        for bytes in batch { pipeline.fireChannelRead(NIOAny(bytes)) }
        if !batch.isEmpty { pipeline.fireChannelReadComplete() }
        if unreturned > 0, !inputEnded, !closed {
            carrier.returnWindow(streamID, unreturned)
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
        queuedBytes = 0
        carrier.streamClosed(self, reset: reset)
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
        carrier.writeData(self, bytes, endStream: false, promise: promise)
    }

    func flush0() { carrier.flush() }

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
            carrier.writeData(self, ByteBuffer(), endStream: true, promise: promise)
            carrier.flush()
            if inputEndDelivered { closeFully(error: nil, reset: nil) }
        case .input:
            promise?.fail(ChannelError.operationUnsupported)
        case .all:
            // Both ends finished: the stream is closed already; otherwise tell the peer.
            let finished = outputEnded && inputEnded
            if !outputEnded, inputEnded {
                // The answer ends normally (END_STREAM), as a Go handler returning does.
                outputEnded = true
                carrier.writeData(self, ByteBuffer(), endStream: true, promise: nil)
                carrier.flush()
                closeFully(error: nil, reset: nil)
            } else {
                // An answer already ended with END_STREAM while the client still sends: Go's server
                // resets with NO_ERROR (RFC 9113 §8.1); an unfinished answer is cancelled.
                closeFully(error: nil, reset: finished ? nil : outputEnded ? .noError : .cancel)
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
