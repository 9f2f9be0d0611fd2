// Back-pressure of the grpc/http client stream with real NIOHTTP2 on both ends of two
// EmbeddedChannels (bytes ferried by hand): a server that grants no window makes our stream
// unwritable with a bounded number of bytes held in NIOHTTP2, and writable again once it grants;
// a stream whose reader does not read holds at most one stream window of the server's bytes and
// returns window only as its reader takes them. Both ways end byte-exact (FNV-1a over the bytes).
import Adapter
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import Testing
@testable import Transport

/// An FNV-1a-style 64-bit hash over a byte stream fed in pieces of any size (8-byte words, so a
/// debug build hashes tens of MiB quickly); equal streams give equal values.
struct StreamHash: Equatable {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    private(set) var count = 0
    /// The bytes of an unfinished word, little-endian.
    private var carry: UInt64 = 0
    private var carried = 0

    mutating func add(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { raw in
            var offset = 0
            while carried > 0, offset < raw.count {
                carry |= UInt64(raw[offset]) << (8 * carried)
                carried += 1
                offset += 1
                if carried == 8 {
                    mix(carry)
                    carry = 0
                    carried = 0
                }
            }
            while offset + 8 <= raw.count {
                mix(raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
                offset += 8
            }
            while offset < raw.count {
                carry |= UInt64(raw[offset]) << (8 * carried)
                carried += 1
                offset += 1
            }
        }
        count += buffer.readableBytes
    }

    private mutating func mix(_ word: UInt64) {
        value = (value ^ word) &* 0x0000_0100_0000_01b3
    }
}

/// The `index`-th chunk of a deterministic test stream (`size` bytes, a multiple of 8).
func testChunk(_ index: Int, size: Int) -> ByteBuffer {
    var state = UInt64(index &+ 1) &* 0x9E37_79B9_7F4A_7C15
    var buffer = ByteBuffer()
    buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
        for offset in stride(from: 0, to: size, by: 8) {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            raw.storeBytes(of: state, toByteOffset: offset, as: UInt64.self)
        }
        return size
    }
    return buffer
}

/// The server's end: collects frames; never returns window by itself.
private final class FrameCollector: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    var frames: [HTTP2Frame] = []
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        frames.append(unwrapInboundIn(data))
    }
}

/// Frames the server's NIOHTTP2 let go (its window allowed them).
private final class SentCounter: @unchecked Sendable {
    var count = 0
}

/// The streams a demuxer handed out.
private final class StreamBox: @unchecked Sendable {
    var all: [any Channel] = []
    func append(_ channel: any Channel) { all.append(channel) }
}

/// Collects what the stream's pipeline reads.
private final class StreamReader: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    var hash = StreamHash()
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        hash.add(unwrapInboundIn(data))
    }
}

@Suite struct V2RayHTTP2BackPressureTests {
    /// Client (NIOHTTP2 + our stream handler) and server (NIOHTTP2 + a collector), connected.
    private struct Pair {
        let client: EmbeddedChannel
        let server: EmbeddedChannel
        let handler: HTTP2ClientStreamHandler
        let collector: FrameCollector
        let stream: V2RayHTTP2Stream

        init(framing: HTTP2ClientStreamHandler.Framing) throws {
            let loop = EmbeddedEventLoop()
            client = EmbeddedChannel(loop: loop)
            server = EmbeddedChannel(loop: loop)
            let ready = loop.makePromise(of: Void.self)
            let request = HPACKHeaders([(":method", "POST"), (":scheme", "https"), (":authority", "a:1"), (":path", "/s/Tun")])
            handler = HTTP2ClientStreamHandler(request: request, framing: framing, errorPrefix: "v2ray-grpc", keepalive: nil, ready: ready)
            collector = FrameCollector()
            try server.pipeline.syncOperations.addHandler(NIOHTTP2Handler(mode: .server))
            try server.pipeline.syncOperations.addHandler(collector)
            try client.pipeline.syncOperations.addHandler(V2RayTransportClient.http2ConnectionHandler())
            try client.pipeline.syncOperations.addHandler(handler)
            try server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
            stream = try #require(handler.stream)
            try pump()
            try ready.futureResult.wait()
            // The answer: 200, the stream stays open.
            server.writeAndFlush(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: HPACKHeaders([(":status", "200")])))), promise: nil)
            try pump()
        }

        /// Moves bytes both ways until neither side has any to send.
        func pump() throws {
            var moved = true
            while moved {
                moved = false
                while let data = try client.readOutbound(as: IOData.self) {
                    guard case .byteBuffer(let bytes) = data else { continue }
                    try server.writeInbound(bytes)
                    moved = true
                }
                while let data = try server.readOutbound(as: IOData.self) {
                    guard case .byteBuffer(let bytes) = data else { continue }
                    try client.writeInbound(bytes)
                    moved = true
                }
            }
        }

        /// DATA bytes of stream 1 the server got since the last call, gun-decoded.
        func received(into hash: inout StreamHash, decoder: inout GunFrameDecoder) throws {
            for frame in collector.frames where frame.streamID == 1 {
                guard case .data(let data) = frame.payload, case .byteBuffer(var bytes) = data.data else { continue }
                while let piece = try decoder.next(from: &bytes) { hash.add(piece) }
            }
            collector.frames.removeAll()
        }

        /// The server grants `increment` more bytes on the stream and the connection.
        func grant(_ increment: Int) throws {
            server.write(HTTP2Frame(streamID: 1, payload: .windowUpdate(windowSizeIncrement: increment)), promise: nil)
            server.writeAndFlush(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: increment)), promise: nil)
            try pump()
        }
    }

    /// The server stops granting window: the stream turns unwritable with at most the high-water
    /// mark plus one write held; granting makes it writable again; all bytes arrive.
    @Test func serverWithoutWindowMakesStreamUnwritable() throws {
        let pair = try Pair(framing: .gun)
        var sentHash = StreamHash(), receivedHash = StreamHash()
        var decoder = GunFrameDecoder()
        let chunkSize = 64 * 1024
        let total = 96
        var index = 0
        var stalls = 0
        var mostHeld = 0
        while index < total {
            if pair.stream.isWritable {
                let chunk = testChunk(index, size: chunkSize)
                sentHash.add(chunk)
                pair.stream.writeAndFlush(chunk, promise: nil)
                index += 1
                try pair.pump()
                mostHeld = max(mostHeld, pair.stream.pendingBytes)
                continue
            }
            // Stalled: the server's 64 KiB initial window is spent, NIOHTTP2 holds the rest.
            stalls += 1
            #expect(pair.stream.pendingBytes > V2RayHTTP2Stream.highWater)
            try pair.received(into: &receivedHash, decoder: &decoder)
            try pair.grant(1 << 20)
            #expect(pair.stream.isWritable)
        }
        try pair.grant(8 << 20)
        try pair.received(into: &receivedHash, decoder: &decoder)
        #expect(stalls >= 3)
        #expect(mostHeld <= V2RayHTTP2Stream.highWater + chunkSize + 16, "held \(mostHeld)")
        #expect(pair.stream.pendingBytes == 0)
        #expect(receivedHash == sentHash, "\(receivedHash.count) of \(sentHash.count) bytes")
    }

    /// A reader that does not read: the server can send one stream window (4 MiB) and no more;
    /// WINDOW_UPDATEs for the stream go out only as the reader takes bytes; all bytes arrive.
    @Test func slowReaderHoldsTheServerBack() throws {
        let pair = try Pair(framing: .raw)
        let reader = StreamReader()
        try pair.stream.pipeline.syncOperations.addHandler(reader)
        var sentHash = StreamHash()
        let sent = SentCounter()
        let chunkSize = 16 * 1024
        let total = 512  // 8 MiB: twice the stream window
        for index in 0..<total {
            let chunk = testChunk(index, size: chunkSize)
            sentHash.add(chunk)
            let promise = pair.server.eventLoop.makePromise(of: Void.self)
            pair.server.write(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(chunk)))), promise: promise)
            promise.futureResult.whenSuccess { sent.count += 1 }
        }
        pair.server.flush()
        try pair.pump()
        // One stream window went over; the connection window came back, the stream's did not.
        #expect(pair.stream.queuedBytes == V2RayTransportClient.streamWindow)
        #expect(sent.count * chunkSize == V2RayTransportClient.streamWindow)
        // The reader reads: window goes back, the rest comes.
        var rounds = 0
        while reader.hash.count < sentHash.count && rounds < 100 {
            pair.stream.read()
            try pair.pump()
            #expect(pair.stream.queuedBytes <= V2RayTransportClient.streamWindow)
            rounds += 1
        }
        #expect(reader.hash == sentHash, "\(reader.hash.count) of \(sentHash.count) bytes")
        #expect(sent.count == total)
    }

    /// The server side (our grpc inbound's demuxer, frames in and out): a reader that keeps up
    /// returns its window once per read batch; one that does not read holds it back until it reads.
    @Test func serverStreamReturnsWindowOnlyWhenRead() throws {
        let channel = EmbeddedChannel()
        let streams = StreamBox()
        let demuxer = HTTP2ServerStreamDemuxer(route: V2RayHTTPRoute(kind: .grpc, path: "/s/Tun"), flowID: FlowID(), onReject: { _ in },
                                               setup: { stream, _ in streams.append(stream) })
        try channel.pipeline.syncOperations.addHandler(demuxer)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let request = HPACKHeaders([(":method", "POST"), (":scheme", "http"), (":authority", "a"), (":path", "/s/Tun"),
                                    ("content-type", "application/grpc")])
        for id in [1, 3] {
            try channel.writeInbound(HTTP2Frame(streamID: HTTP2StreamID(id), payload: .headers(.init(headers: request))))
        }
        let (reading, idle) = (try #require(streams.all.first as? V2RayHTTP2Stream), try #require(streams.all.last as? V2RayHTTP2Stream))
        let reader = StreamReader()
        try reading.pipeline.syncOperations.addHandler(reader)
        try reading.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        while try channel.readOutbound(as: HTTP2Frame.self) != nil {}
        let message = GunFraming.encode(testChunk(0, size: 1024), allocator: ByteBufferAllocator())
        for id in [1, 3, 1, 3, 1] {
            channel.pipeline.fireChannelRead(HTTP2Frame(streamID: HTTP2StreamID(id), payload: .data(.init(data: .byteBuffer(message)))))
        }
        channel.pipeline.fireChannelReadComplete()
        var updates: [(HTTP2StreamID, Int)] = []
        while let frame = try channel.readOutbound(as: HTTP2Frame.self) {
            if case .windowUpdate(let increment) = frame.payload { updates.append((frame.streamID, increment)) }
        }
        let length = message.readableBytes
        // One update per stream and batch, and none for the stream nobody read.
        #expect(updates.map(\.0) == [1, .rootStream] && updates.map(\.1) == [3 * length, 5 * length])
        #expect(reader.hash.count == 3 * 1024 && idle.queuedBytes == 2 * 1024)
        // The idle stream's reader reads: its window goes back at once.
        idle.read()
        let late = try #require(try channel.readOutbound(as: HTTP2Frame.self))
        #expect(late.streamID == 3 && late.payload.windowIncrement == 2 * length)
        // Window taken in a batch whose later frame ends the stream does not go back: NIOHTTP2
        // refuses a WINDOW_UPDATE on a stream the client half-closed.
        channel.pipeline.fireChannelRead(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(message)))))
        channel.pipeline.fireChannelRead(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(ByteBuffer()), endStream: true))))
        channel.pipeline.fireChannelReadComplete()
        var after: [HTTP2StreamID] = []
        while let frame = try channel.readOutbound(as: HTTP2Frame.self) {
            if case .windowUpdate = frame.payload { after.append(frame.streamID) }
        }
        #expect(after == [.rootStream])
        _ = try? channel.finish()
    }

    /// A connection whose output is unwritable (the socket's buffer is full) makes the stream so.
    @Test func connectionWritabilityReachesTheStream() throws {
        let pair = try Pair(framing: .gun)
        #expect(pair.stream.isWritable)
        pair.client.isWritable = false
        pair.client.pipeline.fireChannelWritabilityChanged()
        #expect(!pair.stream.isWritable)
        pair.client.isWritable = true
        pair.client.pipeline.fireChannelWritabilityChanged()
        #expect(pair.stream.isWritable)
    }

    /// Closing the stream closes the connection (one stream per connection), and the other way.
    @Test func streamAndConnectionCloseTogether() throws {
        let pair = try Pair(framing: .gun)
        try pair.stream.close().wait()
        #expect(!pair.client.isActive)
        let other = try Pair(framing: .raw)
        try other.client.close().wait()
        #expect(!other.stream.isActive)
    }
}
