import NetstackTCP
import NetstackWire
import Testing

/// Sending: segmentation, retransmission timing, loss recovery, zero-window probing, keepalive.
@Suite struct TCPConnectionTransmitTests {
    @Test func dataIsSegmentedAtMSSWithinTheInitialWindow() {
        var h = Harness.established()
        h.write(20 * 1460)
        let out = h.transmit()
        #expect(out.count == 10)  // RFC 6928 initial window
        #expect(out.allSatisfy { $0.payload.readableBytes == 1460 })
        #expect(out[0].sequenceNumber == localISN + 1)
        #expect(out[1].sequenceNumber == localISN + 1 + 1460)
        #expect(out[0].payloadBytes == Array(bytes(1460).readableBytesView))
    }

    @Test func tsoEmitsSuperSegments() {
        var configuration = TCPConfiguration.test
        configuration.maxSegmentBytes = 65536
        var h = Harness.established(configuration)
        h.write(40_000)
        let out = h.transmit()
        // 10 segments of window, as one super-segment of 10 · 1460 bytes.
        #expect(out.count == 1)
        #expect(out[0].payload.readableBytes == 14600)
        #expect(h.connection.sendMSS == 1460)
    }

    @Test func smallWritesGoOutAtOnceWithNagleOff() {
        var h = Harness.established()
        h.write(10)
        #expect(h.transmit().count == 1)
        h.write(10, from: 10)
        #expect(h.transmit().count == 1)  // no waiting for the first ACK
    }

    @Test func nagleHoldsSmallSegmentsWhileDataIsInFlight() {
        var configuration = TCPConfiguration.test
        configuration.noDelay = false
        var h = Harness.established(configuration)
        h.write(10)
        #expect(h.transmit().count == 1)
        h.write(10, from: 10)
        #expect(h.transmit().isEmpty)
        h.receive(.ack)
        #expect(h.transmit().first?.payload.readableBytes == 10)
    }

    @Test func sendBufferLimitsWhatSendTakes() {
        var configuration = TCPConfiguration.test
        configuration.sendBufferInitial = 1000
        configuration.sendBufferMaximum = 1000
        var h = Harness.established(configuration)
        var data = bytes(5000)
        #expect(h.connection.send(&data) == 1000)
        #expect(data.readableBytes == 4000)
        _ = h.transmit()
        h.receive(.ack)
        #expect(h.connection.takeEvents().contains(.writable))
        #expect(h.connection.sendSpace == 1000)
    }

    @Test func peerWindowLimitsSending() {
        var h = Harness.established()
        h.receive(.ack, window: 3000)
        h.write(10_000)
        let out = h.transmit()
        // Two full segments; the 80-byte tail waits (sender-side SWS avoidance, RFC 9293 §3.8.6.2.1).
        #expect(out.reduce(0) { $0 + $1.payload.readableBytes } == 2920)
    }

    // MARK: Retransmission timer (RFC 6298)

    @Test func rtoRetransmitsWithExponentialBackoffThenTimesOut() {
        var configuration = TCPConfiguration.test
        configuration.maximumRetransmissions = 3
        var h = Harness.established(configuration)
        h.write(100)
        _ = h.transmit()
        let rto = h.connection.rttEstimator.retransmitTimeout
        #expect(rto == .milliseconds(300))  // SRTT 100 ms + 4 · 50 ms from the handshake
        #expect(h.deadline == h.now + rto)
        var times: [Duration] = []
        let sentAt = h.now
        for _ in 0..<3 {
            let out = h.advanceToDeadline()
            #expect(out.count == 1 && out[0].sequenceNumber == localISN + 1 && out[0].payload.readableBytes == 100)
            times.append(h.now - sentAt)
        }
        #expect(times == [rto, rto * 3, rto * 7])
        let last = h.advanceToDeadline()
        #expect(h.connection.state == .closed)
        #expect(h.connection.closeReason == .timedOut)
        #expect(last.first?.flags == .rst)
    }

    @Test func rttSamplesShapeTheTimeout() {
        var h = Harness.established()
        h.write(100)
        _ = h.transmit()
        h.now += .milliseconds(100)
        h.receive(.ack)
        // Second sample R = 100 ms after the handshake's: SRTT 100 ms, RTTVAR 3/4 · 50 ms, RTO 250 ms.
        #expect(h.connection.rttEstimator.smoothedRTT == .milliseconds(100))
        #expect(h.connection.rttEstimator.rttVariance == .microseconds(37500))
        #expect(h.connection.rttEstimator.retransmitTimeout == .milliseconds(250))
    }

    @Test func karnSkipsRetransmittedSegments() {
        var h = Harness.established()
        h.write(100)
        _ = h.transmit()
        _ = h.advanceToDeadline()  // retransmitted at +1 s
        h.now += .milliseconds(10)
        h.receive(.ack)
        #expect(h.connection.rttEstimator.smoothedRTT == .milliseconds(100))  // unchanged: no sample
        #expect(h.connection.rttEstimator.backoffCount == 0)
    }

    @Test func timestampsGiveSamplesEvenForRetransmissions() {
        var h = Harness.established(modern: true)
        h.write(100)
        _ = h.transmit()
        h.now += .milliseconds(50)
        h.receive(.ack)
        // 7/8 · 100 ms + 1/8 · 50 ms from the timestamp echo.
        #expect(h.connection.rttEstimator.smoothedRTT == .microseconds(93750))
    }

    // MARK: Loss recovery

    /// Sends `count` full segments and returns them.
    func sendSegments(_ h: inout Harness, count: Int) -> [TCPSegment] {
        h.write(count * h.connection.sendMSS)
        return h.transmit()
    }

    @Test(arguments: [TCPCongestionAlgorithm.newReno, .cubic])
    func threeDuplicateAcksTriggerFastRetransmit(algorithm: TCPCongestionAlgorithm) {
        var configuration = TCPConfiguration.test
        configuration.congestionControl = algorithm
        var h = Harness.established(configuration)
        let sent = sendSegments(&h, count: 10)
        #expect(sent.count == 10)
        let head = sent[0].sequenceNumber
        for _ in 0..<2 {
            h.receive(.ack, ack: head)
            #expect(h.transmit().isEmpty)
        }
        h.receive(.ack, ack: head)
        let out = h.transmit()
        #expect(out.first?.sequenceNumber == head)
        #expect(out.first?.payload.readableBytes == h.connection.sendMSS)
        #expect(h.connection.recovery == .fast)
        let mss = h.connection.sendMSS
        let expected = algorithm == .newReno ? 5 * mss : Int(Double(10 * mss) * 0.7)
        #expect(h.connection.congestion.slowStartThreshold == expected)
        // A partial ACK (NewReno, RFC 6582) retransmits the next hole at once.
        h.receive(.ack, ack: sent[1].sequenceNumber)
        let partial = h.transmit()
        #expect(partial.first?.sequenceNumber == sent[1].sequenceNumber)
        #expect(h.connection.recovery == .fast)
        // The full ACK ends recovery.
        h.receive(.ack)
        #expect(h.connection.recovery == .none)
    }

    @Test func sackRecoveryRetransmitsOnlyHoles() {
        var h = Harness.established(modern: true)
        let sent = sendSegments(&h, count: 10)
        let s = sent.map(\.sequenceNumber)
        let mss = h.connection.sendMSS
        // Segments 1 and 4 lost; the peer SACKs 2–3 and 5–7.
        h.receive(.ack, ack: s[1], sack: [(s[2], s[4])])
        #expect(h.transmit().isEmpty)
        h.receive(.ack, ack: s[1], sack: [(s[5], s[8]), (s[2], s[4])])
        let out = h.transmit()
        #expect(h.connection.recovery == .fast)
        let retransmitted = out.filter { $0.sequenceNumber < sent[9].sequenceNumber + mss && $0.sequenceNumber.isIn(s[0], s[9] + mss) }
        #expect(retransmitted.map(\.sequenceNumber).contains(s[1]))
        #expect(retransmitted.map(\.sequenceNumber).contains(s[4]))
        #expect(!retransmitted.map(\.sequenceNumber).contains(s[2]))
        #expect(!retransmitted.map(\.sequenceNumber).contains(s[5]))
        #expect(h.connection.scoreboard.sackedByteCount == 5 * mss)
    }

    @Test func sackBlocksOutsideTheFlightAreIgnored() {
        var h = Harness.established(modern: true)
        let sent = sendSegments(&h, count: 4)
        h.receive(.ack, ack: sent[0].sequenceNumber, sack: [(sent[3].sequenceNumber + 100_000, sent[3].sequenceNumber + 200_000)])
        h.receive(.ack, ack: sent[0].sequenceNumber, sack: [(sent[2].sequenceNumber, sent[1].sequenceNumber)])  // inverted
        #expect(h.connection.scoreboard.isEmpty)
    }

    @Test func timeoutRetransmitsEverythingInSlowStart() {
        var h = Harness.established()
        let sent = sendSegments(&h, count: 4)
        let first = h.advanceToDeadline()
        #expect(first.count == 1 && first[0].sequenceNumber == sent[0].sequenceNumber)
        #expect(h.connection.congestion.congestionWindow == h.connection.sendMSS)
        h.receive(.ack, ack: sent[1].sequenceNumber)
        let next = h.transmit()
        #expect(next.map(\.sequenceNumber) == [sent[1].sequenceNumber, sent[2].sequenceNumber])
    }

    // MARK: Zero window

    @Test func zeroWindowIsProbedWithBackoffUntilItOpens() {
        var h = Harness.established()
        h.receive(.ack, window: 0)
        h.write(1000)
        #expect(h.transmit().isEmpty)
        let rto = h.connection.rttEstimator.retransmitTimeout
        #expect(h.deadline == h.now + rto)
        var probes: [Instant] = []
        for _ in 0..<3 {
            let out = h.advanceToDeadline()
            #expect(out.count == 1)
            #expect(out[0].sequenceNumber == localISN)  // SND.UNA − 1: the peer must answer
            #expect(out[0].payload.readableBytes == 0)
            probes.append(h.now)
            h.receive(.ack, window: 0)  // still closed
        }
        #expect(probes[1] - probes[0] == rto * 2)
        #expect(probes[2] - probes[1] == rto * 4)
        #expect(h.connection.state == .established)
        h.receive(.ack, window: 65535)
        let out = h.transmit()
        #expect(out.count == 1 && out[0].payload.readableBytes == 1000)
    }

    // MARK: Keepalive

    @Test func keepaliveProbesIdleConnectionAndTimesOut() {
        var configuration = TCPConfiguration.test
        configuration.keepalive = TCPKeepalive(idle: .seconds(60), interval: .seconds(10), count: 3)
        var h = Harness.established(configuration)
        #expect(h.transmit().isEmpty)
        #expect(h.deadline == h.now + .seconds(60))
        var out = h.advanceToDeadline()
        #expect(out.count == 1 && out[0].sequenceNumber == localISN && out[0].payload.readableBytes == 0)
        // An answer restarts the idle clock.
        h.receive(.ack)
        _ = h.transmit()
        #expect(h.deadline == h.now + .seconds(60))
        out = h.advanceToDeadline()
        #expect(out.count == 1)
        out = h.advanceToDeadline()
        out = h.advanceToDeadline()
        #expect(h.connection.state == .established)
        out = h.advanceToDeadline()
        #expect(h.connection.state == .closed)
        #expect(h.connection.closeReason == .timedOut)
        #expect(out.first?.flags == .rst)
    }

    @Test func keepaliveProbeIsAnsweredByThePeer() {
        var h = Harness.established()
        h.deliver(h.peer(.ack, seq: h.peerNext - 1))
        let out = h.transmit()
        #expect(out.count == 1 && out[0].acknowledgmentNumber == h.peerNext)
    }
}

@Suite struct TCPTimeoutScoreboardTests {
    @Test func firstTimeoutSkipsSACKedDataSecondForgetsIt() {
        var configuration = TCPConfiguration.test
        configuration.tailLossProbe = false  // the timeout itself is under test, not the probe before it
        var h = Harness.established(configuration, modern: true)
        h.write(4 * h.connection.sendMSS)
        let sent = h.transmit()
        let s = sent.map(\.sequenceNumber)
        h.receive(.ack, ack: s[0], sack: [(s[2], s[3])])
        _ = h.transmit()
        var out = h.advanceToDeadline()  // first RTO: resend the head only (cwnd = 1 SMSS)
        #expect(out.map(\.sequenceNumber) == [s[0]])
        #expect(h.connection.scoreboard.sackedByteCount == h.connection.sendMSS)
        h.receive(.ack, ack: s[1], sack: [(s[2], s[3])])
        out = h.transmit()
        #expect(out.map(\.sequenceNumber) == [s[1], s[3]])  // segment 2 is SACKed: skipped
        out = h.advanceToDeadline()
        out = h.advanceToDeadline()  // second timeout in a row: the scoreboard is forgotten
        #expect(h.connection.scoreboard.isEmpty)
    }
}

/// Eifel detection and response (RFC 3522, RFC 4015).
@Suite struct TCPSpuriousRetransmissionTests {
    /// Sends 10 segments at `start + 100 ms`, enters fast recovery 50 ms later with SACKs for 2–4, and
    /// returns the original TSval and the congestion window before the reduction.
    func recovering() -> (Harness, [TCPSegment], originalTSval: UInt32, cwnd: Int) {
        var h = Harness.established(modern: true)
        h.write(10 * h.connection.sendMSS)
        let sent = h.transmit()
        let cwnd = h.connection.congestion.congestionWindow
        h.now += .milliseconds(50)
        let s = sent.map(\.sequenceNumber)
        h.receive(.ack, ack: s[0], sack: [(s[1], s[2])])
        h.receive(.ack, ack: s[0], sack: [(s[1], s[3])])
        h.receive(.ack, ack: s[0], sack: [(s[1], s[4])])
        let out = h.transmit()
        #expect(out.first?.sequenceNumber == s[0])  // the fast retransmit
        #expect(h.connection.recovery == .fast)
        return (h, sent, sent[0].options.timestamp!.value, cwnd)
    }

    @Test func ackEchoingTheOriginalUndoesTheReduction() {
        var (h, sent, original, cwnd) = recovering()
        #expect(h.connection.congestion.congestionWindow < cwnd)
        // The original was only late: the receiver's ACK echoes its TSval.
        h.deliver(TCPSegment(sequenceNumber: h.peerNext, acknowledgmentNumber: sent[4].sequenceNumber, flags: .ack,
                             window: 65535, options: TCPOptions(timestamp: TCPTimestampOption(value: 2000, echoReply: original))))
        #expect(h.connection.recovery == .none)
        #expect(h.connection.congestion.congestionWindow >= cwnd)
        #expect(h.connection.spuriousRecoveryCount == 1)
    }

    @Test func ackEchoingTheRetransmissionKeepsIt() {
        var (h, sent, _, cwnd) = recovering()
        h.receive(.ack, ack: sent[4].sequenceNumber)  // echoes the latest TSval: the retransmission's
        #expect(h.connection.recovery == .fast)
        #expect(h.connection.congestion.congestionWindow < cwnd)
        #expect(h.connection.spuriousRecoveryCount == 0)
    }
}

@Suite struct TCPPathMTUTests {
    @Test func smallerPathMSSResendsFlightAtTheNewSize() {
        var h = Harness.established()
        let sent = { () -> [TCPSegment] in h.write(4 * 1460); return h.transmit() }()
        #expect(sent.count == 4)
        let cwnd = h.connection.congestion.congestionWindow
        h.connection.reducePathMSS(to: 1000)
        #expect(h.connection.sendMSS == 1000)
        let out = h.transmit()
        #expect(out.first?.sequenceNumber == sent[0].sequenceNumber)
        #expect(out.allSatisfy { $0.payload.readableBytes <= 1000 })
        #expect(out.reduce(0) { $0 + $1.payload.readableBytes } == 4 * 1460)
        #expect(h.connection.congestion.congestionWindow == cwnd)  // not congestion
    }

    @Test func largerOrTinyReportsAreBounded() {
        var h = Harness.established()
        h.connection.reducePathMSS(to: 9000)
        #expect(h.connection.pathMaximumSegmentSize == nil)
        h.connection.reducePathMSS(to: 10)
        #expect(h.connection.sendMSS == 536)
    }
}

/// RFC 8985 §7 tail loss probe.
@Suite struct TCPTailLossProbeTests {
    @Test func lostTailIsProbedAndRecoveredBeforeTheTimeout() {
        var h = Harness.established(modern: true)
        let mss = h.connection.sendMSS
        // One round trip with an RTT sample, so the probe timeout (2·SRTT, ≥ 10 ms) is known.
        h.sampleRoundTrip()
        // Four segments go out; the whole tail is lost: no ACK comes back.
        h.write(4 * mss)
        let sent = h.transmit()
        #expect(sent.count == 4)
        let s = sent.map(\.sequenceNumber)
        let rto = h.connection.rttEstimator.retransmitTimeout
        let sentAt = h.now
        // The probe fires well before the RTO (200 ms floor): it resends the last segment only.
        let probe = h.advanceToDeadline()
        #expect(probe.map(\.sequenceNumber) == [s[3]])
        #expect(h.now - sentAt < rto, "probe after \(h.now - sentAt), RTO \(rto)")
        #expect(h.connection.recovery == .none)
        // Its SACK shows the hole below it: fast recovery resends the three lost segments at once.
        h.receive(.ack, ack: s[0], sack: [(s[3], s[3] + mss)])
        #expect(h.connection.recovery == .fast)
        let repaired = h.transmit()
        #expect(repaired.map(\.sequenceNumber) == [s[0], s[1], s[2]])
        h.receive(.ack, ack: s[3] + mss)
        #expect(h.connection.recovery == .none)
        #expect(h.connection.flightSize == 0)
    }

    @Test func answeredProbeNeedsNoRecovery() {
        var configuration = TCPConfiguration.test
        configuration.tailLossProbe = true
        var h = Harness.established(configuration, modern: true)
        let mss = h.connection.sendMSS
        h.sampleRoundTrip()
        h.write(2 * mss)
        let sent = h.transmit()
        let probe = h.advanceToDeadline()
        #expect(probe.map(\.sequenceNumber) == [sent[1].sequenceNumber])
        // Only the ACK was slow: it covers everything, nothing is retransmitted, cwnd is untouched.
        let window = h.connection.congestion.congestionWindow
        h.receive(.ack, ack: sent[1].sequenceNumber + mss)
        #expect(h.connection.recovery == .none)
        #expect(h.transmit().isEmpty)
        #expect(h.connection.congestion.congestionWindow >= window)
    }
}

/// RACK's rule for retransmissions (RFC 8985 §6.2): a retransmission that is itself lost is found when
/// data sent after it is SACKed, and resent at once — not after the RTO.
@Suite struct TCPLostRetransmissionTests {
    @Test func lostRetransmissionIsResentWhenLaterDataIsSACKed() {
        var h = Harness.established(modern: true)
        let mss = h.connection.sendMSS
        h.sampleRoundTrip()
        // Six segments; the first is lost, the rest arrive and are SACKed: fast retransmit of s[0].
        h.write(6 * mss)
        let s = h.transmit().map(\.sequenceNumber)
        #expect(s.count == 6)
        h.receive(.ack, ack: s[0], sack: [(s[1], s[5] + mss)])
        #expect(h.connection.recovery == .fast)
        let retransmitted = h.transmit()
        #expect(retransmitted.first?.sequenceNumber == s[0])
        // New data leaves after the retransmission; the retransmission is lost, the new data is SACKed.
        h.write(2 * mss)
        var later = h.transmit().filter { $0.sequenceNumber > s[5] }
        if later.isEmpty {
            h.receive(.ack, ack: s[0], sack: [(s[1], s[5] + mss)])
            later = h.transmit().filter { $0.sequenceNumber > s[5] }
        }
        let newData = try! #require(later.first)
        let timeouts = h.connection.dataTimeouts
        h.receive(.ack, ack: s[0], sack: [(s[1], newData.sequenceNumber + newData.payload.readableBytes)])
        #expect(h.connection.lostRetransmissionCount == 1)
        let again = h.transmit()
        #expect(again.first?.sequenceNumber == s[0], "resent: \(again.map(\.sequenceNumber)), expected \(s[0])")
        #expect(h.connection.dataTimeouts == timeouts)
        // Once it arrives everything is acknowledged and recovery ends.
        h.receive(.ack, ack: newData.sequenceNumber + newData.payload.readableBytes)
        #expect(h.connection.recovery == .none)
    }
}
