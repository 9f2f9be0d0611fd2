// The client half of one grpc/http HTTP/2 stream on an EmbeddedChannel (frames in and out, no
// NIOHTTP2 connection handler): the request goes out at once, gun framing both ways through the
// stream's channel, window returned per read (connection) and per read of the stream's reader
// (stream), a non-200 answer fails with Go's words, garbage framing closes, and the keepalive PINGs
// after `idle_timeout` and gives up after `ping_timeout` (Go's http2.Transport ReadIdleTimeout/PingTimeout).
import Adapter
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import Testing
@testable import Transport

/// What the stream's pipeline reads, and the errors it hears.
private final class Recorder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    var reads: [String] = []
    var errors: [any Error] = []
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reads.append(String(buffer: unwrapInboundIn(data)))
    }
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        errors.append(error)
    }
}

@Suite struct HTTP2ClientStreamHandlerTests {
    /// A connected channel with the handler; the window widening and the request already read off.
    private func open(keepalive: HTTP2ClientStreamHandler.Keepalive? = nil) throws
        -> (EmbeddedChannel, EventLoopFuture<Void>, HPACKHeaders, V2RayHTTP2Stream, Recorder)
    {
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(loop: loop)
        let ready = loop.makePromise(of: Void.self)
        let request = HPACKHeaders([(":method", "POST"), (":scheme", "https"), (":authority", "a:1"), (":path", "/s/Tun")])
        let handler = HTTP2ClientStreamHandler(request: request, framing: .gun, errorPrefix: "v2ray-grpc", keepalive: keepalive, ready: ready)
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let widen = try #require(try channel.readOutbound(as: HTTP2Frame.self))
        #expect(widen.streamID == .rootStream && widen.payload.windowIncrement == (4 << 20) - 65_535)
        let headers = try #require(try channel.readOutbound(as: HTTP2Frame.self))
        let sent = try #require(headers.payload.headersPayload)
        #expect(!sent.endStream && headers.streamID == 1)
        let stream = try #require(handler.stream)
        #expect(stream.isActive)
        let recorder = Recorder()
        try stream.pipeline.syncOperations.addHandler(recorder)
        return (channel, ready.futureResult, sent.headers, stream, recorder)
    }

    private func response(_ status: String, endStream: Bool = false) -> HTTP2Frame {
        HTTP2Frame(streamID: 1, payload: .headers(.init(headers: HPACKHeaders([(":status", status)]), endStream: endStream)))
    }

    @Test func readyAtOnceThenGunBothWays() throws {
        let (channel, ready, sent, stream, recorder) = try open()
        #expect(sent.first(name: ":path") == "/s/Tun")
        try ready.wait()
        // Our write: one DATA frame with the gun message.
        try stream.writeAndFlush(ByteBuffer(string: "hello")).wait()
        let data = try #require(try channel.readOutbound(as: HTTP2Frame.self).flatMap(\.payload.dataPayload))
        guard case .byteBuffer(let bytes) = data.data else { Issue.record("\(data)"); return }
        #expect(Array(bytes.readableBytesView) == GunFramingTests.hello)
        // The server's answer, then one message split over two DATA frames: the connection window
        // goes back per read batch, the stream's waits for its reader.
        try channel.writeInbound(response("200"))
        try channel.writeInbound(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(ByteBuffer(bytes: GunFramingTests.hello.prefix(9)))))))
        try channel.writeInbound(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(ByteBuffer(bytes: GunFramingTests.hello.dropFirst(9)))))))
        #expect(recorder.reads.isEmpty && stream.queuedBytes == 5)
        stream.read()
        #expect(recorder.reads == ["he", "llo"])
        // A half-close is END_STREAM.
        try stream.close(mode: .output).wait()
        var frames: [HTTP2Frame] = []
        while let frame = try channel.readOutbound(as: HTTP2Frame.self) { frames.append(frame) }
        let updates = frames.compactMap { frame in frame.payload.windowIncrement.map { (Int(frame.streamID == .rootStream ? 0 : 1), $0) } }
        #expect(updates.map(\.0) == [0, 0, 1] && updates.map(\.1) == [9, 3, 12])
        #expect(frames.last?.payload.dataPayload?.endStream == true)
        // The server's END_STREAM: the stream ends once read, and the connection with it.
        try channel.writeInbound(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(ByteBuffer()), endStream: true))))
        stream.read()
        #expect(!stream.isActive && !channel.isActive)
    }

    /// A reader that keeps up (autoRead): one stream and one connection WINDOW_UPDATE per read batch.
    @Test func oneWindowUpdatePerReadBatch() throws {
        let (channel, _, _, stream, recorder) = try open()
        try stream.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        try channel.writeInbound(response("200"))
        let message = ByteBuffer(bytes: GunFramingTests.hello)
        for _ in 0..<3 { channel.pipeline.fireChannelRead(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(message))))) }
        channel.pipeline.fireChannelReadComplete()
        #expect(recorder.reads == ["hello", "hello", "hello"])
        var updates: [(HTTP2StreamID, Int)] = []
        while let frame = try channel.readOutbound(as: HTTP2Frame.self) {
            if let increment = frame.payload.windowIncrement { updates.append((frame.streamID, increment)) }
        }
        let length = GunFramingTests.hello.count
        #expect(updates.map(\.0) == [1, .rootStream] && updates.map(\.1) == [3 * length, 3 * length])
    }

    @Test func notFoundFailsWithGoWords() throws {
        let (channel, _, _, stream, recorder) = try open()
        try channel.writeInbound(response("404", endStream: true))
        #expect(recorder.errors.map { "\($0)" } == ["v2ray-grpc: unexpected status: 404 Not Found"])
        #expect(!channel.isActive && !stream.isActive)
        let texts = [HTTP2ClientStreamHandler.statusText("404"), HTTP2ClientStreamHandler.statusText("599")]
        #expect(texts == ["404 Not Found", "599"])
    }

    @Test func garbageFramingCloses() throws {
        let (channel, _, _, stream, recorder) = try open()
        try channel.writeInbound(response("200"))
        try channel.writeInbound(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(ByteBuffer(string: "HTTP/1.1 200 OK\r\n"))))))
        #expect(recorder.errors.count == 1 && "\(recorder.errors.first!)".hasPrefix("v2ray-grpc: grpc: "), "\(recorder.errors)")
        #expect(!channel.isActive && !stream.isActive)
    }

    @Test func keepalivePingsAfterIdleAndGivesUp() throws {
        let (channel, _, _, stream, _) = try open(keepalive: .init(idle: .seconds(1), pingTimeout: .seconds(2)))
        let loop = try #require(channel.eventLoop as? EmbeddedEventLoop)
        loop.advanceTime(by: .milliseconds(900))
        #expect(try channel.readOutbound(as: HTTP2Frame.self) == nil)
        loop.advanceTime(by: .milliseconds(200))
        let ping = try #require(try channel.readOutbound(as: HTTP2Frame.self))
        #expect(ping.payload.pingAck == false && ping.streamID == .rootStream)
        // An answer (any frame) keeps the connection.
        try channel.writeInbound(HTTP2Frame(streamID: .rootStream, payload: .ping(HTTP2PingData(withInteger: 1), ack: true)))
        loop.advanceTime(by: .milliseconds(1500))
        #expect(channel.isActive)
        // The next PING goes unanswered: closed after the ping timeout.
        loop.advanceTime(by: .seconds(1))
        loop.advanceTime(by: .seconds(3))
        #expect(!channel.isActive && !stream.isActive)
    }
}

extension HTTP2Frame.FramePayload {
    var headersPayload: Headers? { if case .headers(let headers) = self { headers } else { nil } }
    var dataPayload: Data? { if case .data(let data) = self { data } else { nil } }
    var windowIncrement: Int? { if case .windowUpdate(let increment) = self { increment } else { nil } }
    var pingAck: Bool? { if case .ping(_, let ack) = self { ack } else { nil } }
}
