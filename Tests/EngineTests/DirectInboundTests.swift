// The direct inbound with override_address forwards through the router and the direct outbound
// to a local server, byte-exact, for TCP and UDP; rules decide reject and routing.
import Adapter
import Block
import Direct
import Net
import NIOCore
import NIOPosix
import NIOConcurrencyHelpers
import Router
import Rules
import Testing

/// Captures log lines for assertions.
final class CapturingSink: LogSink, @unchecked Sendable {
    let lines = NIOLockedValueBox<[String]>([])
    func write(line: String) { lines.withLockedValue { $0.append(line) } }
    var text: String { lines.withLockedValue { $0.joined() } }
}

/// A box in miniature: router, direct + block outbounds, one direct inbound.
struct MiniBox {
    let sink = CapturingSink()
    let inbound: DirectInbound
    let router: FlowRouter

    init(rules: [RouteRule], overrideHost: String, overridePort: UInt16, networks: Set<NetworkKind> = [.tcp, .udp]) {
        let core = LogCore(level: .trace, sink: sink)
        let logger = ContextLogger(core: core, name: "")
        let outbounds = OutboundManager()
        outbounds.add(DirectOutbound(tag: "direct", dialer: SystemDialer(), logger: logger))
        outbounds.add(BlockOutbound(tag: "block", logger: logger))
        router = FlowRouter(rules: rules, outbounds: outbounds, logger: logger)
        inbound = DirectInbound(tag: "d-in", listen: ListenParameters(address: IPAddress("127.0.0.1")!, port: 0),
                                networks: networks, override: DestinationOverride(host: Host(overrideHost), port: overridePort),
                                group: testGroup, router: router, logger: logger)
    }
}

@Suite struct DirectInboundTests {
    @Test func forwardsTCPByteExactToTheOverrideAddress() async throws {
        let upstream = try await startServer { _ in EchoHandler() }
        let upstreamPort = upstream.boundPort
        let box = MiniBox(rules: [], overrideHost: "127.0.0.1", overridePort: UInt16(upstreamPort))
        try await box.inbound.start(.start)
        let port = try #require(box.inbound.tcpLocalAddress?.port)
        let collector = CollectHandler(loop: testGroup.next())
        let client = try await connectClient(port: port, handler: collector)
        let payload = testPayload(count: 1_000_003, seed: 7)
        try await client.writeAndFlush(ByteBuffer(bytes: payload))
        try await client.close(mode: .output)
        let echoed = try await wait(collector.done.futureResult)
        #expect(echoed == payload)
        try await box.inbound.close()
        try await upstream.close()
        let log = box.sink.text
        #expect(log.contains("inbound/direct[d-in]: inbound connection from 127.0.0.1:"))
        #expect(log.contains("inbound/direct[d-in]: inbound connection to 127.0.0.1:\(upstreamPort)"))
        #expect(log.contains("outbound/direct[direct]: outbound connection to 127.0.0.1:\(upstreamPort)"))
        #expect(log.contains("inbound/direct[d-in]: tcp server started at 127.0.0.1:"))
    }

    @Test func rejectRuleClosesTheFlowWithGosLogLine() async throws {
        let upstream = try await startServer { _ in EchoHandler() }
        let rule = RouteRule(condition: .default(DefaultRule(items: [try RuleItem.ipCIDR(isSource: false, ["127.0.0.0/8"])])),
                             action: .reject(.default, noDrop: false))
        let box = MiniBox(rules: [rule], overrideHost: "127.0.0.1", overridePort: UInt16(upstream.boundPort), networks: [.tcp])
        try await box.inbound.start(.start)
        let collector = CollectHandler(loop: testGroup.next())
        let client = try await connectClient(port: try #require(box.inbound.tcpLocalAddress?.port), handler: collector)
        try await client.writeAndFlush(ByteBuffer(bytes: Array("hello".utf8)))
        let echoed = try await wait(collector.done.futureResult)
        #expect(echoed.isEmpty)
        try await box.inbound.close()
        try await upstream.close()
        let log = box.sink.text
        #expect(log.contains("router: match[0] ip_cidr=127.0.0.0/8 => reject"))
        #expect(log.contains("router: connection closed: rejected"))
    }

    @Test func dialFailureIsLoggedLikeGo() async throws {
        // A port nobody listens on: grab one and close it.
        let closed = try await startServer { _ in EchoHandler() }
        let deadPort = closed.boundPort
        try await closed.close()
        let rule = RouteRule(condition: .default(DefaultRule(items: [])), action: .route(outbound: "direct", RouteOverrides()))
        let box = MiniBox(rules: [rule], overrideHost: "127.0.0.1", overridePort: UInt16(deadPort), networks: [.tcp])
        try await box.inbound.start(.start)
        let collector = CollectHandler(loop: testGroup.next())
        _ = try await connectClient(port: try #require(box.inbound.tcpLocalAddress?.port), handler: collector)
        _ = try await wait(collector.done.futureResult)
        try await box.inbound.close()
        #expect(box.sink.text.contains(
            "connection: open connection to 127.0.0.1:\(deadPort) using outbound/direct[direct]: dial tcp 127.0.0.1:\(deadPort): connect: connection refused"))
        #expect(box.sink.text.contains("router: match[0] => route(direct)"))
    }

    @Test func forwardsUDPDatagramsBothWays() async throws {
        let (echo, box, inboundAddress, replies, client) = try await udpEchoThroughInbound(largeDatagrams: false)
        var sent: [[UInt8]] = []
        for index in 0..<5 {
            let datagram = testPayload(count: 100 + index * 300, seed: UInt64(index + 1))
            sent.append(datagram)
            try await client.writeAndFlush(AddressedEnvelope(remoteAddress: inboundAddress, data: ByteBuffer(bytes: datagram)))
        }
        let got = try await replies.waitFor(count: 5)
        #expect(Set(got) == Set(sent))
        try await client.close()
        try await box.inbound.close()
        try await echo.close()
        #expect(box.sink.text.contains("outbound/direct[direct]: outbound packet connection to 127.0.0.1:"))
    }
}

extension DirectInboundTests {
    /// A UDP echo server on loopback, a started direct inbound (MiniBox) that forwards to it, and a
    /// client socket whose replies collect in the returned `UDPCollector`. With `largeDatagrams` the
    /// echo and client sockets read 64 KiB datagrams and have 4 MiB receive buffers.
    func udpEchoThroughInbound(largeDatagrams: Bool) async throws
        -> (echo: any Channel, box: MiniBox, inboundAddress: SocketAddress, replies: UDPCollector, client: any Channel) {
        func bind(_ handler: @escaping @Sendable () -> any ChannelHandler) async throws -> any Channel {
            var bootstrap = DatagramBootstrap(group: testGroup)
            if largeDatagrams {
                bootstrap = bootstrap
                    .channelOption(ChannelOptions.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
                    .channelOption(ChannelOptions.socketOption(.so_rcvbuf), value: 4 << 20)
            }
            return try await bootstrap
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler()) }
                }
                .bind(host: "127.0.0.1", port: 0).get()
        }
        let echo = try await bind { UDPEchoHandler() }
        let box = MiniBox(rules: [], overrideHost: "127.0.0.1", overridePort: UInt16(echo.localAddress!.port!), networks: [.udp])
        try await box.inbound.start(.start)
        let inboundAddress = try #require(box.inbound.udpLocalAddress)
        let replies = UDPCollector()
        let client = try await bind { replies }
        return (echo, box, inboundAddress, replies, client)
    }

    /// A new client's first burst waits for the router without losing the first 64 datagrams' worth of
    /// the rest (the queue holds 512), and datagrams up to 64 KiB arrive whole through the batched reads.
    @Test func burstOnANewFlowAndLargeDatagramsArriveWhole() async throws {
        let (echo, box, inboundAddress, replies, client) = try await udpEchoThroughInbound(largeDatagrams: true)
        var sent: [[UInt8]] = []
        for index in 0..<150 {
            sent.append(testPayload(count: 64, seed: UInt64(index + 1)))
        }
        // One write each, one flush: the burst reaches the inbound before the router has decided.
        for datagram in sent {
            client.write(AddressedEnvelope(remoteAddress: inboundAddress, data: ByteBuffer(bytes: datagram)), promise: nil)
        }
        client.flush()
        _ = try await replies.waitFor(count: sent.count)
        // Then large ones, one at a time (the relay's own sockets keep the kernel's default buffers).
        for size in [9_000, 40_000, 65_000] {
            let datagram = testPayload(count: size, seed: UInt64(size))
            sent.append(datagram)
            try await client.writeAndFlush(AddressedEnvelope(remoteAddress: inboundAddress, data: ByteBuffer(bytes: datagram)))
            _ = try await replies.waitFor(count: sent.count)
        }
        let got = replies.received.withLockedValue { $0 }
        #expect(Set(got) == Set(sent))
        try await client.close()
        try await box.inbound.close()
        try await echo.close()
    }
}

final class UDPEchoHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: envelope.data)), promise: nil)
    }
}

final class UDPCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let received = NIOLockedValueBox<[[UInt8]]>([])
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data).data
        let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
        received.withLockedValue { $0.append(bytes) }
    }
    /// Polls until `count` datagrams arrived; throws `TestTimeout` after 5 s.
    func waitFor(count: Int) async throws -> [[UInt8]] {
        for _ in 0..<500 {
            let now = received.withLockedValue { $0 }
            if now.count >= count { return now }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw TestTimeout()
    }
}
