import NetstackTCP
import NetstackWire
import Testing

/// CUBIC (RFC 9438) and NewReno (RFC 5681/3465) window arithmetic, and the RFC 6298 estimator.
@Suite struct TCPCongestionControlTests {
    let mss = 1000

    @Test(arguments: [0.001, 1, 8, 27, 1000, 123_456.789])
    func cubeRootMatches(x: Double) {
        let r = CubicCongestionControl.cubeRoot(x)
        #expect(abs(r * r * r - x) <= 1e-9 * max(1, x))
    }

    @Test func newRenoSlowStartThenAvoidanceThenHalving() {
        var c = NewRenoCongestionControl(initialWindow: 10 * mss)
        c.onAck(ackedBytes: 5 * mss, isWindowLimited: true, maximumSegmentSize: mss, smoothedRTT: nil, now: .zero)
        #expect(c.congestionWindow == 15 * mss)  // every acknowledged byte (Linux), not RFC 3465's 2·SMSS
        c.onCongestionEvent(flightSize: 12 * mss, maximumSegmentSize: mss, now: .zero)
        #expect(c.slowStartThreshold == 6 * mss && c.congestionWindow == 6 * mss)
        for _ in 0..<6 { c.onAck(ackedBytes: mss, isWindowLimited: true, maximumSegmentSize: mss, smoothedRTT: nil, now: .zero) }
        #expect(c.congestionWindow == 7 * mss)  // one SMSS per window in congestion avoidance
        c.onRetransmitTimeout(flightSize: 7 * mss, maximumSegmentSize: mss)
        #expect(c.congestionWindow == mss && c.slowStartThreshold == 3500)
    }

    @Test func slowStartStopsAtTheThreshold() {
        var c = NewRenoCongestionControl(initialWindow: 10 * mss)
        c.onCongestionEvent(flightSize: 40 * mss, maximumSegmentSize: mss, now: .zero)  // ssthresh 20
        c.onRetransmitTimeout(flightSize: 40 * mss, maximumSegmentSize: mss)  // cwnd 1, ssthresh 20
        c.onAck(ackedBytes: 44 * mss, isWindowLimited: true, maximumSegmentSize: mss, smoothedRTT: nil, now: .zero)
        #expect(c.congestionWindow == c.slowStartThreshold)
        var cubic = CubicCongestionControl(initialWindow: 10 * mss)
        cubic.onAck(ackedBytes: 44 * mss, isWindowLimited: true, maximumSegmentSize: mss, smoothedRTT: nil, now: .zero)
        #expect(cubic.congestionWindow == 54 * mss)  // one ACK for a 44-segment super-segment: +44
    }

    @Test func appLimitedSenderDoesNotGrow() {
        var c = NewRenoCongestionControl(initialWindow: 10 * mss)
        c.onAck(ackedBytes: 5 * mss, isWindowLimited: false, maximumSegmentSize: mss, smoothedRTT: nil, now: .zero)
        #expect(c.congestionWindow == 10 * mss)
    }

    @Test func cubicReducesByBetaAndRegrowsToWmaxAroundK() {
        var c = CubicCongestionControl(initialWindow: 100 * mss)
        c.onCongestionEvent(flightSize: 100 * mss, maximumSegmentSize: mss, now: .zero)
        #expect(c.congestionWindow == 70 * mss)
        // K = ∛(W_max · (1 − β) / C) = ∛(100 · 0.3 / 0.4) ≈ 4.217 s.
        let rtt = Duration.milliseconds(100)
        var now = Instant.zero
        var windowAtK = 0
        while now < Instant.zero + .seconds(8) {
            now += rtt
            // One window of ACKs per RTT.
            let acks = c.congestionWindow / mss
            for _ in 0..<acks {
                c.onAck(ackedBytes: mss, isWindowLimited: true, maximumSegmentSize: mss, smoothedRTT: rtt, now: now)
            }
            if windowAtK == 0, now >= Instant.zero + .milliseconds(4217) { windowAtK = c.congestionWindow }
        }
        #expect(abs(c.k - 4.217) < 0.01)
        // Near W_max at K (the concave plateau), beyond it later (convex probing).
        #expect(windowAtK > 95 * mss && windowAtK < 106 * mss)
        #expect(c.congestionWindow > 110 * mss)
    }

    @Test func cubicFastConvergenceLowersWmax() {
        var c = CubicCongestionControl(initialWindow: 100 * mss)
        c.onCongestionEvent(flightSize: 100 * mss, maximumSegmentSize: mss, now: .zero)
        c.onCongestionEvent(flightSize: 70 * mss, maximumSegmentSize: mss, now: .zero)
        // The second loss came below the previous W_max: W_max = 70 · (1 + 0.7) / 2.
        #expect(abs(c.windowMax - 59.5) < 1e-9)
        #expect(c.congestionWindow == 49 * mss)
    }

    @Test func estimatorFollowsRFC6298() {
        var e = TCPRTTEstimator(initial: .seconds(1), minimum: .milliseconds(200), maximum: .seconds(60))
        #expect(e.retransmitTimeout == .seconds(1))
        e.addSample(.milliseconds(500))
        #expect(e.smoothedRTT == .milliseconds(500) && e.rttVariance == .milliseconds(250))
        #expect(e.retransmitTimeout == .milliseconds(1500))
        e.backOff()
        e.backOff()
        #expect(e.retransmitTimeout == .seconds(6))
        for _ in 0..<10 { e.backOff() }
        #expect(e.retransmitTimeout == .seconds(60))
        e.resetBackoff()
        #expect(e.retransmitTimeout == .milliseconds(1500))
    }
}
