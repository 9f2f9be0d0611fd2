package import NetstackWire

/// A token bucket over simulated time: `rate` tokens per second up to `burst`. Used to rate-limit ICMP
/// errors (RFC 1812 §4.3.2.8, RFC 4443 §2.4(f)); Linux's defaults are 1000/s with a burst of 50
/// (`icmp_msgs_per_sec`, `icmp_msgs_burst`).
package struct TokenBucket: Sendable {
    package let ratePerSecond: Int
    package let burst: Int
    /// Tokens scaled by 1e9 so refills at nanosecond granularity stay exact in integers.
    private var scaledTokens: UInt64
    private var last: Instant

    package init(ratePerSecond: Int, burst: Int, now: Instant = .zero) {
        precondition(ratePerSecond >= 0 && burst >= 1)
        self.ratePerSecond = ratePerSecond
        self.burst = burst
        scaledTokens = UInt64(burst) * 1_000_000_000
        last = now
    }

    /// Takes one token if there is one.
    package mutating func take(now: Instant) -> Bool {
        if now > last {
            let elapsed = now.nanoseconds - last.nanoseconds
            let (added, overflow) = elapsed.multipliedReportingOverflow(by: UInt64(ratePerSecond))
            let cap = UInt64(burst) * 1_000_000_000
            scaledTokens = overflow ? cap : min(cap, scaledTokens &+ min(added, cap))
            last = now
        }
        guard scaledTokens >= 1_000_000_000 else { return false }
        scaledTokens -= 1_000_000_000
        return true
    }
}
