// Sessions on an EmbeddedChannel: the client's padding of its first packets, the server's answers
// (padding update, server settings, heartbeats, the alert for a SYN before settings), streams
// opening and closing, garbage, and the client pool's idle sweep.
import Adapter
import AnyTLS
import NIOCore
import NIOEmbedded
import Testing
import TestSupport

private let quiet = ContextLogger(core: .disabled, name: "")

/// Collects what a stream's pipeline reads.
private final class Collector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    var bytes: [UInt8] = []
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        bytes += Array(unwrapInboundIn(data).readableBytesView)
    }
}

private func frames(_ buffers: [ByteBuffer]) -> [AnyTLSReceivedFrame] {
    var all = ByteBuffer()
    for var buffer in buffers { all.writeBuffer(&buffer) }
    var decoder = AnyTLSFrameDecoder()
    var out: [AnyTLSReceivedFrame] = []
    while let frame = decoder.next(from: &all) { out.append(frame) }
    #expect(all.readableBytes == 0, "bytes after the last whole frame")
    return out
}

private func frame(_ command: AnyTLSCommand, _ stream: UInt32, _ bytes: [UInt8] = []) -> ByteBuffer {
    var out = ByteBuffer()
    AnyTLSFrame.write(command, stream: stream, bytes: bytes, to: &out)
    return out
}

private func outbound(_ channel: EmbeddedChannel) throws -> [ByteBuffer] {
    var out: [ByteBuffer] = []
    while let buffer = try channel.readOutbound(as: ByteBuffer.self) { out.append(buffer) }
    return out
}

@Suite struct AnyTLSSessionTests {
    @Test func clientPadsItsFirstPacketsByTheScheme() throws {
        let scheme = try #require(AnyTLSPaddingScheme(Array("stop=3\n0=5-5\n1=50-50\n2=10-10,c,20-20".utf8)))
        let state = AnyTLSPaddingState(scheme)
        let channel = EmbeddedChannel()
        let session = AnyTLSSession(role: .client(state), eventLoop: channel.eventLoop, logger: quiet)
        try channel.pipeline.syncOperations.addHandler(session)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()

        session.writeAuthentication(passwordHash: AnyTLSModule.passwordHash("pw"), padding: scheme)
        let auth = try outbound(channel)
        // sha256(pw) ‖ padding length 5 ‖ 5 zeros
        #expect(auth.map(\.readableBytes) == [39])
        #expect(Array(auth[0].readableBytesView.dropFirst(32)) == [0, 5, 0, 0, 0, 0, 0])

        let stream = try session.openStream(to: Destination(ip: .v4(0x0102_0304), port: 80))
        // Packet 1 (settings 81 + SYN 7 + PSH 14 = 102 bytes) cut to the scheme's 50, the rest after.
        let first = try outbound(channel)
        #expect(first.map(\.readableBytes) == [50, 52])
        let opened = frames(first)
        #expect(opened.map(\.command) == [AnyTLSCommand.settings.rawValue, AnyTLSCommand.syn.rawValue, AnyTLSCommand.push.rawValue])
        #expect(AnyTLSStringMap.parse(Array(opened[0].data.readableBytesView))
                == ["v": "2", "client": "sing-anytls/0.0.11", "padding-md5": scheme.md5])
        #expect(opened[1].stream == 1)
        // The stream's first data: its destination, SOCKS form (ATYP 1, 1.2.3.4, port 80).
        #expect(Array(opened[2].data.readableBytesView) == [1, 1, 2, 3, 4, 0, 80])

        let collector = Collector()
        try stream.pipeline.syncOperations.addHandler(collector)
        stream.activate()
        try stream.writeAndFlush(ByteBuffer(bytes: [1, 2, 3, 4, 5])).wait()
        // Packet 2: PSH of 12 bytes cut at 10; the check mark sees 2 left; 20 = 2 + waste frame of 11.
        let second = try outbound(channel)
        #expect(second.map(\.readableBytes) == [10, 20])
        let data = frames(second)
        #expect(data.map(\.command) == [AnyTLSCommand.push.rawValue, AnyTLSCommand.waste.rawValue])
        #expect(data[1].length == 11)
        // Packet 3 is `stop`: unshaped from here.
        try stream.writeAndFlush(ByteBuffer(bytes: [6])).wait()
        #expect(try outbound(channel).map(\.readableBytes) == [8])

        // Server data reaches the stream; its FIN ends the stream without an answer.
        try channel.writeInbound(frame(.push, 1, [9, 9]))
        #expect(collector.bytes == [9, 9])
        try channel.writeInbound(frame(.fin, 1))
        channel.embeddedEventLoop.run()
        #expect(!stream.isActive)
        #expect(try outbound(channel).isEmpty)

        // A second stream on the same session: SYN and address as separate writes; closing sends FIN.
        let next = try session.openStream(to: Destination(domain: "example.com", port: 443))
        #expect(frames(try outbound(channel)).map { [$0.command, UInt8($0.stream)] } == [[1, 2], [2, 2]])
        next.activate()
        try next.close().wait()
        #expect(frames(try outbound(channel)).map { [$0.command, UInt8($0.stream)] } == [[3, 2]])
        #expect(session.streamCount == 0)
    }

    @Test func clientTakesServerSettingsAlertsAndSynAckErrors() throws {
        let state = AnyTLSPaddingState()
        let channel = EmbeddedChannel()
        let session = AnyTLSSession(role: .client(state), eventLoop: channel.eventLoop, logger: quiet)
        try channel.pipeline.syncOperations.addHandler(session)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let stream = try session.openStream(to: Destination(ip: .v4(1), port: 1))
        stream.activate()
        _ = try outbound(channel)
        // A new scheme from the server replaces the outbound's; a bad one is ignored.
        try channel.writeInbound(frame(.updatePaddingScheme, 0, Array("stop=2\n1=10-10".utf8)))
        #expect(state.scheme.stop == 2)
        try channel.writeInbound(frame(.updatePaddingScheme, 0, Array("nonsense".utf8)))
        #expect(state.scheme.stop == 2)
        try channel.writeInbound(frame(.serverSettings, 0, Array("v=2".utf8)))
        #expect(session.peerVersion == 2)
        // A heartbeat is answered with the same stream id.
        try channel.writeInbound(frame(.heartRequest, 7))
        #expect(frames(try outbound(channel)).map(\.command) == [AnyTLSCommand.heartResponse.rawValue])
        // A SYN-ACK with text fails the stream (`remote: …`) and sends FIN.
        let failed = channel.eventLoop.makePromise(of: Void.self)
        stream.closeFuture.cascade(to: failed)
        try channel.writeInbound(frame(.synAck, 1, Array("dial tcp: refused".utf8)))
        channel.embeddedEventLoop.run()
        #expect(!stream.isActive)
        #expect(frames(try outbound(channel)).map(\.command) == [AnyTLSCommand.fin.rawValue])
        // Before anyone reads (the router has not installed its relay yet) the error waits; the
        // FIN goes out at once; the first read hears the error and the stream ends.
        let late = try session.openStream(to: Destination(ip: .v4(1), port: 2))
        let catcher = ErrorCatcher()
        try late.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
        try late.pipeline.syncOperations.addHandler(catcher)
        late.activate()
        _ = try outbound(channel)
        try channel.writeInbound(frame(.synAck, late.streamID, Array("refused".utf8)))
        #expect(late.isActive && catcher.errors.isEmpty)
        #expect(frames(try outbound(channel)).map(\.command) == [AnyTLSCommand.fin.rawValue])
        late.read()
        channel.embeddedEventLoop.run()
        #expect(catcher.errors == ["remote: refused"] && !late.isActive)
        // An alert ends the session.
        try channel.writeInbound(frame(.alert, 0, Array("bye".utf8)))
        #expect(session.isClosed)
        #expect(throws: AnyTLSError.self) { _ = try session.openStream(to: Destination(ip: .v4(1), port: 1)) }
    }

    @Test func serverAnswersSettingsAndServesStreams() throws {
        let channel = EmbeddedChannel()
        var opened: [AnyTLSStreamChannel] = []
        let collector = Collector()
        let session = AnyTLSSession(role: .server(.default, onStream: { stream in
            opened.append(stream)
            try? stream.pipeline.syncOperations.addHandler(collector)
            stream.activate()
        }), eventLoop: channel.eventLoop, logger: quiet)
        try channel.pipeline.syncOperations.addHandler(session)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()

        try channel.writeInbound(frame(.settings, 0, Array("v=2\nclient=test\npadding-md5=0000".utf8)))
        let answers = frames(try outbound(channel))
        #expect(answers.map(\.command) == [AnyTLSCommand.updatePaddingScheme.rawValue, AnyTLSCommand.serverSettings.rawValue])
        #expect(Array(answers[0].data.readableBytesView) == AnyTLSPaddingScheme.default.raw)
        #expect(String(buffer: answers[1].data) == "v=2")

        var bytes = frame(.syn, 1)
        var push = frame(.push, 1, [1, 2, 3])
        bytes.writeBuffer(&push)
        var again = frame(.syn, 1)  // a repeated SYN opens nothing
        bytes.writeBuffer(&again)
        try channel.writeInbound(bytes)
        #expect(opened.count == 1 && collector.bytes == [1, 2, 3])
        try channel.writeInbound(frame(.push, 99, [7]))  // unknown stream: dropped
        #expect(collector.bytes == [1, 2, 3])
        try channel.writeInbound(frame(.fin, 1))
        channel.embeddedEventLoop.run()
        #expect(!opened[0].isActive && session.streamCount == 0)
        #expect(try outbound(channel).isEmpty)
    }

    @Test func serverAlertsOnSynBeforeSettings() throws {
        let channel = EmbeddedChannel()
        var opened = 0
        let session = AnyTLSSession(role: .server(.default, onStream: { _ in opened += 1 }), eventLoop: channel.eventLoop, logger: quiet)
        try channel.pipeline.syncOperations.addHandler(session)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(frame(.syn, 1))
        let answer = frames(try outbound(channel))
        #expect(answer.map(\.command) == [AnyTLSCommand.alert.rawValue])
        #expect(String(buffer: answer[0].data) == "client did not send its settings")
        #expect(opened == 0 && session.isClosed && !channel.isActive)
    }

    /// Random bytes and random frames after settings never trap a server session.
    @Test func garbageNeverTraps() throws {
        var generator = SeededGenerator(seed: 42)
        for round in 0..<300 {
            let channel = EmbeddedChannel()
            let session = AnyTLSSession(role: .server(.default, onStream: { stream in stream.activate() }),
                                        eventLoop: channel.eventLoop, logger: quiet)
            try channel.pipeline.syncOperations.addHandler(session)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            if round % 2 == 0 { try channel.writeInbound(frame(.settings, 0, Array("v=2".utf8))) }
            for _ in 0..<8 where channel.isActive {
                var bytes = ByteBuffer()
                if round % 3 == 0 {
                    for _ in 0..<Int.random(in: 1...300, using: &generator) { bytes.writeInteger(UInt8.random(in: 0...255, using: &generator)) }
                } else {
                    let command = UInt8.random(in: 0...12, using: &generator)
                    let payload = (0..<Int.random(in: 0...40, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
                    AnyTLSFrame.writeHeader(command, stream: UInt32.random(in: 0...3, using: &generator),
                                            length: Int.random(in: 0...60, using: &generator), to: &bytes)
                    bytes.writeBytes(payload)
                }
                _ = try? channel.writeInbound(bytes)
            }
            _ = try? outbound(channel)
            channel.embeddedEventLoop.run()
            _ = try? channel.finish()
        }
    }

    /// Go's idle sweep: newest first; an expired session is kept (idle time restarted) only while
    /// fewer than `min_idle_session` were kept; a stream takes the newest idle session.
    @Test func poolSweepsIdleSessionsLikeGo() throws {
        let loop = EmbeddedEventLoop()
        let pool = AnyTLSSessionPool(checkInterval: .seconds(1), idleTimeout: .seconds(10), minIdleSession: 1)
        #expect(pool.checkInterval == .seconds(30) && pool.idleTimeout == .seconds(10))
        let sessions = (0..<3).map { _ in AnyTLSSession(role: .client(AnyTLSPaddingState()), eventLoop: loop, logger: quiet) }
        for session in sessions { #expect(pool.add(session)) }
        for session in sessions { pool.streamEnded(on: session) }
        #expect(pool.idleCount == 3 && pool.sessionCount == 3)
        #expect(pool.takeIdle(on: loop) === sessions[2])
        pool.streamEnded(on: sessions[2])
        pool.sweep(now: .now())  // none expired
        #expect(pool.idleCount == 3)
        pool.sweep(now: .now() + .seconds(11))
        loop.run()
        #expect(pool.idleCount == 1 && pool.sessionCount == 1)
        #expect(!sessions[2].isClosed && sessions[1].isClosed && sessions[0].isClosed)
        pool.close()
        loop.run()
        #expect(sessions[2].isClosed && pool.sessionCount == 0 && !pool.add(sessions[0]))
    }
}

/// Records the errors a stream's pipeline hears.
private final class ErrorCatcher: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    var errors: [String] = []
    func errorCaught(context: ChannelHandlerContext, error: any Error) { errors.append("\(error)") }
}

/// Counts `read()` calls that reach the connection (from the session above it).
private final class ReadCounter: ChannelOutboundHandler, @unchecked Sendable {
    typealias OutboundIn = ByteBuffer
    var reads = 0
    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }
}

@Suite struct AnyTLSSessionFlowTests {
    /// Go's deadline watcher: a v2 session whose newest stream (id ≥ 2) gets no SYN-ACK in 3 s closes.
    @Test func missingSynAckClosesTheSession() throws {
        let channel = EmbeddedChannel()
        let session = AnyTLSSession(role: .client(AnyTLSPaddingState()), eventLoop: channel.eventLoop, logger: quiet)
        try channel.pipeline.syncOperations.addHandler(session)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(frame(.serverSettings, 0, Array("v=2".utf8)))
        _ = try session.openStream(to: Destination(ip: .v4(1), port: 1))
        channel.embeddedEventLoop.advanceTime(by: .seconds(5))
        #expect(!session.isClosed, "stream 1 has no watcher")
        _ = try session.openStream(to: Destination(ip: .v4(1), port: 1))
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        try channel.writeInbound(frame(.synAck, 2))
        channel.embeddedEventLoop.advanceTime(by: .seconds(5))
        #expect(!session.isClosed, "answered in time")
        _ = try session.openStream(to: Destination(ip: .v4(1), port: 1))
        channel.embeddedEventLoop.advanceTime(by: .seconds(3))
        #expect(session.isClosed && !channel.isActive)
    }

    /// A stream that is not read holds the connection's reading once it holds more than the limit;
    /// reading it lets the connection be read again.
    @Test func unreadStreamHoldsTheConnection() throws {
        let channel = EmbeddedChannel()
        let counter = ReadCounter()
        var opened: AnyTLSStreamChannel?
        let session = AnyTLSSession(role: .server(.default, onStream: { stream in
            try? stream.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
            stream.activate()
            opened = stream
        }), eventLoop: channel.eventLoop, logger: quiet)
        try channel.pipeline.syncOperations.addHandlers([counter, session])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(frame(.settings, 0, Array("v=2\npadding-md5=\(AnyTLSPaddingScheme.default.md5)".utf8)))
        try channel.writeInbound(frame(.syn, 1))
        let stream = try #require(opened)
        let chunk = [UInt8](repeating: 7, count: 60_000)
        for _ in 0..<20 { try channel.writeInbound(frame(.push, 1, chunk)) }
        #expect(stream.bufferedBytes == 1_200_000)
        let before = counter.reads
        channel.read()
        #expect(counter.reads == before, "held while the stream holds 1.2 MB")
        stream.read()
        #expect(stream.bufferedBytes == 0)
        #expect(counter.reads == before + 1, "the held read goes out once drained")
        channel.read()
        #expect(counter.reads == before + 2)
    }
}

/// Takes nothing: the auth tests only look at whether the connection survives.
private final class NoFlows: FlowHandler, @unchecked Sendable {
    var tcp = 0
    func handleTCP(_ channel: any Channel, metadata: FlowMetadata, responder: (any HandshakeResponder)?) { tcp += 1 }
    func handleUDP(_ connection: any PacketConnection, metadata: FlowMetadata) {}
}

@Suite struct AnyTLSServerHandlerTests {
    private func connection() throws -> (EmbeddedChannel, NoFlows) {
        let flows = NoFlows()
        let context = AnyTLSServerContext(tag: "in", users: [AnyTLSModule.passwordHash("pw"): "alice"], padding: .default,
                                          listenOptions: nil, logger: quiet)
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(AnyTLSServerHandler(context: context, flowID: FlowID(), flowHandler: flows))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (channel, flows)
    }

    /// The first delivery decides, as Go's single read: short, unknown or cut-off authentications close.
    @Test(arguments: [1, 10, 31, 32, 33, 34 + 29])
    func badAuthenticationCloses(length: Int) throws {
        let (channel, _) = try connection()
        var auth = AnyTLSModule.passwordHash("pw") + [0, 30] + [UInt8](repeating: 0, count: 30)
        if length == 32 { auth = AnyTLSModule.passwordHash("other") + [0, 0] } else { auth = Array(auth.prefix(length)) }
        try channel.writeInbound(ByteBuffer(bytes: auth))
        #expect(!channel.isActive, "\(length) bytes")
    }

    /// A whole authentication with frames behind it starts the session in the same delivery.
    @Test func goodAuthenticationStartsTheSession() throws {
        let (channel, flows) = try connection()
        var bytes = ByteBuffer(bytes: AnyTLSModule.passwordHash("pw") + [0, 2, 0, 0])
        AnyTLSFrame.write(.settings, stream: 0, bytes: Array("v=2\npadding-md5=\(AnyTLSPaddingScheme.default.md5)".utf8), to: &bytes)
        AnyTLSFrame.write(.syn, stream: 1, to: &bytes)
        AnyTLSFrame.write(.push, stream: 1, bytes: [1, 127, 0, 0, 1, 0, 80, 0xaa], to: &bytes)
        try channel.writeInbound(bytes)
        channel.embeddedEventLoop.run()
        #expect(channel.isActive && flows.tcp == 1)
        #expect(frames(try outbound(channel)).map(\.command) == [AnyTLSCommand.serverSettings.rawValue])
    }

    /// Random first deliveries never trap and never reach the router.
    @Test func randomFirstBytes() throws {
        var generator = SeededGenerator(seed: 9)
        for _ in 0..<200 {
            let (channel, flows) = try connection()
            let bytes = (0..<Int.random(in: 1...200, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            try channel.writeInbound(ByteBuffer(bytes: bytes))
            #expect(!channel.isActive && flows.tcp == 0)
        }
    }
}
