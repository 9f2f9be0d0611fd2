// v2ray transports' client side: the WebSocket accept value (RFC 6455's example), frames both ways
// on an EmbeddedChannel, garbage after the handshake. Go's inbounds at the other end: in
// InteropTests/TrojanInteropTests.swift (transportsAgainstGoTrojanInbound).
import Adapter
import Config
import NIOCore
import NIOEmbedded
import Testing
@testable import Transport

@Suite struct WebSocketHandshakeTests {
    /// RFC 6455 §1.3's example.
    @Test func acceptMatchesTheRFCExample() {
        #expect(WebSocketClientHandler.accept("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }
}

@Suite struct WebSocketFramingTests {
    /// A client handler on an EmbeddedChannel after a 101 with the right accept value.
    private func openHandler() throws -> (EmbeddedChannel, WebSocketClientHandler) {
        var ws = V2RayWebsocketOptions()
        ws.path = "/x"
        let client = try V2RayTransportClient(options: .ws(ws), server: Destination(ip: .v4(0x7F00_0001), port: 80), tlsServerName: nil)
        let ready = EmbeddedEventLoop().makePromise(of: Void.self)
        let handler = WebSocketClientHandler(client: client, maxEarlyData: 0, earlyDataHeader: nil, ready: ready)
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 80)).wait()
        let request = String(buffer: try #require(try channel.readOutbound(as: ByteBuffer.self)))
        #expect(request.hasPrefix("GET /x HTTP/1.1\r\nHost: 127.0.0.1:80\r\n") && request.contains("Upgrade: websocket\r\n"))
        let key = try #require(request.split(separator: "\r\n").first { $0.hasPrefix("Sec-WebSocket-Key: ") }?.dropFirst(19))
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n"
                                            + "Sec-WebSocket-Accept: \(WebSocketClientHandler.accept(String(key)))\r\n\r\n"))
        ready.futureResult.whenFailure { Issue.record("handshake: \($0)") }
        return (channel, handler)
    }

    @Test func framesBothWays() throws {
        let (channel, _) = try openHandler()
        // Our write: one masked binary frame that unmasks to the bytes.
        try channel.writeOutbound(ByteBuffer(bytes: [1, 2, 3]))
        let frame = Array(try #require(try channel.readOutbound(as: ByteBuffer.self)).readableBytesView)
        #expect(frame[0] == 0x82 && frame[1] == 0x83 && frame.count == 9)
        #expect((0..<3).map { frame[6 + $0] ^ frame[2 + $0 % 4] } == [1, 2, 3])
        // Server frames, split across reads, a 126-length one, and a ping answered with a pong.
        try channel.writeInbound(ByteBuffer(bytes: [0x82, 0x02, 9]))
        try channel.writeInbound(ByteBuffer(bytes: [8]))
        #expect(Array(try #require(try channel.readInbound(as: ByteBuffer.self)).readableBytesView) == [9, 8])
        try channel.writeInbound(ByteBuffer(bytes: [0x82, 126, 0x01, 0x00] + [UInt8](repeating: 7, count: 256)))
        #expect(try #require(try channel.readInbound(as: ByteBuffer.self)).readableBytes == 256)
        try channel.writeInbound(ByteBuffer(bytes: [0x89, 0x01, 0x55]))
        let pong = Array(try #require(try channel.readOutbound(as: ByteBuffer.self)).readableBytesView)
        #expect(pong[0] == 0x8A && pong[1] == 0x81 && pong[6] ^ pong[2] == 0x55)
        // Close ends the stream after answering.
        try channel.writeInbound(ByteBuffer(bytes: [0x88, 0x00]))
        #expect(!channel.isActive)
    }

    @Test func garbageClosesWithoutTrapping() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let (channel, _) = try openHandler()
            let bytes = (0..<Int.random(in: 1..<64, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = try? channel.writeInbound(ByteBuffer(bytes: bytes))
            while (try? channel.readInbound(as: ByteBuffer.self)) != nil {}
            _ = try? channel.finish()
        }
        // A wrong accept value fails the handshake.
        let client = try V2RayTransportClient(options: .ws(V2RayWebsocketOptions()), server: Destination(ip: .v4(1), port: 80), tlsServerName: nil)
        let ready = EmbeddedEventLoop().makePromise(of: Void.self)
        let channel = EmbeddedChannel(handler: WebSocketClientHandler(client: client, maxEarlyData: 0, earlyDataHeader: nil, ready: ready))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 80)).wait()
        _ = try channel.readOutbound(as: ByteBuffer.self)
        try? channel.writeInbound(ByteBuffer(string: "HTTP/1.1 101 OK\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: nope\r\n\r\n"))
        var failed = false
        ready.futureResult.whenFailure { _ in failed = true }
        #expect(failed && !channel.isActive)
    }
}
