package import NetstackWire

/// Per-source-address token bucket for handshake messages while the device is under load (wireguard-go's
/// ratelimiter: 20 messages a second per IP, bursts of 5). Applied only to messages that already carry a
/// valid cookie (mac2), so a flood from spoofed addresses is stopped by the cookie and a flood from a real
/// address by this.
package struct HandshakeRateLimiter: Sendable {
    /// `packetsPerSecond` and `packetsBurstable` of wireguard-go.
    package static let packetsPerSecond: Int64 = 20
    /// Burst size.
    package static let packetsBurstable: Int64 = 5
    private static let packetCost: Int64 = 1_000_000_000 / packetsPerSecond
    private static let maxTokens: Int64 = packetCost * packetsBurstable
    /// Entries idle this long are forgotten.
    private static let idleTime: Duration = .seconds(1)

    private struct Key: Hashable, Sendable {
        var high: UInt64, low: UInt64, isIPv6: Bool
    }

    private struct Bucket: Sendable {
        var tokens: Int64
        var last: Instant
    }

    private var buckets: [Key: Bucket] = [:]
    private var lastCollection = Instant.zero

    /// No sources tracked.
    package init() {}

    /// Whether a handshake message from `source` (its address; the port is ignored) may be processed now.
    package mutating func allow(_ source: WireGuardEndpoint, now: Instant) -> Bool {
        if now - lastCollection > Self.idleTime {
            buckets = buckets.filter { now - $0.value.last <= Self.idleTime }
            lastCollection = now
        }
        let key = Key(high: source.address.0, low: source.address.1, isIPv6: source.isIPv6)
        guard var bucket = buckets[key] else {
            buckets[key] = Bucket(tokens: Self.maxTokens - Self.packetCost, last: now)
            return true
        }
        bucket.tokens = min(Self.maxTokens, bucket.tokens + (now - bucket.last).nanosecondsClamped)
        bucket.last = now
        let allowed = bucket.tokens >= Self.packetCost
        if allowed { bucket.tokens -= Self.packetCost }
        buckets[key] = bucket
        return allowed
    }

    /// Sources currently tracked (tests).
    package var trackedCount: Int { buckets.count }
}
