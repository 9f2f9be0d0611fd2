#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Go's `badoption.Duration`: a string in Go's `time.ParseDuration` syntax (plus `d` for days),
/// written back as `time.Duration.String()` ("1h30m0s").
package struct ConfigDuration: JSONCodable, Equatable, Hashable, Comparable {
    package var nanoseconds: Int64

    package init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }
    package init(seconds: Int64) { self.nanoseconds = seconds * 1_000_000_000 }

    /// The same span as a Swift `Duration`.
    package var duration: Duration { .nanoseconds(nanoseconds) }

    package static func < (lhs: Self, rhs: Self) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    package init(json: JSONValue, path: String) throws(ConfigError) {
        guard case .string(let text) = json else { throw typeMismatch(json, "string", path) }
        self = try ConfigDuration.parse(text, path: path)
    }

    package func toJSON() -> JSONValue { .string(goString) }
    package var isGoZero: Bool { nanoseconds == 0 }
    package static var goTypeName: String { "badoption.Duration" }

    private static let units: [(String, UInt64)] = [
        ("ns", 1), ("us", 1_000), ("µs", 1_000), ("μs", 1_000), ("ms", 1_000_000),
        ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000), ("d", 86_400_000_000_000),
    ]

    /// Go's `time.ParseDuration` (sing's copy, which adds `d`), with its error messages.
    package static func parse(_ original: String, path: String) throws(ConfigError) -> ConfigDuration {
        func invalid() -> ConfigError { ConfigError(path: path, message: "time: invalid duration \"\(original)\"") }
        var s = Substring(original)
        var negative = false
        if let first = s.first, first == "-" || first == "+" {
            negative = first == "-"
            s = s.dropFirst()
        }
        if s == "0" { return ConfigDuration(nanoseconds: 0) }
        if s.isEmpty { throw invalid() }
        var total: UInt64 = 0
        while !s.isEmpty {
            guard let first = s.first, first == "." || first.isASCII && first.isNumber else { throw invalid() }
            let integerDigits = s.prefix { $0.isASCII && $0.isNumber }
            s = s.dropFirst(integerDigits.count)
            var fractionDigits = Substring("")
            if s.first == "." {
                s = s.dropFirst()
                fractionDigits = s.prefix { $0.isASCII && $0.isNumber }
                s = s.dropFirst(fractionDigits.count)
            }
            if integerDigits.isEmpty && fractionDigits.isEmpty { throw invalid() }
            let unitText = s.prefix { !($0 == "." || $0.isASCII && $0.isNumber) }
            s = s.dropFirst(unitText.count)
            if unitText.isEmpty { throw ConfigError(path: path, message: "time: missing unit in duration \"\(original)\"") }
            guard let unit = units.first(where: { $0.0 == unitText })?.1 else {
                throw ConfigError(path: path, message: "time: unknown unit \"\(unitText)\" in duration \"\(original)\"")
            }
            guard let whole = integerDigits.isEmpty ? 0 : UInt64(integerDigits) else { throw invalid() }
            let (scaled, overflow) = whole.multipliedReportingOverflow(by: unit)
            if overflow { throw invalid() }
            var value = scaled
            if !fractionDigits.isEmpty {
                // The fraction contributes digits until they stop mattering at nanosecond scale.
                var scale: Double = 1
                var fraction: Double = 0
                for digit in fractionDigits.prefix(18) {
                    scale *= 10
                    fraction = fraction * 10 + Double(digit.wholeNumberValue ?? 0)
                }
                let (withFraction, fractionOverflow) = value.addingReportingOverflow(UInt64(fraction * (Double(unit) / scale)))
                if fractionOverflow { throw invalid() }
                value = withFraction
            }
            let (sum, sumOverflow) = total.addingReportingOverflow(value)
            if sumOverflow || sum > UInt64(Int64.max) + (negative ? 1 : 0) { throw invalid() }
            total = sum
        }
        if negative { return ConfigDuration(nanoseconds: total == UInt64(Int64.max) + 1 ? Int64.min : -Int64(total)) }
        return ConfigDuration(nanoseconds: Int64(total))
    }

    /// Go's `time.Duration.String()`.
    package var goString: String {
        if nanoseconds == 0 { return "0s" }
        let negative = nanoseconds < 0
        let u = nanoseconds.magnitude
        var out: String
        func fraction(_ value: UInt64, digits: Int) -> String {
            // value has `digits` fractional digits; trim trailing zeros like Go's fmtFrac.
            let whole = value / pow10(digits)
            var frac = value % pow10(digits)
            if frac == 0 { return String(whole) }
            var width = digits
            while frac % 10 == 0 { frac /= 10; width -= 1 }
            let text = String(frac)
            return "\(whole)." + String(repeating: "0", count: width - text.count) + text
        }
        if u < 1_000_000_000 {
            if u < 1_000 { out = "\(u)ns" }
            else if u < 1_000_000 { out = fraction(u, digits: 3) + "µs" }
            else { out = fraction(u, digits: 6) + "ms" }
        } else {
            let seconds = u / 1_000_000_000
            let subsecond = u % 1_000_000_000
            let secondsPart = fraction((seconds % 60) * 1_000_000_000 + subsecond, digits: 9) + "s"
            let minutes = seconds / 60
            if minutes == 0 {
                out = secondsPart
            } else {
                let hours = minutes / 60
                out = (hours > 0 ? "\(hours)h" : "") + "\(minutes % 60)m" + secondsPart
            }
        }
        return negative ? "-" + out : out
    }
}

private func pow10(_ n: Int) -> UInt64 {
    var result: UInt64 = 1
    for _ in 0..<n { result *= 10 }
    return result
}

/// sing-box's `UDPTimeoutCompat`: a duration string, or a number of seconds (pre-1.9 form).
package struct UDPTimeout: JSONCodable, Equatable {
    package var value: ConfigDuration
    package init(_ value: ConfigDuration) { self.value = value }
    package init(json: JSONValue, path: String) throws(ConfigError) {
        if case .number = json, let seconds = try? Int64(json: json, path: path) {
            value = ConfigDuration(seconds: seconds)
        } else {
            value = try ConfigDuration(json: json, path: path)
        }
    }
    package func toJSON() -> JSONValue { value.toJSON() }
    package var isGoZero: Bool { value.isGoZero }
    package static var goTypeName: String { "badoption.Duration" }
}

/// Go's `FwMark`: a number, or a string in any base `strconv.ParseUint(s, 0, 32)` accepts;
/// written as "0x…" hex.
package struct FwMark: JSONCodable, Equatable, Hashable {
    package var value: UInt32
    package init(_ value: UInt32) { self.value = value }
    package init(json: JSONValue, path: String) throws(ConfigError) {
        switch json {
        case .string(let text):
            guard let parsed = parseGoUInt(text, bits: 32) else {
                throw ConfigError(path: path, message: "strconv.ParseUint: parsing \"\(text)\": invalid syntax")
            }
            value = UInt32(parsed)
        case .number:
            guard let parsed = try? UInt32(json: json, path: path) else {
                throw ConfigError(path: path, message: "invalid number or string mark: json: cannot unmarshal \(json.kindName) into Go value of type string")
            }
            value = parsed
        default:
            throw ConfigError(path: path, message: "invalid number or string mark: json: cannot unmarshal \(json.kindName) into Go value of type string")
        }
    }
    package func toJSON() -> JSONValue { .string("0x" + String(value, radix: 16)) }
    package var isGoZero: Bool { value == 0 }
    package static var goTypeName: String { "option.FwMark" }
}

/// `strconv.ParseUint(s, 0, bits)`: 0x/0o/0b prefixes, leading 0 for octal, `_` separators.
func parseGoUInt(_ text: String, bits: Int) -> UInt64? {
    var s = Substring(text)
    var radix = 10
    if s.hasPrefix("0x") || s.hasPrefix("0X") { radix = 16; s = s.dropFirst(2) }
    else if s.hasPrefix("0o") || s.hasPrefix("0O") { radix = 8; s = s.dropFirst(2) }
    else if s.hasPrefix("0b") || s.hasPrefix("0B") { radix = 2; s = s.dropFirst(2) }
    else if s.count > 1, s.hasPrefix("0") { radix = 8; s = s.dropFirst() }
    let digits = s.filter { $0 != "_" }
    guard !digits.isEmpty, let value = UInt64(digits, radix: radix) else { return nil }
    if bits < 64, value >> UInt64(bits) != 0 { return nil }
    return value
}

/// Go's `option.DomainStrategy`: "" / as_is, prefer_ipv4, prefer_ipv6, ipv4_only, ipv6_only.
package enum DomainStrategyOption: String, JSONCodable, Equatable, CaseIterable {
    case asIs = ""
    case preferIPv4 = "prefer_ipv4"
    case preferIPv6 = "prefer_ipv6"
    case ipv4Only = "ipv4_only"
    case ipv6Only = "ipv6_only"

    package init(json: JSONValue, path: String) throws(ConfigError) {
        let text = try String(json: json, path: path)
        if text == "as_is" { self = .asIs; return }
        guard let value = DomainStrategyOption(rawValue: text) else {
            throw ConfigError(path: path, message: "unknown domain strategy: \(text)")
        }
        self = value
    }
    package func toJSON() -> JSONValue { .string(rawValue) }
    package var isGoZero: Bool { self == .asIs }
    package static var goTypeName: String { "option.DomainStrategy" }
}

/// Go's `option.NetworkList`: "tcp", "udp", or a list of them.
package struct NetworkList: JSONCodable, Equatable {
    package var networks: [String]
    package init(_ networks: [String] = []) { self.networks = networks }

    package init(json: JSONValue, path: String) throws(ConfigError) {
        let list: [String]
        if case .array = json { list = try [String](json: json, path: path) }
        else { list = [try String(json: json, path: path)] }
        for name in list where name != "tcp" && name != "udp" {
            throw ConfigError(path: path, message: "unknown network: \(name)")
        }
        networks = list
    }
    // Go marshals the list joined by "\n" (and cannot read that back); we write what it read.
    package func toJSON() -> JSONValue { Listable.encode(networks) }
    package var isGoZero: Bool { networks.isEmpty }
    package static var goTypeName: String { "option.NetworkList" }

    /// The networks in effect: both when none is named.
    package var effective: [String] { networks.isEmpty ? ["tcp", "udp"] : networks }
}

/// Go's `option.InterfaceType`: wifi, cellular, ethernet, other.
package enum InterfaceType: String, JSONCodable, Equatable, CaseIterable {
    case wifi, cellular, ethernet, other
    package init(json: JSONValue, path: String) throws(ConfigError) {
        let text = try String(json: json, path: path)
        guard let value = InterfaceType(rawValue: text) else {
            throw ConfigError(path: path, message: "unknown interface type: \(text)")
        }
        self = value
    }
    package func toJSON() -> JSONValue { .string(rawValue) }
    package static var goTypeName: String { "option.InterfaceType" }
}

/// Go's `option.NetworkStrategy`: default, fallback, hybrid.
package enum NetworkStrategy: String, JSONCodable, Equatable, CaseIterable {
    case `default`, fallback, hybrid
    package init(json: JSONValue, path: String) throws(ConfigError) {
        let text = try String(json: json, path: path)
        guard let value = NetworkStrategy(rawValue: text) else {
            throw ConfigError(path: path, message: "unknown network strategy: \(text)")
        }
        self = value
    }
    package func toJSON() -> JSONValue { .string(rawValue) }
    package static var goTypeName: String { "option.NetworkStrategy" }
}

/// Go's `badoption.Addr` (`netip.Addr`): an IPv4 or IPv6 address, optionally with a zone,
/// kept in its canonical spelling.
package struct IPAddressOption: JSONCodable, Equatable, Hashable, CustomStringConvertible {
    package var text: String
    package var isIPv4: Bool

    package init?(_ text: String) {
        guard let (canonical, v4) = canonicalIP(text) else { return nil }
        self.text = canonical
        self.isIPv4 = v4
    }

    package init(json: JSONValue, path: String) throws(ConfigError) {
        let text = try String(json: json, path: path)
        guard let value = IPAddressOption(text) else { throw ConfigError(path: path, message: Self.parseError(text)) }
        self = value
    }
    package var description: String { text }
    package func toJSON() -> JSONValue { .string(text) }
    package static var goTypeName: String { "badoption.Addr" }

    /// `netip.ParseAddr`'s complaint about `text` (IPv4 in detail; IPv6 in general).
    static func parseError(_ text: String) -> String {
        let quoted = "ParseAddr(\"\(text)\"): "
        let kind = text.first { $0 == "." || $0 == ":" || $0 == "%" }
        switch kind {
        case ".": break
        case "%": return quoted + "missing IPv6 address"
        default: return quoted + "unable to parse IP"
        }
        let bytes = Array(text.utf8)
        var value = 0, position = 0, digits = 0
        for (i, byte) in bytes.enumerated() {
            if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                if digits == 1 && value == 0 { return quoted + "IPv4 field has octet with leading zero" }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
                digits += 1
                if value > 255 { return quoted + "IPv4 field has value >255" }
            } else if byte == UInt8(ascii: ".") {
                if i == 0 || i == bytes.count - 1 || bytes[i - 1] == UInt8(ascii: ".") {
                    return quoted + "IPv4 field must have at least one digit (at \"\(String(decoding: bytes[i...], as: UTF8.self))\")"
                }
                if position == 3 { return quoted + "IPv4 address too long" }
                position += 1
                value = 0
                digits = 0
            } else {
                return quoted + "unexpected character (at \"\(String(decoding: bytes[i...], as: UTF8.self))\")"
            }
        }
        if position < 3 { return quoted + "IPv4 address too short" }
        return quoted + "unable to parse IP"
    }
}

/// Go's `badoption.Prefix` (`netip.Prefix`): "addr/bits".
package struct IPPrefixOption: JSONCodable, Equatable, Hashable, CustomStringConvertible {
    package var address: IPAddressOption
    package var bits: Int

    package init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPAddressOption(String(parts[0])), !address.text.contains("%"),
              parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), !parts[1].isEmpty, parts[1].count <= 3,
              let bits = Int(parts[1]), bits <= (address.isIPv4 ? 32 : 128) else { return nil }
        self.address = address
        self.bits = bits
    }

    package init(json: JSONValue, path: String) throws(ConfigError) {
        let text = try String(json: json, path: path)
        guard let value = IPPrefixOption(text) else { throw ConfigError(path: path, message: Self.parseError(text)) }
        self = value
    }

    /// `netip.ParsePrefix`'s complaint about `text`.
    static func parseError(_ text: String) -> String {
        let prefix = "netip.ParsePrefix(\"\(text)\"): "
        guard let slash = text.lastIndex(of: "/") else { return prefix + "no '/'" }
        let address = String(text[..<slash])
        let bits = text[text.index(after: slash)...]
        if IPAddressOption(address) == nil || address.contains("%") { return prefix + IPAddressOption.parseError(address) }
        guard !bits.isEmpty, bits.allSatisfy({ $0.isASCII && $0.isNumber }), bits.count <= 3, !(bits.count > 1 && bits.hasPrefix("0")) else {
            return prefix + "bad bits after slash: \"\(bits)\""
        }
        return prefix + "prefix length out of range"
    }
    package var description: String { "\(address)/\(bits)" }
    package func toJSON() -> JSONValue { .string(description) }
    package static var goTypeName: String { "netip.Prefix" }
}

/// Go's `badoption.Prefixable`: a prefix, or a bare address meaning a full-length prefix;
/// written as the bare address when full length.
package struct IPPrefixableOption: JSONCodable, Equatable, Hashable {
    package var prefix: IPPrefixOption

    package init(json: JSONValue, path: String) throws(ConfigError) {
        let text = try String(json: json, path: path)
        if let prefix = IPPrefixOption(text) {
            self.prefix = prefix
        } else if let address = IPAddressOption(text), !address.text.contains("%"), let prefix = IPPrefixOption("\(address.text)/\(address.isIPv4 ? 32 : 128)") {
            self.prefix = prefix
        } else {
            throw ConfigError(path: path, message: IPPrefixOption.parseError(text))
        }
    }
    package func toJSON() -> JSONValue {
        .string(prefix.bits == (prefix.address.isIPv4 ? 32 : 128) ? prefix.address.text : prefix.description)
    }
    package static var goTypeName: String { "badoption.Prefixable" }
}

/// Parses an IP the way `netip.ParseAddr` does and returns its canonical text.
func canonicalIP(_ text: String) -> (String, Bool)? {
    var address = Substring(text)
    var zone = ""
    if let percent = address.firstIndex(of: "%") {
        zone = String(address[percent...])
        address = address[..<percent]
        if zone.count < 2 { return nil }
    }
    if address.contains(":") {
        var storage = in6_addr()
        guard inet_pton(AF_INET6, String(address), &storage) == 1 else { return nil }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(AF_INET6, &storage, &buffer, socklen_t(buffer.count)) != nil else { return nil }
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return (text + zone, false)
    }
    guard zone.isEmpty else { return nil }
    // netip rejects leading zeros and anything but four decimal octets.
    let octets = address.split(separator: ".", omittingEmptySubsequences: false)
    guard octets.count == 4 else { return nil }
    for octet in octets {
        guard !octet.isEmpty, octet.count <= 3, octet.allSatisfy({ $0.isASCII && $0.isNumber }),
              !(octet.count > 1 && octet.hasPrefix("0")), let value = Int(octet), value <= 255 else { return nil }
    }
    return (String(address), true)
}
