// h2mux, sing-mux's default multiplexer (h2mux.go): HTTP/2 with prior knowledge over the session
// stream. Each mux stream is one HTTP/2 stream: the client sends HEADERS `CONNECT` with authority
// `localhost` (Go's `http2.Transport` request for `https://localhost`), the server answers
// `:status 200`, and DATA frames carry the stream's bytes both ways; END_STREAM is the half-close.
// A status other than 200 fails the stream (`unexpected status: …`).
//
// NIOHTTP2 gives each HTTP/2 stream a child channel; `H2MuxStreamBridge` sits in it and presents the
// stream as a `MuxStreamChannel`, so h2mux streams take the same options and half-closes as smux and
// yamux streams. Flow control follows the reader, as the grpc/http streams' (`V2RayHTTP2Stream`):
// NIOHTTP2's own window manager is off for the streams (a target window of 0 never asks for an
// update), the bridge takes every frame at once and returns stream window only as the mux stream's
// pipeline reads the bytes (`consumed`, batched per read by `HTTP2WindowReturn`). So a stream
// nobody reads holds at most one stream window (1 MiB) in our process and the peer waits; before,
// NIOHTTP2 returned window as soon as the bridge took frames, and a stream read a few frames at a
// time held 2–3 MiB against Go's h2mux (MuxBackPressureInteropTests).
// The 1 MiB is not SETTINGS_INITIAL_WINDOW_SIZE: NIOHTTP2 adds a SETTINGS change of the initial
// window to the target of every stream open when the peer acknowledges it (the first stream
// usually is), which would turn its window manager back on. Streams start at the default 64 KiB
// and each opens to `window` with a WINDOW_UPDATE of its own as it starts.
// The connection window goes back as frames arrive (NIOHTTP2): each stream's window bounds it.
// Writes: the mux stream is unwritable while the child channel is (more than 64 KiB wait for the
// peer's window).
import NIOCore
import NIOHPACK
import NIOHTTP2

/// h2mux session setup for either side.
enum H2MuxSession {
    /// Go's http2.Server default `MaxConcurrentStreams`.
    static let maxConcurrentStreams = 250
    /// The stream and connection receive window we offer.
    static let window = 1 << 20

    static var connectionConfiguration: NIOHTTP2Handler.ConnectionConfiguration {
        var configuration = NIOHTTP2Handler.ConnectionConfiguration()
        configuration.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: maxConcurrentStreams),
            HTTP2Setting(parameter: .maxHeaderListSize, value: 16384),
        ]
        return configuration
    }

    static var streamConfiguration: NIOHTTP2Handler.StreamConfiguration {
        var configuration = NIOHTTP2Handler.StreamConfiguration()
        // NIOHTTP2 sends a stream WINDOW_UPDATE when the window falls below this target; at 0 it
        // never does, and the bridge returns window as the reader consumes.
        configuration.targetWindowSize = 0
        configuration.outboundBufferSizeHighWatermark = 64 * 1024
        configuration.outboundBufferSizeLowWatermark = 32 * 1024
        return configuration
    }

    /// Adds the server side at the end of `channel`'s pipeline; each stream the client opens comes to
    /// `onStream`. On the channel's loop.
    static func addServer(to channel: any Channel, onStream: @escaping (MuxStreamChannel) -> Void) throws {
        let bound = NIOLoopBound(onStream, eventLoop: channel.eventLoop)
        _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
            mode: .server, connectionConfiguration: connectionConfiguration, streamConfiguration: streamConfiguration
        ) { child in
            child.eventLoop.makeCompletedFuture {
                try child.pipeline.syncOperations.addHandler(H2MuxStreamBridge(isClient: false, onStream: bound.value))
                try child.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
                child.read()
            }
        }
    }

    /// Adds the client side at the end of `channel`'s pipeline; returns the multiplexer that opens
    /// streams. On the channel's loop.
    static func addClient(to channel: any Channel) throws -> NIOHTTP2Handler.StreamMultiplexer {
        try channel.pipeline.syncOperations.configureHTTP2Pipeline(
            mode: .client, connectionConfiguration: connectionConfiguration, streamConfiguration: streamConfiguration
        ) { child in
            child.close()  // servers do not open streams
        }
    }

    /// Opens a stream: the CONNECT request goes out at once, the channel is usable before the answer.
    static func openStream(_ multiplexer: NIOHTTP2Handler.StreamMultiplexer, on loop: any EventLoop) -> EventLoopFuture<MuxStreamChannel> {
        let opened = loop.makePromise(of: MuxStreamChannel.self)
        multiplexer.createStreamChannel(promise: nil) { child in
            child.eventLoop.makeCompletedFuture {
                let bridge = H2MuxStreamBridge(isClient: true, onStream: { opened.succeed($0) })
                try child.pipeline.syncOperations.addHandler(bridge)
                try child.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
                bridge.sendRequest()
                child.read()
            }
        }
        // A stream that could not be created fails the open after a grace (NIOHTTP2 drops the promise
        // only when the connection is gone, which closes the session as well).
        let timeout = loop.scheduleTask(in: .seconds(5)) { opened.fail(MuxError.badFrame("h2mux: open stream timed out")) }
        opened.futureResult.whenComplete { _ in timeout.cancel() }
        return opened.futureResult
    }
}

/// One HTTP/2 stream as a `MuxStreamChannel`. Lives in the NIOHTTP2 child channel; loop-confined.
final class H2MuxStreamBridge: ChannelInboundHandler, MuxStreamSession {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private let isClient: Bool
    private var onStream: ((MuxStreamChannel) -> Void)?
    private var context: ChannelHandlerContext?
    private var stream: MuxStreamChannel?
    private var sentEnd = false
    private var receivedEnd = false
    private var answered = false
    /// Stream window the mux stream's reader gave back, not yet sent.
    private var windowReturn = HTTP2WindowReturn()
    /// No WINDOW_UPDATE any more: the peer ended its side, or the stream is gone.
    private var windowClosed = false

    init(isClient: Bool, onStream: @escaping (MuxStreamChannel) -> Void) {
        self.isClient = isClient
        self.onStream = onStream
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    /// Client: the CONNECT request, and the stream handed out at once (Go's `Open` returns before
    /// the response).
    func sendRequest() {
        guard let context else { return }
        let headers: HPACKHeaders = [":method": "CONNECT", ":authority": "localhost"]
        context.writeAndFlush(wrapOutboundOut(.headers(.init(headers: headers))), promise: nil)
        openWindow(context)
        let stream = MuxStreamChannel(session: self, id: 0, parent: context.channel)
        self.stream = stream
        stream.activate()
        onStream?(stream)
        onStream = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        windowReturn.beginReadBatch()
        switch unwrapInboundIn(data) {
        case .headers(let headers):
            if isClient {
                guard !answered else { break }
                answered = true
                let status = headers.headers.first(name: ":status") ?? ""
                guard status == "200" else {
                    stream?.terminate(MuxError.badFrame("unexpected status: \(status)"))
                    context.close(promise: nil)
                    return
                }
            } else if stream == nil {
                // Go's ServeHTTP answers 200 for any request and serves the body as the stream.
                let response: HPACKHeaders = [":status": "200"]
                context.write(wrapOutboundOut(.headers(.init(headers: response))), promise: nil)
                if !headers.endStream { openWindow(context) } else { context.flush() }
                let stream = MuxStreamChannel(session: self, id: 0, parent: context.channel)
                self.stream = stream
                stream.activate()
                onStream?(stream)
                onStream = nil
            }
            if headers.endStream { finishInput() }
        case .data(let frame):
            if frame.endStream { windowClosed = true }  // no window goes back after END_STREAM
            // Padding counts against the window and never reaches the reader: returned at once.
            if let padding = frame.paddingBytes { returnWindow(context, padding + 1) }
            if case .byteBuffer(let bytes) = frame.data, bytes.readableBytes > 0 {
                if let stream { stream.receive(bytes) } else { returnWindow(context, bytes.readableBytes) }
            }
            if frame.endStream { finishInput() }
        default:
            break
        }
    }

    /// Opens the stream's receive window from the default 64 KiB to `H2MuxSession.window`.
    private func openWindow(_ context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(.windowUpdate(windowSizeIncrement: H2MuxSession.window - 65_535)), promise: nil)
    }

    private func finishInput() {
        guard !receivedEnd else { return }
        receivedEnd = true
        windowClosed = true
        stream?.receiveFinish()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if let increment = windowReturn.endReadBatch() { sendWindowUpdate(context, increment) }
        // Always read: the peer cannot send past the window the reader opened.
        if !receivedEnd { context.read() }
        context.fireChannelReadComplete()
    }

    /// The reader took `increment` bytes of the stream: window for the peer, now or at the batch's end.
    private func returnWindow(_ context: ChannelHandlerContext, _ increment: Int) {
        guard let increment = windowReturn.readerTook(increment) else { return }
        sendWindowUpdate(context, increment)
    }

    private func sendWindowUpdate(_ context: ChannelHandlerContext, _ increment: Int) {
        // NIOHTTP2 refuses a WINDOW_UPDATE on a stream the peer ended; a closed one needs none.
        guard !windowClosed else { return }
        context.writeAndFlush(wrapOutboundOut(.windowUpdate(windowSizeIncrement: increment)), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        // The peer's data all arrived: the mux stream drains what it holds and closes on its own
        // (Go's server ends a response with END_STREAM, then RST_STREAM NO_ERROR while our request
        // body is still open; what we write after that is dropped).
        windowClosed = true
        if !receivedEnd { stream?.terminate(MuxError.badFrame("h2mux: stream reset")) }
        sentEnd = true
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Go's client ends every stream it is done with by RST_STREAM CANCEL (its conn's Close
        // cancels the request): a plain end of the stream, not an error worth a log line.
        windowClosed = true
        if let closed = error as? NIOHTTP2Errors.StreamClosed, closed.errorCode == .cancel {
            if !receivedEnd { stream?.terminate(nil) }
        } else if !receivedEnd {
            stream?.terminate(error)
        }
        sentEnd = true
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        stream?.sessionWritabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    // MARK: MuxStreamSession

    package func send(_ data: inout ByteBuffer, on id: UInt32) {
        guard let context, !sentEnd else {
            data.moveReaderIndex(forwardBy: data.readableBytes)
            return
        }
        let frame = HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(data)))
        data.moveReaderIndex(forwardBy: data.readableBytes)
        context.write(wrapOutboundOut(frame), promise: nil)
    }

    package func finishOutput(_ id: UInt32) {
        guard let context, !sentEnd else { return }
        sentEnd = true
        let frame = HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(context.channel.allocator.buffer(capacity: 0)), endStream: true))
        context.write(wrapOutboundOut(frame), promise: nil)
    }

    package func closeStream(_ id: UInt32, reset: Bool) {
        guard let context else { return }
        windowClosed = true
        if !sentEnd { finishOutput(id) }
        context.flush()
        // The peer still sending: reset its side (NIOHTTP2 sends RST_STREAM on close).
        if !receivedEnd { context.close(promise: nil) }
    }

    package func consumed(_ byteCount: Int, on id: UInt32) {
        guard let context else { return }
        returnWindow(context, byteCount)
    }

    package func flushFrames() { context?.flush() }

    package var canWriteFrames: Bool { context?.channel.isWritable ?? false }
}
