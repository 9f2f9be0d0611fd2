// Building headless rules from the config's rule options, item by item in Go's order.
package import Config
import Adapter

extension HeadlessRule {
    /// Compiles a route rule's condition (its action is the caller's). Throws `RuleError` with
    /// Go's wording for bad items; items this build cannot evaluate fail loudly instead of
    /// silently matching nothing.
    package init(options: RuleOptions, ruleSets: [String: RuleSet] = [:]) throws(RuleError) {
        switch options {
        case .default(let rule): self = .default(try DefaultRule(options: rule, ruleSets: ruleSets))
        case .logical(let rule): self = .logical(try LogicalRule(options: rule, ruleSets: ruleSets))
        }
    }
}

extension DefaultRule {
    package init(options o: DefaultRuleOptions, ruleSets: [String: RuleSet] = [:]) throws(RuleError) {
        var items: [RuleItem] = []
        if !o.inbound.isEmpty { items.append(.inbound(o.inbound)) }
        if let version = o.ipVersion, version != 0 {
            guard version == 4 || version == 6 else { throw RuleError("invalid ip version: \(version)") }
            items.append(.ipVersion(version))
        }
        if !o.network.isEmpty {
            var networks: [NetworkKind] = []
            for name in o.network {
                guard let network = NetworkKind(rawValue: name) else { throw RuleError("unknown network: \(name)") }
                networks.append(network)
            }
            items.append(.network(networks))
        }
        if !o.authUser.isEmpty { items.append(.authUser(o.authUser)) }
        if !o.protocol.isEmpty { items.append(.sniffedProtocol(o.protocol)) }
        if !o.client.isEmpty { items.append(.client(o.client)) }
        if !o.domain.isEmpty || !o.domainSuffix.isEmpty { items.append(try .domain(o.domain, suffixes: o.domainSuffix)) }
        if !o.domainKeyword.isEmpty { items.append(.domainKeyword(o.domainKeyword)) }
        if !o.domainRegex.isEmpty { items.append(try .domainRegex(o.domainRegex)) }
        if !o.geosite.isEmpty {
            throw RuleError("geosite database is deprecated in sing-box 1.8.0 and removed in sing-box 1.12.0")
        }
        if !o.sourceGeoIP.isEmpty || !o.geoip.isEmpty {
            throw RuleError("geoip database is deprecated in sing-box 1.8.0 and removed in sing-box 1.12.0")
        }
        if !o.sourceIPCIDR.isEmpty { items.append(try .ipCIDR(isSource: true, o.sourceIPCIDR)) }
        if o.sourceIPIsPrivate { items.append(.ipIsPrivate(isSource: true)) }
        if !o.ipCIDR.isEmpty { items.append(try .ipCIDR(isSource: false, o.ipCIDR)) }
        if o.ipIsPrivate { items.append(.ipIsPrivate(isSource: false)) }
        if !o.sourcePort.isEmpty { items.append(.port(isSource: true, o.sourcePort)) }
        if !o.sourcePortRange.isEmpty { items.append(try .portRange(isSource: true, o.sourcePortRange)) }
        if !o.port.isEmpty { items.append(.port(isSource: false, o.port)) }
        if !o.portRange.isEmpty { items.append(try .portRange(isSource: false, o.portRange)) }
        // Items this build does not evaluate yet: refuse rather than never match.
        if !o.processName.isEmpty { items.append(.processName(o.processName)) }
        if !o.processPath.isEmpty { items.append(.processPath(o.processPath)) }
        if !o.processPathRegex.isEmpty { items.append(try .processPathRegex(o.processPathRegex)) }
        if !o.user.isEmpty { items.append(.user(o.user)) }
        if !o.userID.isEmpty { items.append(.userID(o.userID)) }
        // Go on Linux builds these and they never match (route/rule/rule_default.go): no Android
        // package, no platform network or WIFI state, and no Clash API to set a mode.
        if !o.packageName.isEmpty { items.append(.unavailable("package_name", o.packageName)) }
        if !o.networkType.isEmpty { items.append(.unavailable("network_type", o.networkType.map(\.rawValue))) }
        if o.networkIsExpensive { items.append(.unavailable("network_is_expensive", [])) }
        if o.networkIsConstrained { items.append(.unavailable("network_is_constrained", [])) }
        if !o.wifiSSID.isEmpty { items.append(.unavailable("wifi_ssid", o.wifiSSID)) }
        if !o.wifiBSSID.isEmpty { items.append(.unavailable("wifi_bssid", o.wifiBSSID)) }
        if let mode = o.clashMode, !mode.isEmpty { items.append(.clashMode(mode)) }
        if !o.ruleSet.isEmpty {
            var sets: [RuleSet] = []
            for tag in o.ruleSet {
                guard let set = ruleSets[tag] else { throw RuleError("rule-set not found: \(tag)") }
                sets.append(set)
            }
            let matchSource = o.ruleSetIPCIDRMatchSource || o.legacyRuleSetIPCIDRMatchSource
            items.append(matchSource ? .ruleSetIPCIDR(sets, matchSource: true, acceptEmpty: false) : .ruleSet(sets))
        }
        self.init(items: items, invert: o.invert)
    }
}

extension LogicalRule {
    package init(options o: LogicalRuleOptions, ruleSets: [String: RuleSet] = [:]) throws(RuleError) {
        guard let mode = Mode(rawValue: o.mode) else { throw RuleError("unknown logical mode: \(o.mode)") }
        var rules: [HeadlessRule] = []
        for (index, sub) in o.rules.enumerated() {
            do {
                rules.append(try HeadlessRule(options: sub, ruleSets: ruleSets))
            } catch {
                throw RuleError("sub rule[\(index)]: \(error.message)")
            }
        }
        self.init(mode: mode, rules: rules, invert: o.invert)
    }
}
