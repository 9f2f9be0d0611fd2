// The search for the end of an HTTP/1 head (`HTTPHeadEnd`) in every transport handshake that
// gathers one across reads: a head fed one byte per read is found at the same place as in one
// read, and the bytes the searches look at stay linear in the head's length (a search from the
// head's start on every read looks at about n²/2). Counted through `examinedByteCount`, never timed.
// The handlers: httpupgrade and ws clients, the http client (HTTP/1.1), the http server's HTTP/1.1
// path, the ws/httpupgrade server and the simple-obfs http client.
import Adapter
import Config
import NIOCore
import NIOEmbedded
import Testing
@testable import Transport

/// A head of exactly `length` bytes: `start`, filler header lines of varied sizes (the fourth one
/// long), a last line that fills up, the empty line.
func paddedHead(_ start: String, length: Int) -> [UInt8] {
    var head = Array(start.utf8)
    var index = 0
    while length - head.count > 400 {
        let size = index == 3 ? min(12_000, length - head.count - 400) : 17 + (index * 37) % 300
        let line = Array("X-P\(index): \(String(repeating: "v", count: size))\r\n".utf8)
        if head.count + line.count > length - 100 { break }
        head += line
        index += 1
    }
    let fill = length - head.count - "X-End: ".utf8.count - 4
    head += Array("X-End: \(String(repeating: "e", count: max(0, fill)))\r\n\r\n".utf8)
    return head
}

@Suite struct HTTPHeadEndTests {
    /// Each byte costs a bounded number of looks: the search resumes 3 bytes back.
    static func linearBound(_ length: Int) -> Int { 4 * length + 16 }

    @Test func findsTheEndOfA30KiBHeadFedByteByByte() throws {
        let head = paddedHead("GET / HTTP/1.1\r\nHost: a\r\n", length: 30 * 1024)
        #expect(head.count == 30 * 1024)
        var whole = HTTPHeadEnd()
        let expected = whole.find(in: ByteBuffer(bytes: head + [1, 2, 3]))
        #expect(expected == head.count)
        var finder = HTTPHeadEnd()
        var buffer = ByteBuffer()
        var found: Int?
        for (index, byte) in head.enumerated() {
            buffer.writeInteger(byte)
            found = finder.find(in: buffer)
            if found != nil { #expect(index == head.count - 1, "found early at \(index)") }
        }
        #expect(found == expected)
        #expect(finder.examinedByteCount <= Self.linearBound(head.count), "looked at \(finder.examinedByteCount) bytes for \(head.count)")
    }

    /// The end cut at each of its bytes, a lone CR LF CR and LF LF never count as the end.
    @Test func findsAnEndCutAnywhereAndNothingElse() {
        let head = Array("HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody".utf8)
        for cut in 1..<head.count {
            var finder = HTTPHeadEnd()
            var buffer = ByteBuffer(bytes: head[..<cut])
            let first = finder.find(in: buffer)
            buffer.writeBytes(head[cut...])
            let second = first ?? finder.find(in: buffer)
            #expect(second == 25, "cut \(cut)")
        }
        for garbage in ["\r\n\r", "\n\n\n\n", "\r\r\n\n", "\r\n \r\n", ""] {
            var finder = HTTPHeadEnd()
            #expect(finder.find(in: ByteBuffer(string: garbage)) == nil, "\(garbage.debugDescription)")
        }
    }

    /// Feeds `bytes` one per read (while the channel stays open).
    private static func feedByteByByte(_ channel: EmbeddedChannel, _ bytes: [UInt8]) throws {
        for byte in bytes where channel.isActive { try channel.writeInbound(ByteBuffer(bytes: [byte])) }
    }

    @Test(arguments: [false, true])
    func httpClientsScanLinearly(upgrade: Bool) throws {
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(loop: loop)
        let recorder = TranscriptRecorder()
        let head = paddedHead(upgrade ? "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n" : "HTTP/1.1 200 OK\r\n",
                              length: 15 * 1024)
        let examined: () -> Int
        if upgrade {
            let ready = loop.makePromise(of: Void.self)
            ready.futureResult.whenFailure { _ in }
            let handler = HTTPUpgradeClientHandler(request: "GET / HTTP/1.1\r\n\r\n", ready: ready)
            examined = { handler.headEnd.examinedByteCount }
            try channel.pipeline.syncOperations.addHandlers([handler, recorder])
        } else {
            let handler = HTTP1ClientStreamHandler(requestHead: "PUT / HTTP/1.1\r\n\r\n")
            examined = { handler.headEnd.examinedByteCount }
            try channel.pipeline.syncOperations.addHandlers([handler, recorder])
        }
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 80)).wait()
        if !upgrade { try channel.writeOutbound(ByteBuffer(bytes: [1])) }
        try Self.feedByteByByte(channel, head + [7, 8, 9])
        #expect(recorder.transcript == Transcript(bytes: [7, 8, 9]))
        #expect(examined() <= Self.linearBound(head.count), "looked at \(examined()) bytes for \(head.count)")
        _ = try? channel.finish()
    }

    @Test func webSocketClientScansLinearly() throws {
        let client = try V2RayTransportClient(options: .ws(V2RayWebsocketOptions()), server: Destination(ip: .v4(0x7F00_0001), port: 80),
                                              tlsServerName: nil)
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(loop: loop)
        let ready = loop.makePromise(of: Void.self)
        ready.futureResult.whenFailure { _ in }
        let handler = WebSocketClientHandler(client: client, maxEarlyData: 0, earlyDataHeader: nil, ready: ready)
        let recorder = TranscriptRecorder()
        try channel.pipeline.syncOperations.addHandlers([handler, recorder])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 80)).wait()
        let request = String(buffer: try #require(try channel.readOutbound(as: ByteBuffer.self)))
        let keyLine = try #require(request.split(separator: "\r\n").first { $0.hasPrefix("Sec-WebSocket-Key: ") })
        let accept = WebSocketClientHandler.accept(String(keyLine.dropFirst("Sec-WebSocket-Key: ".count)))
        let head = paddedHead("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: \(accept)\r\n",
                              length: 15 * 1024)
        let frame = WebSocketFrameReader.frame(opcode: 2, payload: ByteBuffer(bytes: [5, 6]), masked: false, allocator: ByteBufferAllocator())
        try Self.feedByteByByte(channel, head + Array(frame.readableBytesView))
        #expect(recorder.transcript == Transcript(bytes: [5, 6]))
        #expect(handler.headEnd.examinedByteCount <= Self.linearBound(head.count), "looked at \(handler.headEnd.examinedByteCount) bytes")
        _ = try? channel.finish()
    }

    @Test(arguments: [false, true])
    func transportServersScanLinearly(webSocket: Bool) throws {
        var ws = V2RayWebsocketOptions()
        ws.path = "/ws"
        var upgradeOptions = V2RayHTTPUpgradeOptions()
        upgradeOptions.path = "/ws"
        let server = try V2RayTransportServer(options: webSocket ? .ws(ws) : .httpUpgrade(upgradeOptions))
        let handler = try #require(server.makeHandler(onReject: { _ in }) as? V2RayTransportServerHandler)
        let recorder = TranscriptRecorder()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([handler, recorder])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 80)).wait()
        let start = webSocket
            ? "GET /ws HTTP/1.1\r\nHost: a.io\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            : "GET /ws HTTP/1.1\r\nHost: a.io\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        let head = paddedHead(start, length: 15 * 1024)
        let data: [UInt8] = webSocket
            ? Array(WebSocketFrameReader.frame(opcode: 2, payload: ByteBuffer(bytes: [4, 2]), masked: true, allocator: ByteBufferAllocator()).readableBytesView)
            : [4, 2]
        try Self.feedByteByByte(channel, head + data)
        #expect(recorder.transcript == Transcript(bytes: [4, 2]))
        #expect(handler.headEnd.examinedByteCount <= Self.linearBound(head.count), "looked at \(handler.headEnd.examinedByteCount) bytes")
        _ = try? channel.finish()
    }

    /// The http transport server's HTTP/1.1 path (Go answers it there): a 15 KiB request head
    /// trickling in is found with linear work and answered (404 for a path not served).
    @Test func httpServerScansLinearly() throws {
        let route = V2RayHTTPRoute(kind: .http(hosts: [], method: nil, headers: []), path: "/p")
        let handler = V2RayHTTPServerHandler(route: route, flowID: FlowID(), onReject: { _ in }) { _, _ in }
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 80)).wait()
        let head = paddedHead("PUT /elsewhere HTTP/1.1\r\nHost: a.io\r\n", length: 15 * 1024)
        try Self.feedByteByByte(channel, head)
        let answer = String(buffer: try #require(try channel.readOutbound(as: ByteBuffer.self)))
        #expect(answer.hasPrefix("HTTP/1.1 404"), "\(answer)")
        #expect(handler.headEnd.examinedByteCount <= Self.linearBound(head.count), "looked at \(handler.headEnd.examinedByteCount) bytes")
        _ = try? channel.finish()
    }

    /// simple-obfs http gathers a reply header of up to 32 KiB: 30 KiB of it byte by byte.
    @Test func simpleObfsHTTPScansLinearly() throws {
        let handler = SimpleObfsHTTPClientHandler(host: "a.io", port: 80)
        let recorder = TranscriptRecorder()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([handler, recorder])
        try channel.writeOutbound(ByteBuffer(bytes: [1, 2, 3]))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 80)).wait()
        let head = paddedHead("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", length: 30 * 1024)
        try Self.feedByteByByte(channel, head + [9])
        #expect(recorder.transcript == Transcript(bytes: [9]))
        #expect(handler.headEnd.examinedByteCount <= Self.linearBound(head.count), "looked at \(handler.headEnd.examinedByteCount) bytes")
        _ = try? channel.finish()
    }
}
