// The urltest group's choice, with probes faked (which members answer) and delays set by hand;
// members are RouterTests' `FakeOutbound`s, which the group never dials here.
import Testing
import Adapter
@testable import Group
import NIOCore
import NIOPosix
import Synchronization

/// A packet path that only records being closed.
private final class RecordingPacketConnection: PacketConnection, @unchecked Sendable {
    let eventLoop: any EventLoop
    private let closed: EventLoopPromise<Void>
    init(_ loop: any EventLoop) {
        eventLoop = loop
        closed = loop.makePromise()
    }
    private let closedFlag = Mutex(false)
    var closeFuture: EventLoopFuture<Void> { closed.futureResult }
    var isClosed: Bool { closedFlag.withLock { $0 } }
    func writePacket(_ payload: ByteBuffer, to destination: Destination) {}
    func flush() {}
    func setReceiver(_ receiver: any PacketReceiver) {}
    func close() {
        let first = closedFlag.withLock { closed -> Bool in
            defer { closed = true }
            return !closed
        }
        if first { closed.succeed(()) }
    }
}

/// A member whose UDP paths are `RecordingPacketConnection`s.
private final class PacketOutbound: Outbound, @unchecked Sendable {
    let type = "packet-recorder"
    let tag: String
    let networks: Set<NetworkKind> = [.tcp, .udp]
    init(_ tag: String) { self.tag = tag }
    func dialTCP(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any Channel {
        throw AdapterError(.other, "this member carries UDP only in these tests")
    }
    func listenPacket(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any PacketConnection {
        RecordingPacketConnection(eventLoop)
    }
}

@Suite struct URLTestGroupTests {
    func group(_ members: [FakeOutbound], answering: Set<String>, history: URLTestHistory = URLTestHistory(),
               tolerance: UInt16? = nil) async throws -> URLTestOutbound {
        let manager = OutboundManager()
        for member in members { manager.add(member) }
        let group = try URLTestOutbound(tag: "auto", members: members.map(\.tag), url: nil, interval: nil, tolerance: tolerance,
                                        idleTimeout: nil, outbounds: manager, history: history,
                                        prober: { outbound, _, _ in
                                            guard answering.contains(outbound.tag) else { throw AdapterError(.other, "refused") }
                                        },
                                        group: MultiThreadedEventLoopGroup.singleton,
                                        logger: ContextLogger(core: .disabled, name: ""))
        try await group.start(.start)
        return group
    }

    @Test func defaultsAreGos() async throws {
        let auto = try await group([FakeOutbound("a")], answering: [])
        #expect(auto.url == "https://www.gstatic.com/generate_204")
        #expect(auto.interval == .minutes(3) && auto.tolerance == 50 && auto.idleTimeout == .minutes(30))
        await #expect(throws: AdapterError.self) {
            _ = try await URLTestOutbound(tag: "x", members: [], url: nil, interval: nil, tolerance: nil, idleTimeout: nil,
                                          outbounds: OutboundManager(), history: URLTestHistory(), prober: { _, _, _ in },
                                          group: MultiThreadedEventLoopGroup.singleton, logger: ContextLogger(core: .disabled, name: ""))
        }
        let manager = OutboundManager()
        manager.add(FakeOutbound("a"))
        let tooLong = try URLTestOutbound(tag: "x", members: ["a"], url: nil, interval: .hours(1), tolerance: nil, idleTimeout: nil,
                                          outbounds: manager, history: URLTestHistory(), prober: { _, _, _ in },
                                          group: MultiThreadedEventLoopGroup.singleton, logger: ContextLogger(core: .disabled, name: ""))
        await #expect(throws: AdapterError.self) { try await tooLong.start(.start) }
    }

    /// Members that do not answer are passed over; TCP and UDP each get a member that carries them.
    @Test func picksAnsweringMembersPerNetwork() async throws {
        let auto = try await group([FakeOutbound("dead"), FakeOutbound("tcp-only", networks: [.tcp]), FakeOutbound("udp-only", networks: [.udp])],
                                   answering: ["tcp-only", "udp-only"])
        #expect(auto.nowTag == nil)
        await auto.check(force: true)
        #expect(auto.nowTag == "tcp-only")
        #expect(auto.history.load("dead") == nil && auto.history.load("tcp-only") != nil)
    }

    /// Nothing answers: the first member for the network, as Go's Select falls back.
    @Test func withoutAnyAnswerTheFirstMemberServes() async throws {
        let auto = try await group([FakeOutbound("a", networks: [.udp]), FakeOutbound("b")], answering: [])
        await auto.check(force: true)
        #expect(auto.nowTag == "b")
    }

    /// The member in use stays unless another is faster by more than `tolerance`.
    @Test func theMemberInUseStaysWithinTolerance() async throws {
        let history = URLTestHistory()
        let auto = try await group([FakeOutbound("a"), FakeOutbound("b")], answering: [], history: history, tolerance: 50)
        history.store("a", delay: 100)
        history.store("b", delay: 120)
        await auto.check(force: false)  // both fresh: nothing probed, the choice is made from history
        #expect(auto.nowTag == "a")
        history.store("a", delay: 160)   // b is faster, but by less than 50 ms: a stays
        await auto.check(force: false)
        #expect(auto.nowTag == "a")
        history.store("a", delay: 171)   // now by more: b takes over
        await auto.check(force: false)
        #expect(auto.nowTag == "b")
    }

    /// When the member in use is replaced, the flows the box opened through the group are closed; the
    /// inbounds' flows too only with `interrupt_exist_connections` (Go's interrupt group).
    @Test(.timeLimit(.minutes(1)), arguments: [false, true])
    func aChangeOfMemberInterruptsFlows(interruptExisting: Bool) async throws {
        let manager = OutboundManager()
        for tag in ["a", "b"] { manager.add(PacketOutbound(tag)) }
        let history = URLTestHistory()
        let auto = try URLTestOutbound(tag: "auto", members: ["a", "b"], url: nil, interval: nil, tolerance: 50, idleTimeout: nil,
                                       interruptExistConnections: interruptExisting, outbounds: manager, history: history,
                                       prober: { _, _, _ in throw AdapterError(.other, "offline") },
                                       group: MultiThreadedEventLoopGroup.singleton, logger: ContextLogger(core: .disabled, name: ""))
        try await auto.start(.start)
        history.store("a", delay: 100)
        history.store("b", delay: 300)
        await auto.check(force: false)
        #expect(auto.nowTag == "a")
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let fromInbound = FlowMetadata(inbound: "in", inboundType: "mixed", network: .udp, source: nil,
                                       destination: Destination(domain: "example.com", port: 53))
        var internalFlow = fromInbound
        internalFlow.inbound = ""
        let external = try #require(try await auto.listenPacket(fromInbound, on: loop) as? RecordingPacketConnection)
        let own = try #require(try await auto.listenPacket(internalFlow, on: loop) as? RecordingPacketConnection)
        history.store("a", delay: 100)   // fresh again; no change: nothing is closed
        await auto.check(force: false)
        try await Task.sleep(nanoseconds: 50_000_000)
        #expect(!own.isClosed && !external.isClosed)
        history.store("b", delay: 20)    // b now beats a by more than the tolerance
        await auto.check(force: false)
        #expect(auto.nowTag == "b")
        for _ in 0..<40 where !own.isClosed { try await Task.sleep(nanoseconds: 50_000_000) }
        try await Task.sleep(nanoseconds: 50_000_000)
        #expect(own.isClosed)
        #expect(external.isClosed == interruptExisting)
    }
}
