import NIOCore
import NetstackWire
import Testing
@testable import WireGuard

/// Whitepaper §6 timers on simulated time, through the device (rekey, reject, keepalive, retransmission,
/// give-up, key wiping, persistent keepalive) and on the bare state machine.
@Suite struct TimerTests {
    let payload = Array("timer test".utf8)

    func established(_ persistentKeepalive: Duration? = nil) -> DevicePair {
        var pair = DevicePair(persistentKeepalive: persistentKeepalive)
        pair.a.send(packet: ipv4Packet(from: [10, 0, 0, 1], to: [10, 0, 0, 2], payload: payload), now: pair.now, into: &pair.outA)
        _ = pair.exchange()
        return pair
    }

    @Test func keepaliveAfterReceivingData() {
        var pair = established()
        // B received data and sends nothing: after KEEPALIVE_TIMEOUT it sends an empty transport message.
        pair.advance(.seconds(9))
        pair.pollBoth()
        #expect(pair.outB.datagrams.isEmpty)
        pair.advance(.seconds(1))
        pair.pollBoth()
        #expect(pair.outB.datagrams.count == 1)
        #expect(pair.outB.datagrams.first?.buffer.readableBytes == 32)
        _ = pair.exchange()
        #expect(pair.a.counters.keepalivesReceived == 1)
    }

    @Test func newHandshakeWhenDataGoesUnanswered() {
        var pair = established()
        // B's keepalive at +10 s reaches A: A has heard back, no new handshake pending.
        pair.advance(.seconds(10))
        pair.pollBoth()
        _ = pair.exchange()
        pair.advance(.seconds(1))
        // Now A sends data that never arrives; nothing comes back for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT.
        pair.a.send(packet: ipv4Packet(from: [10, 0, 0, 1], to: [10, 0, 0, 2], payload: payload), now: pair.now, into: &pair.outA)
        pair.outA.removeAll()
        pair.advance(.seconds(15) - .milliseconds(1))
        pair.a.poll(now: pair.now, into: &pair.outA)
        #expect(pair.outA.datagrams.isEmpty)
        pair.advance(.milliseconds(1))
        pair.a.poll(now: pair.now, into: &pair.outA)
        #expect(pair.outA.datagrams.count == 1)
        #expect(pair.outA.datagrams.first?.buffer.getInteger(at: 0, as: UInt8.self) == 1)
    }

    @Test func rekeyAfterTimeOnSend() {
        var pair = established()
        pair.advance(.seconds(119))
        pair.a.send(packet: ipv4Packet(from: [10, 0, 0, 1], to: [10, 0, 0, 2], payload: payload), now: pair.now, into: &pair.outA)
        #expect(pair.outA.datagrams.count == 1)  // data only
        pair.outA.removeAll()
        pair.advance(.seconds(2))
        pair.a.send(packet: ipv4Packet(from: [10, 0, 0, 1], to: [10, 0, 0, 2], payload: payload), now: pair.now, into: &pair.outA)
        // Past REKEY_AFTER_TIME the initiator still sends the data and starts a handshake.
        #expect(pair.outA.datagrams.map { $0.buffer.getInteger(at: 0, as: UInt8.self)! } == [4, 1])
        let old = pair.a.peers[0].keypairs.current
        let (_, atB) = pair.exchange()
        #expect(atB.count == 1)
        #expect(pair.a.peers[0].keypairs.current !== old)
        #expect(pair.a.peers[0].keypairs.previous === old)
    }

    @Test func rekeyAndRejectAfterMessages() throws {
        var pair = established()
        let keypair = try #require(pair.a.peers[0].keypairs.current)
        // Past REKEY_AFTER_MESSAGES: the data still goes, and a handshake starts (once the 5 s initiation
        // rate limit since the first handshake has passed).
        keypair.sendCounter = SessionLimits.rekeyAfterMessages + 1
        pair.advance(.seconds(6))
        pair.a.send(packet: ipv4Packet(from: [10, 0, 0, 1], to: [10, 0, 0, 2], payload: payload), now: pair.now, into: &pair.outA)
        #expect(pair.outA.datagrams.map { $0.buffer.getInteger(at: 0, as: UInt8.self)! } == [4, 1])
        pair.outA.removeAll()
        // At REJECT_AFTER_MESSAGES nothing more is sent under this key: the packet waits for a new session.
        keypair.sendCounter = SessionLimits.rejectAfterMessages
        pair.advance(.seconds(6))
        pair.a.send(packet: ipv4Packet(from: [10, 0, 0, 1], to: [10, 0, 0, 2], payload: payload), now: pair.now, into: &pair.outA)
        #expect(pair.outA.datagrams.map { $0.buffer.getInteger(at: 0, as: UInt8.self)! } == [1])
        #expect(pair.a.peers[0].stagedCount == 1)
        // The receiver refuses counters at or past the limit whatever the tag says.
        var filter = ReplayFilter()
        let refused = filter.accept(SessionLimits.rejectAfterMessages)
        #expect(!refused)
    }

    @Test func rejectAfterTimeStagesAndRehandshakes() {
        var pair = established()
        pair.advance(.seconds(181))
        pair.pollBoth()
        pair.outA.removeAll()
        pair.outB.removeAll()
        pair.advance(.seconds(5))
        // The session is dead: data waits for a new handshake.
        pair.a.send(packet: ipv4Packet(from: [10, 0, 0, 1], to: [10, 0, 0, 2], payload: payload), now: pair.now, into: &pair.outA)
        #expect(pair.outA.datagrams.map { $0.buffer.getInteger(at: 0, as: UInt8.self)! } == [1])
        #expect(pair.a.peers[0].stagedCount == 1)
        let (_, atB) = pair.exchange()
        #expect(atB.count == 1)
        #expect(pair.a.peers[0].stagedCount == 0)
    }

    @Test func receivingOnlyInitiatorRekeysBeforeReject() {
        var pair = established()
        // B keeps sending to A; A (the initiator) never sends data. At 165 s A starts a handshake itself.
        pair.advance(.seconds(166))
        pair.b.send(packet: ipv4Packet(from: [10, 0, 0, 2], to: [10, 0, 0, 1], payload: payload), now: pair.now, into: &pair.outB)
        for datagram in pair.outB.datagrams { pair.a.receive(datagram: datagram.buffer, from: pair.endpointB, now: pair.now, into: &pair.outA) }
        pair.outB.removeAll()
        #expect(pair.outA.packets.count == 1)
        #expect(pair.outA.datagrams.contains { $0.buffer.getInteger(at: 0, as: UInt8.self) == 1 })
    }

    @Test func retransmitThenGiveUp() {
        var pair = DevicePair()
        pair.a.send(packet: ipv4Packet(from: [10, 0, 0, 1], to: [10, 0, 0, 2], payload: payload), now: pair.now, into: &pair.outA)
        var initiations = pair.outA.datagrams.count
        pair.outA.removeAll()
        // Nobody answers: retransmissions every REKEY_TIMEOUT (+ jitter < 334 ms) until REKEY_ATTEMPT_TIME.
        var now = pair.now
        for _ in 0..<300 {
            now += .milliseconds(500)
            pair.a.poll(now: now, into: &pair.outA)
            initiations += pair.outA.datagrams.count
            pair.outA.removeAll()
        }
        #expect(initiations == 1 + SessionLimits.maxTimerHandshakes + 1)
        #expect(pair.a.peers[0].stagedCount == 0)
        #expect(pair.a.counters.stagedDropped == 1)
    }

    @Test func zeroKeyMaterialAfterThreeRejectTimes() {
        var pair = established()
        #expect(pair.a.peers[0].keypairs.current != nil)
        pair.advance(.seconds(539))
        pair.a.poll(now: pair.now, into: &pair.outA)
        #expect(pair.a.peers[0].keypairs.current != nil)
        pair.advance(.seconds(2))
        pair.a.poll(now: pair.now, into: &pair.outA)
        #expect(pair.a.peers[0].keypairs.all.isEmpty)
        #expect(pair.a.peers[0].handshake.stage == .zeroed)
    }

    @Test func persistentKeepalive() {
        var pair = established(.seconds(25))
        // B's keepalive reaches A at +10 s: the last authenticated traversal, so A's timer runs to +35 s.
        pair.advance(.seconds(10))
        pair.pollBoth()
        _ = pair.exchange()
        pair.outA.removeAll()
        pair.advance(.seconds(24))
        pair.a.poll(now: pair.now, into: &pair.outA)
        #expect(pair.outA.datagrams.isEmpty)
        pair.advance(.seconds(1))
        pair.a.poll(now: pair.now, into: &pair.outA)
        #expect(pair.outA.datagrams.count == 1 && pair.outA.datagrams.first?.buffer.readableBytes == 32)
    }

    @Test func handshakeSendRateLimited() {
        var pair = DevicePair()
        pair.a.initiateHandshake(peer: 0, now: pair.now, into: &pair.outA)
        pair.a.initiateHandshake(peer: 0, now: pair.now + .seconds(1), into: &pair.outA)
        pair.a.initiateHandshake(peer: 0, now: pair.now + .seconds(4), into: &pair.outA)
        #expect(pair.outA.datagrams.count == 1)
        pair.a.initiateHandshake(peer: 0, now: pair.now + .seconds(5), into: &pair.outA)
        #expect(pair.outA.datagrams.count == 2)
    }

    @Test func stateMachineDeadlines() {
        var timers = PeerTimers()
        let t0 = Instant(nanoseconds: 1_000_000_000)
        #expect(timers.nextDeadline == nil)
        timers.dataReceived(now: t0)
        timers.dataReceived(now: t0 + .seconds(3))  // already scheduled: another one after it
        #expect(timers.nextDeadline == t0 + .seconds(10))
        #expect(timers.expire(now: t0 + .seconds(10)) == .sendKeepalive)
        #expect(timers.nextDeadline == t0 + .seconds(20))
        timers.anyAuthenticatedPacketSent()
        #expect(timers.nextDeadline == nil)
        timers.handshakeInitiated(now: t0, jitter: .milliseconds(100), isRetry: false)
        #expect(timers.nextDeadline == t0 + .milliseconds(5100))
        timers.handshakeComplete()
        #expect(timers.nextDeadline == nil)
        timers.dataSent(now: t0)
        #expect(timers.nextDeadline == t0 + .seconds(15))
        timers.anyAuthenticatedPacketReceived()
        #expect(timers.nextDeadline == nil)
    }
}
