/// `route` (Go's `option.RouteOptions`).
package struct RouteOptions: ConfigObject, Equatable {
    /// Unused since 1.12 (the geoip database is gone); Go still reads it silently, so do we.
    package var geoip: GeoResourceOptions?
    /// Unused since 1.12 (the geosite database is gone); read silently as Go does.
    package var geosite: GeoResourceOptions?
    package var rules: [RuleOptions] = []
    package var ruleSet: [RuleSetOptions] = []
    package var final: String?
    package var findProcess = false
    package var autoDetectInterface = false
    package var overrideAndroidVPN = false
    package var defaultInterface: String?
    package var defaultMark: FwMark?
    package var defaultDomainResolver: DomainResolveOptions?
    package var defaultNetworkStrategy: NetworkStrategy?
    package var defaultNetworkType: [InterfaceType] = []
    package var defaultFallbackNetworkType: [InterfaceType] = []
    package var defaultFallbackDelay: ConfigDuration?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("geoip", \.geoip, .omitNil),
        .init("geosite", \.geosite, .omitNil),
        .init("rules", \.rules),
        .init("rule_set", \.ruleSet),
        .init("final", \.final),
        .init("find_process", \.findProcess),
        .init("auto_detect_interface", \.autoDetectInterface),
        .init("override_android_vpn", \.overrideAndroidVPN),
        .init("default_interface", \.defaultInterface),
        .init("default_mark", \.defaultMark),
        .init("default_domain_resolver", \.defaultDomainResolver, .omitNil),
        .init("default_network_strategy", \.defaultNetworkStrategy, .omitNil),
        .list("default_network_type", \.defaultNetworkType),
        .list("default_fallback_network_type", \.defaultFallbackNetworkType),
        .init("default_fallback_delay", \.defaultFallbackDelay),
    ] }
}

/// The removed `route.geoip` / `route.geosite` database options.
package struct GeoResourceOptions: ConfigObject, Equatable {
    package var path: String?
    package var downloadURL: String?
    package var downloadDetour: String?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("path", \.path),
        .init("download_url", \.downloadURL),
        .init("download_detour", \.downloadDetour),
    ] }
}

/// One `route.rule_set` entry: inline rules, a local file or a remote URL.
package struct RuleSetOptions: JSONCodable, Equatable {
    package enum Source: Equatable, Sendable {
        case inline(rules: [HeadlessRuleOptions])
        case local(path: String)
        case remote(url: String, downloadDetour: String?, updateInterval: ConfigDuration?)
    }

    package var tag: String
    /// "source" or "binary"; empty for inline rule-sets.
    package var format: String
    package var source: Source

    package var type: String {
        switch source {
        case .inline: "inline"
        case .local: "local"
        case .remote: "remote"
        }
    }

    package static var goTypeName: String { "option._RuleSet" }

    /// The format implied by a path's extension (`.json` source, `.srs` binary).
    static func defaultFormat(_ path: String) -> String {
        var p = Substring(path)
        if let scheme = p.firstRange(of: "://") {
            p = p[scheme.upperBound...]
            p = p.drop { $0 != "/" }
        }
        if let query = p.firstIndex(where: { $0 == "?" || $0 == "#" }) { p = p[..<query] }
        if p.hasSuffix(".json") { return "source" }
        if p.hasSuffix(".srs") { return "binary" }
        return ""
    }

    package init(json: JSONValue, path: String) throws(ConfigError) {
        guard case .object(let object) = json else { throw typeMismatch(json, Self.goTypeName, path) }
        var head = ObjectReader(object, path: path)
        let type: String = try head.read("type") ?? ""
        tag = try head.read("tag") ?? ""
        format = try head.read("format") ?? ""
        if tag.isEmpty { throw ConfigError(path: path, message: "missing tag") }
        var reader = head.remainder(excluding: ["type", "tag", "format"])
        switch type {
        case "", "inline":
            source = .inline(rules: try reader.read("rules") ?? [])
        case "local":
            source = .local(path: try reader.read("path") ?? "")
        case "remote":
            source = .remote(url: try reader.read("url") ?? "", downloadDetour: try reader.read("download_detour"),
                             updateInterval: try reader.read("update_interval"))
        default:
            throw ConfigError(path: path, message: "unknown rule-set type: \(type)")
        }
        try reader.finish()
        switch source {
        case .inline:
            format = ""
        case .local(let filePath):
            if format.isEmpty { format = Self.defaultFormat(filePath) }
        case .remote(let url, _, _):
            if format.isEmpty { format = Self.defaultFormat(url) }
        }
        if case .inline = source { return }
        switch format {
        case "": throw ConfigError(path: path, message: "missing format")
        case "source", "binary": break
        default: throw ConfigError(path: path, message: "unknown rule-set format: \(format)")
        }
    }

    package func toJSON() -> JSONValue {
        var writer = ObjectWriter()
        switch source {
        case .inline(let rules):
            writer.put("tag", .string(tag))
            if !rules.isEmpty { writer.put("rules", rules.toJSON()) }
        case .local(let filePath):
            writer.put("type", .string("local"))
            writer.put("tag", .string(tag))
            if format != Self.defaultFormat(filePath) { writer.put("format", .string(format)) }
            if !filePath.isEmpty { writer.put("path", .string(filePath)) }
        case .remote(let url, let detour, let interval):
            writer.put("type", .string("remote"))
            writer.put("tag", .string(tag))
            if format != Self.defaultFormat(url) { writer.put("format", .string(format)) }
            writer.put("url", .string(url))
            if let detour, !detour.isEmpty { writer.put("download_detour", .string(detour)) }
            if let interval, !interval.isGoZero { writer.put("update_interval", interval.toJSON()) }
        }
        return .object(writer.object)
    }
}

/// A rule inside a rule-set (no action): default items or a logical combination.
package indirect enum HeadlessRuleOptions: JSONCodable, Equatable {
    case `default`(DefaultHeadlessRuleOptions)
    case logical(mode: String, rules: [HeadlessRuleOptions], invert: Bool)

    package static var goTypeName: String { "option._HeadlessRule" }

    package init(json: JSONValue, path: String) throws(ConfigError) {
        guard case .object(let object) = json else { throw typeMismatch(json, Self.goTypeName, path) }
        var head = ObjectReader(object, path: path)
        let type: String = try head.read("type") ?? ""
        var reader = head.remainder(excluding: ["type"])
        switch type {
        case "", "default":
            self = .default(try payload(&reader))
        case "logical":
            self = .logical(mode: try reader.read("mode") ?? "", rules: try reader.read("rules") ?? [],
                            invert: try reader.read("invert") ?? false)
        default:
            throw ConfigError(path: path, message: "unknown rule type: \(type)")
        }
        try reader.finish()
    }

    package func toJSON() -> JSONValue {
        switch self {
        case .default(let rule):
            return rule.toJSON()
        case .logical(let mode, let rules, let invert):
            var writer = ObjectWriter()
            writer.put("type", .string("logical"))
            writer.put("mode", .string(mode))
            if !rules.isEmpty { writer.put("rules", rules.toJSON()) }
            if invert { writer.put("invert", .bool(true)) }
            return .object(writer.object)
        }
    }
}

/// The match items of a rule-set rule (Go's `option.DefaultHeadlessRule`).
package struct DefaultHeadlessRuleOptions: ConfigObject, Equatable {
    package var queryType: [DNSQueryType] = []
    package var network: [String] = []
    package var domain: [String] = []
    package var domainSuffix: [String] = []
    package var domainKeyword: [String] = []
    package var domainRegex: [String] = []
    package var sourceIPCIDR: [String] = []
    package var ipCIDR: [String] = []
    package var sourcePort: [UInt16] = []
    package var sourcePortRange: [String] = []
    package var port: [UInt16] = []
    package var portRange: [String] = []
    package var processName: [String] = []
    package var processPath: [String] = []
    package var processPathRegex: [String] = []
    package var packageName: [String] = []
    package var networkType: [InterfaceType] = []
    package var networkIsExpensive = false
    package var networkIsConstrained = false
    package var wifiSSID: [String] = []
    package var wifiBSSID: [String] = []
    /// AdGuard filter lines (Go's `AdGuardDomain`, `json:"-"`): never read from or written to JSON;
    /// set only by `rule-set convert --type adguard` on its way to a `.srs`.
    package var adGuardDomain: [String] = []
    package var invert = false

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .list("query_type", \.queryType),
        .list("network", \.network),
        .list("domain", \.domain),
        .list("domain_suffix", \.domainSuffix),
        .list("domain_keyword", \.domainKeyword),
        .list("domain_regex", \.domainRegex),
        .list("source_ip_cidr", \.sourceIPCIDR),
        .list("ip_cidr", \.ipCIDR),
        .list("source_port", \.sourcePort),
        .list("source_port_range", \.sourcePortRange),
        .list("port", \.port),
        .list("port_range", \.portRange),
        .list("process_name", \.processName),
        .list("process_path", \.processPath),
        .list("process_path_regex", \.processPathRegex),
        .list("package_name", \.packageName),
        .list("network_type", \.networkType),
        .init("network_is_expensive", \.networkIsExpensive),
        .init("network_is_constrained", \.networkIsConstrained),
        .list("wifi_ssid", \.wifiSSID),
        .list("wifi_bssid", \.wifiBSSID),
        .init("invert", \.invert),
    ] }
}

/// A source-format rule-set file: `{"version": 1|2|3, "rules": [...]}`.
package struct PlainRuleSetOptions: JSONCodable, Equatable {
    package var version: UInt8
    package var rules: [HeadlessRuleOptions]

    /// A rule-set value built in code (decompiled from a binary rule-set, merged, upgraded).
    package init(version: UInt8, rules: [HeadlessRuleOptions]) {
        self.version = version
        self.rules = rules
    }

    package static var goTypeName: String { "option._PlainRuleSetCompat" }

    package init(json: JSONValue, path: String) throws(ConfigError) {
        guard case .object(let object) = json else { throw typeMismatch(json, Self.goTypeName, path) }
        var head = ObjectReader(object, path: path)
        version = try head.read("version") ?? 0
        switch version {
        case 1, 2, 3: break
        case 0: throw ConfigError(path: path, message: "missing rule-set version")
        default: throw ConfigError(path: path, message: "unknown rule-set version: \(version)")
        }
        var reader = head.remainder(excluding: ["version"])
        rules = try reader.read("rules") ?? []
        try reader.finish()
    }

    package func toJSON() -> JSONValue {
        var writer = ObjectWriter()
        writer.put("version", .number(String(version)))
        if !rules.isEmpty { writer.put("rules", rules.toJSON()) }
        return .object(writer.object)
    }
}

/// A DNS record type: a number or a mnemonic ("A", "AAAA", "HTTPS"); written as the mnemonic
/// when known (Go's `option.DNSQueryType`).
package struct DNSQueryType: JSONCodable, Equatable, Hashable {
    package var value: UInt16

    package init(_ value: UInt16) { self.value = value }

    package static let names: [(String, UInt16)] = [
        ("None", 0), ("A", 1), ("NS", 2), ("MD", 3), ("MF", 4), ("CNAME", 5), ("SOA", 6), ("MB", 7), ("MG", 8),
        ("MR", 9), ("NULL", 10), ("PTR", 12), ("HINFO", 13), ("MINFO", 14), ("MX", 15), ("TXT", 16), ("RP", 17),
        ("AFSDB", 18), ("X25", 19), ("ISDN", 20), ("RT", 21), ("NSAPPTR", 23), ("SIG", 24), ("KEY", 25), ("PX", 26),
        ("GPOS", 27), ("AAAA", 28), ("LOC", 29), ("NXT", 30), ("EID", 31), ("NIMLOC", 32), ("SRV", 33), ("ATMA", 34),
        ("NAPTR", 35), ("KX", 36), ("CERT", 37), ("DNAME", 39), ("OPT", 41), ("APL", 42), ("DS", 43), ("SSHFP", 44),
        ("IPSECKEY", 45), ("RRSIG", 46), ("NSEC", 47), ("DNSKEY", 48), ("DHCID", 49), ("NSEC3", 50),
        ("NSEC3PARAM", 51), ("TLSA", 52), ("SMIMEA", 53), ("HIP", 55), ("NINFO", 56), ("RKEY", 57), ("TALINK", 58),
        ("CDS", 59), ("CDNSKEY", 60), ("OPENPGPKEY", 61), ("CSYNC", 62), ("ZONEMD", 63), ("SVCB", 64), ("HTTPS", 65),
        ("SPF", 99), ("UINFO", 100), ("UID", 101), ("GID", 102), ("UNSPEC", 103), ("NID", 104), ("L32", 105),
        ("L64", 106), ("LP", 107), ("EUI48", 108), ("EUI64", 109), ("NXNAME", 128), ("URI", 256), ("CAA", 257),
        ("AVC", 258), ("AMTRELAY", 260), ("TKEY", 249), ("TSIG", 250), ("IXFR", 251), ("AXFR", 252),
        ("MAILB", 253), ("MAILA", 254), ("ANY", 255), ("TA", 32768), ("DLV", 32769), ("Reserved", 65535),
    ]

    package init(json: JSONValue, path: String) throws(ConfigError) {
        if case .number = json, let number = try? UInt16(json: json, path: path) {
            value = number
            return
        }
        if case .string(let text) = json, let entry = Self.names.first(where: { $0.0 == text }) {
            value = entry.1
            return
        }
        let raw: String = switch json {
        case .string(let text): "\"\(text)\""
        case .number(let text): text
        default: json.serialized()
        }
        throw ConfigError(path: path, message: "unknown DNS query type: \(raw)")
    }

    package func toJSON() -> JSONValue {
        if let name = Self.names.first(where: { $0.1 == value && $0.0 != "None" && $0.0 != "Reserved" })?.0 {
            return .string(name)
        }
        return .number(String(value))
    }

    package static var goTypeName: String { "option.DNSQueryType" }
}
