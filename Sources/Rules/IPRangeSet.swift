// IPRangeSet: a set of addresses as sorted, disjoint, non-adjacent ranges (go4.org/netipx.IPSet).
package import Adapter

/// IPv4 and IPv6 addresses as sorted ranges, merged like netipx's `IPSetBuilder` (overlapping
/// and adjacent ranges join). Lookup is a binary search: O(log n) at any size. This is what a
/// binary rule-set stores for `ip_cidr` / `source_ip_cidr`, range by range.
package struct IPRangeSet: Sendable, Equatable {
    /// IPv4 ranges, sorted by start, inclusive ends.
    package private(set) var v4: [ClosedRange<UInt32>]
    /// IPv6 ranges (IPv4-mapped included, as netipx keeps them), sorted by start, inclusive ends.
    package private(set) var v6: [IPv6Range]

    /// An inclusive IPv6 range (`IPv6Bits` is `Comparable`, but ClosedRange needs no more).
    package struct IPv6Range: Sendable, Equatable {
        package var lower: IPv6Bits
        package var upper: IPv6Bits
    }

    /// The union of `prefixes`.
    package init(prefixes: [IPPrefix]) {
        var v4: [ClosedRange<UInt32>] = []
        var v6: [IPv6Range] = []
        for prefix in prefixes {
            switch prefix.address {
            case .v4(let base):
                let host: UInt32 = prefix.bits == 0 ? ~0 : (prefix.bits == 32 ? 0 : ~UInt32(0) >> UInt32(prefix.bits))
                v4.append(base...(base | host))
            case .v6(let base):
                v6.append(IPv6Range(lower: base, upper: base.settingHostBits(prefix.bits)))
            }
        }
        self.init(v4: v4, v6: v6)
    }

    /// The union of arbitrary (unsorted, overlapping) ranges. Ranges with lower > upper are dropped.
    package init(v4: [ClosedRange<UInt32>], v6: [IPv6Range]) {
        self.v4 = Self.merge(v4.sorted { $0.lowerBound < $1.lowerBound }) { a, b in
            a.upperBound == .max || b.lowerBound <= a.upperBound + 1
        } join: { a, b in a.lowerBound...max(a.upperBound, b.upperBound) }
        self.v6 = Self.merge(v6.filter { !($0.upper < $0.lower) }.sorted { $0.lower < $1.lower }) { a, b in
            a.upper == IPv6Bits.max || !(a.upper.successor < b.lower)
        } join: { a, b in IPv6Range(lower: a.lower, upper: max(a.upper, b.upper)) }
    }

    private static func merge<R>(_ sorted: [R], touches: (R, R) -> Bool, join: (R, R) -> R) -> [R] {
        var out: [R] = []
        out.reserveCapacity(sorted.count)
        for range in sorted {
            if let last = out.last, touches(last, range) {
                out[out.count - 1] = join(last, range)
            } else {
                out.append(range)
            }
        }
        return out
    }

    package var isEmpty: Bool { v4.isEmpty && v6.isEmpty }
    package var rangeCount: Int { v4.count + v6.count }

    /// True when `ip` is in the set. An IPv4-mapped address is looked up as IPv4 (Go's rule items
    /// see unmapped addresses).
    package func contains(_ ip: IPAddress) -> Bool {
        switch ip.unmapped {
        case .v4(let value):
            var low = 0, high = v4.count
            while low < high {
                let mid = (low + high) >> 1
                if v4[mid].upperBound < value { low = mid + 1 } else { high = mid }
            }
            return low < v4.count && v4[low].lowerBound <= value
        case .v6(let value):
            var low = 0, high = v6.count
            while low < high {
                let mid = (low + high) >> 1
                if v6[mid].upper < value { low = mid + 1 } else { high = mid }
            }
            return low < v6.count && !(value < v6[low].lower)
        }
    }

    /// The fewest prefixes covering exactly the set, in order (netipx's `IPSet.Prefixes`).
    package func prefixes() -> [IPPrefix] {
        var out: [IPPrefix] = []
        for range in v4 {
            var from = range.lowerBound
            while true {
                // The largest aligned block at `from` that stays inside the range.
                var hostBits = from == 0 ? 32 : from.trailingZeroBitCount
                while hostBits > 0 && (hostBits == 32 ? UInt32.max : from | (UInt32(1) << UInt32(hostBits) - 1)) > range.upperBound {
                    hostBits -= 1
                }
                if let prefix = IPPrefix(.v4(from), bits: 32 - hostBits) { out.append(prefix) }
                let last = hostBits == 32 ? UInt32.max : from | (UInt32(1) << UInt32(hostBits) - 1)
                if last >= range.upperBound { break }
                from = last + 1
            }
        }
        for range in v6 {
            var from = range.lower
            while true {
                var hostBits = from.trailingZeroBitCount
                while hostBits > 0 && range.upper < from.settingHostBits(128 - hostBits) { hostBits -= 1 }
                if let prefix = IPPrefix(.v6(from), bits: 128 - hostBits) { out.append(prefix) }
                let last = from.settingHostBits(128 - hostBits)
                if !(last < range.upper) { break }
                from = last.successor
            }
        }
        return out
    }
}

extension IPv6Bits {
    static let max = IPv6Bits(high: .max, low: .max)

    /// The address with every bit after the first `bits` set (the prefix's last address).
    func settingHostBits(_ bits: Int) -> IPv6Bits {
        if bits <= 0 { return .max }
        if bits >= 128 { return self }
        if bits >= 64 { return IPv6Bits(high: high, low: bits == 64 ? .max : low | ~UInt64(0) >> UInt64(bits - 64)) }
        return IPv6Bits(high: high | ~UInt64(0) >> UInt64(bits), low: .max)
    }

    /// The next address (wraps at the top; callers check for `max` first).
    var successor: IPv6Bits {
        low == .max ? IPv6Bits(high: high &+ 1, low: 0) : IPv6Bits(high: high, low: low + 1)
    }

    /// Trailing zero bits of the 128-bit value (128 for ::).
    var trailingZeroBitCount: Int {
        low != 0 ? low.trailingZeroBitCount : (high != 0 ? 64 + high.trailingZeroBitCount : 128)
    }
}
