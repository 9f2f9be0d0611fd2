// ConnectionTracker with real relays on loopback: counts both ways as the bytes move, chains through
// groups, closing one flow by id (and all), and leaving when a flow ends.
import Adapter
import Net
import NIOCore
import NIOEmbedded
import NIOPosix
import Testing

@Suite struct ConnectionTrackerTests {
    /// Waits until `condition` holds (relays count on their loop, a moment after the client saw bytes).
    private func eventually(_ condition: () -> Bool) async throws -> Bool {
        for _ in 0..<200 {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return condition()
    }

    @Test func countsClosesAndForgetsFlows() async throws {
        let outbounds = OutboundManager()
        outbounds.add(FakeOutbound("out"))
        let tracker = ConnectionTracker(outbounds: outbounds) { _ in nil }
        let upstream = try await startServer { _ in EchoHandler() }
        let front = RelayFront(tracker: tracker)
        try await front.start(upstreamPort: upstream.boundPort)

        // Two flows moving different amounts.
        let first = CollectHandler(loop: testGroup.next()), second = CollectHandler(loop: testGroup.next())
        let one = try await connectClient(port: front.server.boundPort, handler: first)
        let two = try await connectClient(port: front.server.boundPort, handler: second)
        try await one.writeAndFlush(ByteBuffer(bytes: testPayload(count: 70_000)))
        try await two.writeAndFlush(ByteBuffer(bytes: testPayload(count: 1234)))
        #expect(try await eventually { tracker.snapshot().map(\.download).sorted() == [1234, 70_000] })
        #expect(tracker.snapshot().map(\.upload).sorted() == [1234, 70_000])
        #expect(tracker.totals == (upload: 71_234, download: 71_234))
        let flows = tracker.snapshot()
        #expect(flows.allSatisfy { $0.chains == ["out"] && $0.rule == "final" && $0.metadata.inboundType == "mixed" })
        #expect(Set(flows.map(\.id)).count == 2 && flows.allSatisfy { $0.id.count == 36 })

        // Closing by id ends that client's connection only; an unknown id is a no-op.
        let victim = try #require(flows.first { $0.upload == 1234 })
        #expect(!tracker.close(id: "00000000-0000-4000-8000-000000000000"))
        #expect(tracker.close(id: victim.id))
        _ = try await wait(second.done.futureResult)  // the client saw its connection end
        #expect(try await eventually { tracker.snapshot().count == 1 })
        try await one.writeAndFlush(ByteBuffer(bytes: testPayload(count: 100)))
        #expect(try await eventually { tracker.snapshot().first?.download == 70_100 })

        // Totals stay after a flow leaves; closeAll ends the rest.
        #expect(tracker.totals.upload == 71_334)
        tracker.closeAll()
        _ = try await wait(first.done.futureResult)
        #expect(try await eventually { tracker.snapshot().isEmpty })
        try await one.close()
        try await two.close()
        try await front.server.close()
        try await upstream.close()
    }

    @Test func chainsFollowGroupsFromTheLastMember() {
        let outbounds = OutboundManager()
        for tag in ["outer", "inner", "leaf"] { outbounds.add(FakeOutbound(tag)) }
        let now = ["outer": "inner", "inner": "leaf"]
        let tracker = ConnectionTracker(outbounds: outbounds) { now[$0.tag] }
        let channel = EmbeddedChannel()
        let metadata = FlowMetadata(inbound: "in", inboundType: "socks", network: .tcp, source: nil,
                                    destination: Destination(domain: "example.com", port: 443))
        let flow = tracker.track(channel, metadata: metadata, rule: "domain=example.com => route(outer)", outbound: FakeOutbound("outer"))
        #expect(flow.chains == ["leaf", "inner", "outer"])
        flow.countUpload(10)
        flow.countDownload(20)
        #expect(flow.upload == 10 && flow.download == 20 && tracker.totals == (upload: 10, download: 20))
        _ = try? channel.finish()
        #expect(tracker.snapshot().isEmpty)
    }
}
