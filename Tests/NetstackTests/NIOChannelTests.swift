import Testing
import NIOCore
import NIOEmbedded
import NetstackWire
import Netstack
import NetstackNIO

/// A device wired to another on the same loop: what one writes, the other reads on the next loop turn.
final class PairedDevice: PacketDevice, @unchecked Sendable {
    var deliver: ((inout PacketBatch) -> Void)?
    weak var peer: PairedDevice?
    var loop: (any EventLoop)?
    var written = 0

    func start(on eventLoop: any EventLoop, deliver: @escaping (inout PacketBatch) -> Void) {
        self.loop = eventLoop
        self.deliver = deliver
    }

    func write(_ batch: inout PacketBatch) {
        written += batch.count
        var copy = PacketBatch(capacity: batch.count)
        for p in batch.packets { copy.append(p) }
        guard let peer, let loop else { return }
        let packets = copy
        loop.execute {
            var batch = packets
            peer.deliver?(&batch)
        }
    }

    func stop() { deliver = nil }
}

/// Collects bytes and events of one channel.
final class Collector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    var received: [UInt8] = []
    var datagrams: [[UInt8]] = []
    var inputClosed = false
    var errors: [any Error] = []
    var inactive = false
    var writabilityChanges: [Bool] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        received += buffer.readableBytesView
        datagrams.append(Array(buffer.readableBytesView))
    }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { inputClosed = true }
    }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { errors.append(error) }
    func channelInactive(context: ChannelHandlerContext) { inactive = true }
    func channelWritabilityChanged(context: ChannelHandlerContext) { writabilityChanges.append(context.channel.isWritable) }
}

/// Echoes everything and half-closes after the peer's FIN.
final class Echo: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }
    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { context.close(mode: .output, promise: nil) }
    }
}

/// A gateway driver (transparent) and a client driver (10.0.0.2) on one embedded loop.
final class DriverPair {
    let loop = EmbeddedEventLoop()
    let gateway: NetstackDriver
    let client: NetstackDriver

    init() {
        var g = StackConfiguration(); g.transparent = true
        var c = StackConfiguration(); c.ipv4Addresses = [IPv4Address(10, 0, 0, 2)]
        let dg = PairedDevice(), dc = PairedDevice()
        dg.peer = dc; dc.peer = dg
        gateway = NetstackDriver(stack: Stack(configuration: g, seed: 11), device: dg, eventLoop: loop)
        client = NetstackDriver(stack: Stack(configuration: c, seed: 12), device: dc, eventLoop: loop)
        gateway.start(); client.start()
    }

    /// A client TCP flow to `destination`, accepted bare on the gateway; returns the gateway's channel,
    /// the connected client channel and the collector on it.
    func connectThroughGateway(to destination: Endpoint) throws -> (gateway: (any Channel)?, client: any Channel, collector: Collector) {
        var gatewayChannel: (any Channel)?
        gateway.onIncoming = { [gateway] flow in
            _ = gateway.accept(flow) { channel in
                gatewayChannel = channel
                return channel.eventLoop.makeSucceededVoidFuture()
            }
        }
        let collector = Collector()
        let connected = client.connectTCP(to: destination) { channel in
            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
        }
        spin(.milliseconds(50))
        let channel = try connected.wait()
        return (gatewayChannel, channel, collector)
    }

    /// Runs the loop, advancing virtual time in small steps so timers fire.
    func spin(_ duration: TimeAmount = .seconds(2)) {
        let step = TimeAmount.milliseconds(1)
        var elapsed = TimeAmount.zero
        while elapsed < duration {
            loop.run()
            loop.advanceTime(by: step)
            elapsed = elapsed + step
        }
    }
}

@Test func tcpEchoThroughChannelsWithHalfClose() throws {
    let pair = DriverPair()
    var acceptedKey: FlowKey?
    pair.gateway.onIncoming = { flow in
        acceptedKey = flow.key
        _ = pair.gateway.accept(flow) { channel in
            channel.setOption(ChannelOptions.allowRemoteHalfClosure, value: true).flatMapThrowing {
                try channel.pipeline.syncOperations.addHandler(Echo())
            }
        }
    }
    let collector = Collector()
    let connected = pair.client.connectTCP(to: Endpoint(.v4(IPv4Address(198, 51, 100, 7)), 7)) { channel in
        channel.setOption(ChannelOptions.allowRemoteHalfClosure, value: true).flatMapThrowing {
            try channel.pipeline.syncOperations.addHandler(collector)
        }
    }
    pair.spin(.milliseconds(50))
    let channel = try connected.wait()
    #expect(acceptedKey?.local == Endpoint(.v4(IPv4Address(198, 51, 100, 7)), 7))
    #expect(channel.remoteAddress?.port == 7)

    var rng = SeededRandom(seed: 99)
    let payload = (0..<300_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    for start in stride(from: 0, to: payload.count, by: 10_000) {
        channel.write(ByteBuffer(bytes: payload[start..<min(payload.count, start + 10_000)]), promise: nil)
    }
    channel.flush()
    channel.close(mode: .output, promise: nil)
    pair.spin(.seconds(3))
    #expect(collector.received.count == payload.count)
    #expect(collector.received == payload)
    #expect(collector.inputClosed)
    channel.close(promise: nil)
    pair.spin(.seconds(70))  // TIME-WAIT passes
    #expect(pair.client.stack.numberOfFlows == 0 && pair.gateway.stack.numberOfFlows == 0)
}

@Test func receiveWindowFollowsTheReader() throws {
    let pair = DriverPair()
    var gatewayChannel: (any Channel)?
    let sink = Collector()
    pair.gateway.onIncoming = { flow in
        _ = pair.gateway.accept(flow) { channel in
            gatewayChannel = channel
            return channel.setOption(ChannelOptions.autoRead, value: false).flatMapThrowing {
                try channel.pipeline.syncOperations.addHandler(sink)
            }
        }
    }
    let source = Collector()
    let connected = pair.client.connectTCP(to: Endpoint(.v4(IPv4Address(198, 51, 100, 8)), 80)) { channel in
        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(source) }
    }
    pair.spin(.milliseconds(50))
    let channel = try connected.wait()
    let total = 8 << 20
    let chunk = ByteBuffer(repeating: 0x5a, count: 64 * 1024)
    for _ in 0..<(total / chunk.readableBytes) { channel.write(chunk, promise: nil) }
    channel.flush()
    pair.spin(.seconds(2))
    // Nobody reads on the gateway: its window closed, the client's buffers filled, writes wait.
    #expect(sink.received.isEmpty)
    #expect(!channel.isWritable)
    #expect(source.writabilityChanges == [false])
    let stalled = pair.client.stack.statistics.tcpSegmentsSent
    pair.spin(.seconds(2))
    #expect(pair.client.stack.statistics.tcpSegmentsSent - stalled < 20)  // only window probes
    // The reader starts: everything arrives and the writer becomes writable again.
    gatewayChannel?.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
    pair.spin(.seconds(10))
    #expect(sink.received.count == total)
    #expect(channel.isWritable)
    #expect(source.writabilityChanges == [false, true])
}

@Test func abortResetsThePeer() throws {
    let pair = DriverPair()
    let (gatewayChannel, channel, collector) = try pair.connectThroughGateway(to: Endpoint(.v4(IPv4Address(198, 51, 100, 9)), 443))
    gatewayChannel?.triggerUserOutboundEvent(NetstackAbort(), promise: nil)
    pair.spin(.milliseconds(50))
    #expect(collector.errors.first as? NetstackChannelError == .connectionReset, "\(collector.errors)")
    #expect(collector.inactive && !channel.isActive)
    #expect(pair.client.stack.numberOfFlows == 0 && pair.gateway.stack.numberOfFlows == 0)
}

@Test func udpFlowsAsDatagramChannels() throws {
    let pair = DriverPair()
    pair.gateway.onIncoming = { flow in
        #expect(flow.key.proto == .udp)
        _ = pair.gateway.accept(flow) { channel in
            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Echo()) }
        }
    }
    let collector = Collector()
    let opened = pair.client.openUDP(to: Endpoint(.v4(IPv4Address(9, 9, 9, 9)), 53)) { channel in
        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
    }
    pair.spin(.milliseconds(5))
    let channel = try opened.wait()
    channel.writeAndFlush(ByteBuffer(string: "one"), promise: nil)
    channel.writeAndFlush(ByteBuffer(string: "two"), promise: nil)
    pair.spin(.milliseconds(20))
    #expect(collector.datagrams == [Array("one".utf8), Array("two".utf8)])
    channel.close(promise: nil)
    pair.spin(.milliseconds(5))
    #expect(pair.client.stack.numberOfFlows == 0)
}

@Test func unclaimedFlowsAreRefused() throws {
    let pair = DriverPair()  // gateway without onIncoming: RST
    let connected = pair.client.connectTCP(to: Endpoint(.v4(IPv4Address(198, 51, 100, 1)), 22)) { channel in
        channel.eventLoop.makeSucceededVoidFuture()
    }
    pair.spin(.milliseconds(50))
    #expect(throws: NetstackChannelError.connectionReset) { try connected.wait() }
}

@Test func ordinaryModeListenerThroughTheDriver() throws {
    // A node's own stack (as a WireGuard/Tailscale endpoint has): own address, one listened port.
    let loop = EmbeddedEventLoop()
    var s = StackConfiguration(); s.ipv4Addresses = [IPv4Address(100, 64, 0, 1)]
    var c = StackConfiguration(); c.ipv4Addresses = [IPv4Address(100, 64, 0, 2)]
    let ds = PairedDevice(), dc = PairedDevice()
    ds.peer = dc; dc.peer = ds
    let server = NetstackDriver(stack: Stack(configuration: s, seed: 1), device: ds, eventLoop: loop)
    let client = NetstackDriver(stack: Stack(configuration: c, seed: 2), device: dc, eventLoop: loop)
    server.start(); client.start()
    try server.stack.listen(.tcp, port: 22)
    server.onIncoming = { flow in
        _ = server.accept(flow) { channel in
            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Echo()) }
        }
    }
    func spin() { for _ in 0..<200 { loop.run(); loop.advanceTime(by: .milliseconds(1)) } }
    let collector = Collector()
    let connected = client.connectTCP(to: Endpoint(.v4(IPv4Address(100, 64, 0, 1)), 22)) { channel in
        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
    }
    spin()
    let channel = try connected.wait()
    #expect(channel.localAddress?.ipAddress == "100.64.0.2")
    channel.writeAndFlush(ByteBuffer(string: "SSH-2.0-test\r\n"), promise: nil)
    spin()
    #expect(collector.received == Array("SSH-2.0-test\r\n".utf8))
    // A port nobody listens on is reset; an address that is not the node's is not answered at all.
    let refused = client.connectTCP(to: Endpoint(.v4(IPv4Address(100, 64, 0, 1)), 23)) { $0.eventLoop.makeSucceededVoidFuture() }
    spin()
    #expect(throws: NetstackChannelError.connectionReset) { try refused.wait() }
    #expect(server.stack.statistics.tcpResetsSent == 1)
    _ = client.connectTCP(to: Endpoint(.v4(IPv4Address(100, 64, 0, 9)), 22)) { $0.eventLoop.makeSucceededVoidFuture() }
    spin()
    #expect(server.stack.statistics.notForUs >= 1)
    channel.close(promise: nil)
    spin()
}

@Test func stoppingTheDriverResetsItsFlows() throws {
    let pair = DriverPair()
    let (gatewayChannel, _, collector) = try pair.connectThroughGateway(to: Endpoint(.v4(IPv4Address(198, 51, 100, 20)), 443))
    pair.gateway.stop()
    pair.spin(.milliseconds(50))
    #expect(gatewayChannel?.isActive == false)
    #expect(collector.errors.first as? NetstackChannelError == .connectionReset)
    #expect(pair.gateway.stack.numberOfFlows == 0 && pair.client.stack.numberOfFlows == 0)
}
