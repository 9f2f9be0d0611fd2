import NetstackTCP
import NetstackWire
import Testing

/// Segment arrival: data, ACK policy, reassembly, windows, and RFC 5961 / RFC 7323 hardening.
@Suite struct TCPConnectionReceiveTests {
    // MARK: Data and ACKs

    @Test func inOrderDataIsReadableAndAckIsDelayed() {
        var h = Harness.established()
        h.receive(.ack, payload: bytes(100))
        #expect(h.connection.takeEvents().contains(.readable))
        #expect(h.connection.read(max: 1000)?.readableBytes == 100)
        #expect(h.transmit().isEmpty)  // delayed
        #expect(h.deadline == h.now + .milliseconds(40))
        let out = h.advanceToDeadline()
        #expect(out.count == 1 && out[0].acknowledgmentNumber == peerISN + 101)
    }

    @Test func everySecondFullSegmentIsAckedAtOnce() {
        var h = Harness.established()
        h.receive(.ack, payload: bytes(1460))
        #expect(h.transmit().isEmpty)
        h.receive(.ack, payload: bytes(1460, from: 1460))
        let out = h.transmit()
        #expect(out.count == 1 && out[0].acknowledgmentNumber == peerISN + 1 + 2920)
    }

    @Test func readReturnsAtMostMax() {
        var h = Harness.established()
        h.receive(.ack, payload: bytes(100))
        #expect(h.connection.read(max: 30)?.readableBytes == 30)
        #expect(h.connection.readableByteCount == 70)
        let rest = h.connection.read(max: 1000)
        #expect(rest?.readableBytesView.first == 30)
    }

    @Test func outOfOrderIsAckedAtOnceWithSACKAndReassembled() {
        var h = Harness.established(modern: true)
        let base = h.peerNext
        h.receive(.ack, seq: base + 1000, payload: bytes(500, from: 1000))
        var out = h.transmit()
        #expect(out.count == 1)
        #expect(out[0].acknowledgmentNumber == base)
        #expect(Array(out[0].options.sackBlocks) == [TCPSACKBlock(start: base + 1000, end: base + 1500)])
        #expect(h.connection.readableByteCount == 0)
        h.receive(.ack, seq: base, payload: bytes(1000))
        out = h.transmit()
        #expect(out.count == 1 && out[0].acknowledgmentNumber == base + 1500)  // the hole filled: ACK at once
        #expect(out[0].options.sackBlocks.isEmpty)
        var all: [UInt8] = []
        while let chunk = h.connection.read(max: 10_000) { all += chunk.readableBytesView }
        #expect(all == Array(bytes(1500).readableBytesView))
    }

    @Test func sackBlocksReportMostRecentFirst() {
        var h = Harness.established(modern: true)
        let base = h.peerNext
        h.receive(.ack, seq: base + 1000, payload: bytes(100))
        h.receive(.ack, seq: base + 3000, payload: bytes(100))
        h.receive(.ack, seq: base + 2000, payload: bytes(100))
        let out = h.transmit()
        let blocks = Array(out.last!.options.sackBlocks)
        #expect(blocks.first == TCPSACKBlock(start: base + 2000, end: base + 2100))
        #expect(blocks.count == 3)
    }

    @Test func duplicateDataIsAckedNotDelivered() {
        var h = Harness.established()
        let base = h.peerNext
        h.receive(.ack, payload: bytes(100))
        _ = h.connection.read(max: 1000)
        h.receive(.ack, seq: base, payload: bytes(100))
        let out = h.transmit()
        #expect(out.count == 1 && out[0].acknowledgmentNumber == base + 100)
        #expect(h.connection.readableByteCount == 0)
    }

    @Test func overlappingSegmentsDeliverEachByteOnce() {
        var h = Harness.established()
        let base = h.peerNext
        h.receive(.ack, seq: base + 50, payload: bytes(100, from: 50))   // [50,150)
        h.receive(.ack, seq: base + 120, payload: bytes(100, from: 120)) // [120,220)
        h.receive(.ack, seq: base + 20, payload: bytes(40, from: 20))    // [20,60)
        h.receive(.ack, seq: base, payload: bytes(30))                   // [0,30)
        var all: [UInt8] = []
        while let chunk = h.connection.read(max: 10_000) { all += chunk.readableBytesView }
        #expect(all == Array(bytes(220).readableBytesView))
        #expect(h.connection.receiveNext == base + 220)
    }

    @Test func windowShrinksAsBufferFillsAndReopensOnRead() {
        var configuration = TCPConfiguration.test
        configuration.receiveBufferInitial = 8192
        configuration.receiveBufferMaximum = 8192
        var h = Harness.established(configuration)
        for i in 0..<8 { h.receive(.ack, payload: bytes(1024, from: i * 1024)) }
        var out = h.transmit()
        #expect(out.last?.window == 0)
        // Beyond the window: dropped and answered.
        h.receive(.ack, payload: bytes(10))
        #expect(h.connection.readableByteCount == 8192)
        out = h.transmit()
        #expect(out.last?.acknowledgmentNumber == peerISN + 1 + 8192)
        // Reading opens the window; an update goes out.
        while h.connection.read(max: 8192) != nil {}
        out = h.transmit()
        #expect(out.count == 1 && out[0].window == 8192)
    }

    @Test func fullPeerFINAfterHoleWaitsForTheHole() {
        var h = Harness.established()
        let base = h.peerNext
        h.receive([.fin, .ack], seq: base + 10, payload: bytes(10, from: 10))
        #expect(h.connection.state == .established)
        h.receive(.ack, seq: base, payload: bytes(10))
        #expect(h.connection.state == .closeWait)
        #expect(h.connection.receiveNext == base + 21)
    }

    // MARK: RFC 5961

    @Test func rstAtReceiveNextResets() {
        var h = Harness.established()
        h.receive(.rst)
        #expect(h.connection.state == .closed)
        #expect(h.connection.closeReason == .reset)
        #expect(h.connection.takeEvents().contains(.reset))
    }

    @Test func rstInWindowButNotExactEarnsChallengeAck() {
        var h = Harness.established()
        h.receive(.rst, seq: h.peerNext + 100)
        #expect(h.connection.state == .established)
        let out = h.transmit()
        #expect(out.count == 1 && out[0].flags == .ack && out[0].acknowledgmentNumber == h.peerNext)
    }

    @Test func rstOutsideWindowIsIgnoredSilently() {
        var h = Harness.established()
        h.receive(.rst, seq: h.peerNext + 1_000_000)
        #expect(h.connection.state == .established)
        #expect(h.transmit().isEmpty)
    }

    @Test func synInEstablishedEarnsChallengeAck() {
        var h = Harness.established()
        h.receive(.syn, seq: h.peerNext + 5)
        #expect(h.connection.state == .established)
        let out = h.transmit()
        #expect(out.count == 1 && out[0].flags == .ack && out[0].acknowledgmentNumber == h.peerNext)
    }

    @Test func challengeAcksAreRateLimited() {
        var h = Harness.established()
        var sent = 0
        for i in 0..<15 {
            h.receive(.rst, seq: h.peerNext + 10 + i)
            sent += h.transmit().count
        }
        #expect(sent == TCPConnection.challengeAckLimit)
        _ = h.advance(.seconds(1))
        h.receive(.rst, seq: h.peerNext + 10)
        #expect(h.transmit().count == 1)
    }

    @Test func ackOfUnsentDataIsDroppedAndAnswered() {
        var h = Harness.established()
        h.receive(.ack, ack: localISN + 5000, payload: bytes(10))
        #expect(h.connection.readableByteCount == 0)
        #expect(h.transmit().count == 1)
    }

    @Test func ackTooOldEarnsChallengeAck() {
        var h = Harness.established()
        h.receive(.ack, ack: localISN - 200_000, payload: bytes(10))
        #expect(h.connection.readableByteCount == 0)
        #expect(h.transmit().count == 1)
    }

    // MARK: RFC 7323

    @Test func pawsDropsSegmentsWithOldTimestamps() {
        var h = Harness.established(modern: true)
        h.peerTimestamp = 5000
        h.receive(.ack, payload: bytes(10))
        #expect(h.connection.readableByteCount == 10)
        let next = h.peerNext
        h.receive(.ack, payload: bytes(10, from: 10), timestamp: 4000)  // older than TS.Recent
        #expect(h.connection.readableByteCount == 10)
        #expect(h.transmit().last?.acknowledgmentNumber == next)
    }

    @Test func timestampsEchoTheLeftEdgeSegment() {
        var h = Harness.established(modern: true)
        h.peerTimestamp = 7777
        h.receive(.ack, payload: bytes(10))
        let out = h.advance(.milliseconds(40))
        #expect(out.last?.options.timestamp?.echoReply == 7777)
    }

    @Test func windowScaleAppliesAfterHandshake() {
        var h = Harness.established(modern: true)
        h.receive(.ack, window: 100)
        #expect(h.connection.sendWindow == 100 << 7)
    }

    @Test func receiveWindowAutotunesUnderLoad() {
        var configuration = TCPConfiguration.test
        configuration.receiveBufferInitial = 16384
        var h = Harness.established(configuration, modern: true)
        let initial = h.connection.receiveBufferLimit
        for i in 0..<200 {
            h.now += .milliseconds(1)
            h.receive(.ack, payload: bytes(1448, from: i * 1448))
            _ = h.connection.read(max: 1 << 20)
            _ = h.transmit()
        }
        #expect(h.connection.receiveBufferLimit > initial)
        #expect(h.connection.receiveBufferLimit <= configuration.receiveBufferMaximum)
    }
}

/// Reordering and duplication at the single-connection level (the transfer test covers them in bulk).
@Suite struct TCPConnectionReorderTests {
    @Test func reverseOrderArrivalIsReassembled() {
        var h = Harness.established(modern: true)
        let base = h.peerNext
        for i in (0..<8).reversed() {
            h.receive(.ack, seq: base + i * 100, payload: bytes(100, from: i * 100))
        }
        var all: [UInt8] = []
        while let chunk = h.connection.read(max: 10_000) { all += chunk.readableBytesView }
        #expect(all == Array(bytes(800).readableBytesView))
        #expect(h.connection.receiveNext == base + 800)
        #expect(h.transmit().last?.options.sackBlocks.isEmpty == true)
    }

    @Test func duplicatedOutOfOrderSegmentsAreHeldOnce() {
        var h = Harness.established()
        let base = h.peerNext
        for _ in 0..<3 { h.receive(.ack, seq: base + 100, payload: bytes(100, from: 100)) }
        #expect(h.connection.receiveQueue.outOfOrderByteCount == 100)
        h.receive(.ack, seq: base, payload: bytes(100))
        #expect(h.connection.readableByteCount == 200)
    }

    @Test func rstInTimeWaitEndsItEarly() {
        var h = Harness.timeWait()
        h.receive(.rst)
        #expect(h.connection.state == .closed)
        #expect(h.connection.closeReason == .normal)
    }

    @Test func advertisedWindowIsScaled() {
        var h = Harness.established(modern: true)
        h.receive(.ack, payload: bytes(10))
        let out = h.advance(.milliseconds(40))
        let limit = h.connection.receiveBufferLimit
        #expect(out.last?.window == UInt16((limit - 10) >> 7))
    }
}
