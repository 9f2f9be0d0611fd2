import Adapter
import Config
import HTTPProxy
import Mixed
import NIOCore
import NIOPosix
import Net
import SOCKS
import Testing

/// A mixed inbound on loopback routed directly, and a TCP and a UDP echo server.
private struct Rig {
    let group: MultiThreadedEventLoopGroup
    let inbound: MixedInbound
    let echo: any Channel
    let udpEcho: any Channel
    var proxy: Destination { inbound.listener.localAddress! }

    static func start(users: [AuthUser] = []) async throws -> Rig {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var options = HTTPMixedInboundOptions()
        options.listen = loopbackListen()
        options.users = users
        let inbound = try MixedInbound(tag: "mixed-in", options: options, flowHandler: DirectTestRouter(),
                                       logger: silentLogger, group: group)
        try await inbound.start(.start)
        return Rig(group: group, inbound: inbound, echo: try await startEchoServer(group: group),
                   udpEcho: try await startUDPEchoServer(group: group))
    }

    func stop() async {
        try? await inbound.close()
        try? await echo.close()
        try? await udpEcho.close()
        try? await group.shutdownGracefully()
    }

    /// Sends `payload` through `channel` and waits for the echo.
    func roundTrip(_ channel: any Channel, _ payload: ByteBuffer) async throws -> ByteBuffer {
        let collector = CollectHandler(expected: payload.readableBytes, eventLoop: channel.eventLoop)
        try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandler(collector)
            // As Relay.start does: what the dialer's holder kept flows on now.
            if let holder = try? channel.pipeline.syncOperations.handler(type: FlowBufferHandler.self) {
                channel.pipeline.syncOperations.removeHandler(holder, promise: nil)
            }
            _ = try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
            channel.read()
        }.get()
        try await channel.writeAndFlush(payload)
        return try await collector.done.futureResult.get()
    }
}

private func socksOutbound(version: String, username: String? = nil, password: String? = nil, server: Destination) throws -> SOCKSOutbound {
    var options = SOCKSOutboundOptions()
    options.server.server = "127.0.0.1"
    options.server.serverPort = server.port
    options.version = version
    options.username = username
    options.password = password
    return try SOCKSOutbound(tag: "socks-out", options: options, dialer: SystemDialer(), resolver: SystemResolver(), logger: silentLogger)
}

private func httpOutbound(username: String? = nil, password: String? = nil, server: Destination) throws -> HTTPOutbound {
    var options = HTTPOutboundOptions()
    options.server.server = "127.0.0.1"
    options.server.serverPort = server.port
    options.username = username
    options.password = password
    return try HTTPOutbound(tag: "http-out", options: options, dialer: SystemDialer(), logger: silentLogger)
}

private let pattern: [UInt8] = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) }

/// `count` bytes of a fixed non-repeating-looking pattern (at most 1 MiB).
private func payload(_ count: Int) -> ByteBuffer { ByteBuffer(bytes: pattern[..<count]) }

@Suite(.serialized) struct LoopbackProxyTests {
    @Test(arguments: ["5", "4a", "4"]) func socksOutboundThroughMixed(version: String) async throws {
        let rig = try await Rig.start()
        defer { Task { await rig.stop() } }
        let outbound = try socksOutbound(version: version, server: rig.proxy)
        let metadata = FlowMetadata(inbound: "t", inboundType: "t", network: .tcp, source: nil, destination: boundDestination(rig.echo))
        let channel = try await outbound.dialTCP(metadata, on: rig.group.next())
        let data = payload(1 << 20)
        #expect(try await rig.roundTrip(channel, data) == data)
        try await channel.close()
    }

    /// 5 and 4a send the name; 4 resolves it here first (sing resolves through its DNS router).
    @Test(arguments: ["5", "4a", "4"]) func socksOutboundWithDomain(version: String) async throws {
        let rig = try await Rig.start()
        defer { Task { await rig.stop() } }
        let outbound = try socksOutbound(version: version, server: rig.proxy)
        let metadata = FlowMetadata(inbound: "t", inboundType: "t", network: .tcp, source: nil,
                                    destination: Destination(domain: "localhost", port: boundDestination(rig.echo).port))
        let channel = try await outbound.dialTCP(metadata, on: rig.group.next())
        #expect(try await rig.roundTrip(channel, payload(1000)) == payload(1000))
        try await channel.close()
    }

    @Test func httpOutboundThroughMixed() async throws {
        let rig = try await Rig.start()
        defer { Task { await rig.stop() } }
        let outbound = try httpOutbound(server: rig.proxy)
        let metadata = FlowMetadata(inbound: "t", inboundType: "t", network: .tcp, source: nil, destination: boundDestination(rig.echo))
        let channel = try await outbound.dialTCP(metadata, on: rig.group.next())
        let data = payload(300_000)
        #expect(try await rig.roundTrip(channel, data) == data)
        try await channel.close()
    }

    @Test func credentialsAreChecked() async throws {
        let rig = try await Rig.start(users: [AuthUser(username: "bob", password: "pw")])
        defer { Task { await rig.stop() } }
        let metadata = FlowMetadata(inbound: "t", inboundType: "t", network: .tcp, source: nil, destination: boundDestination(rig.echo))
        let loop = rig.group.next()

        let good = try await socksOutbound(version: "5", username: "bob", password: "pw", server: rig.proxy).dialTCP(metadata, on: loop)
        #expect(try await rig.roundTrip(good, payload(10)) == payload(10))
        try await good.close()
        let goodHTTP = try await httpOutbound(username: "bob", password: "pw", server: rig.proxy).dialTCP(metadata, on: loop)
        #expect(try await rig.roundTrip(goodHTTP, payload(10)) == payload(10))
        try await goodHTTP.close()

        await #expect(throws: SOCKSError.authenticationFailed(status: 1)) {
            _ = try await socksOutbound(version: "5", username: "bob", password: "no", server: rig.proxy).dialTCP(metadata, on: loop)
        }
        await #expect(throws: SOCKSError.noAcceptableMethod) {
            _ = try await socksOutbound(version: "5", server: rig.proxy).dialTCP(metadata, on: loop)
        }
        await #expect(throws: SOCKSError.rejected(code: 91)) {
            _ = try await socksOutbound(version: "4a", username: "bob", server: rig.proxy).dialTCP(metadata, on: loop)
        }
        do {
            _ = try await httpOutbound(username: "bob", password: "no", server: rig.proxy).dialTCP(metadata, on: loop)
            Issue.record("accepted a wrong password")
        } catch {
            #expect("\(error)" == "authentication required")
        }
    }

    @Test func refusedDestinationIsReported() async throws {
        let rig = try await Rig.start()
        defer { Task { await rig.stop() } }
        // A port nobody listens on: bind one, close it.
        let closed = try await startEchoServer(group: rig.group)
        let port = boundDestination(closed).port
        try await closed.close()
        let metadata = FlowMetadata(inbound: "t", inboundType: "t", network: .tcp, source: nil, destination: Destination(ip: .v4(0x7F00_0001), port: port))
        await #expect(throws: SOCKSError.rejected(code: SOCKS5.replyConnectionRefused)) {
            _ = try await socksOutbound(version: "5", server: rig.proxy).dialTCP(metadata, on: rig.group.next())
        }
        do {
            _ = try await httpOutbound(server: rig.proxy).dialTCP(metadata, on: rig.group.next())
            Issue.record("connected to a closed port")
        } catch {
            #expect("\(error)" == "unexpected status: 502 Bad Gateway")
        }
    }

    @Test func udpAssociateRoundTrip() async throws {
        let rig = try await Rig.start()
        defer { Task { await rig.stop() } }
        let outbound = try socksOutbound(version: "5", server: rig.proxy)
        let echo = boundDestination(rig.udpEcho)
        let loop = rig.group.next()
        let metadata = FlowMetadata(inbound: "t", inboundType: "t", network: .udp, source: nil, destination: echo)
        let connection = try await outbound.listenPacket(metadata, on: loop)
        let collector = PacketCollector(eventLoop: loop)
        try await loop.submit {
            connection.setReceiver(collector)
            connection.writePacket(ByteBuffer(string: "ping over socks"), to: echo)
            connection.flush()
        }.get()
        let (reply, source) = try await collector.received.futureResult.get()
        #expect(String(buffer: reply) == "ping over socks")
        #expect(source == echo)
        try await loop.submit { connection.close() }.get()
    }

    @Test func closingTheInboundClosesHandshakingConnections() async throws {
        let rig = try await Rig.start()
        defer { Task { await rig.stop() } }
        let client = try await ClientBootstrap(group: rig.group).connect(host: "127.0.0.1", port: Int(rig.proxy.port)).get()
        try await client.writeAndFlush(ByteBuffer(bytes: [0x05, 0x01]))  // half a greeting
        for _ in 0..<100 where rig.inbound.listener.handshakingCount == 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(rig.inbound.listener.handshakingCount == 1)
        try await rig.inbound.close()
        try await client.closeFuture.get()  // the server closed it
        #expect(rig.inbound.listener.handshakingCount == 0)
    }
}
