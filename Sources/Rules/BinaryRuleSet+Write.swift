// Writing `.srs` files from source-format rules (Go's `srs.Write`), item by item in Go's order.
package import Config
import Adapter

extension BinaryRuleSet {
    /// Compiles source rules to a `.srs` file at `version` (Go's `sing-box rule-set compile`).
    /// Throws `RuleError` with Go's wording for items the version cannot carry or bad CIDRs.
    package static func write(_ rules: [HeadlessRuleOptions], version: UInt8) throws(RuleError) -> [UInt8] {
        var body = SRSWriter()
        body.uvarint(UInt64(rules.count))
        for rule in rules { try body.rule(rule, version: version) }
        return magic + [version] + Zlib.compress(body.bytes)
    }
}

/// Appends sing's varbin encoding to a byte array.
struct SRSWriter {
    var bytes: [UInt8] = []

    mutating func uvarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func bigEndian<T: FixedWidthInteger>(_ value: T) {
        for shift in stride(from: (MemoryLayout<T>.size - 1) * 8, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: value >> shift))
        }
    }

    mutating func strings(_ item: BinaryRuleSet.Item, _ values: [String]) {
        bytes.append(item.rawValue)
        uvarint(UInt64(values.count))
        for value in values {
            uvarint(UInt64(value.utf8.count))
            bytes.append(contentsOf: value.utf8)
        }
    }

    mutating func uint16s(_ item: BinaryRuleSet.Item, _ values: [UInt16]) {
        bytes.append(item.rawValue)
        uvarint(UInt64(values.count))
        for value in values { bigEndian(value) }
    }

    mutating func uint64s(_ values: [UInt64]) {
        uvarint(UInt64(values.count))
        for value in values { bigEndian(value) }
    }

    mutating func byteList(_ values: [UInt8]) {
        uvarint(UInt64(values.count))
        bytes.append(contentsOf: values)
    }

    mutating func domainSet(_ set: SuccinctDomainSet) {
        bytes.append(0)  // succinctSetData.Reserved
        uint64s(set.leaves)
        uint64s(set.labelBitmap)
        byteList(set.labels)
    }

    mutating func ipSet(_ item: BinaryRuleSet.Item, _ set: IPRangeSet) {
        bytes.append(item.rawValue)
        bytes.append(1)
        bigEndian(UInt64(set.rangeCount))
        for range in set.v4 {
            byteList(IPAddress.v4(range.lowerBound).bytes)
            byteList(IPAddress.v4(range.upperBound).bytes)
        }
        for range in set.v6 {
            byteList(IPAddress.v6(range.lower).bytes)
            byteList(IPAddress.v6(range.upper).bytes)
        }
    }

    mutating func rule(_ rule: HeadlessRuleOptions, version: UInt8) throws(RuleError) {
        switch rule {
        case .default(let o):
            try defaultRule(o, version: version)
        case .logical(let mode, let rules, let invert):
            bytes.append(1)
            switch mode {
            case "and": bytes.append(0)
            case "or": bytes.append(1)
            default: throw RuleError("unknown logical mode: \(mode)")
            }
            uvarint(UInt64(rules.count))
            for sub in rules { try self.rule(sub, version: version) }
            bytes.append(invert ? 1 : 0)
        }
    }

    mutating func defaultRule(_ o: DefaultHeadlessRuleOptions, version: UInt8) throws(RuleError) {
        bytes.append(0)
        if !o.queryType.isEmpty { uint16s(.queryType, o.queryType.map(\.value)) }
        if !o.network.isEmpty { strings(.network, o.network) }
        if !o.domain.isEmpty || !o.domainSuffix.isEmpty {
            bytes.append(BinaryRuleSet.Item.domain.rawValue)
            domainSet(SuccinctDomainSet(domains: o.domain, suffixes: o.domainSuffix, legacy: version == 1))
        }
        if !o.domainKeyword.isEmpty { strings(.domainKeyword, o.domainKeyword) }
        if !o.domainRegex.isEmpty { strings(.domainRegex, o.domainRegex) }
        if !o.sourceIPCIDR.isEmpty { ipSet(.sourceIPCIDR, try Self.cidrs(o.sourceIPCIDR, field: "source_ip_cidr")) }
        if !o.ipCIDR.isEmpty { ipSet(.ipCIDR, try Self.cidrs(o.ipCIDR, field: "ipcidr")) }
        if !o.sourcePort.isEmpty { uint16s(.sourcePort, o.sourcePort) }
        if !o.sourcePortRange.isEmpty { strings(.sourcePortRange, o.sourcePortRange) }
        if !o.port.isEmpty { uint16s(.port, o.port) }
        if !o.portRange.isEmpty { strings(.portRange, o.portRange) }
        if !o.processName.isEmpty { strings(.processName, o.processName) }
        if !o.processPath.isEmpty { strings(.processPath, o.processPath) }
        if !o.processPathRegex.isEmpty { strings(.processPathRegex, o.processPathRegex) }
        if !o.packageName.isEmpty { strings(.packageName, o.packageName) }
        if !o.networkType.isEmpty {
            guard version >= 3 else { throw RuleError("network_type rule item is only supported in version 3 or later") }
            bytes.append(BinaryRuleSet.Item.networkType.rawValue)
            byteList(o.networkType.map { BinaryRuleSet.interfaceTypeCode($0) })
        }
        if o.networkIsExpensive { bytes.append(BinaryRuleSet.Item.networkIsExpensive.rawValue) }
        if o.networkIsConstrained { bytes.append(BinaryRuleSet.Item.networkIsConstrained.rawValue) }
        if !o.wifiSSID.isEmpty { strings(.wifiSSID, o.wifiSSID) }
        if !o.wifiBSSID.isEmpty { strings(.wifiBSSID, o.wifiBSSID) }
        if !o.adGuardDomain.isEmpty {
            guard version >= 2 else { throw RuleError("AdGuard rule items is only supported in version 2 or later") }
            bytes.append(BinaryRuleSet.Item.adGuardDomain.rawValue)
            domainSet(AdGuardDomainMatcher(ruleLines: o.adGuardDomain).set)
        }
        bytes.append(BinaryRuleSet.Item.final.rawValue)
        bytes.append(o.invert ? 1 : 0)
    }

    /// netipx's builder over prefixes or bare addresses; Go reports the first bad entry.
    static func cidrs(_ texts: [String], field: String) throws(RuleError) -> IPRangeSet {
        var prefixes: [IPPrefix] = []
        prefixes.reserveCapacity(texts.count)
        for (index, text) in texts.enumerated() {
            guard let prefix = IPPrefix(text) else {
                let reason = text.contains("/") ? "bad prefix" : "no '/'"
                throw RuleError("\(field): parse [\(index)]: netip.ParsePrefix(\"\(text)\"): \(reason)")
            }
            prefixes.append(prefix)
        }
        return IPRangeSet(prefixes: prefixes)
    }
}

extension BinaryRuleSet {
    /// Go's `option.InterfaceType` numbering: wifi 0, cellular 1, ethernet 2, other 3.
    static func interfaceTypeCode(_ type: InterfaceType) -> UInt8 {
        switch type {
        case .wifi: 0
        case .cellular: 1
        case .ethernet: 2
        case .other: 3
        }
    }

    static func interfaceType(_ code: UInt8) -> InterfaceType? {
        switch code {
        case 0: .wifi
        case 1: .cellular
        case 2: .ethernet
        case 3: .other
        default: nil
        }
    }
}
