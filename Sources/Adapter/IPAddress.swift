// IP address and prefix values: parse, format (Go's netip spelling), compare, contain.
import Config

/// An IPv4 or IPv6 address as a plain value (no zone). IPv4-mapped IPv6 stays IPv6 until `unmapped`.
///
/// Formatting follows Go's `netip.Addr.String`: dotted quad for IPv4, RFC 5952 for IPv6
/// (lowercase, the longest run of two or more zero groups compressed), `::ffff:1.2.3.4` for mapped.
package enum IPAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Host-order value: `192.168.0.1` is `0xC0A8_0001`.
    case v4(UInt32)
    /// The 128 bits as two host-order halves: `::1` is `IPv6Bits(high: 0, low: 1)`.
    /// (Not `UInt128`: its 16-byte alignment is miscompiled in some debug frames, a movaps crash.)
    case v6(IPv6Bits)

    /// Parses a literal address (`1.2.3.4`, `::1`, `::ffff:1.2.3.4`). A zone (`%eth0`) is rejected.
    /// Leading zeros in IPv4 octets are rejected, as Go's `netip.ParseAddr` does.
    package init?(_ text: some StringProtocol) {
        let utf8 = Array(text.utf8)
        if utf8.contains(UInt8(ascii: ":")) {
            guard let value = IPAddress.parseIPv6(utf8[...]) else { return nil }
            self = .v6(value)
        } else {
            guard let value = IPAddress.parseIPv4(utf8[...]) else { return nil }
            self = .v4(value)
        }
    }

    /// Builds an address from network-order bytes: 4 for IPv4, 16 for IPv6.
    package init?(bytes: some Collection<UInt8>) {
        switch bytes.count {
        case 4: self = .v4(bytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        case 16:
            let array = Array(bytes)
            let high = array[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let low = array[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            self = .v6(IPv6Bits(high: high, low: low))
        default: return nil
        }
    }

    /// True for IPv4 (not for IPv4-mapped IPv6; see `unmapped`).
    @inlinable package var isIPv4: Bool { if case .v4 = self { true } else { false } }
    /// True for IPv6, including IPv4-mapped.
    @inlinable package var isIPv6: Bool { !isIPv4 }
    /// Address length in bits: 32 or 128.
    @inlinable package var bitCount: Int { isIPv4 ? 32 : 128 }

    /// `::ffff:a.b.c.d` becomes `a.b.c.d`; everything else is unchanged (Go's `Addr.Unmap`).
    package var unmapped: IPAddress {
        if case .v6(let value) = self, value.isIPv4Mapped { return .v4(UInt32(truncatingIfNeeded: value.low)) }
        return self
    }

    /// Network-order bytes (4 or 16).
    package var bytes: [UInt8] {
        switch self {
        case .v4(let v): return (0..<4).map { UInt8(truncatingIfNeeded: v >> (24 - 8 * $0)) }
        case .v6(let v):
            return (0..<8).map { UInt8(truncatingIfNeeded: v.high >> (56 - 8 * $0)) }
                + (0..<8).map { UInt8(truncatingIfNeeded: v.low >> (56 - 8 * $0)) }
        }
    }

    /// Loopback: 127.0.0.0/8 or ::1.
    package var isLoopback: Bool {
        switch unmapped {
        case .v4(let v): return v >> 24 == 127
        case .v6(let v): return v.high == 0 && v.low == 1
        }
    }

    /// The unspecified address: 0.0.0.0 or ::.
    package var isUnspecified: Bool {
        switch self {
        case .v4(let v): return v == 0
        case .v6(let v): return v.high == 0 && v.low == 0
        }
    }

    /// sing-box's `ip_is_private`: the negation of `N.IsPublicAddr`, i.e. RFC 1918 / RFC 4193
    /// private, loopback, multicast, link-local unicast or unspecified (mapped IPv4 judged as IPv4).
    package var isPrivate: Bool {
        switch unmapped {
        case .v4(let v):
            return v >> 24 == 10 || v >> 20 == 0xAC1 || v >> 16 == 0xC0A8  // 10/8, 172.16/12, 192.168/16
                || v >> 24 == 127 || v >> 28 == 0xE                         // loopback, 224/4 multicast
                || v >> 16 == 0xA9FE || v == 0                              // 169.254/16, unspecified
        case .v6(let v):
            let top = v.high
            return top >> 57 == 0x7E || (top == 0 && v.low <= 1)  // fc00::/7, loopback, unspecified
                || top >> 56 == 0xFF || top >> 54 == 0x3FA        // ff00::/8 multicast, fe80::/10
        }
    }

    package static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        switch (lhs, rhs) {
        case (.v4(let a), .v4(let b)): return a < b
        case (.v6(let a), .v6(let b)): return a < b
        case (.v4, .v6): return true
        case (.v6, .v4): return false
        }
    }

    package var description: String {
        switch self {
        case .v4(let v): return IPAddress.formatIPv4(v)
        case .v6(let v):
            if v.isIPv4Mapped { return "::ffff:" + IPAddress.formatIPv4(UInt32(truncatingIfNeeded: v.low)) }
            return IPAddress.formatIPv6(v)
        }
    }

    // MARK: - Parsing and formatting

    static func formatIPv4(_ v: UInt32) -> String {
        "\(v >> 24).\(v >> 16 & 0xff).\(v >> 8 & 0xff).\(v & 0xff)"
    }

    static func formatIPv6(_ v: IPv6Bits) -> String {
        let groups = (0..<8).map { UInt16(truncatingIfNeeded: ($0 < 4 ? v.high : v.low) >> (48 - 16 * ($0 % 4))) }
        // RFC 5952 §4.2: compress the longest run (first on a tie) of at least two zero groups.
        var bestStart = -1, bestLength = 1, index = 0
        while index < 8 {
            if groups[index] == 0 {
                var end = index
                while end < 8 && groups[end] == 0 { end += 1 }
                if end - index > bestLength { bestStart = index; bestLength = end - index }
                index = end
            } else {
                index += 1
            }
        }
        var out = ""
        var i = 0
        while i < 8 {
            if i == bestStart {
                out += "::"
                i += bestLength
                continue
            }
            if !out.isEmpty && !out.hasSuffix(":") { out += ":" }
            out += String(groups[i], radix: 16)
            i += 1
        }
        return out
    }

    static func parseIPv4(_ s: ArraySlice<UInt8>) -> UInt32? {
        var value: UInt32 = 0
        var octets = 0
        var current: UInt32 = 0
        var digits = 0
        for c in s {
            if c == UInt8(ascii: ".") {
                guard digits > 0, octets < 3 else { return nil }
                value = value << 8 | current
                octets += 1
                current = 0
                digits = 0
            } else if c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") {
                if digits > 0 && current == 0 { return nil }  // leading zero
                current = current * 10 + UInt32(c - UInt8(ascii: "0"))
                digits += 1
                guard current <= 255 else { return nil }
            } else {
                return nil
            }
        }
        guard digits > 0, octets == 3 else { return nil }
        return value << 8 | current
    }

    static func parseIPv6(_ s: ArraySlice<UInt8>) -> IPv6Bits? {
        var groups: [UInt16] = []
        var ellipsis: Int? = nil
        var i = s.startIndex
        if s.starts(with: [UInt8(ascii: ":"), UInt8(ascii: ":")]) {
            ellipsis = 0
            i += 2
            if i == s.endIndex { return IPv6Bits(high: 0, low: 0) }
        }
        while i < s.endIndex {
            // One group: hex digits, or an embedded IPv4 tail.
            var j = i
            var group: UInt32 = 0
            while j < s.endIndex, let d = asciiHexValue(s[j]) {
                group = group << 4 | UInt32(d)
                j += 1
                if j - i > 4 { return nil }
            }
            if j < s.endIndex && s[j] == UInt8(ascii: ".") {
                guard groups.count <= 6, let v4 = parseIPv4(s[i...]) else { return nil }
                groups.append(UInt16(v4 >> 16))
                groups.append(UInt16(v4 & 0xffff))
                i = s.endIndex
                break
            }
            guard j > i else { return nil }
            groups.append(UInt16(group))
            i = j
            if i == s.endIndex { break }
            guard s[i] == UInt8(ascii: ":") else { return nil }
            i += 1
            if i < s.endIndex && s[i] == UInt8(ascii: ":") {
                guard ellipsis == nil else { return nil }
                ellipsis = groups.count
                i += 1
                if i == s.endIndex { break }
            } else if i == s.endIndex {
                return nil  // trailing single colon
            }
        }
        if let at = ellipsis {
            guard groups.count < 8 else { return nil }
            groups.insert(contentsOf: repeatElement(0, count: 8 - groups.count), at: at)
        }
        guard groups.count == 8 else { return nil }
        return IPv6Bits(high: groups[0..<4].reduce(UInt64(0)) { $0 << 16 | UInt64($1) },
                        low: groups[4..<8].reduce(UInt64(0)) { $0 << 16 | UInt64($1) })
    }

}

/// A CIDR prefix (`10.0.0.0/8`, `fd00::/8`). The stored address is masked to the prefix.
package struct IPPrefix: Hashable, Sendable, CustomStringConvertible {
    /// The first address of the prefix.
    package let address: IPAddress
    /// Prefix length in bits (0...32 or 0...128).
    package let bits: Int

    /// Makes a prefix, masking `address`. Returns nil when `bits` is out of range.
    package init?(_ address: IPAddress, bits: Int) {
        guard bits >= 0, bits <= address.bitCount else { return nil }
        self.bits = bits
        switch address {
        case .v4(let v): self.address = .v4(bits == 0 ? 0 : v & ~UInt32(0) << (32 - bits))
        case .v6(let v): self.address = .v6(v.masked(bits: bits))
        }
    }

    /// Parses `a.b.c.d/n` or `x::y/n`; a bare address is a single-host prefix (as sing-box accepts).
    package init?(_ text: some StringProtocol) {
        if let slash = text.firstIndex(of: "/") {
            guard let address = IPAddress(text[..<slash]),
                  let bits = Int(text[text.index(after: slash)...]) else { return nil }
            self.init(address, bits: bits)
        } else {
            guard let address = IPAddress(text) else { return nil }
            self.init(address, bits: address.bitCount)
        }
    }

    /// True when `ip` lies in this prefix. IPv4-mapped IPv6 addresses match IPv4 prefixes.
    @inlinable package func contains(_ ip: IPAddress) -> Bool {
        switch (address, ip.unmapped) {
        case (.v4(let net), .v4(let v)):
            return bits == 0 || (v ^ net) >> (32 - bits) == 0
        case (.v6(let net), .v6(let v)):
            return v.masked(bits: bits) == net
        case (.v6(let net), .v4(let v)):
            // A mapped prefix (::ffff:0:0/96 and longer) also covers plain IPv4.
            return IPv6Bits(mapping: v).masked(bits: bits) == net
        default:
            return false
        }
    }

    package var description: String { "\(address)/\(bits)" }
}

/// 128 address bits as two host-order halves (`high` holds the first 8 bytes).
package struct IPv6Bits: Hashable, Sendable, Comparable {
    package var high: UInt64
    package var low: UInt64

    package init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// `::ffff:a.b.c.d` for an IPv4 address.
    package init(mapping v4: UInt32) {
        self.init(high: 0, low: 0xffff_0000_0000 | UInt64(v4))
    }

    /// True for `::ffff:0:0/96`.
    package var isIPv4Mapped: Bool { high == 0 && low >> 32 == 0xffff }

    /// The first `bits` bits kept, the rest zero.
    @inlinable package func masked(bits: Int) -> IPv6Bits {
        if bits <= 0 { return IPv6Bits(high: 0, low: 0) }
        if bits >= 128 { return self }
        if bits >= 64 { return IPv6Bits(high: high, low: bits == 64 ? 0 : low & ~UInt64(0) << (128 - bits)) }
        return IPv6Bits(high: high & ~UInt64(0) << (64 - bits), low: 0)
    }

    package static func < (lhs: IPv6Bits, rhs: IPv6Bits) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }
}
