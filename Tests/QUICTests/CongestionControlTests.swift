// NewReno per RFC 9002 §7: initial window, slow start, one reduction per recovery period,
// congestion avoidance, persistent congestion.
import NetstackWire
@testable import QUIC
import Testing

@Test func newRenoFollowsRFC9002() {
    var cc = QUICNewReno(maxDatagramSize: 1200)
    #expect(cc.window == 12000)  // min(10 × 1200, max(14720, 2400))
    let t0 = Instant(nanoseconds: 1_000_000_000)
    cc.onSent(size: 1200)
    cc.onAcked(size: 1200, sentTime: t0)
    #expect(cc.window == 13200 && cc.bytesInFlight == 0)  // slow start: + acked bytes
    for _ in 0..<4 { cc.onSent(size: 1200) }
    cc.onLost(size: 1200, largestSentTime: t0 + .milliseconds(1), now: t0 + .milliseconds(50))
    #expect(cc.window == 6600 && cc.slowStartThreshold == 6600)  // halved
    // A second loss of a packet sent before recovery started: no second reduction.
    cc.onLost(size: 1200, largestSentTime: t0 + .milliseconds(2), now: t0 + .milliseconds(60))
    #expect(cc.window == 6600)
    // An ACK for a packet sent before recovery does not grow the window.
    cc.onAcked(size: 1200, sentTime: t0 + .milliseconds(3))
    #expect(cc.window == 6600)
    // Congestion avoidance after recovery: about one datagram per window.
    cc.onSent(size: 1200)
    cc.onAcked(size: 1200, sentTime: t0 + .milliseconds(100))
    #expect(cc.window == 6600 + 1200 * 1200 / 6600)
    #expect(cc.canSend(1200))
    cc.onPersistentCongestion()
    #expect(cc.window == 2400)
}
