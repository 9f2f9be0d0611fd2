// BinaryRuleSet: the `.srs` rule-set file, byte-compatible with sing-box 1.12 (common/srs/binary.go).
//
// File layout:
//   1. magic "SRS" (53 52 53), one version byte (1–3; sing-box refuses anything above 3);
//   2. a zlib stream (Go writes it at BestCompression) holding: uvarint rule count, then rules;
//   3. a rule is a type byte (0 default, 1 logical).
//      default: items (one type byte each, then its value) until item 0xFF, then the invert byte;
//      logical: mode byte (0 and, 1 or), uvarint count, rules, invert byte.
//   4. values use sing's varbin: a list is a uvarint count then elements; a string is a uvarint
//      length then bytes; integers are big-endian. `domain` is a `SuccinctDomainSet` (a reserved
//      byte, then leaves, label bitmap and labels as lists), and so is `adguard_domain` (item 16,
//      an `AdGuardDomainMatcher`'s set); IP items are netipx ranges (a version
//      byte 1, a big-endian uint64 count, then per range two byte lists: first and last address).
package import Adapter
package import Config

/// Why bytes are not a rule-set. Parsers of untrusted bytes carry numbers, not strings; the
/// description is sing-box's wording.
package enum SRSError: Error, Equatable, Sendable, CustomStringConvertible {
    case badMagic
    case unsupportedVersion(UInt8)
    case zlib(String)
    /// The body ended early (Go: `EOF` / `unexpected EOF`).
    case truncated
    case varintOverflow
    case unknownRuleType(UInt8)
    case unknownItemType(UInt8, last: UInt8)
    case unknownLogicalMode(UInt8)
    case badIPSetVersion(UInt8)
    case badAddressLength(Int)
    case badDomainSet
    case nestedTooDeep
    /// Context around an inner error (`read rule[3]: …`).
    indirect case context(String, SRSError)

    package var description: String {
        switch self {
        case .badMagic: "invalid sing-box rule-set file"
        case .unsupportedVersion(let version): "unsupported version: \(version)"
        case .zlib(let message): message
        case .truncated: "unexpected EOF"
        case .varintOverflow: "binary: varint overflows a 64-bit integer"
        case .unknownRuleType(let type): "unknown rule type: \(type)"
        case .unknownItemType(let type, let last): "unknown rule item type: \(type), last type: \(last)"
        case .unknownLogicalMode(let mode): "unknown logical mode: \(mode)"
        case .badIPSetVersion: "invalid argument"
        case .badAddressLength(let length): "invalid IP address length: \(length)"
        case .badDomainSet: "invalid domain matcher"
        case .nestedTooDeep: "logical rules nested too deep"
        case .context(let context, let inner): "\(context): \(inner)"
        }
    }
}

/// A rule-set as stored in a `.srs` file: rules with their domain and IP items already in their
/// matching structures.
package struct BinaryRuleSet: Sendable, Equatable {
    package var version: UInt8
    package var rules: [Rule]

    /// The current rule-set version (Go's `C.RuleSetVersionCurrent`).
    package static let currentVersion: UInt8 = 3
    static let magic: [UInt8] = [0x53, 0x52, 0x53]

    /// One rule of a binary rule-set.
    package indirect enum Rule: Sendable, Equatable {
        case `default`(DefaultItems)
        case logical(mode: LogicalRule.Mode, rules: [Rule], invert: Bool)
    }

    /// The items of a default rule, as the file carries them (Go's `DefaultHeadlessRule` with
    /// `DomainMatcher`, `IPSet` and `SourceIPSet` filled in).
    package struct DefaultItems: Sendable, Equatable {
        package var queryType: [UInt16] = []
        package var network: [String] = []
        package var domain: SuccinctDomainSet?
        package var domainKeyword: [String] = []
        package var domainRegex: [String] = []
        package var sourceIPSet: IPRangeSet?
        package var ipSet: IPRangeSet?
        package var sourcePort: [UInt16] = []
        package var sourcePortRange: [String] = []
        package var port: [UInt16] = []
        package var portRange: [String] = []
        package var processName: [String] = []
        package var processPath: [String] = []
        package var processPathRegex: [String] = []
        package var packageName: [String] = []
        package var wifiSSID: [String] = []
        package var wifiBSSID: [String] = []
        /// AdGuard domain rules (item 16, written by `rule-set convert --type adguard`).
        package var adGuardDomain: AdGuardDomainMatcher?
        package var networkType: [UInt8] = []
        package var networkIsExpensive = false
        package var networkIsConstrained = false
        package var invert = false
        package init() {}
    }

    package init(version: UInt8, rules: [Rule]) {
        self.version = version
        self.rules = rules
    }

    // Item type bytes (common/srs/binary.go).
    enum Item: UInt8 {
        case queryType = 0, network, domain, domainKeyword, domainRegex, sourceIPCIDR, ipCIDR, sourcePort,
             sourcePortRange, port, portRange, processName, processPath, packageName, wifiSSID, wifiBSSID,
             adGuardDomain, processPathRegex, networkType, networkIsExpensive, networkIsConstrained
        case final = 0xFF
    }
}

// MARK: reading

extension BinaryRuleSet {
    /// Parses a whole `.srs` file (Go's `srs.Read`). Never traps on any input.
    package init(bytes: [UInt8]) throws(SRSError) {
        guard bytes.count >= 3 else { throw .truncated }
        guard Array(bytes[0..<3]) == Self.magic else { throw .badMagic }
        guard bytes.count >= 4 else { throw .truncated }
        let version = bytes[3]
        guard version <= Self.currentVersion else { throw .unsupportedVersion(version) }
        let body: [UInt8]
        do { body = try Zlib.decompress(bytes[4...]) } catch { throw .zlib(error.description) }
        var reader = SRSReader(body)
        let count = try reader.count()
        var rules: [Rule] = []
        for index in 0..<count {
            do { rules.append(try reader.rule(depth: 0)) } catch { throw .context("read rule[\(index)]", error) }
        }
        self.init(version: version, rules: rules)
    }
}

/// A bounds-checked cursor over the inflated body.
struct SRSReader {
    let bytes: [UInt8]
    var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func byte() throws(SRSError) -> UInt8 {
        guard offset < bytes.count else { throw .truncated }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func uvarint() throws(SRSError) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        for index in 0..<10 {
            let b = try byte()
            if b < 0x80 {
                if index == 9 && b > 1 { throw .varintOverflow }
                return value | UInt64(b) << shift
            }
            value |= UInt64(b & 0x7f) << shift
            shift += 7
        }
        throw .varintOverflow
    }

    /// A list length, checked against what is left so no hostile count allocates.
    mutating func count(elementSize: Int = 1) throws(SRSError) -> Int {
        let value = try uvarint()
        guard value <= UInt64(bytes.count - offset) / UInt64(elementSize) else { throw .truncated }
        return Int(value)
    }

    mutating func raw(_ length: Int) throws(SRSError) -> ArraySlice<UInt8> {
        guard length >= 0, length <= bytes.count - offset else { throw .truncated }
        defer { offset += length }
        return bytes[offset..<(offset + length)]
    }

    mutating func bigEndian<T: FixedWidthInteger>(_: T.Type) throws(SRSError) -> T {
        var value: T = 0
        for b in try raw(MemoryLayout<T>.size) { value = value << 8 | T(b) }
        return value
    }

    mutating func bool() throws(SRSError) -> Bool { try byte() != 0 }

    mutating func strings() throws(SRSError) -> [String] {
        let n = try count()
        var out: [String] = []
        out.reserveCapacity(n)
        for _ in 0..<n { out.append(String(decoding: try raw(try count()), as: UTF8.self)) }
        return out
    }

    mutating func uint16s() throws(SRSError) -> [UInt16] {
        let n = try count(elementSize: 2)
        var out: [UInt16] = []
        out.reserveCapacity(n)
        for _ in 0..<n { out.append(try bigEndian(UInt16.self)) }
        return out
    }

    mutating func uint64s() throws(SRSError) -> [UInt64] {
        let n = try count(elementSize: 8)
        var out: [UInt64] = []
        out.reserveCapacity(n)
        for _ in 0..<n { out.append(try bigEndian(UInt64.self)) }
        return out
    }

    mutating func bytesList() throws(SRSError) -> [UInt8] { Array(try raw(try count())) }

    mutating func rule(depth: Int) throws(SRSError) -> BinaryRuleSet.Rule {
        guard depth < 64 else { throw .nestedTooDeep }
        let type = try byte()
        switch type {
        case 0: return .default(try defaultRule())
        case 1: return try logicalRule(depth: depth)
        default: throw .unknownRuleType(type)
        }
    }

    mutating func defaultRule() throws(SRSError) -> BinaryRuleSet.DefaultItems {
        var rule = BinaryRuleSet.DefaultItems()
        var last: UInt8 = 0
        while true {
            let code = try byte()
            guard let item = BinaryRuleSet.Item(rawValue: code) else { throw .unknownItemType(code, last: last) }
            switch item {
            case .queryType: rule.queryType = try uint16s()
            case .network: rule.network = try strings()
            case .domain: rule.domain = try domainSet()
            case .domainKeyword: rule.domainKeyword = try strings()
            case .domainRegex: rule.domainRegex = try strings()
            case .sourceIPCIDR: rule.sourceIPSet = try ipSet()
            case .ipCIDR: rule.ipSet = try ipSet()
            case .sourcePort: rule.sourcePort = try uint16s()
            case .sourcePortRange: rule.sourcePortRange = try strings()
            case .port: rule.port = try uint16s()
            case .portRange: rule.portRange = try strings()
            case .processName: rule.processName = try strings()
            case .processPath: rule.processPath = try strings()
            case .processPathRegex: rule.processPathRegex = try strings()
            case .packageName: rule.packageName = try strings()
            case .wifiSSID: rule.wifiSSID = try strings()
            case .wifiBSSID: rule.wifiBSSID = try strings()
            case .adGuardDomain:
                // sing's AdGuardMatcher is a succinct set of the same shape (domain.ReadAdGuardMatcher).
                rule.adGuardDomain = AdGuardDomainMatcher(set: try domainSet())
            case .networkType: rule.networkType = Array(try raw(try count()))
            case .networkIsExpensive: rule.networkIsExpensive = true
            case .networkIsConstrained: rule.networkIsConstrained = true
            case .final:
                rule.invert = try bool()
                return rule
            }
            last = code
        }
    }

    mutating func logicalRule(depth: Int) throws(SRSError) -> BinaryRuleSet.Rule {
        let rawMode = try byte()
        let mode: LogicalRule.Mode
        switch rawMode {
        case 0: mode = .and
        case 1: mode = .or
        default: throw .unknownLogicalMode(rawMode)
        }
        let n = try count()
        var rules: [BinaryRuleSet.Rule] = []
        for index in 0..<n {
            do { rules.append(try rule(depth: depth + 1)) } catch {
                throw .context("read logical rule [\(index)]", error)
            }
        }
        return .logical(mode: mode, rules: rules, invert: try bool())
    }

    /// sing's `succinctSetData`: reserved byte, leaves, label bitmap, labels.
    mutating func domainSet() throws(SRSError) -> SuccinctDomainSet {
        _ = try byte()
        let leaves = try uint64s()
        let bitmap = try uint64s()
        let labels = try bytesList()
        return try SuccinctDomainSet(leaves: leaves, labelBitmap: bitmap, labels: labels)
    }

    /// netipx ranges: version 1, a big-endian uint64 count, then (first, last) address byte lists.
    mutating func ipSet() throws(SRSError) -> IPRangeSet {
        let version = try byte()
        guard version == 1 else { throw .badIPSetVersion(version) }
        var n = try bigEndian(UInt64.self)
        if n == 0 {
            // Go's varbin reads a zero-length destination slice with a uvarint length first.
            n = try uvarint()
        }
        guard n <= UInt64(bytes.count - offset) / 4 else { throw .truncated }
        var v4: [ClosedRange<UInt32>] = []
        var v6: [IPRangeSet.IPv6Range] = []
        for _ in 0..<Int(n) {
            let from = try bytesList(), to = try bytesList()
            switch (from.count, to.count) {
            case (4, 4):
                let a = from.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }, b = to.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                if a <= b { v4.append(a...b) }
            case (16, 16):
                let a = Self.ipv6(from), b = Self.ipv6(to)
                v6.append(IPRangeSet.IPv6Range(lower: a, upper: b))
            default:
                throw .badAddressLength(from.count == 4 || from.count == 16 ? to.count : from.count)
            }
        }
        return IPRangeSet(v4: v4, v6: v6)
    }

    static func ipv6(_ bytes: [UInt8]) -> IPv6Bits {
        IPv6Bits(high: bytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) },
                 low: bytes[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
    }
}

