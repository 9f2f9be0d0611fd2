// From a binary rule-set to source options (decompile) and to matching rules (load).
package import Config
import Adapter

extension BinaryRuleSet {
    /// The source form (Go's `srs.Read(reader, recover: true)` as `decompile` prints it): domain
    /// sets dumped to `domain` / `domain_suffix`, IP ranges to their fewest prefixes.
    /// Throws for AdGuard items (Go's `decompile` refuses them, same wording) and unknown network types.
    package func sourceOptions() throws(RuleError) -> PlainRuleSetOptions {
        var rules: [HeadlessRuleOptions] = []
        for rule in self.rules { rules.append(try Self.options(rule)) }
        return PlainRuleSetOptions(version: version, rules: rules)
    }

    static func options(_ rule: Rule) throws(RuleError) -> HeadlessRuleOptions {
        switch rule {
        case .logical(let mode, let rules, let invert):
            var subs: [HeadlessRuleOptions] = []
            for sub in rules { subs.append(try options(sub)) }
            return .logical(mode: mode.rawValue, rules: subs, invert: invert)
        case .default(let r):
            // Go's decompile dumps the matcher (srs.Read with recover) and then refuses any rule
            // whose dump is not empty.
            if let adGuard = r.adGuardDomain, !adGuard.dump().isEmpty {
                throw RuleError("unable to decompile binary AdGuard rules to rule-set.")
            }
            var o = DefaultHeadlessRuleOptions()
            o.queryType = r.queryType.map(DNSQueryType.init)
            o.network = r.network
            if let domain = r.domain { (o.domain, o.domainSuffix) = domain.dump() }
            o.domainKeyword = r.domainKeyword
            o.domainRegex = r.domainRegex
            o.sourceIPCIDR = r.sourceIPSet?.prefixes().map(\.description) ?? []
            o.ipCIDR = r.ipSet?.prefixes().map(\.description) ?? []
            o.sourcePort = r.sourcePort
            o.sourcePortRange = r.sourcePortRange
            o.port = r.port
            o.portRange = r.portRange
            o.processName = r.processName
            o.processPath = r.processPath
            o.processPathRegex = r.processPathRegex
            o.packageName = r.packageName
            for code in r.networkType {
                guard let type = interfaceType(code) else { throw RuleError("unknown interface type: \(code)") }
                o.networkType.append(type)
            }
            o.networkIsExpensive = r.networkIsExpensive
            o.networkIsConstrained = r.networkIsConstrained
            o.wifiSSID = r.wifiSSID
            o.wifiBSSID = r.wifiBSSID
            o.invert = r.invert
            return .default(o)
        }
    }

    /// Matching rules straight from the file's structures: the succinct domain set and the IP
    /// ranges are used as read, nothing is rebuilt. Version 0 is refused as Go's `Upgrade` does.
    package func compile() throws(RuleError) -> [HeadlessRule] {
        guard (1...Self.currentVersion).contains(version) else { throw RuleError("unknown rule-set version: \(version)") }
        var out: [HeadlessRule] = []
        for (index, rule) in rules.enumerated() {
            do { out.append(try Self.compile(rule)) } catch {
                throw RuleError("parse rule_set.rules.[\(index)]: \(error.message)")
            }
        }
        return out
    }

    static func compile(_ rule: Rule) throws(RuleError) -> HeadlessRule {
        switch rule {
        case .logical(let mode, let rules, let invert):
            var subs: [HeadlessRule] = []
            for (index, sub) in rules.enumerated() {
                do { subs.append(try compile(sub)) } catch { throw RuleError("sub rule[\(index)]: \(error.message)") }
            }
            return .logical(LogicalRule(mode: mode, rules: subs, invert: invert))
        case .default(let r):
            var items: [RuleItem] = []
            // query_type is carried but not matched: Go 1.12's NewDefaultHeadlessRule builds no
            // item for it (route/rule/rule_headless.go).
            if !r.network.isEmpty { items.append(try .network(r.network)) }
            if let domain = r.domain { items.append(.domain(DomainMatcher(succinct: domain), domains: [], suffixes: [])) }
            if !r.domainKeyword.isEmpty { items.append(.domainKeyword(r.domainKeyword)) }
            if !r.domainRegex.isEmpty { items.append(try .domainRegex(r.domainRegex)) }
            if let set = r.sourceIPSet { items.append(.ipSet(isSource: true, set, text: [])) }
            if let set = r.ipSet { items.append(.ipSet(isSource: false, set, text: [])) }
            if !r.sourcePort.isEmpty { items.append(.port(isSource: true, r.sourcePort)) }
            if !r.sourcePortRange.isEmpty { items.append(try .portRange(isSource: true, r.sourcePortRange)) }
            if !r.port.isEmpty { items.append(.port(isSource: false, r.port)) }
            if !r.portRange.isEmpty { items.append(try .portRange(isSource: false, r.portRange)) }
            if !r.processName.isEmpty { items.append(.processName(r.processName)) }
            if !r.processPath.isEmpty { items.append(.processPath(r.processPath)) }
            if !r.processPathRegex.isEmpty { items.append(try .processPathRegex(r.processPathRegex)) }
            // Android and Apple items: Go on Linux builds them and they never match.
            if !r.packageName.isEmpty { items.append(.unavailable("package_name", r.packageName)) }
            if !r.networkType.isEmpty {
                items.append(.unavailable("network_type", r.networkType.map { interfaceType($0)?.rawValue ?? "\($0)" }))
            }
            if r.networkIsExpensive { items.append(.unavailable("network_is_expensive", [])) }
            if r.networkIsConstrained { items.append(.unavailable("network_is_constrained", [])) }
            if !r.wifiSSID.isEmpty { items.append(.unavailable("wifi_ssid", r.wifiSSID)) }
            if !r.wifiBSSID.isEmpty { items.append(.unavailable("wifi_bssid", r.wifiBSSID)) }
            // Last, as Go's NewDefaultHeadlessRule appends it (a destination address item).
            if let adGuard = r.adGuardDomain { items.append(.adGuardDomain(adGuard)) }
            return .default(DefaultRule(items: items, invert: r.invert))
        }
    }
}
