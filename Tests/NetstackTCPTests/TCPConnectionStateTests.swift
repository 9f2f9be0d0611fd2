import NetstackTCP
import NetstackWire
import Testing

/// Every RFC 9293 state transition, one test each, from the named constructors.
@Suite struct TCPConnectionStateTests {
    @Test func namedConstructorsReachTheirStates() {
        #expect(Harness.listen().connection.state == .listen)
        #expect(Harness.synSent().connection.state == .synSent)
        #expect(Harness.synReceived().connection.state == .synReceived)
        #expect(Harness.established().connection.state == .established)
        #expect(Harness.finWait1().connection.state == .finWait1)
        #expect(Harness.finWait2().connection.state == .finWait2)
        #expect(Harness.closeWait().connection.state == .closeWait)
        #expect(Harness.closing().connection.state == .closing)
        #expect(Harness.lastAck().connection.state == .lastAck)
        #expect(Harness.timeWait().connection.state == .timeWait)
    }

    // MARK: Passive open

    @Test func acceptingSYNSendsSYNACKMirroringOptions() {
        let connection = TCPConnection(accepting: Harness.peerSYN(modern: true), configuration: .test,
                                       initialSequenceNumber: localISN, now: start)
        var h = Harness(connection: connection!, now: start, peerNext: peerISN + 1)
        let out = h.transmit()
        #expect(out.count == 1)
        let synAck = out[0]
        #expect(synAck.flags == [.syn, .ack])
        #expect(synAck.sequenceNumber == localISN)
        #expect(synAck.acknowledgmentNumber == peerISN + 1)
        #expect(synAck.options.maximumSegmentSize == 1460)
        #expect(synAck.options.sackPermitted)
        #expect(synAck.options.windowScale == 7)  // 4 MiB receive buffer maximum: 4194304 >> 6 > 65535
        #expect(synAck.options.timestamp?.echoReply == 999)
        #expect(h.connection.sendMSS == 1460 - 12)
        #expect(h.deadline == start + .seconds(1))  // RFC 6298 initial RTO
    }

    @Test func acceptingSYNWithoutOptionsOffersNone() {
        var h = Harness.listen()
        h.deliver(Harness.peerSYN(modern: false))
        let synAck = h.transmit()[0]
        #expect(synAck.options.windowScale == nil)
        #expect(!synAck.options.sackPermitted)
        #expect(synAck.options.timestamp == nil)
        #expect(h.connection.peerMaximumSegmentSize == 1460)
    }

    @Test(arguments: [TCPFlags.ack, [.syn, .ack], [.rst], [.fin]])
    func acceptingRejectsNonSYN(flags: TCPFlags) {
        let segment = TCPSegment(sequenceNumber: peerISN, flags: flags)
        #expect(TCPConnection(accepting: segment, configuration: .test, initialSequenceNumber: localISN, now: start) == nil)
    }

    @Test func listenAnswersACKWithRST() {
        var h = Harness.listen()
        h.deliver(TCPSegment(sequenceNumber: peerISN, acknowledgmentNumber: SeqNumber(777), flags: .ack))
        let out = h.transmit()
        #expect(out.count == 1)
        #expect(out[0].flags == .rst)
        #expect(out[0].sequenceNumber == SeqNumber(777))
        #expect(h.connection.state == .listen)
    }

    @Test func listenIgnoresRST() {
        var h = Harness.listen()
        h.deliver(TCPSegment(sequenceNumber: peerISN, flags: .rst))
        #expect(h.transmit().isEmpty)
        #expect(h.connection.state == .listen)
    }

    @Test func synReceivedToEstablishedOnACK() {
        var h = Harness.synReceived()
        h.receive(.ack)
        #expect(h.connection.state == .established)
        #expect(h.connection.takeEvents().contains(.connected))
        #expect(h.connection.sendWindow == 65535)
    }

    @Test func synReceivedAnswersBadACKWithRST() {
        var h = Harness.synReceived()
        h.receive(.ack, ack: localISN + 50)
        #expect(h.connection.state == .synReceived)
        let out = h.transmit()
        #expect(out.first?.flags == .rst)
        #expect(out.first?.sequenceNumber == localISN + 50)
    }

    @Test func synReceivedResendsSYNACKForRetransmittedSYN() {
        var h = Harness.synReceived()
        h.deliver(Harness.peerSYN(modern: false))
        let out = h.transmit()
        #expect(out.count == 1 && out[0].flags == [.syn, .ack])
    }

    @Test func synReceivedRetransmitsSYNACKThenTimesOut() {
        var configuration = TCPConfiguration.test
        configuration.maximumSYNRetransmissions = 2
        var h = Harness.synReceived(configuration)
        var out = h.advance(.seconds(1))
        #expect(out.map(\.flags) == [[.syn, .ack]])
        out = h.advance(.seconds(2))  // backed off: 2 s
        #expect(out.map(\.flags) == [[.syn, .ack]])
        out = h.advance(.seconds(4))
        #expect(h.connection.state == .closed)
        #expect(h.connection.closeReason == .timedOut)
        #expect(h.connection.takeEvents().contains(.timedOut))
    }

    @Test func synReceivedRSTAtRcvNxtCloses() {
        var h = Harness.synReceived()
        h.receive(.rst)
        #expect(h.connection.state == .closed)
        #expect(h.connection.closeReason == .reset)
    }

    // MARK: Active open

    @Test func synSentEmitsSYNWithAllOptions() {
        var h = Harness(connection: TCPConnection(connecting: .test, initialSequenceNumber: localISN, now: start),
                        now: start, peerNext: peerISN)
        let out = h.transmit()
        #expect(out.count == 1)
        #expect(out[0].flags == .syn)
        #expect(out[0].sequenceNumber == localISN)
        #expect(out[0].options.maximumSegmentSize == 1460)
        #expect(out[0].options.windowScale == 7)
        #expect(out[0].options.sackPermitted)
        #expect(out[0].options.timestamp != nil)
    }

    @Test func synSentToEstablishedOnSYNACK() {
        var h = Harness.synSent()
        var options = TCPOptions(maximumSegmentSize: 1400, windowScale: 2, sackPermitted: true)
        options.timestamp = nil
        h.deliver(TCPSegment(sequenceNumber: peerISN, acknowledgmentNumber: localISN + 1, flags: [.syn, .ack],
                             window: 1000, options: options))
        #expect(h.connection.state == .established)
        #expect(h.connection.takeEvents().contains(.connected))
        #expect(h.connection.sendWindow == 1000)  // a SYN's window is not scaled
        #expect(h.connection.sendWindowScale == 2)
        #expect(h.connection.sackEnabled && !h.connection.timestampsEnabled)
        #expect(h.connection.sendMSS == 1400)
        let out = h.transmit()
        #expect(out.count == 1 && out[0].flags == .ack && out[0].acknowledgmentNumber == peerISN + 1)
    }

    @Test func synSentResetByAcceptableRST() {
        var h = Harness.synSent()
        h.deliver(TCPSegment(sequenceNumber: SeqNumber(0), acknowledgmentNumber: localISN + 1, flags: [.rst, .ack]))
        #expect(h.connection.state == .closed)
        #expect(h.connection.closeReason == .reset)
    }

    @Test func synSentIgnoresRSTWithoutACK() {
        var h = Harness.synSent()
        h.deliver(TCPSegment(sequenceNumber: peerISN, flags: .rst))
        #expect(h.connection.state == .synSent)
    }

    @Test func synSentAnswersBadACKWithRST() {
        var h = Harness.synSent()
        h.deliver(TCPSegment(sequenceNumber: peerISN, acknowledgmentNumber: localISN + 99, flags: [.syn, .ack]))
        #expect(h.connection.state == .synSent)
        let out = h.transmit()
        #expect(out.first?.flags == .rst && out.first?.sequenceNumber == localISN + 99)
    }

    @Test func synSentRetransmitsSYNWithBackoff() {
        var h = Harness.synSent()
        #expect(h.deadline == start + .seconds(1))
        #expect(h.advanceToDeadline().map(\.flags) == [.syn])
        #expect(h.deadline == start + .seconds(3))
        #expect(h.advanceToDeadline().map(\.flags) == [.syn])
        #expect(h.deadline == start + .seconds(7))
    }

    @Test func simultaneousOpen() {
        var h = Harness.synSent()
        h.deliver(Harness.peerSYN(modern: false))
        #expect(h.connection.state == .synReceived)
        let out = h.transmit()
        #expect(out.count == 1 && out[0].flags == [.syn, .ack] && out[0].sequenceNumber == localISN)
        // The peer, also in SYN-RECEIVED, answers our SYN with its SYN-ACK (RFC 9293 figure 8).
        h.deliver(TCPSegment(sequenceNumber: peerISN, acknowledgmentNumber: localISN + 1, flags: [.syn, .ack], window: 65535))
        #expect(h.connection.state == .established)
        #expect(h.connection.takeEvents().contains(.connected))
    }

    // MARK: Closing

    @Test func activeCloseThroughFinWait() {
        var h = Harness.established()
        h.write(100)
        h.connection.shutdownWrite()
        #expect(h.connection.state == .finWait1)
        let out = h.transmit()
        #expect(out.count == 1)
        #expect(out[0].flags == [.ack, .fin, .psh] && out[0].payload.readableBytes == 100)
        h.receive(.ack)
        #expect(h.connection.state == .finWait2)
        h.receive([.fin, .ack])
        #expect(h.connection.state == .timeWait)
        #expect(h.connection.takeEvents().contains(.peerClosed))
        let ack = h.transmit()
        #expect(ack.count == 1 && ack[0].acknowledgmentNumber == h.peerNext)
        #expect(h.deadline == h.now + .seconds(60))
        _ = h.advance(.seconds(60))
        #expect(h.connection.state == .closed)
        #expect(h.connection.closeReason == .normal)
        #expect(h.connection.takeEvents().contains(.closed))
    }

    @Test func finWait1ToTimeWaitOnFINAcknowledgingOurFIN() {
        var h = Harness.finWait1()
        h.receive([.fin, .ack])
        #expect(h.connection.state == .timeWait)
    }

    @Test func passiveCloseThroughLastAck() {
        var h = Harness.established()
        h.receive([.fin, .ack])
        #expect(h.connection.state == .closeWait)
        #expect(h.connection.takeEvents().contains(.peerClosed))
        #expect(h.connection.isReadClosed)
        #expect(h.transmit().first?.acknowledgmentNumber == peerISN + 2)
        h.connection.shutdownWrite()
        #expect(h.connection.state == .lastAck)
        let fin = h.transmit()
        #expect(fin.count == 1 && fin[0].flags.contains(.fin))
        h.receive(.ack)
        #expect(h.connection.state == .closed)
        #expect(h.connection.closeReason == .normal)
    }

    @Test func simultaneousCloseThroughClosing() {
        var h = Harness.closing()
        #expect(h.connection.state == .closing)
        h.receive(.ack)
        #expect(h.connection.state == .timeWait)
    }

    @Test func lastAckRetransmitsFIN() {
        var h = Harness.lastAck()
        let out = h.advanceToDeadline()
        #expect(out.count == 1 && out[0].flags.contains(.fin))
        #expect(h.connection.retransmittedSegmentCount == 1)
    }

    @Test func timeWaitAcknowledgesRetransmittedFINAndRestartsTimer() {
        var h = Harness.timeWait()
        _ = h.advance(.seconds(30))
        h.receive([.fin, .ack], seq: h.peerNext - 1)
        let out = h.transmit()
        #expect(out.count == 1 && out[0].flags == .ack && out[0].acknowledgmentNumber == h.peerNext)
        #expect(h.deadline == h.now + .seconds(60))
        _ = h.advance(.seconds(59))
        #expect(h.connection.state == .timeWait)
        _ = h.advance(.seconds(1))
        #expect(h.connection.state == .closed)
    }

    @Test func timeWaitMayBeReplacedByNewerSYN() {
        let h = Harness.timeWait()
        #expect(h.connection.mayReplace(with: TCPSegment(sequenceNumber: h.peerNext + 100_000, flags: .syn)))
        #expect(!h.connection.mayReplace(with: TCPSegment(sequenceNumber: h.peerNext - 10, flags: .syn)))
        #expect(!Harness.established().connection.mayReplace(with: TCPSegment(sequenceNumber: peerISN + 100_000, flags: .syn)))
    }

    @Test func abortSendsRSTAndCloses() {
        var h = Harness.established()
        h.write(10)
        h.connection.abort()
        #expect(h.connection.state == .closed)
        #expect(h.connection.closeReason == .aborted)
        let out = h.transmit()
        #expect(out.count == 1 && out[0].flags == .rst && out[0].sequenceNumber == localISN + 1)
    }

    @Test func closedAnswersWithRST() {
        var h = Harness.established()
        h.connection.abort()
        _ = h.transmit()
        h.receive(.ack, payload: bytes(10))
        let out = h.transmit()
        #expect(out.count == 1 && out[0].flags == .rst)
    }

    @Test func shutdownDuringHandshakeSendsFINAfterEstablishing() {
        var h = Harness.synReceived()
        h.connection.shutdownWrite()
        #expect(h.connection.state == .synReceived)
        h.receive(.ack)
        #expect(h.connection.state == .finWait1)
        let out = h.transmit()
        #expect(out.count == 1 && out[0].flags.contains(.fin))
    }

    @Test func sendNotAllowedAfterShutdown() {
        var h = Harness.finWait1()
        var data = bytes(10)
        #expect(h.connection.send(&data) == 0)
        #expect(data.readableBytes == 10)
    }
}

@Suite struct TCPResetForClosedPortTests {
    @Test func answersSYNWithRSTACKAndACKWithRST() {
        let syn = TCPSegment(sequenceNumber: SeqNumber(10), flags: .syn, payload: bytes(5))
        let answer = TCPConnection.reset(answering: syn)
        #expect(answer?.flags == [.rst, .ack])
        #expect(answer?.sequenceNumber == SeqNumber(0))
        #expect(answer?.acknowledgmentNumber == SeqNumber(16))  // SYN + 5 bytes
        let ack = TCPSegment(sequenceNumber: SeqNumber(10), acknowledgmentNumber: SeqNumber(99), flags: .ack)
        #expect(TCPConnection.reset(answering: ack)?.flags == .rst)
        #expect(TCPConnection.reset(answering: ack)?.sequenceNumber == SeqNumber(99))
        #expect(TCPConnection.reset(answering: TCPSegment(sequenceNumber: SeqNumber(1), flags: .rst)) == nil)
    }
}
