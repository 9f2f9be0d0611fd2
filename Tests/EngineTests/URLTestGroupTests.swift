// The urltest group's choice, with probes faked (which members answer) and delays set by hand;
// members are RouterTests' `FakeOutbound`s, which the group never dials here.
import Testing
import Adapter
@testable import Group
import NIOCore
import NIOPosix

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
}
