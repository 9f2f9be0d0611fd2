import Adapter
import HTTPProxy
import Mixed
import NIOCore
import NIOEmbedded
import SOCKS
import Testing

private let clientAddress = try! SocketAddress(ipAddress: "127.0.0.1", port: 40000)
private let serverAddress = try! SocketAddress(ipAddress: "127.0.0.1", port: 1080)

/// An active embedded channel running `handler`, as an accepted connection.
private func accepted(_ handler: some ChannelHandler) throws -> EmbeddedChannel {
    let channel = EmbeddedChannel()
    try channel.pipeline.syncOperations.addHandler(handler)
    channel.localAddress = serverAddress
    try channel.connect(to: clientAddress).wait()
    return channel
}

private func socksContext(_ flows: RecordingFlowHandler, users: [(String, String)] = []) -> SOCKSInboundContext {
    SOCKSInboundContext(tag: "in", type: "socks", users: SOCKSUsers(users.map { (username: $0.0, password: $0.1) }),
                        flowHandler: flows, logger: silentLogger, handshakeTimeout: .seconds(5))
}

private func httpContext(_ flows: RecordingFlowHandler, users: [(String, String)] = []) -> HTTPInboundContext {
    HTTPInboundContext(tag: "in", type: "http", users: HTTPProxyUsers(users.map { (username: $0.0, password: $0.1) }),
                       flowHandler: flows, logger: silentLogger, handshakeTimeout: .seconds(5))
}

/// Everything the handler wrote so far.
private func written(_ channel: EmbeddedChannel) throws -> [UInt8] {
    var out: [UInt8] = []
    while let chunk = try channel.readOutbound(as: ByteBuffer.self) { out += bytes(chunk) }
    return out
}

/// Everything that reached the end of the pipeline.
private func delivered(_ channel: EmbeddedChannel) throws -> [UInt8] {
    var out: [UInt8] = []
    while let chunk = try channel.readInbound(as: ByteBuffer.self) { out += bytes(chunk) }
    return out
}

// greeting (no auth); CONNECT example.com:443
private let socks5Connect: [UInt8] = [0x05, 0x01, 0x00] + [0x05, 0x01, 0x00, 0x03, 0x0b] + Array("example.com".utf8) + [0x01, 0xbb]

@Suite struct SOCKSServerHandlerTests {
    @Test func connectRepliesAfterRouterAndReplaysEarlyBytes() throws {
        let flows = RecordingFlowHandler()
        let channel = try accepted(SOCKSServerHandler(context: socksContext(flows)))
        try channel.writeInbound(buffer(socks5Connect + [0x16, 0x03, 0x01]))
        #expect(try written(channel) == [0x05, 0x00])
        let flow = try #require(flows.tcp.first)
        #expect(flow.metadata.destination == Destination(domain: "example.com", port: 443))
        #expect(flow.metadata.source == Destination(ip: .v4(0x7F00_0001), port: 40000))
        #expect(flow.metadata.inbound == "in")
        #expect(flow.metadata.inboundType == "socks")
        #expect(flow.metadata.network == .tcp)
        // Nothing reaches the relay before the router answered.
        #expect(try delivered(channel).isEmpty)
        try flow.responder?.succeed(channel).wait()
        #expect(try written(channel) == [0x05, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0])
        channel.read()
        #expect(try delivered(channel) == [0x16, 0x03, 0x01])
        #expect(throws: (any Error).self) { try channel.pipeline.syncOperations.handler(type: SOCKSServerHandler.self) }
        try channel.writeInbound(buffer([0x42]))
        #expect(try delivered(channel) == [0x42])
    }

    @Test func relayReadBeforeAnswerGetsEarlyBytes() throws {
        // The router installs the relay (which asks to read) and then answers, in one loop turn.
        let flows = RecordingFlowHandler()
        let channel = try accepted(SOCKSServerHandler(context: socksContext(flows)))
        try channel.writeInbound(buffer(socks5Connect + [0x16, 0x03, 0x01]))
        _ = try written(channel)
        channel.read()
        #expect(try delivered(channel).isEmpty)
        try #require(flows.tcp.first?.responder).succeed(channel).wait()
        #expect(try delivered(channel) == [0x16, 0x03, 0x01])
        #expect(throws: (any Error).self) { try channel.pipeline.syncOperations.handler(type: SOCKSServerHandler.self) }
    }

    @Test func halfCloseAfterRequestReachesTheRelayAfterTheBytes() throws {
        final class EventRecorder: ChannelInboundHandler, @unchecked Sendable {
            typealias InboundIn = ByteBuffer
            var log: [String] = []
            func channelRead(context: ChannelHandlerContext, data: NIOAny) { log.append("data \(unwrapInboundIn(data).readableBytes)") }
            func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) { log.append("\(event)") }
        }
        let flows = RecordingFlowHandler()
        let channel = try accepted(SOCKSServerHandler(context: socksContext(flows)))
        try channel.writeInbound(buffer(socks5Connect + [1, 2, 3]))
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(channel.isActive)
        let recorder = EventRecorder()
        try channel.pipeline.syncOperations.addHandler(recorder)
        try #require(flows.tcp.first?.responder).succeed(channel).wait()
        channel.read()
        #expect(recorder.log == ["data 3", "inputClosed"])
    }

    @Test func halfCloseMidHandshakeCloses() throws {
        let flows = RecordingFlowHandler()
        let channel = try accepted(SOCKSServerHandler(context: socksContext(flows)))
        try channel.writeInbound(buffer([0x05, 0x01]))
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(!channel.isActive)
    }

    @Test func serverBytesRelayedBeforeTheAnswerFollowTheReply() throws {
        // The relay may forward a server-first banner in the same turn as the router answers.
        let flows = RecordingFlowHandler()
        let channel = try accepted(SOCKSServerHandler(context: socksContext(flows)))
        try channel.writeInbound(buffer(socks5Connect))
        _ = try written(channel)
        channel.writeAndFlush(buffer("SSH-2.0-banner\r\n"), promise: nil)
        #expect(try written(channel).isEmpty)
        try #require(flows.tcp.first?.responder).succeed(channel).wait()
        #expect(try written(channel) == [0x05, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0] + Array("SSH-2.0-banner\r\n".utf8))
    }

    @Test func serverThatAnswersAndHangsUpAtOnceStillGetsTheReplyFirst() throws {
        let flows = RecordingFlowHandler()
        let channel = try accepted(SOCKSServerHandler(context: socksContext(flows)))
        try channel.writeInbound(buffer(socks5Connect))
        _ = try written(channel)
        channel.writeAndFlush(buffer("bye"), promise: nil)
        channel.close(mode: .output, promise: nil)
        #expect(channel.isActive)
        try #require(flows.tcp.first?.responder).succeed(channel).wait()
        #expect(try written(channel) == [0x05, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0] + Array("bye".utf8))
    }

    @Test func heldCloseWithoutAnswerIsHonouredNextTurn() throws {
        let flows = RecordingFlowHandler()
        let channel = try accepted(SOCKSServerHandler(context: socksContext(flows)))
        try channel.writeInbound(buffer(socks5Connect))
        channel.close(promise: nil)
        #expect(channel.isActive)
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive)
    }

    @Test func connectFailureRepliesWithCode() throws {
        struct Refused: Error, CustomStringConvertible { var description: String { "connect: connection refused" } }
        let flows = RecordingFlowHandler()
        let channel = try accepted(SOCKSServerHandler(context: socksContext(flows)))
        try channel.writeInbound(buffer(socks5Connect))
        _ = try written(channel)
        try #require(flows.tcp.first?.responder).fail(channel, error: Refused()).wait()
        #expect(try written(channel) == [0x05, 0x05, 0x00, 0x01, 0, 0, 0, 0, 0, 0])
    }

    @Test(arguments: 1..<socks5Connect.count) func splitAtEveryByte(split: Int) throws {
        let flows = RecordingFlowHandler()
        let channel = try accepted(SOCKSServerHandler(context: socksContext(flows)))
        try channel.writeInbound(buffer(Array(socks5Connect[..<split])))
        #expect(flows.tcp.isEmpty)
        try channel.writeInbound(buffer(Array(socks5Connect[split...])))
        #expect(flows.tcp.first?.metadata.destination == Destination(domain: "example.com", port: 443))
    }

    @Test func passwordAuthSetsUser() throws {
        let flows = RecordingFlowHandler()
        let channel = try accepted(SOCKSServerHandler(context: socksContext(flows, users: [("bob", "pw")])))
        try channel.writeInbound(buffer([0x05, 0x01, 0x02, 0x01, 0x03] + Array("bob".utf8) + [0x02] + Array("pw".utf8)
                                        + [0x05, 0x01, 0x00, 0x01, 10, 0, 0, 1, 0, 80]))
        #expect(try written(channel) == [0x05, 0x02, 0x01, 0x00])
        #expect(flows.tcp.first?.metadata.user == "bob")
    }

    @Test func wrongPasswordClosesAfterReply() throws {
        let flows = RecordingFlowHandler()
        let channel = try accepted(SOCKSServerHandler(context: socksContext(flows, users: [("bob", "pw")])))
        try channel.writeInbound(buffer([0x05, 0x01, 0x02, 0x01, 0x03] + Array("bob".utf8) + [0x01] + Array("x".utf8)))
        #expect(try written(channel) == [0x05, 0x02, 0x01, 0x01])
        #expect(!channel.isActive)
        #expect(flows.tcp.isEmpty)
    }

    @Test func garbageCloses() throws {
        let flows = RecordingFlowHandler()
        let channel = try accepted(SOCKSServerHandler(context: socksContext(flows)))
        try channel.writeInbound(buffer([0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x09, 0xde, 0xad]))
        #expect(!channel.isActive)
        #expect(flows.tcp.isEmpty)
    }

    @Test func clientVanishingMidHandshakeIsQuiet() throws {
        let flows = RecordingFlowHandler()
        let channel = try accepted(SOCKSServerHandler(context: socksContext(flows)))
        try channel.writeInbound(buffer([0x05, 0x02, 0x00]))
        channel.pipeline.fireChannelInactive()
        #expect(flows.tcp.isEmpty)
        _ = try? channel.finish()
    }

    @Test func stalledHandshakeTimesOut() throws {
        let flows = RecordingFlowHandler()
        let channel = try accepted(SOCKSServerHandler(context: socksContext(flows)))
        try channel.writeInbound(buffer([0x05, 0x01]))
        channel.embeddedEventLoop.advanceTime(by: .seconds(4))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive)
    }

    @Test func socks4aConnect() throws {
        let flows = RecordingFlowHandler()
        let channel = try accepted(SOCKSServerHandler(context: socksContext(flows)))
        try channel.writeInbound(buffer([0x04, 0x01, 0x00, 0x50, 0, 0, 0, 1, 0] + Array("a.example".utf8) + [0]))
        let flow = try #require(flows.tcp.first)
        #expect(flow.metadata.destination == Destination(domain: "a.example", port: 80))
        try flow.responder?.succeed(channel).wait()
        #expect(try written(channel) == [0x00, 0x5a, 0, 0, 0, 0, 0, 0])
    }

    @Test func udpAssociateWithoutUDPIsRefused() throws {
        let flows = RecordingFlowHandler()
        let channel = try accepted(SOCKSServerHandler(context: socksContext(flows)))
        try channel.writeInbound(buffer([0x05, 0x01, 0x00, 0x05, 0x03, 0x00, 0x01, 0, 0, 0, 0, 0, 0]))
        #expect(try written(channel) == [0x05, 0x00, 0x05, 0x07, 0x00, 0x01, 0, 0, 0, 0, 0, 0])
        #expect(!channel.isActive)
    }
}

@Suite struct HTTPProxyServerHandlerTests {
    @Test func connectWithCredentials() throws {
        let flows = RecordingFlowHandler()
        let channel = try accepted(HTTPProxyServerHandler(context: httpContext(flows, users: [("bob", "secret")])))
        try channel.writeInbound(buffer("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n"
                                        + "Proxy-Authorization: Basic Ym9iOnNlY3JldA==\r\n\r\nEARLY"))
        let flow = try #require(flows.tcp.first)
        #expect(flow.metadata.destination == Destination(domain: "example.com", port: 443))
        #expect(flow.metadata.user == "bob")
        #expect(try written(channel).isEmpty)
        try flow.responder?.succeed(channel).wait()
        #expect(String(decoding: try written(channel), as: UTF8.self) == "HTTP/1.1 200 Connection established\r\n\r\n")
        channel.read()
        #expect(String(decoding: try delivered(channel), as: UTF8.self) == "EARLY")
    }

    /// A 30 KiB CONNECT head (one header line of 29 KiB) fed one byte per read: the handler keeps
    /// its scan between reads, so each byte is looked at once (counted, not timed).
    @Test func headTricklingInScansLinearly() throws {
        let flows = RecordingFlowHandler()
        let handler = HTTPProxyServerHandler(context: httpContext(flows))
        let channel = try accepted(handler)
        let head = Array(("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nX-Long: " + String(repeating: "l", count: 29 * 1024)
                          + "\r\nX-More: 1\r\n\r\n").utf8)
        #expect(head.count > 29 * 1024)
        for byte in head { try channel.writeInbound(ByteBuffer(bytes: [byte])) }
        let flow = try #require(flows.tcp.first)
        #expect(flow.metadata.destination == Destination(domain: "example.com", port: 443))
        #expect(handler.resume.examinedByteCount <= head.count, "looked at \(handler.resume.examinedByteCount) bytes for \(head.count)")
    }

    @Test func missingCredentialsGet407AndClose() throws {
        let flows = RecordingFlowHandler()
        let channel = try accepted(HTTPProxyServerHandler(context: httpContext(flows, users: [("bob", "secret")])))
        try channel.writeInbound(buffer("GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n"))
        #expect(String(decoding: try written(channel), as: UTF8.self)
                == "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"sing-box\" charset=\"UTF-8\"\r\nContent-Length: 0\r\n\r\n")
        #expect(!channel.isActive)
        #expect(flows.tcp.isEmpty)
    }

    @Test func wrongCredentialsGet407() throws {
        let flows = RecordingFlowHandler()
        let channel = try accepted(HTTPProxyServerHandler(context: httpContext(flows, users: [("bob", "secret")])))
        try channel.writeInbound(buffer("CONNECT a:1 HTTP/1.0\r\nProxy-Authorization: Basic Ym9iOng=\r\n\r\n"))
        #expect(String(decoding: try written(channel), as: UTF8.self).hasPrefix("HTTP/1.0 407 "))
        #expect(!channel.isActive)
    }

    @Test func forwardReplaysRewrittenHeadAndBody() throws {
        let flows = RecordingFlowHandler()
        let channel = try accepted(HTTPProxyServerHandler(context: httpContext(flows)))
        try channel.writeInbound(buffer("POST http://10.0.0.1:8080/upload HTTP/1.1\r\nHost: 10.0.0.1:8080\r\n"
                                        + "Proxy-Connection: keep-alive\r\nContent-Length: 4\r\n\r\nbo"))
        let flow = try #require(flows.tcp.first)
        #expect(flow.metadata.destination == Destination(ip: .v4(0x0A00_0001), port: 8080))
        try channel.writeInbound(buffer("dy"))  // arrives while the router dials
        try flow.responder?.succeed(channel).wait()
        #expect(try written(channel).isEmpty)
        channel.read()
        #expect(String(decoding: try delivered(channel), as: UTF8.self)
                == "POST /upload HTTP/1.1\r\nHost: 10.0.0.1:8080\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody")
    }

    @Test func forwardReplaysWhenRelayReadFirst() throws {
        let flows = RecordingFlowHandler()
        let channel = try accepted(HTTPProxyServerHandler(context: httpContext(flows)))
        try channel.writeInbound(buffer("GET http://a.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n"))
        channel.read()
        try #require(flows.tcp.first?.responder).succeed(channel).wait()
        #expect(String(decoding: try delivered(channel), as: UTF8.self) == "GET /x HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n")
    }

    @Test func forwardFailureIs502() throws {
        struct Failed: Error {}
        let flows = RecordingFlowHandler()
        let channel = try accepted(HTTPProxyServerHandler(context: httpContext(flows)))
        try channel.writeInbound(buffer("GET http://a.example/ HTTP/1.1\r\n\r\n"))
        try #require(flows.tcp.first?.responder).fail(channel, error: Failed()).wait()
        #expect(String(decoding: try written(channel), as: UTF8.self) == "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
    }

    @Test func originFormIs400() throws {
        let flows = RecordingFlowHandler()
        let channel = try accepted(HTTPProxyServerHandler(context: httpContext(flows)))
        try channel.writeInbound(buffer("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(String(decoding: try written(channel), as: UTF8.self) == "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        #expect(!channel.isActive)
    }

    @Test func oneMebibyteHeaderIs431AndClose() throws {
        let flows = RecordingFlowHandler()
        let channel = try accepted(HTTPProxyServerHandler(context: httpContext(flows)))
        try channel.writeInbound(buffer("GET http://a/ HTTP/1.1\r\nX-Big: "))
        let chunk = String(repeating: "x", count: 16 * 1024)
        var sent = 0
        while channel.isActive, sent < 1 << 20 {
            try channel.writeInbound(buffer(chunk))
            sent += chunk.utf8.count
        }
        #expect(!channel.isActive)
        #expect(sent <= HTTPRequestHead.maximumLength + chunk.utf8.count)  // refused as soon as it passed the limit
        #expect(String(decoding: try written(channel), as: UTF8.self).hasPrefix("HTTP/1.1 431 "))
        #expect(flows.tcp.isEmpty)
    }

    @Test func garbageCloses() throws {
        let flows = RecordingFlowHandler()
        let channel = try accepted(HTTPProxyServerHandler(context: httpContext(flows)))
        try channel.writeInbound(buffer("\u{0}\u{1}\u{2} garbage\r\n\r\n"))
        #expect(!channel.isActive)
        #expect(try written(channel).isEmpty)
    }

    @Test func xForwardedForSetsSource() throws {
        let flows = RecordingFlowHandler()
        let channel = try accepted(HTTPProxyServerHandler(context: httpContext(flows)))
        try channel.writeInbound(buffer("CONNECT a:1 HTTP/1.1\r\nX-Forwarded-For: junk, 192.0.2.7\r\n\r\n"))
        #expect(flows.tcp.first?.metadata.source == Destination(ip: .v4(0xC000_0207), port: 40000))
    }

    @Test func stalledHeadTimesOut() throws {
        let flows = RecordingFlowHandler()
        let channel = try accepted(HTTPProxyServerHandler(context: httpContext(flows)))
        try channel.writeInbound(buffer("GET http://a/ HTTP/1.1\r\n"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(6))
        #expect(!channel.isActive)
    }
}

@Suite struct MixedSniffHandlerTests {
    private func mixed(_ flows: RecordingFlowHandler) throws -> EmbeddedChannel {
        var socks = socksContext(flows), http = httpContext(flows)
        socks.type = "mixed"
        http.type = "mixed"
        return try accepted(MixedSniffHandler(socks: socks, http: http))
    }

    @Test func firstByteFiveIsSOCKS5() throws {
        let flows = RecordingFlowHandler()
        let channel = try mixed(flows)
        try channel.writeInbound(buffer(socks5Connect))
        #expect(try written(channel) == [0x05, 0x00])
        #expect(flows.tcp.first?.metadata.inboundType == "mixed")
        #expect(throws: (any Error).self) { try channel.pipeline.syncOperations.handler(type: MixedSniffHandler.self) }
    }

    @Test func firstByteFourIsSOCKS4() throws {
        let flows = RecordingFlowHandler()
        let channel = try mixed(flows)
        try channel.writeInbound(buffer([0x04]))
        try channel.writeInbound(buffer([0x01, 0x00, 0x50, 1, 2, 3, 4, 0]))
        #expect(flows.tcp.first?.metadata.destination == Destination(ip: .v4(0x0102_0304), port: 80))
    }

    @Test func anythingElseIsHTTP() throws {
        let flows = RecordingFlowHandler()
        let channel = try mixed(flows)
        try channel.writeInbound(buffer("CONNECT b.example:8443 HTTP/1.1\r\n\r\n"))
        #expect(flows.tcp.first?.metadata.destination == Destination(domain: "b.example", port: 8443))
    }

    @Test func silentClientTimesOut() throws {
        let channel = try mixed(RecordingFlowHandler())
        channel.embeddedEventLoop.advanceTime(by: .seconds(6))
        #expect(!channel.isActive)
    }
}
