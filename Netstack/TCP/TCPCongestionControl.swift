package import NetstackWire
/// A congestion controller: owns cwnd and ssthresh (in bytes); the connection owns loss detection and
/// recovery (RFC 6675) and tells the controller what happened. Implementations are value types, so a
/// connection holds one inline (`TCPCongestionController`) without boxing.
package protocol TCPCongestionControl: Sendable {
    /// Bytes allowed in flight.
    var congestionWindow: Int { get }
    var slowStartThreshold: Int { get }
    /// New data was cumulatively acknowledged outside loss recovery.
    /// `isWindowLimited`: the flight before this ACK filled cwnd (an app-limited sender does not grow it).
    mutating func onAck(ackedBytes: Int, isWindowLimited: Bool, maximumSegmentSize: Int,
                        smoothedRTT: Duration?, now: Instant)
    /// Loss was detected (fast retransmit): reduce once per window of data.
    mutating func onCongestionEvent(flightSize: Int, maximumSegmentSize: Int, now: Instant)
    /// Recovery ended (the recovery point was acknowledged).
    mutating func onRecoveryExit(maximumSegmentSize: Int)
    /// The retransmission timer fired (RFC 5681 §3.1 eq. 4, loss window of one segment).
    mutating func onRetransmitTimeout(flightSize: Int, maximumSegmentSize: Int)
}

/// NewReno (RFC 5681 with appropriate byte counting, RFC 3465; recovery per RFC 6582/6675 is the
/// connection's job).
package struct NewRenoCongestionControl: TCPCongestionControl {
    package private(set) var congestionWindow: Int
    package private(set) var slowStartThreshold: Int = .max
    /// Bytes acknowledged in congestion avoidance since cwnd last grew.
    var bytesAcked = 0

    package init(initialWindow: Int) { congestionWindow = initialWindow }

    package mutating func onAck(ackedBytes: Int, isWindowLimited: Bool, maximumSegmentSize mss: Int,
                                smoothedRTT: Duration?, now: Instant) {
        guard isWindowLimited else { return }
        if congestionWindow < slowStartThreshold {
            congestionWindow = Self.slowStart(congestionWindow, ackedBytes: ackedBytes, threshold: slowStartThreshold)
        } else {
            bytesAcked += ackedBytes
            if bytesAcked >= congestionWindow {
                bytesAcked -= congestionWindow
                congestionWindow += mss
            }
        }
    }

    /// Slow start grows cwnd by every byte acknowledged, up to ssthresh (Linux's tcp_slow_start), not by
    /// RFC 3465's L = 2·SMSS per ACK: a receiver of TSO super-segments (the kernel behind a TUN) ACKs once
    /// per super-segment, and the cap would turn slow start into linear growth of 2 segments per RTT.
    static func slowStart(_ window: Int, ackedBytes: Int, threshold: Int) -> Int {
        let grown = window + ackedBytes
        return grown > threshold ? max(threshold, window) : grown
    }

    package mutating func onCongestionEvent(flightSize: Int, maximumSegmentSize mss: Int, now: Instant) {
        slowStartThreshold = max(flightSize / 2, 2 * mss)  // RFC 5681 eq. 4
        congestionWindow = slowStartThreshold
        bytesAcked = 0
    }

    package mutating func onRecoveryExit(maximumSegmentSize mss: Int) {
        congestionWindow = max(slowStartThreshold, 2 * mss)
    }

    package mutating func onRetransmitTimeout(flightSize: Int, maximumSegmentSize mss: Int) {
        slowStartThreshold = max(flightSize / 2, 2 * mss)
        congestionWindow = mss
        bytesAcked = 0
    }
}

/// CUBIC (RFC 9438): a cubic window growth function of the time since the last reduction, with the
/// Reno-friendly region and fast convergence.
package struct CubicCongestionControl: TCPCongestionControl {
    package private(set) var congestionWindow: Int
    package private(set) var slowStartThreshold: Int = .max
    /// RFC 9438 §4.6: β_cubic = 0.7; §5: C = 0.4.
    static let beta = 0.7
    static let c = 0.4
    /// α_cubic = 3(1 − β)/(1 + β) (RFC 9438 §4.3).
    static let alpha = 3 * (1 - beta) / (1 + beta)
    /// W_max in segments: the window before the last reduction.
    package internal(set) var windowMax = 0.0
    /// W_max before the previous reduction, for fast convergence (§4.7).
    var lastWindowMax = 0.0
    /// The start of the current congestion-avoidance epoch (nil: starts on the next ACK).
    var epochStart: Instant?
    /// K in seconds (§4.2).
    package internal(set) var k = 0.0
    /// The Reno-friendly estimate W_est in segments (§4.3).
    var renoEstimate = 0.0
    /// Fractional growth carried between ACKs, in bytes.
    var carry = 0.0

    package init(initialWindow: Int) { congestionWindow = initialWindow }

    package mutating func onAck(ackedBytes: Int, isWindowLimited: Bool, maximumSegmentSize mss: Int,
                                smoothedRTT: Duration?, now: Instant) {
        guard isWindowLimited else { return }
        if congestionWindow < slowStartThreshold {
            congestionWindow = NewRenoCongestionControl.slowStart(congestionWindow, ackedBytes: ackedBytes, threshold: slowStartThreshold)
            return
        }
        // RFC 9438 works in segments and seconds; cwnd is kept in bytes, so convert at the edges.
        let segment = Double(mss)
        let cwnd = Double(congestionWindow) / segment
        // §4.2: a new epoch starts with the first ACK in congestion avoidance after a reduction.
        if epochStart == nil {
            epochStart = now
            if cwnd < windowMax {
                k = Self.cubeRoot((windowMax - cwnd) / Self.c)
            } else {
                k = 0
                windowMax = cwnd
            }
            renoEstimate = cwnd
        }
        let rtt = Double((smoothedRTT ?? .milliseconds(100)).nanosecondsClamped) / 1e9
        let t = Double((now - (epochStart ?? now)).nanosecondsClamped) / 1e9
        // §4.2: the target one RTT ahead, clamped to [cwnd, 1.5·cwnd].
        let offset = t + rtt - k
        var target = Self.c * offset * offset * offset + windowMax
        target = min(max(target, cwnd), 1.5 * cwnd)
        // §4.3: W_est grows like Reno with α_cubic per window.
        renoEstimate += Self.alpha * (Double(ackedBytes) / segment) / cwnd
        var growth: Double  // in segments, for this ACK
        if renoEstimate > target {
            growth = (renoEstimate - cwnd) * (Double(ackedBytes) / segment) / cwnd
            growth = max(growth, 0)
            target = renoEstimate
        } else {
            growth = (target - cwnd) * (Double(ackedBytes) / segment) / cwnd
        }
        // Growth per ACK is fractional; carry the remainder so small ACKs still add up (Linux keeps
        // a similar counter, cnt, for the same reason).
        carry += growth * segment
        if carry >= 1 {
            let whole = Int(carry)
            congestionWindow += whole
            carry -= Double(whole)
        }
    }

    package mutating func onCongestionEvent(flightSize: Int, maximumSegmentSize mss: Int, now: Instant) {
        reduce(maximumSegmentSize: mss)
        congestionWindow = slowStartThreshold
    }

    package mutating func onRecoveryExit(maximumSegmentSize mss: Int) {
        congestionWindow = max(slowStartThreshold, 2 * mss)
    }

    package mutating func onRetransmitTimeout(flightSize: Int, maximumSegmentSize mss: Int) {
        reduce(maximumSegmentSize: mss)
        congestionWindow = mss
    }

    /// §4.6 multiplicative decrease with §4.7 fast convergence; starts a new epoch.
    mutating func reduce(maximumSegmentSize mss: Int) {
        let cwnd = Double(congestionWindow) / Double(mss)
        if cwnd < lastWindowMax {
            windowMax = cwnd * (1 + Self.beta) / 2
        } else {
            windowMax = cwnd
        }
        lastWindowMax = cwnd
        slowStartThreshold = max(Int(Double(congestionWindow) * Self.beta), 2 * mss)
        epochStart = nil
        carry = 0
    }

    /// ∛x for x ≥ 0 by Newton's method from a power-of-two guess (no libm in this module).
    package static func cubeRoot(_ x: Double) -> Double {
        guard x > 0, x.isFinite else { return 0 }
        var y = Double(sign: .plus, exponent: x.exponent / 3, significand: 1)
        for _ in 0..<40 {
            let next = y - (y * y * y - x) / (3 * y * y)
            if abs(next - y) <= 1e-12 * y { return next }
            y = next
        }
        return y
    }
}

/// The controller a connection runs, inline (no existential on the hot path).
package enum TCPCongestionController: Sendable {
    case cubic(CubicCongestionControl)
    case newReno(NewRenoCongestionControl)

    package init(_ algorithm: TCPCongestionAlgorithm, initialWindow: Int) {
        switch algorithm {
        case .cubic: self = .cubic(CubicCongestionControl(initialWindow: initialWindow))
        case .newReno: self = .newReno(NewRenoCongestionControl(initialWindow: initialWindow))
        }
    }

    package var congestionWindow: Int {
        switch self {
        case .cubic(let c): c.congestionWindow
        case .newReno(let c): c.congestionWindow
        }
    }

    package var slowStartThreshold: Int {
        switch self {
        case .cubic(let c): c.slowStartThreshold
        case .newReno(let c): c.slowStartThreshold
        }
    }

    mutating func onAck(ackedBytes: Int, isWindowLimited: Bool, maximumSegmentSize: Int, smoothedRTT: Duration?, now: Instant) {
        switch self {
        case .cubic(var c):
            c.onAck(ackedBytes: ackedBytes, isWindowLimited: isWindowLimited, maximumSegmentSize: maximumSegmentSize, smoothedRTT: smoothedRTT, now: now)
            self = .cubic(c)
        case .newReno(var c):
            c.onAck(ackedBytes: ackedBytes, isWindowLimited: isWindowLimited, maximumSegmentSize: maximumSegmentSize, smoothedRTT: smoothedRTT, now: now)
            self = .newReno(c)
        }
    }

    mutating func onCongestionEvent(flightSize: Int, maximumSegmentSize: Int, now: Instant) {
        switch self {
        case .cubic(var c): c.onCongestionEvent(flightSize: flightSize, maximumSegmentSize: maximumSegmentSize, now: now); self = .cubic(c)
        case .newReno(var c): c.onCongestionEvent(flightSize: flightSize, maximumSegmentSize: maximumSegmentSize, now: now); self = .newReno(c)
        }
    }

    mutating func onRecoveryExit(maximumSegmentSize: Int) {
        switch self {
        case .cubic(var c): c.onRecoveryExit(maximumSegmentSize: maximumSegmentSize); self = .cubic(c)
        case .newReno(var c): c.onRecoveryExit(maximumSegmentSize: maximumSegmentSize); self = .newReno(c)
        }
    }

    mutating func onRetransmitTimeout(flightSize: Int, maximumSegmentSize: Int) {
        switch self {
        case .cubic(var c): c.onRetransmitTimeout(flightSize: flightSize, maximumSegmentSize: maximumSegmentSize); self = .cubic(c)
        case .newReno(var c): c.onRetransmitTimeout(flightSize: flightSize, maximumSegmentSize: maximumSegmentSize); self = .newReno(c)
        }
    }
}
