// What smux and yamux sessions share: the handler at the top of the session channel's pipeline that
// collects the peer's frames, keeps the stream table, and holds reads back while streams sit on
// more unread bytes than `receiveBudget` (smux v1 has no per-stream windows; Go stops reading its
// socket the same way once its 4 MiB receive buffer is used).
package import NIOCore

/// Base of `SmuxSession` and `YamuxSession`. Loop-confined to the session channel's event loop.
/// Subclasses parse frames (`parse`) and frame the streams' bytes (`MuxStreamSession`).
package class MuxFramedSession: ChannelDuplexHandler, MuxStreamSession {
    package typealias InboundIn = ByteBuffer
    package typealias OutboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    /// sing-mux's smux `MaxReceiveBuffer`: unread stream bytes above this pause the session's reads.
    static let receiveBudget = 4 * 1024 * 1024

    /// Opened the session (odd stream IDs, as both smux and yamux give the client).
    let isClient: Bool
    /// Called with each stream the peer opens (server side); nil refuses them.
    var onStream: ((MuxStreamChannel) -> Void)?
    /// Called once when the session channel goes away.
    var onClose: (() -> Void)?
    var streams: [UInt32: MuxStreamChannel] = [:]
    var context: ChannelHandlerContext?
    private var inbound: ByteBuffer?
    private var unreadBytes = 0
    private var heldRead = false
    private(set) var isClosed = false

    init(isClient: Bool) {
        self.isClient = isClient
    }

    /// Server side: hands each stream the peer opens to `body` as a plain channel (the fuzzer and
    /// tools outside this module; `MuxFlowHandler` sets `onStream`).
    package func acceptStreams(_ body: @escaping (any Channel) -> Void) {
        onStream = { body($0) }
    }

    /// The streams open now (Go's `NumStreams`).
    var streamCount: Int { streams.count }

    package func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    package func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if inbound == nil { inbound = bytes } else { inbound!.writeBuffer(&bytes) }
        guard var buffer = inbound else { return }
        inbound = nil
        do {
            try parse(&buffer)
        } catch {
            fail(error)
            return
        }
        if buffer.readableBytes > 0 {
            buffer.discardReadBytes()
            inbound = buffer
        }
    }

    package func channelReadComplete(context: ChannelHandlerContext) {
        flushFrames()
    }

    package func channelInactive(context: ChannelHandlerContext) {
        terminateAll(nil)
        context.fireChannelInactive()
    }

    /// The session stream's end of input ends the session (Go's session dies on EOF).
    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event as? ChannelEvent == .inputClosed {
            terminateAll(nil)
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error)
    }

    package func channelWritabilityChanged(context: ChannelHandlerContext) {
        for stream in streams.values { stream.sessionWritabilityChanged() }
        context.fireChannelWritabilityChanged()
    }

    package func read(context: ChannelHandlerContext) {
        if unreadBytes > Self.receiveBudget {
            heldRead = true
        } else {
            context.read()
        }
    }

    /// Reads whole frames at the reader index, leaving a partial one. Throws on a protocol error.
    func parse(_ buffer: inout ByteBuffer) throws(MuxError) {}

    /// A protocol error or a dead session: every stream ends with `error`, the session closes.
    func fail(_ error: any Error) {
        guard !isClosed else { return }
        terminateAll(error)
        context?.fireErrorCaught(error)
        context?.close(promise: nil)
    }

    private func terminateAll(_ error: (any Error)?) {
        guard !isClosed else { return }
        isClosed = true
        let open = streams.values
        streams.removeAll()
        for stream in open { stream.terminate(error) }
        let onClose = self.onClose
        self.onClose = nil
        onClose?()
    }

    /// Registers a stream the peer opened and hands it to `onStream`.
    func acceptStream(_ id: UInt32) {
        guard let context, let onStream else { return }
        let stream = MuxStreamChannel(session: self, id: id, parent: context.channel)
        streams[id] = stream
        stream.activate()
        onStream(stream)
    }

    /// A stream we open, registered under `id`.
    func makeStream(_ id: UInt32) -> MuxStreamChannel? {
        guard let context, !isClosed else { return nil }
        let stream = MuxStreamChannel(session: self, id: id, parent: context.channel)
        streams[id] = stream
        stream.activate()
        return stream
    }

    /// Bytes for stream `id`; counted against the receive budget until the pipeline takes them.
    func deliver(_ data: ByteBuffer, to id: UInt32) {
        guard let stream = streams[id] else { return }  // a closed stream: dropped, as Go drops it
        unreadBytes += data.readableBytes
        stream.receive(data)
    }

    /// Writes one frame to the session channel (flushed by `flushFrames`).
    func writeFrame(_ frame: ByteBuffer) {
        context?.write(wrapOutboundOut(frame), promise: nil)
    }

    // MARK: MuxStreamSession (subclasses override the framing)

    package func send(_ data: inout ByteBuffer, on id: UInt32) {}
    package func finishOutput(_ id: UInt32) {}
    package func closeStream(_ id: UInt32, reset: Bool) {}

    package func consumed(_ byteCount: Int, on id: UInt32) {
        unreadBytes = max(0, unreadBytes - byteCount)
        if heldRead && unreadBytes <= Self.receiveBudget, let context {
            heldRead = false
            context.read()
        }
    }

    package func flushFrames() { context?.flush() }

    package var canWriteFrames: Bool { context?.channel.isWritable ?? false }
}
