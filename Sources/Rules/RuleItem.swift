// RuleItem: one condition of a default rule, with sing-box's `String()` for logs.
package import Adapter
import Config

/// One condition. Which group it belongs to (and so how it combines) is `RuleItem.group`.
package enum RuleItem: Sendable, CustomStringConvertible {
    case inbound([String])
    case ipVersion(Int)
    case network([NetworkKind])
    case authUser([String])
    case sniffedProtocol([String])
    case client([String])
    /// `domain` and `domain_suffix` share one item, as in Go.
    case domain(DomainMatcher, domains: [String], suffixes: [String])
    case domainKeyword([String])
    case domainRegex([DomainRegex])
    /// AdGuard filter rules (`adguard_domain`, only inside a converted `.srs`).
    case adGuardDomain(AdGuardDomainMatcher)
    case ipCIDR(isSource: Bool, [IPPrefix], text: [String])
    case ipIsPrivate(isSource: Bool)
    case port(isSource: Bool, [UInt16])
    case portRange(isSource: Bool, [ClosedRange<UInt16>], text: [String])
    /// `rule_set`: any rule of any named set matches. Combined like a plain item (AND); Go 1.12
    /// also lets a set's address items satisfy the outer rule's address groups, which this does not.
    case ruleSet([RuleSet])
    /// `rule_set` with `rule_set_ip_cidr_match_source` / `rule_set_ip_cidr_accept_empty`.
    case ruleSetIPCIDR([RuleSet], matchSource: Bool, acceptEmpty: Bool)
    /// `ip_cidr` / `source_ip_cidr` as merged ranges (binary rule-sets and large lists): a binary
    /// search instead of a scan over prefixes.
    /// `text` is the configured list; empty for a binary rule-set (described as `<binary>`).
    case ipSet(isSource: Bool, IPRangeSet, text: [String])
    /// `query_type`: DNS record types. A routed connection has no query type, so it never
    /// matches there (Go: `metadata.QueryType == 0` → false); DNS rules give it meaning.
    case queryType([UInt16])
    /// `process_name`: the owning executable's file name (the router looks the process up).
    case processName([String])
    /// `process_path`: the owning executable's full path.
    case processPath([String])
    /// `process_path_regex`: a match anywhere in the executable's path.
    case processPathRegex([DomainRegex])
    /// `user`: the socket owner's user name.
    case user([String])
    /// `user_id`: the socket owner's uid.
    case userID([Int32])
    /// An item whose source of truth does not exist here: Android/Apple-only items (`package_name`,
    /// `network_type`, `wifi_ssid`, …). Go on Linux builds them and they never match, so neither
    /// does this (an inverted rule then matches).
    case unavailable(String, [String])
    /// `clash_mode`: the Clash API's mode, compared ignoring case (Go's `strings.EqualFold`); never
    /// matches without a Clash API (the flow carries no mode then).
    case clashMode(String)

    /// How items combine: items of one address/port group are OR-ed, groups and plain items AND-ed.
    package enum Group: Sendable {
        case plain, sourceAddress, sourcePort, destinationAddress, destinationIPCIDR, destinationPort
    }

    package var group: Group {
        switch self {
        case .inbound, .ipVersion, .network, .authUser, .sniffedProtocol, .client, .ruleSet, .unavailable, .clashMode, .queryType,
             .processName, .processPath, .processPathRegex, .user, .userID, .ruleSetIPCIDR: .plain
        case .domain, .domainKeyword, .domainRegex, .adGuardDomain: .destinationAddress
        case .ipCIDR(let isSource, _, _): isSource ? .sourceAddress : .destinationIPCIDR
        case .ipIsPrivate(let isSource): isSource ? .sourceAddress : .destinationIPCIDR
        case .ipSet(let isSource, _, _): isSource ? .sourceAddress : .destinationIPCIDR
        case .port(let isSource, _), .portRange(let isSource, _, _): isSource ? .sourcePort : .destinationPort
        }
    }

    /// True for `rule_set` items (they do not count as evaluated items for Go's `DidMatch`).
    package var isRuleSet: Bool {
        switch self {
        case .ruleSet, .ruleSetIPCIDR: true
        default: false
        }
    }

    /// Evaluates the item against a flow with a fresh match state.
    package func matches(_ metadata: FlowMetadata) -> Bool {
        var state = RuleMatchState()
        return matches(metadata, state: &state)
    }

    /// Evaluates the item; `rule_set` items run their rules in `state` and `ip_cidr` items read
    /// the rule-set flags from it (Go's `RuleSetItem.Match` and `IPCIDRItem.Match`).
    package func matches(_ metadata: FlowMetadata, state: inout RuleMatchState) -> Bool {
        switch self {
        case .ruleSet(let sets):
            state.ipCIDRMatchSource = false
            state.ipCIDRAcceptEmpty = false
            return sets.contains { $0.matches(metadata, state: &state) }
        case .ruleSetIPCIDR(let sets, let matchSource, let acceptEmpty):
            state.ipCIDRMatchSource = matchSource
            state.ipCIDRAcceptEmpty = acceptEmpty
            return sets.contains { $0.matches(metadata, state: &state) }
        case .ipCIDR(false, let prefixes, _) where state.ipCIDRMatchSource || state.ipCIDRAcceptEmpty:
            if state.ipCIDRMatchSource {
                guard let ip = metadata.source?.ip else { return false }
                return prefixes.contains { $0.contains(ip) }
            }
            if metadata.destination.ip == nil && metadata.destinationAddresses.isEmpty { return true }
            return matchesStateless(metadata)
        case .ipSet(false, let set, _) where state.ipCIDRMatchSource || state.ipCIDRAcceptEmpty:
            if state.ipCIDRMatchSource {
                guard let ip = metadata.source?.ip else { return false }
                return set.contains(ip)
            }
            if metadata.destination.ip == nil && metadata.destinationAddresses.isEmpty { return true }
            return matchesStateless(metadata)
        default:
            return matchesStateless(metadata)
        }
    }

    private func matchesStateless(_ metadata: FlowMetadata) -> Bool {
        switch self {
        case .inbound(let tags):
            return tags.contains(metadata.inbound)
        case .ipVersion(let version):
            // Go sets IPVersion from the destination only (route/route.go matchRule), before any
            // override, so a domain destination never matches; the source's family does not count.
            guard let ip = metadata.destination.ip ?? metadata.originalDestination?.ip else { return false }
            return (ip.unmapped.isIPv4 ? 4 : 6) == version
        case .network(let networks):
            return networks.contains(metadata.network)
        case .authUser(let users):
            guard let user = metadata.user else { return false }
            return users.contains(user)
        case .sniffedProtocol(let protocols):
            guard let sniffed = metadata.sniffedProtocol else { return false }
            return protocols.contains(sniffed)
        case .client(let clients):
            guard let client = metadata.sniffedClient else { return false }
            return clients.contains(client)
        case .domain(let matcher, _, _):
            guard let host = metadata.matchDomain, !host.isEmpty else { return false }
            return matcher.matches(host.lowercased())
        case .domainKeyword(let keywords):
            guard let host = metadata.matchDomain, !host.isEmpty else { return false }
            let lower = host.lowercased()
            return keywords.contains { lower.contains($0) }
        case .domainRegex(let regexes):
            guard let host = metadata.matchDomain, !host.isEmpty else { return false }
            let lower = host.lowercased()  // Go lowercases before the regex too (rule_item_domain_regex.go)
            return regexes.contains { $0.matches(lower) }
        case .adGuardDomain(let matcher):
            // rule_item_adguard.go: the sniffed domain, else the destination's, lowercased.
            guard let host = metadata.matchDomain, !host.isEmpty else { return false }
            return matcher.matches(host.lowercased())
        case .ipCIDR(let isSource, let prefixes, _):
            if isSource {
                guard let ip = metadata.source?.ip else { return false }
                return prefixes.contains { $0.contains(ip) }
            }
            if let ip = metadata.destination.ip { return prefixes.contains { $0.contains(ip) } }
            return metadata.destinationAddresses.contains { ip in prefixes.contains { $0.contains(ip) } }
        case .ipIsPrivate(let isSource):
            if isSource { return metadata.source?.ip?.isPrivate ?? false }
            if let ip = metadata.destination.ip { return ip.isPrivate }
            return metadata.destinationAddresses.contains { $0.isPrivate }
        case .port(let isSource, let ports):
            let port = isSource ? metadata.source?.port : metadata.destination.port
            guard let port else { return false }
            return ports.contains(port)
        case .portRange(let isSource, let ranges, _):
            let port = isSource ? metadata.source?.port : metadata.destination.port
            guard let port else { return false }
            return ranges.contains { $0.contains(port) }
        case .ruleSet(let sets):
            return sets.contains { $0.matches(metadata) }
        case .ruleSetIPCIDR(let sets, _, _):
            return sets.contains { $0.matches(metadata) }
        case .ipSet(let isSource, let set, _):
            if isSource {
                guard let ip = metadata.source?.ip else { return false }
                return set.contains(ip)
            }
            if let ip = metadata.destination.ip { return set.contains(ip) }
            return metadata.destinationAddresses.contains { set.contains($0) }
        case .unavailable, .queryType:
            return false
        case .clashMode(let mode):
            guard let current = metadata.clashMode else { return false }
            return current.lowercased() == mode.lowercased()
        // Go: no process info → false (route/rule/rule_item_process_name.go and friends).
        case .processName(let names):
            guard let process = metadata.process else { return false }
            return names.contains(process.path.isEmpty ? "." : process.name)  // filepath.Base("") is "."
        case .processPath(let paths):
            guard let process = metadata.process else { return false }
            return paths.contains(process.path)
        case .processPathRegex(let regexes):
            guard let process = metadata.process else { return false }
            return regexes.contains { $0.matches(process.path) }
        case .user(let users):
            guard let process = metadata.process, !process.userName.isEmpty else { return false }
            return users.contains(process.userName)
        case .userID(let ids):
            guard let process = metadata.process, process.userID != -1 else { return false }
            return ids.contains(process.userID)
        }
    }

    /// Go's description: `domain_suffix=example.com`, `ip_cidr=[10.0.0.0/8 fc00::/7]`, lists over
    /// three entries shortened to `[a b c...]` where Go shortens them.
    package var description: String {
        switch self {
        case .inbound(let tags): return RuleItem.list("inbound", tags, shorten: false)
        case .ipVersion(let version): return "ip_version=\(version)"
        case .network(let networks): return RuleItem.list("network", networks.map(\.rawValue), shorten: false)
        case .authUser(let users): return RuleItem.list("auth_user", users, shorten: false)
        case .sniffedProtocol(let protocols): return RuleItem.list("protocol", protocols, shorten: false)
        case .client(let clients): return RuleItem.list("client", clients, shorten: false)
        case .domain(let matcher, let domains, let suffixes):
            if matcher.isBinary { return "domain/domain_suffix=<binary>" }
            var parts: [String] = []
            if !domains.isEmpty { parts.append(RuleItem.list("domain", domains, shorten: true)) }
            if !suffixes.isEmpty { parts.append(RuleItem.list("domain_suffix", suffixes, shorten: true)) }
            return parts.joined(separator: " ")
        case .domainKeyword(let keywords): return RuleItem.list("domain_keyword", keywords, shorten: true)
        case .domainRegex(let regexes):
            // Go's NewDomainRegexItem keeps the first three but, unlike its siblings, prints no "...".
            let patterns = regexes.map(\.pattern)
            if patterns.count > 3 { return "domain_regex=[\(patterns.prefix(3).joined(separator: " "))]" }
            return RuleItem.list("domain_regex", patterns, shorten: false)
        case .adGuardDomain: return "!adguard_domain_rules=<binary>"  // sic: Go's String()
        case .ipCIDR(let isSource, _, let text): return RuleItem.list(isSource ? "source_ip_cidr" : "ip_cidr", text, shorten: true)
        case .ipIsPrivate(let isSource): return isSource ? "source_ip_is_private=true" : "ip_is_private=true"
        case .port(let isSource, let ports): return RuleItem.list(isSource ? "source_port" : "port", ports.map(String.init), shorten: false)
        case .portRange(let isSource, _, let text): return RuleItem.list(isSource ? "source_port_range" : "port_range", text, shorten: false)
        case .ruleSet(let sets), .ruleSetIPCIDR(let sets, _, _): return RuleItem.list("rule_set", sets.map(\.tag), shorten: false)
        case .ipSet(let isSource, _, let text):
            return RuleItem.list(isSource ? "source_ip_cidr" : "ip_cidr", text.isEmpty ? ["<binary>"] : text, shorten: true)
        case .processName(let names): return RuleItem.list("process_name", names, shorten: false)
        case .processPath(let paths): return RuleItem.list("process_path", paths, shorten: false)
        case .processPathRegex(let regexes): return RuleItem.list("process_path_regex", regexes.map(\.pattern), shorten: false)
        case .user(let users): return RuleItem.list("user", users, shorten: false)
        case .userID(let ids): return RuleItem.list("user_id", ids.map(String.init), shorten: false)
        case .queryType(let types):
            return RuleItem.list("query_type", types.map(RuleItem.queryTypeName), shorten: false)
        case .unavailable(let name, let values): return values.isEmpty ? "\(name)=true" : RuleItem.list(name, values, shorten: true)
        case .clashMode(let mode): return "clash_mode=\(mode)"
        }
    }

    /// Go's `DNSQueryTypeToString`: the mnemonic when known, else the number.
    static func queryTypeName(_ type: UInt16) -> String {
        if case .string(let name) = DNSQueryType(type).toJSON() { return name }
        return String(type)
    }

    static func list(_ key: String, _ values: [String], shorten: Bool) -> String {
        if values.count == 1 { return "\(key)=\(values[0])" }
        if shorten && values.count > 3 { return "\(key)=[\(values.prefix(3).joined(separator: " "))...]" }
        return "\(key)=[\(values.joined(separator: " "))]"
    }

    // MARK: - Validated constructors (throw sing-box's messages)

    /// `domain` / `domain_suffix`; empty strings are rejected as Go rejects them.
    package static func domain(_ domains: [String], suffixes: [String]) throws(RuleError) -> RuleItem {
        if domains.contains("") { throw RuleError("domain: empty item is not allowed") }
        if suffixes.contains("") { throw RuleError("domain_suffix: empty item is not allowed") }
        return .domain(DomainMatcher(domains: domains, suffixes: suffixes), domains: domains, suffixes: suffixes)
    }

    /// `ip_cidr` / `source_ip_cidr`: prefixes or bare addresses.
    package static func ipCIDR(isSource: Bool, _ texts: [String]) throws(RuleError) -> RuleItem {
        var prefixes: [IPPrefix] = []
        for (index, text) in texts.enumerated() {
            guard let prefix = IPPrefix(text) else {
                throw RuleError("\(isSource ? "source_ip_cidr" : "ipcidr"): parse [\(index)]: netip.ParsePrefix(\"\(text)\"): bad prefix")
            }
            prefixes.append(prefix)
        }
        return .ipCIDR(isSource: isSource, prefixes, text: texts)
    }

    /// `ip_cidr` / `source_ip_cidr` as a range set, for lists too long to scan per flow.
    package static func ipSet(isSource: Bool, _ texts: [String]) throws(RuleError) -> RuleItem {
        .ipSet(isSource: isSource, try SRSWriter.cidrs(texts, field: isSource ? "source_ip_cidr" : "ipcidr"), text: texts)
    }

    /// `network`: "tcp" / "udp".
    package static func network(_ names: [String]) throws(RuleError) -> RuleItem {
        var networks: [NetworkKind] = []
        for name in names {
            guard let network = NetworkKind(rawValue: name) else { throw RuleError("unknown network: \(name)") }
            networks.append(network)
        }
        return .network(networks)
    }

    /// `port_range` / `source_port_range`: `"1000:2000"`, `":3000"`, `"4000:"`.
    package static func portRange(isSource: Bool, _ texts: [String]) throws(RuleError) -> RuleItem {
        var ranges: [ClosedRange<UInt16>] = []
        let field = isSource ? "source_port_range" : "port_range"
        for text in texts {
            guard let colon = text.firstIndex(of: ":") else { throw RuleError("\(field): bad port range: \(text)") }
            let startText = text[..<colon], endText = text[text.index(after: colon)...]
            let start = startText.isEmpty ? 0 : UInt16(startText)
            let end = endText.isEmpty ? UInt16.max : UInt16(endText)
            guard let start, let end else { throw RuleError("\(field): bad port range: \(text)") }
            ranges.append(start <= end ? start...end : end...start)  // Go never matches an inverted range
            if start > end { ranges.removeLast() }
        }
        return .portRange(isSource: isSource, ranges, text: texts)
    }

    /// `process_path_regex`, with Go's error prefix.
    package static func processPathRegex(_ patterns: [String]) throws(RuleError) -> RuleItem {
        var regexes: [DomainRegex] = []
        for pattern in patterns {
            do { regexes.append(try DomainRegex(pattern)) } catch {
                throw RuleError("process_path_regex: parse expression \(pattern): \(error)")
            }
        }
        return .processPathRegex(regexes)
    }

    /// True for items that need the flow's owning process looked up first.
    package var needsProcess: Bool {
        switch self {
        case .processName, .processPath, .processPathRegex, .user, .userID: true
        case .ruleSet(let sets), .ruleSetIPCIDR(let sets, _, _): sets.contains { $0.needsProcess }
        default: false
        }
    }

    /// `domain_regex`.
    package static func domainRegex(_ patterns: [String]) throws(RuleError) -> RuleItem {
        var regexes: [DomainRegex] = []
        for pattern in patterns {
            do { regexes.append(try DomainRegex(pattern)) } catch {
                throw RuleError("domain_regex: parse expression \(pattern): \(error)")
            }
        }
        return .domainRegex(regexes)
    }
}

/// A compiled `domain_regex` pattern (Swift Regex; RE2 and Swift syntax agree on the common subset).
package struct DomainRegex: @unchecked Sendable {
    // Regex is immutable once compiled; matching does not mutate it.
    private let regex: Regex<AnyRegexOutput>
    package let pattern: String

    package init(_ pattern: String) throws {
        self.regex = try Regex(pattern)
        self.pattern = pattern
    }

    /// Go's `regexp.MatchString`: a match anywhere in the host.
    package func matches(_ host: String) -> Bool {
        (try? regex.firstMatch(in: host)) != nil
    }
}
