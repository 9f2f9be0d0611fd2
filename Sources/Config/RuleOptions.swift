/// A route rule: `default` (match items) or `logical` (and/or over sub-rules), each with an action.
package indirect enum RuleOptions: JSONCodable, Equatable {
    case `default`(DefaultRuleOptions)
    case logical(LogicalRuleOptions)

    package static var goTypeName: String { "option._Rule" }

    package var action: RuleAction {
        switch self {
        case .default(let rule): rule.action
        case .logical(let rule): rule.action
        }
    }

    package var invert: Bool {
        switch self {
        case .default(let rule): rule.invert
        case .logical(let rule): rule.invert
        }
    }

    package init(json: JSONValue, path: String) throws(ConfigError) {
        guard case .object(let object) = json else { throw typeMismatch(json, Self.goTypeName, path) }
        var head = ObjectReader(object, path: path)
        let type: String = try head.read("type") ?? ""
        var reader = head.remainder(excluding: ["type"])
        switch type {
        case "", "default":
            var rule = DefaultRuleOptions()
            try DefaultRuleOptions.readFields(into: &rule, from: &reader)
            // Go hands the action every key not spelled exactly as a rule key.
            reader = reader.remainder(excluding: Set(DefaultRuleOptions.fieldKeys))
            rule.action = try RuleAction.read(from: &reader)
            self = .default(rule)
        case "logical":
            var rule = LogicalRuleOptions()
            try LogicalRuleOptions.readFields(into: &rule, from: &reader)
            // Go hands the action every key not spelled exactly as a rule key.
            reader = reader.remainder(excluding: Set(LogicalRuleOptions.fieldKeys))
            rule.action = try RuleAction.read(from: &reader)
            self = .logical(rule)
        default:
            throw ConfigError(path: path, message: "unknown rule type: \(type)")
        }
        try reader.finish()
    }

    package func toJSON() -> JSONValue {
        var writer = ObjectWriter()
        switch self {
        case .default(let rule):
            rule.writeFields(into: &writer)
            rule.action.write(into: &writer)
        case .logical(let rule):
            writer.put("type", .string("logical"))
            rule.writeFields(into: &writer)
            rule.action.write(into: &writer)
        }
        return .object(writer.object)
    }
}

/// The match items of a default route rule (Go's `option.RawDefaultRule`) and its action.
package struct DefaultRuleOptions: ConfigObject, Equatable {
    package var inbound: [String] = []
    package var ipVersion: Int?
    package var network: [String] = []
    package var authUser: [String] = []
    package var `protocol`: [String] = []
    package var client: [String] = []
    package var domain: [String] = []
    package var domainSuffix: [String] = []
    package var domainKeyword: [String] = []
    package var domainRegex: [String] = []
    /// Removed in 1.12 (geosite database); refused at check.
    package var geosite: [String] = []
    /// Removed in 1.12 (geoip database); refused at check.
    package var sourceGeoIP: [String] = []
    /// Removed in 1.12 (geoip database); refused at check.
    package var geoip: [String] = []
    package var sourceIPCIDR: [String] = []
    package var sourceIPIsPrivate = false
    package var ipCIDR: [String] = []
    package var ipIsPrivate = false
    package var sourcePort: [UInt16] = []
    package var sourcePortRange: [String] = []
    package var port: [UInt16] = []
    package var portRange: [String] = []
    package var processName: [String] = []
    package var processPath: [String] = []
    package var processPathRegex: [String] = []
    package var packageName: [String] = []
    package var user: [String] = []
    package var userID: [Int32] = []
    package var clashMode: String?
    package var networkType: [InterfaceType] = []
    package var networkIsExpensive = false
    package var networkIsConstrained = false
    package var wifiSSID: [String] = []
    package var wifiBSSID: [String] = []
    package var ruleSet: [String] = []
    package var ruleSetIPCIDRMatchSource = false
    package var invert = false
    /// Renamed to `rule_set_ip_cidr_match_source` in 1.10; fatal in 1.12 unless ENABLE_DEPRECATED_BAD_MATCH_SOURCE.
    package var legacyRuleSetIPCIDRMatchSource = false
    package var action: RuleAction = .route(RouteActionOptions())

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .list("inbound", \.inbound),
        .init("ip_version", \.ipVersion),
        .list("network", \.network),
        .list("auth_user", \.authUser),
        .list("protocol", \.protocol),
        .list("client", \.client),
        .list("domain", \.domain),
        .list("domain_suffix", \.domainSuffix),
        .list("domain_keyword", \.domainKeyword),
        .list("domain_regex", \.domainRegex),
        .list("geosite", \.geosite),
        .list("source_geoip", \.sourceGeoIP),
        .list("geoip", \.geoip),
        .list("source_ip_cidr", \.sourceIPCIDR),
        .init("source_ip_is_private", \.sourceIPIsPrivate),
        .list("ip_cidr", \.ipCIDR),
        .init("ip_is_private", \.ipIsPrivate),
        .list("source_port", \.sourcePort),
        .list("source_port_range", \.sourcePortRange),
        .list("port", \.port),
        .list("port_range", \.portRange),
        .list("process_name", \.processName),
        .list("process_path", \.processPath),
        .list("process_path_regex", \.processPathRegex),
        .list("package_name", \.packageName),
        .list("user", \.user),
        .list("user_id", \.userID),
        .init("clash_mode", \.clashMode),
        .list("network_type", \.networkType),
        .init("network_is_expensive", \.networkIsExpensive),
        .init("network_is_constrained", \.networkIsConstrained),
        .list("wifi_ssid", \.wifiSSID),
        .list("wifi_bssid", \.wifiBSSID),
        .list("rule_set", \.ruleSet),
        .init("rule_set_ip_cidr_match_source", \.ruleSetIPCIDRMatchSource),
        .init("invert", \.invert),
        .init("rule_set_ipcidr_match_source", \.legacyRuleSetIPCIDRMatchSource),
    ] }
}

/// A logical route rule: `mode` and/or over `rules`, with its action.
package struct LogicalRuleOptions: ConfigObject, Equatable {
    package var mode = ""
    package var rules: [RuleOptions] = []
    package var invert = false
    package var action: RuleAction = .route(RouteActionOptions())

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("mode", \.mode, .always),
        .init("rules", \.rules),
        .init("invert", \.invert),
    ] }
}
