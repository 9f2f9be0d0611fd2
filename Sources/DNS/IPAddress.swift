// IP address values for DNS records, fakeip ranges and client subnets.
// Plain values (no sockets, no Foundation); text forms follow RFC 4291 §2.2 on input and RFC 5952 on output.

/// An IPv4 address as its 32 bits in network order (`10.1.2.3` is `0x0a010203`).
package struct IPv4Address: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The address as a big-endian-ordered integer: the first octet is the top byte.
    package var value: UInt32

    /// The address with `value` as its 32 bits.
    package init(_ value: UInt32) { self.value = value }

    /// The address made of four octets in wire order.
    package init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Parses dotted-quad text (`"192.0.2.1"`); nil for anything else (no octal, no short forms).
    package init?(_ text: some StringProtocol) {
        var octets = 0, current = 0, digits = 0
        var result: UInt32 = 0
        for byte in text.utf8 {
            if byte == UInt8(ascii: ".") {
                guard digits > 0, octets < 3 else { return nil }
                result = result << 8 | UInt32(current)
                octets += 1; current = 0; digits = 0
            } else if byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                // A leading zero is refused like Go's netip does: "010" is ambiguous (octal in inet_aton).
                if digits == 1, current == 0 { return nil }
                current = current * 10 + Int(byte - UInt8(ascii: "0"))
                digits += 1
                guard current <= 255 else { return nil }
            } else {
                return nil
            }
        }
        guard octets == 3, digits > 0 else { return nil }
        value = result << 8 | UInt32(current)
    }

    /// The four octets in wire order.
    package var bytes: [UInt8] {
        [UInt8(truncatingIfNeeded: value >> 24), UInt8(truncatingIfNeeded: value >> 16),
         UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
    }

    package var description: String {
        bytes.map { String($0) }.joined(separator: ".")
    }

    package static func < (lhs: Self, rhs: Self) -> Bool { lhs.value < rhs.value }
}

/// An IPv6 address as 128 bits in network order, split in two halves.
package struct IPv6Address: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The first 64 bits (the first octet is the top byte).
    package var high: UInt64
    /// The last 64 bits.
    package var low: UInt64

    /// The address with these two halves.
    package init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// The address made of 16 octets in wire order; the caller passes exactly 16.
    package init(bytes: some Collection<UInt8>) {
        precondition(bytes.count == 16, "IPv6Address needs 16 octets")
        var high: UInt64 = 0, low: UInt64 = 0
        for (index, byte) in bytes.enumerated() {
            if index < 8 { high = high << 8 | UInt64(byte) } else { low = low << 8 | UInt64(byte) }
        }
        self.init(high: high, low: low)
    }

    /// Parses RFC 4291 §2.2 text: eight groups, one `::`, an optional dotted IPv4 tail. No zone.
    package init?(_ text: some StringProtocol) {
        let utf8 = Array(text.utf8)
        guard !utf8.isEmpty else { return nil }
        var groups: [UInt16] = []
        var gap: Int? = nil
        var index = 0
        if utf8.starts(with: [0x3a, 0x3a]) {
            gap = 0
            index = 2
            if index == utf8.count { self.init(high: 0, low: 0); return }
        } else if utf8[0] == 0x3a {
            return nil
        }
        while index < utf8.count {
            // One group: hex digits, or a dotted IPv4 tail when a '.' appears before the next ':'.
            var end = index
            while end < utf8.count, utf8[end] != 0x3a { end += 1 }
            let field = utf8[index..<end]
            if field.contains(0x2e) {
                guard end == utf8.count, groups.count <= 6,
                      let v4 = IPv4Address(String(decoding: field, as: UTF8.self)) else { return nil }
                groups.append(UInt16(truncatingIfNeeded: v4.value >> 16))
                groups.append(UInt16(truncatingIfNeeded: v4.value))
                index = end
                break
            }
            guard (1...4).contains(field.count) else { return nil }
            var group: UInt16 = 0
            for byte in field {
                guard let nibble = hexValue(byte) else { return nil }
                group = group << 4 | UInt16(nibble)
            }
            groups.append(group)
            guard groups.count <= 8 else { return nil }
            index = end
            if index == utf8.count { break }
            // At a ':'. A second ':' right after marks the gap.
            index += 1
            if index < utf8.count, utf8[index] == 0x3a {
                guard gap == nil else { return nil }
                gap = groups.count
                index += 1
                if index == utf8.count { break }
            } else if index == utf8.count {
                return nil  // a trailing single ':'
            }
        }
        if let gap {
            guard groups.count < 8 else { return nil }
            groups.insert(contentsOf: repeatElement(0, count: 8 - groups.count), at: gap)
        }
        guard groups.count == 8 else { return nil }
        var high: UInt64 = 0, low: UInt64 = 0
        for (i, group) in groups.enumerated() {
            if i < 4 { high = high << 16 | UInt64(group) } else { low = low << 16 | UInt64(group) }
        }
        self.init(high: high, low: low)
    }

    /// The 16 octets in wire order.
    package var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(16)
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: high >> UInt64(shift))) }
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: low >> UInt64(shift))) }
        return out
    }

    /// The eight 16-bit groups in order.
    package var groups: [UInt16] {
        (0..<8).map { i in
            let half = i < 4 ? high : low
            return UInt16(truncatingIfNeeded: half >> UInt64(48 - 16 * (i % 4)))
        }
    }

    /// RFC 5952 text: lowercase hex, leading zeros dropped, the longest run (≥ 2) of zero groups as `::`.
    package var description: String {
        let groups = self.groups
        var bestStart = -1, bestLength = 0, runStart = -1
        for i in 0...8 {
            if i < 8, groups[i] == 0 {
                if runStart < 0 { runStart = i }
            } else if runStart >= 0 {
                if i - runStart > bestLength { bestStart = runStart; bestLength = i - runStart }
                runStart = -1
            }
        }
        if bestLength < 2 { bestStart = -1 }
        var text = ""
        var i = 0
        while i < 8 {
            if i == bestStart {
                text += "::"
                i += bestLength
                continue
            }
            if !text.isEmpty, !text.hasSuffix(":") { text += ":" }
            text += String(groups[i], radix: 16)
            i += 1
        }
        return text
    }

    package static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }
}

/// Either family of IP address.
package enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(IPv4Address)
    case v6(IPv6Address)

    /// Parses either text form; nil for anything else.
    package init?(_ text: some StringProtocol) {
        if let v4 = IPv4Address(text) { self = .v4(v4) } else if let v6 = IPv6Address(text) { self = .v6(v6) } else { return nil }
    }

    /// Whether this is an IPv4 address.
    package var isIPv4: Bool { if case .v4 = self { true } else { false } }

    /// The address octets in wire order (4 or 16).
    package var bytes: [UInt8] {
        switch self {
        case .v4(let a): a.bytes
        case .v6(let a): a.bytes
        }
    }

    /// The number of bits in this family's addresses.
    package var bitWidth: Int { isIPv4 ? 32 : 128 }

    package var description: String {
        switch self {
        case .v4(let a): a.description
        case .v6(let a): a.description
        }
    }
}

/// An address with a prefix length (`198.18.0.0/15`), as used by fakeip ranges and client subnets.
package struct IPPrefix: Hashable, Sendable, CustomStringConvertible {
    /// The address as given (host bits are kept; `masked` clears them).
    package var address: IPAddress
    /// The prefix length, 0...32 or 0...128.
    package var bits: Int

    /// A prefix; nil when `bits` does not fit the family.
    package init?(address: IPAddress, bits: Int) {
        guard bits >= 0, bits <= address.bitWidth else { return nil }
        self.address = address
        self.bits = bits
    }

    /// Parses `address/bits`, or a bare address as a host prefix (sing-box accepts both for client_subnet).
    package init?(_ text: some StringProtocol) {
        if let slash = text.firstIndex(of: "/") {
            guard let address = IPAddress(text[..<slash]),
                  let bits = Int(text[text.index(after: slash)...]) else { return nil }
            self.init(address: address, bits: bits)
        } else {
            guard let address = IPAddress(text) else { return nil }
            self.init(address: address, bits: address.bitWidth)
        }
    }

    /// The prefix with its host bits cleared.
    package var masked: IPPrefix {
        var copy = self
        switch address {
        case .v4(let a):
            let mask: UInt32 = bits == 0 ? 0 : ~0 << UInt32(32 - bits)
            copy.address = .v4(IPv4Address(a.value & mask))
        case .v6(let a):
            let highMask: UInt64 = bits == 0 ? 0 : bits >= 64 ? ~0 : ~0 << UInt64(64 - bits)
            let lowMask: UInt64 = bits <= 64 ? 0 : bits == 128 ? ~0 : ~0 << UInt64(128 - bits)
            copy.address = .v6(IPv6Address(high: a.high & highMask, low: a.low & lowMask))
        }
        return copy
    }

    /// Whether `other` lies inside this prefix (false across families).
    package func contains(_ other: IPAddress) -> Bool {
        guard other.isIPv4 == address.isIPv4,
              let probe = IPPrefix(address: other, bits: bits) else { return false }
        return probe.masked.address == masked.address
    }

    package var description: String { "\(address)/\(bits)" }
}

/// The value of an ASCII hex digit, or nil.
@inline(__always)
func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}
