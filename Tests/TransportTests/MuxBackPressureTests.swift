// Back-pressure of sing-mux streams, one test per multiplexer and direction, on EmbeddedChannels:
// - yamux: a peer that grants no window makes the stream unwritable with at most its high-water
//   mark plus one write queued, writable again once the peer grants; an unread stream gets no
//   window update, so the peer can send one window (256 KiB) and no more.
// - smux v1 (no windows): the stream follows the session connection's writability; unread bytes
//   above the session's receive budget hold the connection's reads.
// - h2mux (NIOHTTP2 on both ends, bytes ferried by hand): a server that grants no window makes the
//   stream unwritable with a bounded number of bytes in our process; an unread stream returns no
//   window, so the server can send at most one stream window; as the stream is read the window
//   comes back (both ways: our client stream, and our server's stream of a NIOHTTP2 client).
// Every transfer ends byte-exact (FNV-1a over what was sent and what arrived).
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import Testing
@testable import Transport

/// Counts `read()` calls that reach the connection.
private final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = Any
    var reads = 0
    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }
}

/// Hashes what a stream's pipeline reads.
private final class HashingReader: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    var hash = StreamHash()
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { hash.add(unwrapInboundIn(data)) }
}

/// The server's end of an h2mux pair: answers each stream 200, collects frames, grants nothing.
private final class H2Peer: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame
    var frames: [HTTP2Frame] = []
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if case .headers = frame.payload {
            context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: frame.streamID,
                                                             payload: .headers(.init(headers: HPACKHeaders([(":status", "200")]))))), promise: nil)
        }
        frames.append(frame)
    }
}

@Suite struct MuxBackPressureTests {
    /// yamux data frame payloads of stream `id` in `bytes`, hashed; window updates counted.
    private func yamuxFrames(_ bytes: [UInt8], id: UInt32, into hash: inout StreamHash) -> (data: Int, windowUpdates: [UInt32]) {
        var buffer = ByteBuffer(bytes: bytes)
        var data = 0
        var updates: [UInt32] = []
        while buffer.readableBytes >= 12 {
            let type = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self)!
            let streamID = buffer.getInteger(at: buffer.readerIndex + 4, as: UInt32.self)!
            let length = Int(buffer.getInteger(at: buffer.readerIndex + 8, as: UInt32.self)!)
            buffer.moveReaderIndex(forwardBy: 12)
            if type == 0 {
                let payload = buffer.readSlice(length: length)!
                if streamID == id { hash.add(payload); data += length }
            } else if type == 1, streamID == id, length > 0 {
                updates.append(UInt32(length))
            }
        }
        return (data, updates)
    }

    @Test func yamuxPeerWithoutWindowMakesStreamUnwritable() throws {
        let harness = try SessionHarness(YamuxSession(client: false))
        try harness.feed(YamuxSessionTests.header(1, flags: 1, id: 1, length: 0))  // SYN
        let stream = try #require(harness.streams.first)
        _ = try harness.written()
        let chunkSize = 64 * 1024
        let high = 64 * 1024  // the stream's default high-water mark
        var sent = StreamHash(), arrived = StreamHash()
        var index = 0, stalls = 0, mostHeld = 0
        while index < 64 {
            if stream.isWritable {
                let chunk = testChunk(index, size: chunkSize)
                sent.add(chunk)
                stream.writeAndFlush(chunk, promise: nil)
                mostHeld = max(mostHeld, stream.pendingBytes)
                index += 1
                continue
            }
            // The 256 KiB window is spent: the rest waits in the stream, capped by the mark.
            stalls += 1
            #expect(stream.pendingBytes > high)
            _ = yamuxFrames(try harness.written(), id: 1, into: &arrived)
            try harness.feed(YamuxSessionTests.header(1, flags: 0, id: 1, length: 256 * 1024))
            #expect(stream.isWritable == (stream.pendingBytes < 32 * 1024))
            if !stream.isWritable { try harness.feed(YamuxSessionTests.header(1, flags: 0, id: 1, length: 256 * 1024)) }
            #expect(stream.isWritable)
        }
        try harness.feed(YamuxSessionTests.header(1, flags: 0, id: 1, length: 4 << 20))
        _ = yamuxFrames(try harness.written(), id: 1, into: &arrived)
        #expect(stalls >= 4)
        #expect(mostHeld <= high + chunkSize, "held \(mostHeld)")
        #expect(stream.pendingBytes == 0 && arrived == sent, "\(arrived.count) of \(sent.count)")
        _ = try? harness.channel.finish()
    }

    @Test func yamuxUnreadStreamWithholdsWindow() throws {
        let harness = try SessionHarness(YamuxSession(client: false))
        try harness.feed(YamuxSessionTests.header(1, flags: 1, id: 1, length: 0))
        let stream = try #require(harness.streams.first)
        let reader = HashingReader()
        try stream.pipeline.syncOperations.addHandler(reader)
        _ = try harness.written()
        var sent = StreamHash(), ignored = StreamHash()
        // One whole window, unread: no update goes out.
        for index in 0..<4 {
            let chunk = testChunk(index, size: 64 * 1024)
            sent.add(chunk)
            try harness.feed(YamuxSessionTests.header(0, flags: 0, id: 1, length: 64 * 1024) + Array(chunk.readableBytesView))
        }
        #expect(stream.unreadByteCount == 256 * 1024)
        #expect(yamuxFrames(try harness.written(), id: 1, into: &ignored).windowUpdates.isEmpty)
        // A byte past the window is Go's "recv window exceeded".
        #expect(throws: MuxError.self) { try harness.feed(YamuxSessionTests.header(0, flags: 0, id: 1, length: 1) + [0]) }
        _ = try? harness.channel.finish()

        // Again, read this time: the window comes back as the reader takes the bytes.
        let second = try SessionHarness(YamuxSession(client: false))
        try second.feed(YamuxSessionTests.header(1, flags: 1, id: 1, length: 0))
        let stream2 = try #require(second.streams.first)
        let reader2 = HashingReader()
        try stream2.pipeline.syncOperations.addHandler(reader2)
        _ = try second.written()
        var granted = 256 * 1024
        var index = 0
        var sent2 = StreamHash()
        while index < 32 {
            if granted >= 64 * 1024 {
                let chunk = testChunk(index, size: 64 * 1024)
                sent2.add(chunk)
                try second.feed(YamuxSessionTests.header(0, flags: 0, id: 1, length: 64 * 1024) + Array(chunk.readableBytesView))
                granted -= 64 * 1024
                index += 1
                continue
            }
            #expect(stream2.unreadByteCount <= 256 * 1024)
            while stream2.unreadByteCount > 0 { stream2.read() }
            granted += yamuxFrames(try second.written(), id: 1, into: &ignored).windowUpdates.reduce(0) { $0 + Int($1) }
        }
        while stream2.unreadByteCount > 0 { stream2.read() }
        #expect(reader2.hash == sent2 && reader.hash.count == 0 && sent.count == 256 * 1024)
        _ = try? second.channel.finish()
    }

    @Test func smuxStreamFollowsTheConnection() throws {
        let harness = try SessionHarness(SmuxSession(client: false))
        try harness.feed([1, 0, 0, 0, 3, 0, 0, 0])  // SYN sid 3
        let stream = try #require(harness.streams.first)
        #expect(stream.isWritable)
        harness.channel.isWritable = false
        harness.channel.pipeline.fireChannelWritabilityChanged()
        #expect(!stream.isWritable)
        harness.channel.isWritable = true
        harness.channel.pipeline.fireChannelWritabilityChanged()
        #expect(stream.isWritable)
        // No window: what the stream takes goes to the connection at once, nothing waits in it.
        stream.writeAndFlush(testChunk(0, size: 100_000), promise: nil)
        let written = try harness.written()
        #expect(stream.pendingBytes == 0 && written.count == 100_000 + 4 * 8)
        _ = try? harness.channel.finish()
    }

    @Test func smuxUnreadBytesHoldTheConnection() throws {
        let channel = EmbeddedChannel()
        let counter = ReadCounter()
        let session = SmuxSession(client: false)
        var streams: [MuxStreamChannel] = []
        session.onStream = { streams.append($0) }
        try channel.pipeline.syncOperations.addHandlers([counter, session])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(ByteBuffer(bytes: [1, 0, 0, 0, 3, 0, 0, 0]))
        let stream = try #require(streams.first)
        let reader = HashingReader()
        try stream.pipeline.syncOperations.addHandler(reader)
        var sent = StreamHash()
        // 4 MiB + 32 KiB unread: past the session's budget.
        for index in 0..<129 {
            let chunk = testChunk(index, size: 32 * 1024)
            sent.add(chunk)
            var frame = ByteBuffer(bytes: [1, 2, 0, 0x80, 3, 0, 0, 0])
            frame.writeImmutableBuffer(chunk)
            try channel.writeInbound(frame)
        }
        let before = counter.reads
        channel.read()
        #expect(counter.reads == before, "held while the stream holds more than the budget")
        while stream.unreadByteCount > 0 { stream.read() }
        #expect(counter.reads == before + 1, "the held read goes out once drained")
        #expect(reader.hash == sent)
        _ = try? channel.finish()
    }

    /// h2mux client stream against a NIOHTTP2 server that grants no window, then grants.
    @Test func h2muxServerWithoutWindowMakesStreamUnwritable() throws {
        let loop = EmbeddedEventLoop()
        let client = EmbeddedChannel(loop: loop), server = EmbeddedChannel(loop: loop)
        let peer = H2Peer()
        try server.pipeline.syncOperations.addHandler(NIOHTTP2Handler(mode: .server))
        try server.pipeline.syncOperations.addHandler(peer)
        let multiplexer = try H2MuxSession.addClient(to: client)
        try server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
        func pump() throws {
            var moved = true
            while moved {
                moved = false
                loop.run()  // NIOHTTP2 creates stream channels from tasks on the loop
                while let data = try client.readOutbound(as: IOData.self) {
                    if case .byteBuffer(let bytes) = data { try server.writeInbound(bytes); moved = true }
                }
                while let data = try server.readOutbound(as: IOData.self) {
                    if case .byteBuffer(let bytes) = data { try client.writeInbound(bytes); moved = true }
                }
            }
        }
        let opened = H2MuxSession.openStream(multiplexer, on: loop)
        try pump()
        let stream = try opened.wait()
        let reader = HashingReader()
        try stream.pipeline.syncOperations.addHandler(reader)
        try pump()
        var sent = StreamHash(), arrived = StreamHash()
        func collect() {
            for frame in peer.frames {
                if case .data(let data) = frame.payload, case .byteBuffer(let bytes) = data.data { arrived.add(bytes) }
            }
            peer.frames.removeAll()
        }
        var index = 0, stalls = 0, mostHeld = 0
        while index < 64 {
            if stream.isWritable {
                let chunk = testChunk(index, size: 64 * 1024)
                sent.add(chunk)
                stream.writeAndFlush(chunk, promise: nil)
                index += 1
                try pump()
                collect()
                mostHeld = max(mostHeld, sent.count - arrived.count)
                continue
            }
            // The server's 64 KiB window is spent; NIOHTTP2 holds the rest in the child channel.
            stalls += 1
            server.write(HTTP2Frame(streamID: 1, payload: .windowUpdate(windowSizeIncrement: 1 << 20)), promise: nil)
            server.writeAndFlush(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: 1 << 20)), promise: nil)
            try pump()
            collect()
            #expect(stream.isWritable)
        }
        server.write(HTTP2Frame(streamID: 1, payload: .windowUpdate(windowSizeIncrement: 8 << 20)), promise: nil)
        server.writeAndFlush(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: 8 << 20)), promise: nil)
        try pump()
        collect()
        #expect(stalls >= 3)
        // Held in our process: the child channel's mark (64 KiB) plus one write.
        #expect(mostHeld <= 64 * 1024 + 64 * 1024 + 65_535, "held \(mostHeld)")
        #expect(arrived == sent, "\(arrived.count) of \(sent.count)")

        // The other way: the server sends 4 MiB to a stream nobody reads. Window goes back only as
        // the stream's reader takes bytes: at most one stream window reaches us, all of it waiting
        // in the mux stream (nothing in NIOHTTP2's child channel).
        let sentDown = Box()
        var down = StreamHash()
        let downChunks = 64
        for index in 0..<downChunks {
            let chunk = testChunk(100 + index, size: 64 * 1024)
            down.add(chunk)
            let promise = loop.makePromise(of: Void.self)
            promise.futureResult.whenSuccess { sentDown.count += 1 }
            server.write(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(chunk)))), promise: promise)
        }
        server.flush()
        try pump()
        #expect(sentDown.count < downChunks && sentDown.count * 64 * 1024 <= H2MuxSession.window, "\(sentDown.count) chunks went over")
        #expect(stream.unreadByteCount <= H2MuxSession.window && reader.hash.count == 0, "\(stream.unreadByteCount) bytes unread")
        var rounds = 0
        while reader.hash.count < down.count && rounds < 1000 {
            stream.read()
            try pump()
            rounds += 1
        }
        #expect(reader.hash == down, "\(reader.hash.count) of \(down.count)")
        _ = try? client.finish()
        _ = try? server.finish()
    }
}

extension MuxBackPressureTests {
    /// h2mux server stream of a NIOHTTP2 client that uploads 4 MiB nobody reads: the client gets one
    /// stream window and no more until the stream is read, then everything arrives byte-exact.
    @Test func h2muxUnreadServerStreamHoldsClientToOneWindow() throws {
        let loop = EmbeddedEventLoop()
        let server = EmbeddedChannel(loop: loop), client = EmbeddedChannel(loop: loop)
        var streams: [MuxStreamChannel] = []
        try H2MuxSession.addServer(to: server) { streams.append($0) }
        let peer = FrameSink()
        try client.pipeline.syncOperations.addHandler(NIOHTTP2Handler(mode: .client))
        try client.pipeline.syncOperations.addHandler(peer)
        try server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
        func pump() throws {
            var moved = true
            while moved {
                moved = false
                loop.run()
                while let data = try client.readOutbound(as: IOData.self) {
                    if case .byteBuffer(let bytes) = data { try server.writeInbound(bytes); moved = true }
                }
                while let data = try server.readOutbound(as: IOData.self) {
                    if case .byteBuffer(let bytes) = data { try client.writeInbound(bytes); moved = true }
                }
            }
        }
        // Go's h2mux client: CONNECT to localhost, then the body is the stream.
        let request = HPACKHeaders([(":method", "CONNECT"), (":authority", "localhost")])
        client.writeAndFlush(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: request))), promise: nil)
        try pump()
        let stream = try #require(streams.first)
        let reader = HashingReader()
        try stream.pipeline.syncOperations.addHandler(reader)
        let sentUp = Box()
        var up = StreamHash()
        let chunks = 64
        for index in 0..<chunks {
            let chunk = testChunk(200 + index, size: 64 * 1024)
            up.add(chunk)
            let promise = loop.makePromise(of: Void.self)
            promise.futureResult.whenSuccess { sentUp.count += 1 }
            client.write(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(chunk)))), promise: promise)
        }
        client.flush()
        try pump()
        // Our server stream advertises `H2MuxSession.window` and returns none of it unread.
        #expect(sentUp.count < chunks && sentUp.count * 64 * 1024 <= H2MuxSession.window, "\(sentUp.count) chunks went over")
        #expect(stream.unreadByteCount <= H2MuxSession.window && reader.hash.count == 0, "\(stream.unreadByteCount) bytes unread")
        var rounds = 0
        while reader.hash.count < up.count && rounds < 1000 {
            stream.read()
            try pump()
            rounds += 1
        }
        #expect(reader.hash == up, "\(reader.hash.count) of \(up.count)")
        _ = try? client.finish()
        _ = try? server.finish()
    }
}

/// Takes an HTTP/2 connection's frames and does nothing with them.
private final class FrameSink: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    var frames = 0
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { frames += 1 }
}

private final class Box: @unchecked Sendable {
    var count = 0
}
