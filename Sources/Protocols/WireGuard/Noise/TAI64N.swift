/// A TAI64N timestamp (12 bytes: big-endian seconds with the TAI64 label 2^62 + 10, big-endian nanoseconds),
/// the TIMESTAMP() of the whitepaper. Only its order matters to the responder.
package struct TAI64N: Comparable, Hashable, Sendable {
    /// TAI64 seconds label.
    package var seconds: UInt64
    /// Nanoseconds within the second.
    package var nanoseconds: UInt32

    /// Older than any real timestamp.
    package static let zero = TAI64N(seconds: 0, nanoseconds: 0)
    /// 2^62 + 10: the TAI64 label of the Unix epoch as WireGuard writes it.
    package static let base: UInt64 = 0x4000_0000_0000_000A

    /// wireguard-go rounds the nanoseconds down to 2^24 ns (~16.8 ms) so the timestamp leaks less about
    /// the host's clock; we do the same.
    package static let whitenerMask: UInt32 = ~(0x0100_0000 - 1)

    /// A timestamp from its raw fields.
    package init(seconds: UInt64, nanoseconds: UInt32) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    /// The timestamp for a Unix time.
    package init(unixSeconds: UInt64, nanoseconds: UInt32) {
        seconds = Self.base &+ unixSeconds
        self.nanoseconds = nanoseconds & Self.whitenerMask
    }

    /// Reads the 12-byte wire form.
    package init(bytes: [UInt8]) {
        precondition(bytes.count == 12)
        var s: UInt64 = 0
        for index in 0..<8 { s = s << 8 | UInt64(bytes[index]) }
        var n: UInt32 = 0
        for index in 8..<12 { n = n << 8 | UInt32(bytes[index]) }
        seconds = s
        nanoseconds = n
    }

    /// The 12-byte wire form.
    package var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 12)
        for index in 0..<8 { out[index] = UInt8(truncatingIfNeeded: seconds >> (56 - 8 * UInt64(index))) }
        for index in 0..<4 { out[8 + index] = UInt8(truncatingIfNeeded: nanoseconds >> (24 - 8 * UInt32(index))) }
        return out
    }

    /// Chronological order.
    package static func < (a: TAI64N, b: TAI64N) -> Bool {
        (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds)
    }
}
