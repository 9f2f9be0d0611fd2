/// A DNS rule: `default` (match items) or `logical`, each with a DNS action.
package indirect enum DNSRuleOptions: JSONCodable, Equatable {
    case `default`(DefaultDNSRuleOptions)
    case logical(LogicalDNSRuleOptions)

    package static var goTypeName: String { "option._DNSRule" }

    package var action: DNSRuleAction {
        switch self {
        case .default(let rule): rule.action
        case .logical(let rule): rule.action
        }
    }

    package init(json: JSONValue, path: String) throws(ConfigError) {
        guard case .object(let object) = json else { throw typeMismatch(json, Self.goTypeName, path) }
        var head = ObjectReader(object, path: path)
        let type: String = try head.read("type") ?? ""
        var reader = head.remainder(excluding: ["type"])
        switch type {
        case "", "default":
            var rule = DefaultDNSRuleOptions()
            try DefaultDNSRuleOptions.readFields(into: &rule, from: &reader)
            // Go hands the action every key not spelled exactly as a rule key.
            reader = reader.remainder(excluding: Set(DefaultDNSRuleOptions.fieldKeys))
            rule.action = try DNSRuleAction.read(from: &reader)
            self = .default(rule)
        case "logical":
            var rule = LogicalDNSRuleOptions()
            try LogicalDNSRuleOptions.readFields(into: &rule, from: &reader)
            // Go hands the action every key not spelled exactly as a rule key.
            reader = reader.remainder(excluding: Set(LogicalDNSRuleOptions.fieldKeys))
            rule.action = try DNSRuleAction.read(from: &reader)
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

    /// Routes to a legacy rcode server become `predefined` answers (Go's `rewriteRcode`; top level only).
    mutating func rewriteRcode(_ rcodes: [String: DNSRCode]) {
        func rewrite(_ action: inout DNSRuleAction) {
            guard case .route(let route) = action, let rcode = rcodes[route.server ?? ""] else { return }
            var predefined = DNSPredefinedActionOptions()
            predefined.rcode = rcode
            action = .predefined(predefined)
        }
        switch self {
        case .default(var rule):
            rewrite(&rule.action)
            self = .default(rule)
        case .logical(var rule):
            rewrite(&rule.action)
            self = .logical(rule)
        }
    }
}

/// What a matching DNS rule does (Go's `option.DNSRuleAction`).
package enum DNSRuleAction: Equatable, Sendable {
    case route(DNSRouteActionOptions)
    case routeOptions(DNSRouteOptionsActionOptions)
    case reject(RejectActionOptions)
    case predefined(DNSPredefinedActionOptions)

    package var name: String {
        switch self {
        case .route: "route"
        case .routeOptions: "route-options"
        case .reject: "reject"
        case .predefined: "predefined"
        }
    }

    static func read(from reader: inout ObjectReader) throws(ConfigError) -> DNSRuleAction {
        let action: String = try reader.read("action") ?? ""
        reader = reader.remainder(excluding: ["action"])
        switch action {
        case "", "route": return .route(try payload(&reader))
        case "route-options": return .routeOptions(try payload(&reader))
        case "reject": return .reject(try payload(&reader))
        case "predefined": return .predefined(try payload(&reader))
        default: throw ConfigError(path: reader.path, message: "unknown DNS rule action: \(action)")
        }
    }

    func write(into writer: inout ObjectWriter) {
        switch self {
        case .route(let o):
            o.writeFields(into: &writer)
        case .routeOptions(let o):
            writer.put("action", .string(name))
            o.writeFields(into: &writer)
        case .reject(let o):
            writer.put("action", .string(name))
            o.writeFields(into: &writer)
        case .predefined(let o):
            writer.put("action", .string(name))
            o.writeFields(into: &writer)
        }
    }
}

/// The DNS `route` action: the server and per-query options.
package typealias DNSRouteActionOptions = ResolveActionOptions

/// The DNS `route-options` action; must set something.
package struct DNSRouteOptionsActionOptions: ConfigObject, Equatable {
    package var strategy: DomainStrategyOption?
    package var disableCache = false
    package var rewriteTTL: UInt32?
    package var clientSubnet: IPPrefixableOption?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("strategy", \.strategy),
        .init("disable_cache", \.disableCache),
        .init("rewrite_ttl", \.rewriteTTL, .omitNil),
        .init("client_subnet", \.clientSubnet, .omitNil),
    ] }

    package func validate(path: String) throws(ConfigError) {
        if (strategy ?? .asIs) == .asIs && !disableCache && rewriteTTL == nil && clientSubnet == nil {
            throw ConfigError(path: path, message: "empty DNS route option action")
        }
    }
}

/// The DNS `predefined` action: answer with this rcode and records.
package struct DNSPredefinedActionOptions: ConfigObject, Equatable {
    package var rcode: DNSRCode?
    package var answer: [DNSRecordOption] = []
    package var ns: [DNSRecordOption] = []
    package var extra: [DNSRecordOption] = []

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("rcode", \.rcode, .omitNil),
        .list("answer", \.answer),
        .list("ns", \.ns),
        .list("extra", \.extra),
    ] }
}

/// The match items of a default DNS rule (Go's `option.RawDefaultDNSRule`) and its action.
package struct DefaultDNSRuleOptions: ConfigObject, Equatable {
    package var inbound: [String] = []
    package var ipVersion: Int?
    package var queryType: [DNSQueryType] = []
    package var network: [String] = []
    package var authUser: [String] = []
    package var `protocol`: [String] = []
    package var domain: [String] = []
    package var domainSuffix: [String] = []
    package var domainKeyword: [String] = []
    package var domainRegex: [String] = []
    package var geosite: [String] = []
    package var sourceGeoIP: [String] = []
    package var geoip: [String] = []
    package var ipCIDR: [String] = []
    package var ipIsPrivate = false
    package var ipAcceptAny = false
    package var sourceIPCIDR: [String] = []
    package var sourceIPIsPrivate = false
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
    /// Deprecated in 1.12 (use `domain_resolver` in dial fields).
    package var outbound: [String] = []
    package var clashMode: String?
    package var networkType: [InterfaceType] = []
    package var networkIsExpensive = false
    package var networkIsConstrained = false
    package var wifiSSID: [String] = []
    package var wifiBSSID: [String] = []
    package var ruleSet: [String] = []
    package var ruleSetIPCIDRMatchSource = false
    package var ruleSetIPCIDRAcceptEmpty = false
    package var invert = false
    package var legacyRuleSetIPCIDRMatchSource = false
    package var action: DNSRuleAction = .route(DNSRouteActionOptions())

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .list("inbound", \.inbound),
        .init("ip_version", \.ipVersion),
        .list("query_type", \.queryType),
        .list("network", \.network),
        .list("auth_user", \.authUser),
        .list("protocol", \.protocol),
        .list("domain", \.domain),
        .list("domain_suffix", \.domainSuffix),
        .list("domain_keyword", \.domainKeyword),
        .list("domain_regex", \.domainRegex),
        .list("geosite", \.geosite),
        .list("source_geoip", \.sourceGeoIP),
        .list("geoip", \.geoip),
        .list("ip_cidr", \.ipCIDR),
        .init("ip_is_private", \.ipIsPrivate),
        .init("ip_accept_any", \.ipAcceptAny),
        .list("source_ip_cidr", \.sourceIPCIDR),
        .init("source_ip_is_private", \.sourceIPIsPrivate),
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
        .list("outbound", \.outbound),
        .init("clash_mode", \.clashMode),
        .list("network_type", \.networkType),
        .init("network_is_expensive", \.networkIsExpensive),
        .init("network_is_constrained", \.networkIsConstrained),
        .list("wifi_ssid", \.wifiSSID),
        .list("wifi_bssid", \.wifiBSSID),
        .list("rule_set", \.ruleSet),
        .init("rule_set_ip_cidr_match_source", \.ruleSetIPCIDRMatchSource),
        .init("rule_set_ip_cidr_accept_empty", \.ruleSetIPCIDRAcceptEmpty),
        .init("invert", \.invert),
        .init("rule_set_ipcidr_match_source", \.legacyRuleSetIPCIDRMatchSource),
    ] }
}

/// A logical DNS rule.
package struct LogicalDNSRuleOptions: ConfigObject, Equatable {
    package var mode = ""
    package var rules: [DNSRuleOptions] = []
    package var invert = false
    package var action: DNSRuleAction = .route(DNSRouteActionOptions())

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("mode", \.mode, .always),
        .init("rules", \.rules),
        .init("invert", \.invert),
    ] }
}
