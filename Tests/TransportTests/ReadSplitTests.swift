// Every stream parser of the Transport target under arbitrary read splits (TestSupport/ReadSplits):
// a realistic stream (several frames of varied sizes, empty and large ones) from our encoder or
// literal bytes of Go's format, fed one byte per read, cut at every point near each frame header,
// at every pair of points over the opening, at seeded random points and in one read; the decoded
// output must be the same every time. Channel handlers run on EmbeddedChannel.
import Adapter
import Config
import NIOCore
import NIOEmbedded
import Testing
import TestSupport
@testable import Transport

/// What a parser handed up: the bytes (however chunked), the end of input and the errors.
struct Transcript: Equatable {
    /// Kept in a ByteBuffer: appending and comparing are copies and memcmp, which keeps hundreds of
    /// schedules over 100 KB streams fast in debug builds.
    var bytes = ByteBuffer()
    var inputClosed = false
    var errors: [String] = []

    init(bytes: [UInt8] = [], inputClosed: Bool = false, errors: [String] = []) {
        self.bytes = ByteBuffer(bytes: bytes)
        self.inputClosed = inputClosed
        self.errors = errors
    }
}

/// Records what reaches the end of a pipeline.
final class TranscriptRecorder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    var transcript = Transcript()
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        transcript.bytes.writeBuffer(&bytes)
    }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event as? ChannelEvent == .inputClosed { transcript.inputClosed = true }
    }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { transcript.errors.append("\(error)") }
}

/// A stream of frames under construction, with where each frame starts.
struct FramedStream {
    var bytes: [UInt8] = []
    var boundaries: [Int] = []

    mutating func append(_ frame: [UInt8]) {
        boundaries.append(bytes.count)
        bytes += frame
    }

    mutating func append(_ frame: ByteBuffer) { append(Array(frame.readableBytesView)) }

    func schedules(radius: Int = 6, pairRegion: Range<Int> = 0..<12, oneByteLimit: Int = 1 << 15) -> [ReadSchedule] {
        ReadSplits.schedules(length: bytes.count, boundaries: boundaries, radius: radius, pairRegion: pairRegion, oneByteLimit: oneByteLimit)
    }
}

/// Deterministic payload bytes of `count`, different per `salt`.
func payload(_ count: Int, salt: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ salt &* 7 &+ ($0 >> 8)) }
}

/// Feeds `reads` to `channel` one `writeInbound` each (connecting it first if it is not), stopping
/// at the first error or when the channel closed.
func feed(_ channel: EmbeddedChannel, _ reads: [ArraySlice<UInt8>], errors: inout [String]) {
    if !channel.isActive { _ = try? channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait() }
    for read in reads where channel.isActive {
        do {
            try channel.writeInbound(ByteBuffer(bytes: read))
        } catch {
            errors.append("\(error)")
            return
        }
    }
}

/// Runs `handlers` with a recorder behind them on `channel` (a fresh EmbeddedChannel by default),
/// after `prepare` (a connect, a first write), feeds `reads`, finishes the channel and returns what
/// the recorder saw with the feed's errors appended.
func transcript(of handlers: [any ChannelHandler], reads: [ArraySlice<UInt8>], on channel: EmbeddedChannel = EmbeddedChannel(),
                prepare: (EmbeddedChannel) throws -> Void = { _ in }) throws -> Transcript {
    let recorder = TranscriptRecorder()
    try channel.pipeline.syncOperations.addHandlers(handlers + [recorder])
    try prepare(channel)
    var errors: [String] = []
    feed(channel, reads, errors: &errors)
    _ = try? channel.finish()
    var transcript = recorder.transcript
    transcript.errors += errors
    return transcript
}

@Suite struct TransportReadSplitTests {
    // MARK: sing-mux

    /// Per-stream bytes and FINs of a server session; streams numbered in the order they were opened.
    struct SessionOutput: Equatable {
        var streams: [ByteBuffer] = []
        var finished: [Bool] = []
        var errors: [String] = []
    }

    static func runSession(_ make: () -> MuxFramedSession, _ reads: [ArraySlice<UInt8>]) throws -> SessionOutput {
        let session = make()
        let channel = EmbeddedChannel()
        var recorders: [TranscriptRecorder] = []
        var opened: [MuxStreamChannel] = []
        session.onStream = { stream in
            let recorder = TranscriptRecorder()
            recorders.append(recorder)
            opened.append(stream)
            try? stream.pipeline.syncOperations.addHandler(recorder)
            try? stream.syncOptions?.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            try? stream.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        }
        try channel.pipeline.syncOperations.addHandler(session)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        var output = SessionOutput()
        feed(channel, reads, errors: &output.errors)
        output.streams = recorders.map(\.transcript.bytes)
        output.finished = recorders.map(\.transcript.inputClosed)
        _ = try? channel.finish()
        withExtendedLifetime(opened) {}
        return output
    }

    /// smux v1 (version, cmd, length LE, stream ID LE): two streams, PSH of 0, 5, 1000, 20,000 and
    /// 32,768 bytes, a NOP, FINs.
    @Test func smuxFramesUnderEverySplit() throws {
        func frame(_ command: UInt8, _ id: UInt32, _ data: [UInt8] = []) -> [UInt8] {
            [1, command, UInt8(data.count & 0xFF), UInt8(data.count >> 8),
             UInt8(id & 0xFF), UInt8(id >> 8 & 0xFF), UInt8(id >> 16 & 0xFF), UInt8(id >> 24)] + data
        }
        var stream = FramedStream()
        stream.append(frame(0, 3))
        stream.append(frame(2, 3, payload(5, salt: 1)))
        stream.append(frame(0, 5))
        stream.append(frame(2, 5, []))
        stream.append(frame(3, 0))
        stream.append(frame(2, 3, payload(32_768, salt: 2)))
        stream.append(frame(2, 5, payload(1, salt: 3)))
        stream.append(frame(2, 3, payload(1000, salt: 4)))
        stream.append(frame(1, 3))
        stream.append(frame(2, 5, payload(20_000, salt: 5)))
        stream.append(frame(1, 5))
        let expected = SessionOutput(streams: [ByteBuffer(bytes: payload(5, salt: 1) + payload(32_768, salt: 2) + payload(1000, salt: 4)),
                                               ByteBuffer(bytes: payload(1, salt: 3) + payload(20_000, salt: 5))],
                                     finished: [true, true])
        let failures = ReadSplits.mismatches(stream.bytes, schedules: stream.schedules(pairRegion: 0..<16), expected: expected) { reads in
            try Self.runSession({ SmuxSession(client: false) }, reads)
        }
        #expect(failures.isEmpty, "\(failures)")
    }

    /// yamux (all big-endian): SYN by window update, data of 100, 0, 65,536 and 7 bytes, a ping, a
    /// data frame carrying FIN, a window update carrying FIN.
    @Test func yamuxFramesUnderEverySplit() throws {
        var stream = FramedStream()
        stream.append(YamuxSessionTests.header(1, flags: 1, id: 1, length: 0))
        stream.append(YamuxSessionTests.header(0, flags: 0, id: 1, length: 100) + payload(100, salt: 1))
        stream.append(YamuxSessionTests.header(0, flags: 1, id: 3, length: 0))
        stream.append(YamuxSessionTests.header(2, flags: 1, id: 0, length: 42))
        stream.append(YamuxSessionTests.header(0, flags: 0, id: 1, length: 65_536) + payload(65_536, salt: 2))
        stream.append(YamuxSessionTests.header(0, flags: 0, id: 3, length: 7) + payload(7, salt: 3))
        stream.append(YamuxSessionTests.header(0, flags: 4, id: 1, length: 3) + payload(3, salt: 4))
        stream.append(YamuxSessionTests.header(1, flags: 4, id: 3, length: 0))
        let expected = SessionOutput(streams: [ByteBuffer(bytes: payload(100, salt: 1) + payload(65_536, salt: 2) + payload(3, salt: 4)),
                                               ByteBuffer(bytes: payload(7, salt: 3))],
                                     finished: [true, true])
        let failures = ReadSplits.mismatches(stream.bytes, schedules: stream.schedules(pairRegion: 0..<16), expected: expected) { reads in
            try Self.runSession({ YamuxSession(client: false) }, reads)
        }
        #expect(failures.isEmpty, "\(failures)")
    }

    /// The padding reader behind our padding writer: 17 writes (empty, small, one over 65,535 bytes
    /// that the writer splits), the first 16 frames padded.
    @Test func paddingUnderEverySplit() throws {
        let writer = EmbeddedChannel(handler: MuxPaddingHandler())
        var stream = FramedStream()
        var sent: [UInt8] = []
        for index in 0..<17 {
            let data = payload([0, 1, 70_000, 13, 300][index % 5] + (index == 2 ? 0 : index), salt: index)
            sent += data
            try writer.writeOutbound(ByteBuffer(bytes: data))
            while let out = try writer.readOutbound(as: ByteBuffer.self) { stream.append(out) }
        }
        _ = try writer.finish()
        let failures = ReadSplits.mismatches(stream.bytes, schedules: stream.schedules(radius: 4, pairRegion: 0..<12),
                                             expected: Transcript(bytes: sent)) { reads in
            try transcript(of: [MuxPaddingHandler()], reads: reads)
        }
        #expect(failures.isEmpty, "\(failures)")
    }

    /// A header decoder that, like `MuxFlowHandler`, removes itself once the header is read: the
    /// header, then whatever followed it, reach the recorder behind.
    struct HeaderOutput<Header: Equatable>: Equatable {
        var header: Header?
        var transcript: Transcript
    }

    static func runHeaderDecoder<Header: Equatable>(_ make: (@escaping MuxHeaderDecoder<Header>.Callback) -> MuxHeaderDecoder<Header>,
                                                    _ reads: [ArraySlice<UInt8>]) throws -> HeaderOutput<Header> {
        var header: Header?
        var errors: [String] = []
        let decoder = make { context, result in
            switch result {
            case .success(let value): header = value
            case .failure(let error): errors.append("\(error)")
            }
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
        var output = try transcript(of: [decoder], reads: reads)
        output.errors += errors
        return HeaderOutput(header: header, transcript: output)
    }

    /// Session request version 1 with padding (Go's `EncodeRequest`), then smux bytes.
    @Test func sessionRequestUnderEverySplit() throws {
        var stream = FramedStream()
        var request = ByteBuffer()
        MuxSessionRequest(streamProtocol: .yamux, padding: true).write(to: &request)
        stream.append(request)
        let after = payload(3000, salt: 9)
        stream.append(after)
        var expected = MuxSessionRequest(streamProtocol: .yamux, padding: true)
        expected.version = 1
        let failures = ReadSplits.mismatches(stream.bytes, schedules: stream.schedules(radius: 8, pairRegion: 0..<8)) { reads in
            try Self.runHeaderDecoder({ MuxSessionRequestDecoder($0) }, reads)
        }
        #expect(failures.isEmpty, "\(failures)")
        let output = try Self.runHeaderDecoder({ MuxSessionRequestDecoder($0) }, stream.bytes.map { [$0][...] })
        #expect(output.header == expected && output.transcript == Transcript(bytes: after))
    }

    /// Stream requests: TCP to a name, UDP with packet addresses to IPv6; then the stream's data.
    @Test(arguments: [
        MuxStreamRequest(isUDP: false, packetAddress: false, destination: Destination(domain: "example.com", port: 443)),
        MuxStreamRequest(isUDP: true, packetAddress: true, destination: Destination(ip: IPAddress("2001:db8::1")!, port: 53)),
    ])
    func streamRequestUnderEverySplit(request: MuxStreamRequest) throws {
        var stream = FramedStream()
        var header = ByteBuffer()
        try request.write(to: &header)
        stream.append(header)
        let after = payload(500, salt: 2)
        stream.append(after)
        let failures = ReadSplits.mismatches(stream.bytes, schedules: stream.schedules(pairRegion: 0..<16),
                                             expected: HeaderOutput(header: request, transcript: Transcript(bytes: after))) { reads in
            try Self.runHeaderDecoder({ MuxStreamRequestDecoder($0) }, reads)
        }
        #expect(failures.isEmpty, "\(failures)")
    }

    /// The client's status reader: success then data; failure with a message split anywhere.
    @Test func streamResponseUnderEverySplit() throws {
        var success = FramedStream()
        success.append([0])
        success.append(payload(2000, salt: 4))
        var failure = FramedStream()
        var message = ByteBuffer()
        MuxStreamResponse.failure(String(repeating: "dial tcp: refused ", count: 10)).write(to: &message)
        failure.append(message)
        for (stream, expected) in [(success, Transcript(bytes: payload(2000, salt: 4))),
                                   (failure, Transcript(errors: ["remote error: " + String(repeating: "dial tcp: refused ", count: 10)]))] {
            let failures = ReadSplits.mismatches(stream.bytes, schedules: stream.schedules(), expected: expected) { reads in
                try transcript(of: [MuxStreamResponseDecoder()], reads: reads)
            }
            #expect(failures.isEmpty, "\(failures)")
        }
    }

    // MARK: mux.cool, simple-obfs

    /// mux.cool frames as v2ray writes them to the client (metadata length, session, status,
    /// option, then data length ‖ data when option 1): Keep with 0, 9, 65,535 and 300 bytes, a
    /// KeepAlive, a Keep with extra metadata bytes, then End.
    @Test func muxCoolUnderEverySplit() throws {
        var stream = FramedStream()
        var expected: [UInt8] = []
        func keep(_ data: [UInt8], extra: [UInt8] = []) -> [UInt8] {
            expected += data
            return [0, UInt8(4 + extra.count), 0, 0, 2, 1] + extra + [UInt8(data.count >> 8), UInt8(data.count & 0xFF)] + data
        }
        stream.append(keep([]))
        stream.append(keep(payload(9, salt: 1)))
        stream.append([0, 4, 0, 0, 4, 0])  // KeepAlive, no data
        stream.append(keep(payload(65_535, salt: 2)))
        stream.append(keep(payload(300, salt: 3), extra: [1, 0x1F, 0x90, 1, 127, 0, 0, 1]))
        stream.append([0, 4, 0, 0, 3, 0])  // End
        let failures = ReadSplits.mismatches(stream.bytes, schedules: stream.schedules(pairRegion: 0..<16),
                                             expected: Transcript(bytes: expected, inputClosed: true)) { reads in
            try transcript(of: [MuxCoolClientHandler()], reads: reads)
        }
        #expect(failures.isEmpty, "\(failures)")
    }

    /// simple-obfs http: the server's reply head, then its data.
    @Test func simpleObfsHTTPUnderEverySplit() throws {
        var stream = FramedStream()
        stream.append(Array("HTTP/1.1 101 Switching Protocols\r\nServer: nginx/1.2.7\r\nDate: Thu, 26 Nov 2026 00:00:00 GMT\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: abc=\r\n\r\n".utf8))
        stream.append(payload(5000, salt: 1))
        let failures = ReadSplits.mismatches(stream.bytes, schedules: stream.schedules(pairRegion: 0..<12),
                                             expected: Transcript(bytes: payload(5000, salt: 1))) { reads in
            try transcript(of: [SimpleObfsHTTPClientHandler(host: "a.io", port: 80)], reads: reads) { try $0.writeOutbound(ByteBuffer(bytes: [1, 2, 3])) }
        }
        #expect(failures.isEmpty, "\(failures)")
    }

    /// simple-obfs tls: ServerHello (96) + ChangeCipherSpec (6) + a handshake record header whose
    /// length covers the first data, then application-data records of 0, 16,384 and 7 bytes.
    @Test func simpleObfsTLSUnderEverySplit() throws {
        var stream = FramedStream()
        let first = payload(40, salt: 1)
        stream.append([22, 3, 3, 0, 91] + payload(91, salt: 9) + [20, 3, 3, 0, 1, 1] + [22, 3, 3, 0, 40] + first)
        var expected = first
        for (size, salt) in [(0, 2), (16_384, 3), (7, 4)] {
            let data = payload(size, salt: salt)
            expected += data
            stream.append([23, 3, 3, UInt8(size >> 8), UInt8(size & 0xFF)] + data)
        }
        let failures = ReadSplits.mismatches(stream.bytes, schedules: stream.schedules(pairRegion: 96..<110),
                                             expected: Transcript(bytes: expected)) { reads in
            try transcript(of: [SimpleObfsTLSClientHandler(host: "a.io")], reads: reads) { try $0.writeOutbound(ByteBuffer(bytes: [1, 2, 3])) }
        }
        #expect(failures.isEmpty, "\(failures)")
    }

    // MARK: WebSocket, HTTP responses

    /// Server frames (unmasked, as Go's server writes them) of 0, 125, 126, 65,535 and 70,000 bytes,
    /// a ping and a masked frame: the reader's frames are the same under every split.
    @Test func webSocketFramesUnderEverySplit() throws {
        let allocator = ByteBufferAllocator()
        var stream = FramedStream()
        var expected: [[UInt8]] = []
        for (index, size) in [0, 125, 126, 65_535, 70_000, 3].enumerated() {
            let data = payload(size, salt: index)
            expected.append([2] + data)
            stream.append(WebSocketFrameReader.frame(opcode: 2, payload: ByteBuffer(bytes: data), masked: index == 5, allocator: allocator))
            if index == 1 {
                expected.append([9, 1, 2])
                stream.append(WebSocketFrameReader.frame(opcode: 9, payload: ByteBuffer(bytes: [1, 2]), masked: false, allocator: allocator))
            }
        }
        let failures = ReadSplits.mismatches(stream.bytes, schedules: stream.schedules(pairRegion: 0..<16), expected: expected) { reads in
            var reader = WebSocketFrameReader()
            var buffer = ByteBuffer()
            var frames: [[UInt8]] = []
            for read in reads {
                buffer.writeBytes(read)
                while let frame = try reader.next(from: &buffer) { frames.append([frame.opcode] + frame.payload.readableBytesView) }
                buffer.discardReadBytes()
            }
            return frames
        }
        #expect(failures.isEmpty, "\(failures)")
    }

    /// The ws client: the 101 (accept value from the key it sent) and frames behind it.
    @Test func webSocketClientUnderEverySplit() throws {
        let client = try V2RayTransportClient(options: .ws(V2RayWebsocketOptions()), server: Destination(ip: .v4(0x7F00_0001), port: 80),
                                              tlsServerName: nil)
        let allocator = ByteBufferAllocator()
        var frames = FramedStream()
        var expected: [UInt8] = []
        for (index, size) in [1, 0, 200, 66_000].enumerated() {
            let data = payload(size, salt: index)
            expected += data
            frames.append(WebSocketFrameReader.frame(opcode: 2, payload: ByteBuffer(bytes: data), masked: false, allocator: allocator))
        }
        // The key is random per handler: build the channel first, then the stream with its accept.
        func open() throws -> (EmbeddedChannel, TranscriptRecorder, [UInt8]) {
            let loop = EmbeddedEventLoop()
            let channel = EmbeddedChannel(loop: loop)
            let recorder = TranscriptRecorder()
            let ready = loop.makePromise(of: Void.self)
            ready.futureResult.whenFailure { _ in }
            try channel.pipeline.syncOperations.addHandlers([WebSocketClientHandler(client: client, maxEarlyData: 0, earlyDataHeader: nil,
                                                                                    ready: ready), recorder])
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 80)).wait()
            let request = String(buffer: try #require(try channel.readOutbound(as: ByteBuffer.self)))
            let keyLine = try #require(request.split(separator: "\r\n").first { $0.hasPrefix("Sec-WebSocket-Key: ") })
            let accept = WebSocketClientHandler.accept(String(keyLine.dropFirst("Sec-WebSocket-Key: ".count)))
            let head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: \(accept)\r\n\r\n"
            return (channel, recorder, Array(head.utf8))
        }
        let headLength = try open().2.count
        var shape = FramedStream()
        shape.append([UInt8](repeating: 0, count: headLength))
        for boundary in frames.boundaries { shape.boundaries.append(headLength + boundary) }
        shape.bytes += frames.bytes
        for schedule in shape.schedules(pairRegion: headLength - 4..<headLength + 8) {
            let (channel, recorder, head) = try open()
            var errors: [String] = []
            feed(channel, schedule.reads(of: head + frames.bytes), errors: &errors)
            #expect(recorder.transcript == Transcript(bytes: expected) && errors.isEmpty, "\(schedule)")
            _ = try? channel.finish()
        }
    }

    /// httpupgrade and http (HTTP/1.1) clients: the response head, then the raw stream.
    @Test(arguments: [false, true])
    func httpResponseHeadUnderEverySplit(upgrade: Bool) throws {
        var stream = FramedStream()
        stream.append(Array((upgrade ? "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
                                     : "HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nDate: Thu, 26 Nov 2026 00:00:00 GMT\r\nTransfer-Encoding: chunked\r\n\r\n").utf8))
        stream.append(payload(3000, salt: 5))
        let failures = ReadSplits.mismatches(stream.bytes, schedules: stream.schedules(pairRegion: 0..<12),
                                             expected: Transcript(bytes: payload(3000, salt: 5))) { reads in
            let loop = EmbeddedEventLoop()
            let handler: any ChannelHandler
            if upgrade {
                let ready = loop.makePromise(of: Void.self)
                ready.futureResult.whenFailure { _ in }
                handler = HTTPUpgradeClientHandler(request: "GET / HTTP/1.1\r\n\r\n", ready: ready)
            } else {
                handler = HTTP1ClientStreamHandler(requestHead: "PUT / HTTP/1.1\r\n\r\n")
            }
            return try transcript(of: [handler], reads: reads, on: EmbeddedChannel(loop: loop)) { channel in
                try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 80)).wait()
                if !upgrade { try channel.writeOutbound(ByteBuffer(bytes: [1])) }
            }
        }
        #expect(failures.isEmpty, "\(failures)")
    }

    /// The ws and httpupgrade servers: the request head, then frames (ws, masked as clients send
    /// them) or raw bytes.
    @Test(arguments: [false, true])
    func transportServerUnderEverySplit(webSocket: Bool) throws {
        let allocator = ByteBufferAllocator()
        var stream = FramedStream()
        let head = webSocket
            ? "GET /ws HTTP/1.1\r\nHost: a.io\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            : "GET /ws HTTP/1.1\r\nHost: a.io\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        stream.append(Array(head.utf8))
        var expected: [UInt8] = []
        for (index, size) in [7, 0, 126, 70_000].enumerated() {
            let data = payload(size, salt: index)
            expected += data
            if webSocket {
                stream.append(WebSocketFrameReader.frame(opcode: 2, payload: ByteBuffer(bytes: data), masked: true, allocator: allocator))
            } else {
                stream.append(data)
            }
        }
        var ws = V2RayWebsocketOptions()
        ws.path = "/ws"
        var upgradeOptions = V2RayHTTPUpgradeOptions()
        upgradeOptions.path = "/ws"
        let options: V2RayTransportOptions = webSocket ? .ws(ws) : .httpUpgrade(upgradeOptions)
        let server = try V2RayTransportServer(options: options)
        let failures = ReadSplits.mismatches(stream.bytes, schedules: stream.schedules(pairRegion: head.utf8.count - 4..<head.utf8.count + 8),
                                             expected: Transcript(bytes: expected)) { reads in
            try transcript(of: [server.makeHandler(onReject: { _ in })], reads: reads) { try $0.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 80)).wait() }
        }
        #expect(failures.isEmpty, "\(failures)")
    }

    // MARK: UDP-over-TCP

    /// A UoT v2 server stream: the request, then packets of 0, 1, 1400 and 65,535 bytes to varied
    /// addresses; the receiver set as soon as the flow is handed on.
    @Test(arguments: [false, true])
    func udpOverTCPServerUnderEverySplit(connect: Bool) throws {
        let destinations = [Destination(ip: .v4(0x0A00_0001), port: 53), Destination(ip: IPAddress("2001:db8::2")!, port: 443),
                            Destination(domain: "dns.example", port: 853)]
        let framing = UDPOverTCPFraming(connectDestination: connect ? destinations[0] : nil)
        var stream = FramedStream()
        var request = ByteBuffer()
        try UDPOverTCPRequest(isConnect: connect, destination: destinations[0]).write(to: &request)
        stream.append(request)
        var expected: [Packet] = []
        for (index, size) in [0, 1, 1400, 65_535, 3].enumerated() {
            let data = payload(size, salt: index)
            let destination = destinations[index % destinations.count]
            var out = ByteBuffer()
            #expect(framing.write(ByteBuffer(bytes: data), to: destination, into: &out))
            stream.append(out)
            expected.append(Packet(bytes: data, address: connect ? destinations[0] : destination))
        }
        let failures = ReadSplits.mismatches(stream.bytes, schedules: stream.schedules(), expected: expected) { reads in
            let channel = EmbeddedChannel()
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            let next = ReceivingFlowHandler()
            let handler = UDPOverTCPFlowHandler(next: next, logger: ContextLogger(core: .disabled, name: ""))
            let metadata = FlowMetadata(inbound: "in", inboundType: "socks", network: .tcp, source: nil,
                                        destination: Destination(domain: UDPOverTCP.magicAddress, port: 0))
            handler.handleTCP(channel, metadata: metadata, responder: nil)
            channel.embeddedEventLoop.run()
            var errors: [String] = []
            feed(channel, reads, errors: &errors)
            _ = try? channel.finish()
            return next.receiver.packets
        }
        #expect(failures.isEmpty, "\(failures)")
    }
}

/// One datagram as a receiver saw it.
struct Packet: Equatable {
    var bytes: [UInt8]
    var address: Destination
}

/// Collects datagrams.
final class PacketRecorder: PacketReceiver, @unchecked Sendable {
    var packets: [Packet] = []
    func packetReceived(_ payload: ByteBuffer, from source: Destination) { packets.append(Packet(bytes: Array(payload.readableBytesView), address: source)) }
    func packetConnectionClosed() {}
}

/// A flow handler that takes each UDP flow on the spot (a router that decides at once).
final class ReceivingFlowHandler: FlowHandler, @unchecked Sendable {
    let receiver = PacketRecorder()
    var connections: [any PacketConnection] = []
    func handleTCP(_ channel: any Channel, metadata: FlowMetadata, responder: (any HandshakeResponder)?) {}
    func handleUDP(_ connection: any PacketConnection, metadata: FlowMetadata) {
        connections.append(connection)
        connection.setReceiver(receiver)
    }
}

@Suite struct TransportBufferGrowthTests {
    /// `stream` fed in reads that each end `into` bytes inside the next frame's header (frames of
    /// `frameSize`, after a `lead` of bytes); the largest storage the handler's `pending` held.
    static func largestPending<Handler: ChannelHandler>(_ handler: Handler, stream: [UInt8], lead: Int, frameSize: Int, into: Int,
                                                        pending: (Handler) -> ByteBuffer) throws -> (Int, Int) {
        let recorder = TranscriptRecorder()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([handler, recorder])
        try channel.writeOutbound(ByteBuffer(bytes: [1]))
        var largest = 0
        var start = 0
        var cut = lead + into
        while start < stream.count {
            try channel.writeInbound(ByteBuffer(bytes: stream[start..<min(cut, stream.count)]))
            largest = max(largest, pending(handler).capacity)
            start = cut
            cut += frameSize
        }
        let received = recorder.transcript.bytes.readableBytes
        _ = try? channel.finish()
        return (largest, received)
    }

    /// 200 mux.cool Keep frames of 10,000 bytes, every read ending 3 bytes into the next header.
    @Test func muxCoolKeepsItsBufferSmall() throws {
        let data = payload(10_000, salt: 1)
        let frame = [0, 4, 0, 0, 2, 1, UInt8(data.count >> 8), UInt8(data.count & 0xFF)] + data
        let stream = Array([[UInt8]](repeating: frame, count: 200).joined())
        let (largest, received) = try Self.largestPending(MuxCoolClientHandler(), stream: stream, lead: 0, frameSize: frame.count, into: 3) { $0.pending }
        #expect(received == 200 * data.count)
        #expect(largest < 1 << 18, "mux.cool held \(largest) bytes of storage")
    }

    /// 100 simple-obfs tls records of 16,384 bytes, every read ending 2 bytes into the next record header.
    @Test func simpleObfsTLSKeepsItsBufferSmall() throws {
        let data = payload(16_384, salt: 2)
        let record = [23, 3, 3, 0x40, 0] + data
        let first: [UInt8] = [22, 3, 3, 0, 91] + payload(91, salt: 9) + [20, 3, 3, 0, 1, 1] + [22, 3, 3, 0, 0]
        let stream = first + Array([[UInt8]](repeating: record, count: 100).joined())
        let (largest, received) = try Self.largestPending(SimpleObfsTLSClientHandler(host: "a.io"), stream: stream, lead: first.count,
                                                         frameSize: record.count, into: 2) { $0.pending }
        #expect(received == 100 * data.count)
        #expect(largest < 1 << 18, "simple-obfs tls held \(largest) bytes of storage")
    }
}
