// QUICCongestionControl: NewReno as RFC 9002 §7 specifies it — slow start, congestion avoidance,
// one reduction per recovery period, persistent congestion collapse (§7.6).
import NetstackWire

/// The sender's congestion window. A value owned by the connection.
package struct QUICNewReno: Sendable {
    /// RFC 9002 §7.2: kInitialWindow = min(10 × max_datagram_size, max(14720, 2 × max_datagram_size)).
    package static func initialWindow(maxDatagramSize: Int) -> Int { min(10 * maxDatagramSize, max(14720, 2 * maxDatagramSize)) }

    let maxDatagramSize: Int
    package private(set) var window: Int
    package private(set) var slowStartThreshold = Int.max
    package private(set) var bytesInFlight = 0
    var recoveryStart: Instant?

    package init(maxDatagramSize: Int) {
        self.maxDatagramSize = maxDatagramSize
        window = Self.initialWindow(maxDatagramSize: maxDatagramSize)
    }

    /// RFC 9002 §7.2: kMinimumWindow.
    var minimumWindow: Int { 2 * maxDatagramSize }

    /// Whether `size` more bytes may go out now.
    package func canSend(_ size: Int) -> Bool { bytesInFlight + size <= window }

    mutating func onSent(size: Int) { bytesInFlight += size }

    /// An in-flight packet sent at `sentTime` was acknowledged (§7.3).
    mutating func onAcked(size: Int, sentTime: Instant) {
        bytesInFlight = max(0, bytesInFlight - size)
        if let recoveryStart, sentTime <= recoveryStart { return }  // sent before the reduction: no growth
        if window < slowStartThreshold {
            window += size
        } else {
            window += max(1, maxDatagramSize * size / window)
        }
    }

    /// Packets were declared lost; `largestSentTime` is the newest lost packet's send time (§7.3.2).
    mutating func onLost(size: Int, largestSentTime: Instant, now: Instant) {
        bytesInFlight = max(0, bytesInFlight - size)
        if let recoveryStart, largestSentTime <= recoveryStart { return }
        recoveryStart = now
        slowStartThreshold = max(window / 2, minimumWindow)
        window = slowStartThreshold
    }

    /// Persistent congestion (§7.6): collapse to the minimum window.
    mutating func onPersistentCongestion() {
        window = minimumWindow
        recoveryStart = nil
    }

    /// An in-flight packet was forgotten without an ACK or loss (its space was discarded).
    mutating func onDiscarded(size: Int) { bytesInFlight = max(0, bytesInFlight - size) }
}
