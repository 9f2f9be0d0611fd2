/// An IPv4 address as a value: the 32 bits in network order read as a host integer (`10.0.0.1` is `0x0a000001`).
public struct IPv4Address: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: UInt32

    @inlinable public init(_ rawValue: UInt32) { self.rawValue = rawValue }
    @inlinable public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        rawValue = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Parses dotted-quad text (`"192.0.2.1"`); `nil` for anything else. Not for the data path.
    public init?(_ text: String) {
        var value: UInt32 = 0
        var parts = 0
        for part in text.split(separator: ".", omittingEmptySubsequences: false) {
            guard !part.isEmpty, part.count <= 3, let n = UInt32(part), n <= 255 else { return nil }
            value = value << 8 | n
            parts += 1
        }
        guard parts == 4 else { return nil }
        rawValue = value
    }

    public static let any = IPv4Address(0)
    public static let broadcast = IPv4Address(0xffff_ffff)

    /// 224.0.0.0/4 (RFC 5771).
    @inlinable public var isMulticast: Bool { rawValue >> 28 == 0xe }
    /// 255.255.255.255.
    @inlinable public var isBroadcast: Bool { rawValue == 0xffff_ffff }
    /// 0.0.0.0/8 ("this network", RFC 1122 §3.2.1.3): never a valid source of a reply.
    @inlinable public var isUnspecified: Bool { rawValue >> 24 == 0 }

    @inlinable public static func < (lhs: IPv4Address, rhs: IPv4Address) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String {
        "\(rawValue >> 24).\(rawValue >> 16 & 0xff).\(rawValue >> 8 & 0xff).\(rawValue & 0xff)"
    }
}

/// An IPv6 address as a value: the 128 bits in network order as two host integers.
public struct IPv6Address: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Bytes 0–7, big-endian.
    public var high: UInt64
    /// Bytes 8–15, big-endian.
    public var low: UInt64

    @inlinable public init(high: UInt64, low: UInt64) { self.high = high; self.low = low }

    /// Parses RFC 4291 §2.2 text (`"2001:db8::1"`, `"::ffff:192.0.2.1"`); `nil` for anything else.
    public init?(_ text: String) {
        var groups: [UInt16] = []
        var gap: Int? = nil
        var rest = Substring(text)
        if rest.hasPrefix("::") { gap = 0; rest = rest.dropFirst(2) }
        var trailingGap = false
        if rest.hasSuffix("::") {
            guard gap == nil else { return nil }
            trailingGap = true
            rest = rest.dropLast(2)
        }
        if !rest.isEmpty {
            let parts = rest.split(separator: ":", omittingEmptySubsequences: false)
            for (index, part) in parts.enumerated() {
                if part.isEmpty {
                    // "::" in the middle, or a trailing "::".
                    guard gap == nil, index > 0 else { return nil }
                    gap = groups.count
                    continue
                }
                if part.contains("."), index == parts.count - 1, let v4 = IPv4Address(String(part)) {
                    groups.append(UInt16(v4.rawValue >> 16)); groups.append(UInt16(v4.rawValue & 0xffff))
                    continue
                }
                guard part.count <= 4, let g = UInt16(part, radix: 16) else { return nil }
                groups.append(g)
            }
        }
        if trailingGap { gap = groups.count }
        if let gap {
            guard groups.count < 8 else { return nil }
            groups.insert(contentsOf: repeatElement(0, count: 8 - groups.count), at: gap)
        }
        guard groups.count == 8 else { return nil }
        high = 0; low = 0
        for i in 0..<4 { high = high << 16 | UInt64(groups[i]) }
        for i in 4..<8 { low = low << 16 | UInt64(groups[i]) }
    }

    public static let any = IPv6Address(high: 0, low: 0)

    /// The 16-bit group `index` (0–7).
    @inlinable public func group(_ index: Int) -> UInt16 {
        let word = index < 4 ? high : low
        return UInt16(truncatingIfNeeded: word >> (UInt64(3 - index % 4) * 16))
    }

    /// ff00::/8.
    @inlinable public var isMulticast: Bool { high >> 56 == 0xff }
    /// fe80::/10.
    @inlinable public var isLinkLocal: Bool { high >> 54 == 0x3fa }
    /// ::.
    @inlinable public var isUnspecified: Bool { high == 0 && low == 0 }

    @inlinable public static func < (lhs: IPv6Address, rhs: IPv6Address) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }

    /// RFC 5952 text: lowercase, the longest run (≥ 2) of zero groups as "::".
    public var description: String {
        var bestStart = -1, bestLength = 0, runStart = -1
        for i in 0...8 {
            if i < 8 && group(i) == 0 {
                if runStart < 0 { runStart = i }
            } else if runStart >= 0 {
                if i - runStart > bestLength && i - runStart >= 2 { bestStart = runStart; bestLength = i - runStart }
                runStart = -1
            }
        }
        var text = ""
        var i = 0
        while i < 8 {
            if i == bestStart {
                text += "::"
                i += bestLength
                continue
            }
            if !text.isEmpty && !text.hasSuffix(":") { text += ":" }
            text += String(group(i), radix: 16)
            i += 1
        }
        return text
    }
}

/// An IP address of either family.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(IPv4Address)
    case v6(IPv6Address)

    /// Parses either family's text form.
    public init?(_ text: String) {
        if let v4 = IPv4Address(text) { self = .v4(v4) } else if let v6 = IPv6Address(text) { self = .v6(v6) } else { return nil }
    }

    /// Whether this is an IPv4 address.
    @inlinable public var isIPv4: Bool { if case .v4 = self { true } else { false } }

    public var description: String {
        switch self {
        case .v4(let a): a.description
        case .v6(let a): a.description
        }
    }
}

/// IP protocol numbers the netstack handles (IANA "Assigned Internet Protocol Numbers").
public enum IPProtocol {
    public static let hopByHop: UInt8 = 0
    public static let icmp: UInt8 = 1
    public static let tcp: UInt8 = 6
    public static let udp: UInt8 = 17
    public static let ipv6Routing: UInt8 = 43
    public static let ipv6Fragment: UInt8 = 44
    public static let esp: UInt8 = 50
    public static let ah: UInt8 = 51
    public static let icmpv6: UInt8 = 58
    public static let ipv6NoNext: UInt8 = 59
    public static let ipv6DestinationOptions: UInt8 = 60
}
