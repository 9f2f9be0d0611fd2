// The inbound's side of the mux command (sing-vmess mux.go) for UDP sessions, which is what XUDP
// clients (`packet_encoding: "xudp"`) open: the body is a stream of mux.cool frames;
//   new (network UDP, address): a UDP flow to the router, its datagrams in keep frames;
//   keep: a datagram for its session (to the frame's address, else the session's);
//   end: the session closes; keep-alive: nothing.
// Replies go back as keep frames with the reply's source address; a closed session sends end.
// TCP sessions (mux.cool multiplexing, v2ray clients with `mux` on): new (network TCP) opens a TCP
// flow to the router as a stream channel (Transport's `MuxStreamHandle`); keep frames carry its
// bytes both ways; the client's end is the stream's EOF; our side's EOF or close sends end once.
// mux.cool has no flow control: as Go's blocking pipe stops its read loop, a stream whose reader
// falls more than `pauseBytes` behind stops reading the connection until it catches up.
package import Adapter
package import NIOCore
import Net
import Transport

/// One mux frame from a client.
package struct VMessMuxFrame: Equatable {
    /// The session id, status (1 new, 2 keep, 3 end, 4 keep-alive) and option (1 data, 2 error).
    package var session: UInt16
    package var status: UInt8
    package var option: UInt8
    /// Present when the metadata carries an address (new frames, keep frames of XUDP).
    package var network: UInt8?
    package var destination: Destination?
    /// The frame's data (option data), a slice of the stream.
    package var data: ByteBuffer?

    /// Reads one whole frame off `buffer`: nil (nothing consumed) until it is all there.
    package static func read(from buffer: inout ByteBuffer) throws(VMessError) -> VMessMuxFrame? {
        var view = buffer
        guard let length = view.readInteger(as: UInt16.self), view.readableBytes >= Int(length) else { return nil }
        guard length >= 4 else { throw .badMuxFrame }
        var meta = view.readSlice(length: Int(length))!
        var frame = VMessMuxFrame(session: meta.readInteger()!, status: meta.readInteger()!, option: meta.readInteger()!)
        if meta.readableBytes > 0 {
            frame.network = meta.readInteger(as: UInt8.self)
            var offset = 0
            let bytes = Array(meta.readableBytesView)
            if !bytes.isEmpty { frame.destination = try VMessHeader.decodeAddress(bytes, offset: &offset) }
        }
        if frame.option & VMessXUDP.optionData != 0 {
            guard let count = view.readInteger(as: UInt16.self), let data = view.readSlice(length: Int(count)) else { return nil }
            frame.data = data
        }
        buffer.moveReaderIndex(to: view.readerIndex)
        return frame
    }

    init(session: UInt16, status: UInt8, option: UInt8) {
        self.session = session
        self.status = status
        self.option = option
    }
}

/// Last in a mux stream's pipeline: cuts frames and runs the UDP sessions. Loop-confined. Also
/// vless's mux command (sing-vmess serves both with `HandleMuxConnection`).
package final class VMessMuxServer: VMessDatagramSink, MuxStreamSession {
    let channel: any Channel
    private let metadata: FlowMetadata
    /// How the user appears in log lines (`[alice]`, or the index).
    private let userLogName: String
    private let logger: ContextLogger
    private let router: any FlowHandler
    private var sessions: [UInt16: VMessMuxPacketConnection] = [:]
    /// TCP sessions until their stream channel closes. After the client's end (its EOF, as Go's
    /// pipe) our bytes still go out, but no end frame; after ours, nothing more.
    private var streams: [UInt16: (handle: MuxStreamHandle, clientEnded: Bool, serverEnded: Bool)] = [:]
    private var pending = ByteBuffer()
    /// Reading stopped because a stream's reader is behind.
    private var paused = false
    static let pauseBytes = 1 << 20
    /// The largest data in one keep frame we write.
    static let maximumFrameData = 16 * 1024

    /// Installs the frame reader at the end of `channel` (the stream codec, if any, is in place;
    /// what reaches the tail is the frame stream). On its loop; the stream's close ends the sessions.
    package init(channel: any Channel, metadata: FlowMetadata, userLogName: String, logger: ContextLogger, router: any FlowHandler) throws {
        self.channel = channel
        self.metadata = metadata
        self.userLogName = userLogName
        self.logger = logger
        self.router = router
        try channel.pipeline.syncOperations.addHandler(VMessDatagramReader(sink: self), position: .last)
        channel.closeFuture.whenComplete { [self] _ in
            for session in Array(sessions.values) { session.close() }
            sessions.removeAll()
            let open = streams.values.map(\.handle)
            for index in streams.keys { streams[index]?.serverEnded = true }
            for stream in open { stream.terminate(nil) }
            streams.removeAll()
        }
    }

    func received(_ payload: ByteBuffer) {
        var bytes = payload
        if pending.readableBytes == 0 {
            pending = bytes
        } else {
            pending.writeBuffer(&bytes)
        }
        do {
            while let frame = try VMessMuxFrame.read(from: &pending) { try handle(frame) }
        } catch {
            logger.error("process connection from \(metadata.source.map(\.description) ?? "?"): mux connection closed: \(error)",
                                 flow: metadata.flowID)
            channel.close(promise: nil)
            return
        }
        if pending.readableBytes == 0 {
            pending = ByteBuffer()
        } else if pending.readerIndex > 1 << 16 {
            pending.discardReadBytes()
        }
    }

    private func handle(_ frame: VMessMuxFrame) throws(VMessError) {
        switch frame.status {
        case VMessXUDP.statusNew:
            guard let network = frame.network, let destination = frame.destination else { throw .badMuxFrame }
            switch network {
            case VMessModule.networkUDP:
                open(session: frame.session, destination: destination)
            case VMessModule.networkTCP:
                openStream(frame.session, destination: destination)
            default:
                throw .badMuxNetwork(network)
            }
        case VMessXUDP.statusKeep:
            if sessions[frame.session] == nil && streams[frame.session]?.clientEnded != false { writeEnd(frame.session, error: true) }
        case VMessXUDP.statusEnd:
            sessions.removeValue(forKey: frame.session)?.remoteClosed()
            if let stream = streams[frame.session], !stream.clientEnded {
                streams[frame.session]?.clientEnded = true
                if frame.option & VMessXUDP.optionError != 0 {
                    stream.handle.terminate(AdapterError(.other, "remote closed wth error"))
                } else {
                    stream.handle.receiveFinish()
                }
            }
            return
        case VMessXUDP.statusKeepAlive:
            return
        default:
            throw .badMuxStatus(frame.status)
        }
        guard let data = frame.data, data.readableBytes > 0 else { return }
        if let session = sessions[frame.session] {
            session.deliver(data, to: frame.destination.map { $0.unmappedIP } ?? session.destination)
        } else if let stream = streams[frame.session], !stream.clientEnded {
            stream.handle.receive(data)
            if stream.handle.unreadByteCount > Self.pauseBytes { pause() }
        }
    }

    // MARK: TCP sessions

    private func openStream(_ id: UInt16, destination: Destination) {
        if let old = streams.removeValue(forKey: id) { old.handle.terminate(nil) }
        let handle = MuxStreamHandle(session: self, id: UInt32(id), parent: channel)
        streams[id] = (handle, false, false)
        var flow = metadata
        flow.flowID = FlowID()
        flow.network = .tcp
        flow.destination = destination
        logger.info("[\(userLogName)] inbound connection to \(destination)", flow: flow.flowID)
        do {
            // The router takes flows whose early bytes wait in a FlowBufferHandler, autoRead off.
            try handle.channel.pipeline.syncOperations.addHandler(FlowBufferHandler())
        } catch {
            handle.channel.close(promise: nil)
            return
        }
        router.handleTCP(handle.channel, metadata: flow, responder: nil)
    }

    private func pause() {
        guard !paused else { return }
        paused = true
        _ = try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
    }

    package func send(_ data: inout ByteBuffer, on id: UInt32) {
        let session = UInt16(truncatingIfNeeded: id)
        guard let stream = streams[session], !stream.serverEnded, channel.isActive else {
            data.moveReaderIndex(to: data.writerIndex)
            return
        }
        while data.readableBytes > 0 {
            let piece = data.readSlice(length: min(data.readableBytes, Self.maximumFrameData))!
            var frame = channel.allocator.buffer(capacity: 8)
            frame.writeInteger(UInt16(4))
            frame.writeInteger(session)
            frame.writeInteger(VMessXUDP.statusKeep)
            frame.writeInteger(VMessXUDP.optionData)
            frame.writeInteger(UInt16(piece.readableBytes))
            channel.write(frame, promise: nil)
            channel.write(piece, promise: nil)
        }
    }

    /// Our side's EOF: mux.cool has no half-close, so the session ends here (Go closes the conn).
    package func finishOutput(_ id: UInt32) {
        let session = UInt16(truncatingIfNeeded: id)
        guard let stream = streams[session], !stream.serverEnded else { return }
        streams[session]?.serverEnded = true
        if !stream.clientEnded { writeEnd(session, error: false) }
    }

    package func closeStream(_ id: UInt32, reset: Bool) {
        let session = UInt16(truncatingIfNeeded: id)
        guard let stream = streams.removeValue(forKey: session) else { return }
        if !stream.serverEnded && !stream.clientEnded { writeEnd(session, error: reset) }
        resumeIfCaughtUp()
    }

    package func consumed(_ byteCount: Int, on id: UInt32) { resumeIfCaughtUp() }

    private func resumeIfCaughtUp() {
        guard paused, channel.isActive, !streams.values.contains(where: { $0.handle.unreadByteCount > Self.pauseBytes / 4 }) else { return }
        paused = false
        _ = try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        channel.read()
    }

    package func flushFrames() { channel.flush() }

    package var canWriteFrames: Bool { channel.isWritable }

    func writabilityChanged() {
        for stream in streams.values { stream.handle.sessionWritabilityChanged() }
    }

    private func open(session id: UInt16, destination: Destination) {
        let session = VMessMuxPacketConnection(server: self, id: id, destination: destination)
        sessions[id] = session
        var flow = metadata
        flow.flowID = FlowID()
        flow.network = .udp
        flow.destination = destination
        logger.info("[\(userLogName)] inbound packet connection to \(destination)", flow: flow.flowID)
        router.handleUDP(session, metadata: flow)
    }

    /// A reply for session `id` from `source`.
    func write(_ payload: ByteBuffer, session id: UInt16, from source: Destination) {
        guard channel.isWritable, payload.readableBytes <= Int(UInt16.max), let address = try? VMessHeader.encodeAddress(source) else { return }
        var frame = channel.allocator.buffer(capacity: 9 + address.count + payload.readableBytes)
        frame.writeInteger(UInt16(5 + address.count))
        frame.writeInteger(id)
        frame.writeInteger(VMessXUDP.statusKeep)
        frame.writeInteger(VMessXUDP.optionData)
        frame.writeInteger(VMessModule.networkUDP)
        frame.writeBytes(address)
        frame.writeInteger(UInt16(payload.readableBytes))
        frame.writeImmutableBuffer(payload)
        channel.write(frame, promise: nil)
    }

    func flush() { channel.flush() }

    /// Our side closed session `id`: an end frame, unless the client ended it.
    func closed(_ id: UInt16) {
        guard sessions.removeValue(forKey: id) != nil else { return }
        writeEnd(id, error: false)
        channel.flush()
    }

    private func writeEnd(_ id: UInt16, error: Bool) {
        guard channel.isActive else { return }
        var frame = channel.allocator.buffer(capacity: 6)
        frame.writeInteger(UInt16(4))
        frame.writeInteger(id)
        frame.writeInteger(VMessXUDP.statusEnd)
        frame.writeInteger(error ? VMessXUDP.optionError : 0)
        channel.writeAndFlush(frame, promise: nil)
    }
}

/// One UDP session inside a mux stream, for the router. Loop-confined to the stream's loop.
final class VMessMuxPacketConnection: ControlledPacketConnection, @unchecked Sendable {
    private weak var server: VMessMuxServer?
    let id: UInt16
    let destination: Destination
    let control: any Channel
    var eventLoop: any EventLoop { control.eventLoop }
    var closeFuture: EventLoopFuture<Void> { closedPromise.futureResult }
    private let closedPromise: EventLoopPromise<Void>
    private var inbox = PacketInbox(maximumCount: 512, maximumBytes: 256 * 1024)
    private var isClosed = false

    init(server: VMessMuxServer, id: UInt16, destination: Destination) {
        self.server = server
        self.id = id
        self.destination = destination
        self.control = server.channel
        self.closedPromise = server.channel.eventLoop.makePromise()
    }

    func deliver(_ payload: ByteBuffer, to target: Destination) { inbox.deliver(payload, from: target) }

    func setReceiver(_ receiver: any PacketReceiver) {
        guard !isClosed else { receiver.packetConnectionClosed(); return }
        inbox.install(receiver)
        _ = try? control.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        control.read()
    }

    func writePacket(_ payload: ByteBuffer, to destination: Destination) {
        guard !isClosed else { return }
        server?.write(payload, session: id, from: destination)
    }

    func flush() { server?.flush() }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        server?.closed(id)
        inbox.close()?.packetConnectionClosed()
        closedPromise.succeed(())
    }

    /// The client ended the session.
    func remoteClosed() {
        server = nil
        close()
    }
}

extension Destination {
    /// An IPv4-mapped IPv6 address as IPv4 (Go's `Unwrap`).
    var unmappedIP: Destination {
        guard let ip else { return self }
        return Destination(ip: ip.unmapped, port: port)
    }
}
