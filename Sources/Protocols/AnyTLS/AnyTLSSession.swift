// AnyTLSSession: one anytls session over a TLS (or plain) connection, either end (sing-anytls
// session/session.go, read for facts). The handler sits after TLS in the connection's pipeline;
// its streams are `AnyTLSStreamChannel`s on the same loop.
//
// 1. read: frames are cut as Go's `recvLoop` cuts them (`AnyTLSFrameDecoder`) and handled in
//    order: data goes to its stream (dropped for an unknown id), FIN closes a stream without an
//    answer, settings and server settings set the peer's version, a server answers settings with
//    a padding update (md5 differs) and its own settings (v ≥ 2), heartbeats are answered, an
//    alert ends the session (the client logs it), a SYN before settings makes the server alert
//    `client did not send its settings` and end the session.
// 2. back-pressure: a stream holds what its pipeline has not read; while one holds more than
//    `streamBufferLimit`, the connection is not read (Go's synchronous pipe blocks its receive
//    loop the same way).
// 3. write: every frame write is one "packet"; a client shapes its first `stop` packets by the
//    padding scheme (`writeShaped`), each piece its own write so TLS seals it as its own record.
// 4. close: the connection closing (or an alert, or a SYN-ACK timeout) closes every stream
//    without FIN; the client's pool is told once.
package import Adapter
package import NIOCore

/// Why a session or stream ended, in sing-anytls' words where it has them.
package enum AnyTLSError: Error, Equatable, CustomStringConvertible {
    /// A SYN-ACK carried the server's error for this stream (Go: `remote: <text>`).
    case remote(String)
    /// The session is closed (Go's `io.ErrClosedPipe`).
    case closedPipe

    package var description: String {
        switch self {
        case .remote(let text): "remote: \(text)"
        case .closedPipe: "io: read/write on closed pipe"
        }
    }
}

/// One session. Loop-confined to its connection's loop (the unchecked `Sendable` only lets a
/// reference travel to that loop).
package final class AnyTLSSession: ChannelDuplexHandler, RemovableChannelHandler, @unchecked Sendable {
    package typealias InboundIn = ByteBuffer
    package typealias OutboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    /// Which end this is.
    package enum Role {
        /// Pads by the shared state, which server updates replace.
        case client(AnyTLSPaddingState)
        /// Serves `scheme` to clients; `onStream` gets each stream a SYN opens (registered, active,
        /// autoRead off), on the loop.
        case server(AnyTLSPaddingScheme, onStream: (AnyTLSStreamChannel) -> Void)
    }

    /// Bytes a stream may hold unread before the connection stops being read.
    package static let streamBufferLimit = 1 << 20

    /// The connection's loop; the session and its streams run only here.
    package let eventLoop: any EventLoop
    private let role: Role
    private let logger: ContextLogger
    private let flowID: FlowID?
    private var context: ChannelHandlerContext?
    private var streams: [UInt32: AnyTLSStreamChannel] = [:]
    private var lastStreamID: UInt32 = 0
    /// The peer's protocol version (settings or server settings; 0 until then).
    package private(set) var peerVersion: UInt8 = 0
    package private(set) var isClosed = false
    private var receivedSettings = false
    private var sentSettings = false
    private var sendPadding: Bool
    private var packetCount: UInt32 = 0
    private var synAckTimer: Scheduled<Void>?
    private var decoder = AnyTLSFrameDecoder()
    private var received = ByteBuffer()
    private var readPaused = false
    private var readWanted = false
    /// Called once when the session closes (the client's pool forgets it).
    package var onClose: (() -> Void)?
    /// The client pool's number for this session (Go's `seq`); 0 outside a pool.
    package var poolSequence: UInt64 = 0

    /// A session for the connection the handler will be added to (on `eventLoop`).
    package init(role: Role, eventLoop: any EventLoop, logger: ContextLogger, flowID: FlowID? = nil) {
        self.role = role
        self.eventLoop = eventLoop
        self.logger = logger
        self.flowID = flowID
        if case .client = role { sendPadding = true } else { sendPadding = false }
    }

    private var isClient: Bool { if case .client = role { true } else { false } }

    /// The connection's channel (nil once removed).
    package var channel: (any Channel)? { context?.channel }

    /// Streams open now.
    package var streamCount: Int { streams.count }

    /// The connection's writability (every stream's).
    package var isWritable: Bool { context?.channel.isWritable ?? false }

    // MARK: Pipeline

    package func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // Dialers and listeners hand connections over with autoRead off; the session reads for
        // itself from here, gated by `read(context:)`.
        _ = try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        context.read()
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard !isClosed else { return }
        if received.readableBytes == 0 { received = bytes } else { received.writeBuffer(&bytes) }
        while !isClosed, let frame = decoder.next(from: &received) {
            handle(frame)
        }
        if received.readableBytes == 0 {
            received = ByteBuffer()
        } else if received.readerIndex > 1 << 16 {
            received.discardReadBytes()
        }
        updateReadPause()
    }

    package func channelInactive(context: ChannelHandlerContext) {
        close()
        context.fireChannelInactive()
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            close()  // Go's receive loop ends at EOF and closes the session
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("session closed: \(error)", flow: flowID)
        close()
    }

    package func read(context: ChannelHandlerContext) {
        if readPaused { readWanted = true } else { context.read() }
    }

    package func channelWritabilityChanged(context: ChannelHandlerContext) {
        for stream in Array(streams.values) { stream.parentWritabilityChanged() }
        context.fireChannelWritabilityChanged()
    }

    // MARK: Frames in

    private func handle(_ frame: AnyTLSReceivedFrame) {
        guard let command = AnyTLSCommand(rawValue: frame.command) else { return }  // Go: "can't have data"
        switch command {
        case .push:
            if frame.data.readableBytes > 0, let stream = streams[frame.stream] { stream.received(frame.data) }
        case .syn:
            openedByPeer(frame.stream)
        case .synAck:
            synAckTimer?.cancel()
            synAckTimer = nil
            if frame.data.readableBytes > 0, let stream = streams[frame.stream] {
                stream.fail(AnyTLSError.remote(String(buffer: frame.data)))
            }
        case .fin:
            streams.removeValue(forKey: frame.stream)?.remoteFinished()
        case .waste, .heartResponse:
            break
        case .settings:
            guard frame.data.readableBytes > 0, case .server(let scheme, _) = role else { return }
            receivedSettings = true
            let settings = AnyTLSStringMap.parse(Array(buffer: frame.data))
            if settings["padding-md5"] != scheme.md5 {
                writeControl(.updatePaddingScheme, stream: 0, bytes: scheme.raw)
            }
            if let version = settings["v"].flatMap({ Int($0) }), version >= 2 {
                peerVersion = UInt8(truncatingIfNeeded: version)
                writeControl(.serverSettings, stream: 0, bytes: AnyTLSStringMap.encode([("v", "2")]))
            }
        case .alert:
            guard frame.data.readableBytes > 0 else { return }
            if isClient { logger.error("[Alert from server]\(String(buffer: frame.data))", flow: flowID) }
            close()
        case .updatePaddingScheme:
            guard frame.data.readableBytes > 0, case .client(let padding) = role else { return }
            let raw = Array(buffer: frame.data)
            if padding.update(raw) {
                logger.debug("[Update padding succeed] \(AnyTLSModule.md5Hex(raw))", flow: flowID)
            } else {
                logger.warn("[Update padding failed] \(AnyTLSModule.md5Hex(raw))", flow: flowID)
            }
        case .heartRequest:
            writeControl(.heartResponse, stream: frame.stream)
        case .serverSettings:
            guard frame.data.readableBytes > 0, isClient else { return }
            if let version = AnyTLSStringMap.parse(Array(buffer: frame.data))["v"].flatMap({ Int($0) }) {
                peerVersion = UInt8(truncatingIfNeeded: version)
            }
        }
    }

    /// A SYN: the server opens the stream (once per id); a client has no one to give it to and
    /// ends it at once, as Go's does.
    private func openedByPeer(_ id: UInt32) {
        switch role {
        case .client:
            if streams[id] == nil { writeControl(.fin, stream: id) }
        case .server(_, let onStream):
            guard receivedSettings else {
                writeControl(.alert, stream: 0, bytes: Array("client did not send its settings".utf8))
                close()
                return
            }
            guard streams[id] == nil, let context else { return }
            let stream = AnyTLSStreamChannel(session: self, id: id, parent: context.channel)
            streams[id] = stream
            onStream(stream)
        }
    }

    // MARK: Back-pressure

    private func updateReadPause() {
        let full = streams.values.contains { $0.bufferedBytes > Self.streamBufferLimit }
        if full {
            readPaused = true
        } else if readPaused {
            readPaused = false
            if readWanted, let context {
                readWanted = false
                context.read()
            }
        }
    }

    /// A stream's pipeline read what it held.
    func streamDrained() {
        if readPaused { updateReadPause() }
    }

    // MARK: Streams (client)

    /// Opens a stream whose first data is `destination` (SOCKS form). The first stream of a session
    /// carries the settings frame in the same write (Go buffers settings and SYN until the address).
    package func openStream(to destination: Destination) throws -> AnyTLSStreamChannel {
        eventLoop.preconditionInEventLoop()
        guard !isClosed, let context else { throw AnyTLSError.closedPipe }
        var address = context.channel.allocator.buffer(capacity: 4 + 255 + 2)
        try AddressSerializer.socks.write(destination, to: &address)
        lastStreamID &+= 1
        let id = lastStreamID
        if id >= 2 && peerVersion >= 2 {
            // Go's deadline watcher: the server must answer the newest stream within 3 s.
            synAckTimer?.cancel()
            synAckTimer = eventLoop.scheduleTask(in: .seconds(AnyTLSModule.synAckTimeoutSeconds)) { [self] in
                synAckTimer = nil
                logger.debug("session closed: no SYN-ACK in \(AnyTLSModule.synAckTimeoutSeconds)s", flow: flowID)
                close()
            }
        }
        let stream = AnyTLSStreamChannel(session: self, id: id, parent: context.channel)
        streams[id] = stream
        var out = context.channel.allocator.buffer(capacity: 128)
        if !sentSettings {
            sentSettings = true
            let padding: AnyTLSPaddingScheme
            if case .client(let state) = role { padding = state.scheme } else { padding = .default }
            AnyTLSFrame.write(.settings, stream: 0, bytes: AnyTLSStringMap.encode([
                ("v", String(AnyTLSModule.protocolVersion)), ("client", AnyTLSModule.clientVersion), ("padding-md5", padding.md5),
            ]), to: &out)
            AnyTLSFrame.write(.syn, stream: id, to: &out)
            AnyTLSFrame.write(.push, stream: id, data: address, to: &out)
            writeConn(out, promise: nil)
        } else {
            AnyTLSFrame.write(.syn, stream: id, to: &out)
            writeConn(out, promise: nil)
            var push = context.channel.allocator.buffer(capacity: AnyTLSFrame.headerSize + address.readableBytes)
            AnyTLSFrame.write(.push, stream: id, data: address, to: &push)
            writeConn(push, promise: nil)
        }
        context.flush()
        return stream
    }

    /// Writes the authentication (client, before anything else): SHA-256 of the password, the
    /// padding length (the scheme's packet 0) and that many zeros, as one write.
    package func writeAuthentication(passwordHash: [UInt8], padding: AnyTLSPaddingScheme) {
        guard let context else { return }
        let length = max(0, padding.recordSizes(for: 0).first ?? 0)
        var out = context.channel.allocator.buffer(capacity: 34 + length)
        out.writeBytes(passwordHash)
        out.writeInteger(UInt16(truncatingIfNeeded: length))
        out.writeRepeatingByte(0, count: length)
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
    }

    // MARK: Frames out

    /// One data frame per 65,535 bytes of `data` (not flushed); the promise goes with the last.
    func writeData(stream id: UInt32, _ data: ByteBuffer, promise: EventLoopPromise<Void>?) {
        guard !isClosed, let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        var data = data
        while data.readableBytes > 0 {
            let chunk = data.readSlice(length: min(data.readableBytes, AnyTLSFrame.maximumData))!
            var frame = context.channel.allocator.buffer(capacity: AnyTLSFrame.headerSize + chunk.readableBytes)
            AnyTLSFrame.write(.push, stream: id, data: chunk, to: &frame)
            writeConn(frame, promise: data.readableBytes == 0 ? promise : nil)
        }
    }

    func flush() { context?.flush() }

    /// A stream closed on our side: FIN (Go's `streamClosed`), and it is forgotten.
    func streamClosed(_ id: UInt32) {
        guard streams.removeValue(forKey: id) != nil, !isClosed else { return }
        writeControl(.fin, stream: id)
    }

    /// Answers the stream's SYN (server, v2 peers only, as Go's `HandshakeSuccess`/`Failure`).
    func writeSynAck(stream id: UInt32, error: String?) {
        guard peerVersion >= 2, !isClosed else { return }
        writeControl(.synAck, stream: id, bytes: Array((error ?? "").utf8))
    }

    private func writeControl(_ command: AnyTLSCommand, stream: UInt32, bytes: [UInt8] = []) {
        guard let context else { return }
        var out = context.channel.allocator.buffer(capacity: AnyTLSFrame.headerSize + bytes.count)
        AnyTLSFrame.write(command, stream: stream, bytes: Array(bytes.prefix(AnyTLSFrame.maximumData)), to: &out)
        writeConn(out, promise: nil)
        context.flush()
    }

    /// Go's `writeConn`: a client's packets below the scheme's `stop` are cut to its sizes (check
    /// marks end the cutting once the payload is out) and the last piece is filled with a waste
    /// frame up to its size; a size with no payload left is a whole waste packet.
    private func writeConn(_ bytes: ByteBuffer, promise: EventLoopPromise<Void>?) {
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        guard sendPadding, case .client(let state) = role else {
            context.write(wrapOutboundOut(bytes), promise: promise)
            return
        }
        packetCount &+= 1
        let scheme = state.scheme
        guard packetCount < scheme.stop else {
            sendPadding = false
            context.write(wrapOutboundOut(bytes), promise: promise)
            return
        }
        var rest = bytes
        for size in scheme.recordSizes(for: packetCount) {
            let remaining = rest.readableBytes
            if size == AnyTLSPaddingScheme.checkMark {
                if remaining == 0 { break } else { continue }
            }
            if remaining > size {
                context.write(wrapOutboundOut(rest.readSlice(length: size)!), promise: nil)
            } else if remaining > 0 {
                let paddingLength = size - remaining - AnyTLSFrame.headerSize
                var last = rest
                if paddingLength > 0 {
                    last = context.channel.allocator.buffer(capacity: size)
                    last.writeBuffer(&rest)
                    AnyTLSFrame.writeWaste(length: paddingLength, to: &last)
                }
                rest = ByteBuffer()
                context.write(wrapOutboundOut(last), promise: nil)
            } else {
                var waste = context.channel.allocator.buffer(capacity: AnyTLSFrame.headerSize + size)
                AnyTLSFrame.writeWaste(length: size, to: &waste)
                context.write(wrapOutboundOut(waste), promise: nil)
            }
        }
        if rest.readableBytes > 0 {
            context.write(wrapOutboundOut(rest), promise: promise)
        } else {
            promise?.succeed(())
        }
    }

    // MARK: Close

    /// Ends the session: every stream closes without FIN, the connection closes, the pool is told.
    package func close() {
        guard !isClosed else { return }
        isClosed = true
        synAckTimer?.cancel()
        synAckTimer = nil
        let hook = onClose
        onClose = nil
        hook?()
        let open = streams
        streams.removeAll()
        for stream in open.values { stream.sessionClosed() }
        received = ByteBuffer()
        context?.close(promise: nil)
    }
}
