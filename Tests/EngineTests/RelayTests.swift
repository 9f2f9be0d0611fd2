// Relay on loopback: byte-exact both ways, half-close, back-pressure, idle timeout.
import Adapter
import Net
import NIOCore
import NIOPosix
import NIOConcurrencyHelpers
import Testing

/// A front listener whose accepted channels are relayed to `upstreamPort` through `SystemDialer`.
final class RelayFront: @unchecked Sendable {
    var server: (any Channel)!
    let results: NIOLockedValueBox<[EventLoopFuture<(RelayStatistics, RelayEnd)>]> = .init([])
    let idleTimeout: TimeAmount?
    /// When set, every relayed flow is tracked (as the router does for the Clash API) and counted.
    let tracker: ConnectionTracker?

    init(idleTimeout: TimeAmount? = nil, tracker: ConnectionTracker? = nil) {
        self.idleTimeout = idleTimeout
        self.tracker = tracker
    }

    func start(upstreamPort: Int) async throws {
        let parameters = ListenParameters(address: IPAddress("127.0.0.1")!, port: 0)
        let idle = idleTimeout
        let tracker = self.tracker
        server = try await Listener.listenTCP(parameters, group: testGroup, accept: { [self] child in
            let metadata = FlowMetadata(inbound: "in", inboundType: "mixed", network: .tcp,
                                        source: child.remoteAddress.flatMap(Destination.init),
                                        destination: Destination(ip: IPAddress("127.0.0.1")!, port: UInt16(upstreamPort)))
            let counter = tracker?.track(child, metadata: metadata, rule: "final", outbound: FakeOutbound("out"))
            let promise = child.eventLoop.makePromise(of: (RelayStatistics, RelayEnd).self)
            results.withLockedValue { $0.append(promise.futureResult) }
            promise.completeWithTask {
                let remote = try await SystemDialer().dialTCP(to: Destination(ip: IPAddress("127.0.0.1")!, port: UInt16(upstreamPort)),
                                                             on: child.eventLoop)
                return try await Relay.start(client: child, remote: remote, idleTimeout: idle, counter: counter).get()
            }
        })
    }

    func firstResult() async throws -> (RelayStatistics, RelayEnd) {
        for _ in 0..<200 {
            if let first = results.withLockedValue({ $0.first }) { return try await wait(first) }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw TestTimeout()
    }
}

@Suite struct RelayTests {
    @Test func relaysBytesExactlyBothWays() async throws {
        let upstream = try await startServer { _ in EchoHandler() }
        let front = RelayFront()
        try await front.start(upstreamPort: upstream.boundPort)
        let collector = CollectHandler(loop: testGroup.next())
        let client = try await connectClient(port: front.server.boundPort, handler: collector)
        let payload = testPayload(count: 3 * 1024 * 1024 + 17)
        try await client.writeAndFlush(ByteBuffer(bytes: payload))
        try await client.close(mode: .output)
        let echoed = try await wait(collector.done.futureResult)
        #expect(echoed.count == payload.count)
        #expect(echoed == payload)
        let (statistics, end) = try await front.firstResult()
        #expect(statistics.upload == UInt64(payload.count))
        #expect(statistics.download == UInt64(payload.count))
        #expect(end == .closed)
        try await front.server.close()
        try await upstream.close()
    }

    @Test func forwardsHalfCloseAndKeepsTheOtherDirection() async throws {
        // The upstream replies only after it saw our FIN: only a relay that forwards the FIN
        // (and keeps the reverse direction open) gets the reply through.
        let upstream = try await startServer { channel in
            CollectHandler(loop: channel.eventLoop, replyOnEOF: { count in Array("got \(count)".utf8) })
        }
        let front = RelayFront()
        try await front.start(upstreamPort: upstream.boundPort)
        let collector = CollectHandler(loop: testGroup.next())
        let client = try await connectClient(port: front.server.boundPort, handler: collector)
        try await client.writeAndFlush(ByteBuffer(bytes: testPayload(count: 100_000)))
        try await client.close(mode: .output)
        let reply = try await wait(collector.done.futureResult)
        #expect(String(decoding: reply, as: UTF8.self) == "got 100000")
        let (_, end) = try await front.firstResult()
        #expect(end == .closed)
        try await front.server.close()
        try await upstream.close()
    }

    @Test func holdsReadsWhileThePeerCannotTakeMore() async throws {
        // The upstream does not read at first. A relay without back-pressure would pull all
        // 64 MiB out of the client's socket into memory and the client's writes would complete.
        let paused = NIOLockedValueBox<(any Channel)?>(nil)
        let received = NIOLockedValueBox(0)
        let upstream = try await startServer(autoRead: false) { channel in
            paused.withLockedValue { $0 = channel }
            return CountingHandler(counter: received)
        }
        let front = RelayFront()
        try await front.start(upstreamPort: upstream.boundPort)
        let client = try await connectClient(port: front.server.boundPort, handler: CollectHandler(loop: testGroup.next()))
        let total = 64 * 1024 * 1024
        let chunk = ByteBuffer(bytes: testPayload(count: 1 << 20))
        var writes: [EventLoopFuture<Void>] = []
        let completedWrites = NIOLockedValueBox(0)
        for _ in 0..<(total / chunk.readableBytes) {
            let promise = client.eventLoop.makePromise(of: Void.self)
            client.writeAndFlush(chunk, promise: promise)
            let write = promise.futureResult
            write.whenSuccess { completedWrites.withLockedValue { $0 += 1 } }
            writes.append(write)
        }
        try await Task.sleep(for: .milliseconds(500))
        let completed = completedWrites.withLockedValue { $0 }
        #expect(completed < writes.count, "all 64 MiB left the client while the upstream read nothing")
        // Now let the upstream read: everything must arrive.
        let upstreamChild = try #require(paused.withLockedValue { $0 })
        try await upstreamChild.setOption(ChannelOptions.autoRead, value: true).get()
        upstreamChild.read()
        for write in writes { try await wait(write) }
        for _ in 0..<500 where received.withLockedValue({ $0 }) < total {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(received.withLockedValue { $0 } == total)
        try await client.close()
        try await front.server.close()
        try await upstream.close()
    }

    @Test func closesBothSidesAfterIdleTimeout() async throws {
        let upstream = try await startServer { _ in EchoHandler() }
        let front = RelayFront(idleTimeout: .milliseconds(300))
        try await front.start(upstreamPort: upstream.boundPort)
        let collector = CollectHandler(loop: testGroup.next())
        let client = try await connectClient(port: front.server.boundPort, handler: collector)
        try await client.writeAndFlush(ByteBuffer(bytes: Array("ping".utf8)))
        let started = NIODeadline.now()
        // The client never closes: only the idle timer can end the flow.
        let echoed = try await wait(collector.done.futureResult, timeout: .seconds(5))
        let elapsed = NIODeadline.now() - started
        #expect(echoed == Array("ping".utf8))
        #expect(elapsed >= .milliseconds(250))
        let (_, end) = try await front.firstResult()
        #expect(end == .idleTimeout)
        try await front.server.close()
        try await upstream.close()
    }
}

/// Counts bytes read.
final class CountingHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let counter: NIOLockedValueBox<Int>
    init(counter: NIOLockedValueBox<Int>) { self.counter = counter }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let count = unwrapInboundIn(data).readableBytes
        counter.withLockedValue { $0 += count }
    }
}

