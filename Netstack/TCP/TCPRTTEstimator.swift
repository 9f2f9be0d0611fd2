/// The retransmission timer's estimator (RFC 6298): SRTT, RTTVAR and the RTO with exponential backoff.
///
/// Samples come from timestamps (RFC 7323 §4) or from timing one unretransmitted segment (Karn's
/// algorithm: the caller never samples a retransmitted segment).
package struct TCPRTTEstimator: Sendable {
    /// nil until the first sample.
    package private(set) var smoothedRTT: Duration?
    package private(set) var rttVariance: Duration = .zero
    /// The current timeout, backoff included.
    package private(set) var retransmitTimeout: Duration
    /// How many times the timeout has been doubled since the last new acknowledgment.
    package private(set) var backoffCount = 0
    let minimum: Duration
    let maximum: Duration
    /// The clock granularity G of RFC 6298 §2 (our timestamps tick in milliseconds).
    static let granularity: Duration = .milliseconds(1)

    package init(initial: Duration, minimum: Duration, maximum: Duration) {
        self.retransmitTimeout = initial
        self.minimum = minimum
        self.maximum = maximum
    }

    /// Feeds one RTT measurement (RFC 6298 §2.2, §2.3) and recomputes the timeout without backoff.
    package mutating func addSample(_ sample: Duration) {
        let r = sample < .zero ? .zero : sample
        if let srtt = smoothedRTT {
            let delta = srtt > r ? srtt - r : r - srtt
            rttVariance = (rttVariance * 3 + delta) / 4   // beta = 1/4
            smoothedRTT = (srtt * 7 + r) / 8               // alpha = 1/8
        } else {
            smoothedRTT = r
            rttVariance = r / 2
        }
        backoffCount = 0
        retransmitTimeout = baseTimeout
    }

    /// SRTT + max(G, 4·RTTVAR), clamped (RFC 6298 §2.4, 2.5).
    var baseTimeout: Duration {
        guard let srtt = smoothedRTT else { return retransmitTimeout }
        let variance = rttVariance * 4
        return clamp(srtt + (variance > Self.granularity ? variance : Self.granularity))
    }

    /// Doubles the timeout after it fired (RFC 6298 §5.5).
    package mutating func backOff() {
        backoffCount += 1
        retransmitTimeout = clamp(retransmitTimeout * 2)
    }

    /// New data was acknowledged: the path works again, so drop the backoff (as Linux does).
    package mutating func resetBackoff() {
        guard backoffCount > 0 else { return }
        backoffCount = 0
        if smoothedRTT != nil { retransmitTimeout = baseTimeout }
    }

    func clamp(_ value: Duration) -> Duration {
        value < minimum ? minimum : (value > maximum ? maximum : value)
    }
}
