// DNS rules (sing-box route/rule/rule_dns.go): conditions over a query and the flow that sent it,
// each paired with a DNS action.
//
// Matching follows Go's abstractDefaultRule with the DNS twist:
// 1. items are grouped as in route rules: plain items AND-ed; within source address, source port,
//    destination address (+ destination IP CIDR) and destination port groups any item may match;
// 2. the first pass (`matches`) ignores destination IP items (ip_cidr, ip_is_private,
//    ip_accept_any and rule-sets holding ip_cidr): the response is not known yet. A rule that has
//    only such items "did not match anything" and so matches, as in Go;
// 3. a rule with such items has an address limit: after the exchange, `matchesAddressLimit` runs
//    the same items again, from the first pass's state, against the response's addresses; a
//    rejected response moves matching on to the next rule;
// 4. match state (which groups already matched) is shared with rule-set rules, as Go shares its
//    `InboundContext` flags, so a set's domain item satisfies the outer rule's address group.

package import Adapter
package import Config
package import Rules

/// What a DNS rule sees: the asking flow's metadata (destination replaced by the queried domain,
/// as Go resets `Destination` and sets `Domain`) and the query type when it is an exchange.
package struct DNSRuleInput: Sendable {
    package var metadata: FlowMetadata
    /// The question's type; nil for a lookup (Go leaves `QueryType` zero there).
    package var queryType: UInt16?
    /// No flow asked (a lookup by the box itself): flow items such as `network` never match, as
    /// Go's empty `InboundContext` has no network.
    package var isFlowless: Bool

    /// Builds the input for a query about `domain` from a flow (`base`) or from nowhere (a lookup
    /// made by the box itself: Go's empty `InboundContext`).
    package init(domain: String, queryType: UInt16?, base: FlowMetadata?) {
        var metadata = base ?? FlowMetadata(inbound: "", inboundType: "", network: .udp, source: nil,
                                            destination: Destination(domain: domain, port: 0))
        if base == nil { metadata.network = .udp }
        metadata.destination = Destination(domain: domain, port: 0)
        metadata.sniffedDomain = nil
        metadata.destinationAddresses = []
        self.metadata = metadata
        self.queryType = queryType
        isFlowless = base == nil
        // Go: an A question makes IPVersion 4, AAAA 6; other types keep the flow's.
        switch queryType {
        case DNSType.a.rawValue: ipVersion = 4
        case DNSType.aaaa.rawValue: ipVersion = 6
        default: ipVersion = base.flatMap { $0.source?.ip.map { $0.unmapped.isIPv4 ? 4 : 6 } }
        }
    }

    /// Go's `metadata.IPVersion` for this query.
    package var ipVersion: Int?
}

/// Go's per-match flags (`InboundContext.ResetRuleCache` clears them between top-level rules).
struct DNSRuleMatchState {
    var sourceAddressMatch = false
    var sourcePortMatch = false
    var destinationAddressMatch = false
    var destinationPortMatch = false
    var didMatch = false
    var ipCIDRMatchSource = false
    var ipCIDRAcceptEmpty = false
    /// Set in the first pass: the response is not known, destination IP items are skipped.
    var ignoreDestinationIPCIDR = false
}

/// One item of a DNS rule: a shared route item or one only DNS rules have.
package enum DNSRuleItem: Sendable, CustomStringConvertible {
    case common(RuleItem)
    /// `query_type`: the question's type is one of these.
    case queryType([UInt16])
    /// `ip_accept_any`: the response has any address.
    case ipAcceptAny
    /// `outbound` (deprecated in 1.12): the outbound whose dialer asks. Our dialers' lookups carry
    /// no outbound tag, so only `any` can match, and only lookups made without a flow.
    case outbound([String])
    /// `rule_set` with its two modifiers; the sets' rules are compiled to DNS conditions once.
    case ruleSet(tags: [String], rules: [DNSRuleCondition], matchSource: Bool, acceptEmpty: Bool, containsIPCIDR: Bool)

    package var description: String {
        switch self {
        case .common(let item): item.description
        case .queryType(let types):
            types.count == 1 ? "query_type=\(DNSType(types[0]))" : "query_type=[\(types.map { DNSType($0).description }.joined(separator: " "))]"
        case .ipAcceptAny: "ip_accept_any=true"
        case .outbound(let tags): tags.count == 1 ? "outbound=\(tags[0])" : "outbound=[\(tags.joined(separator: " "))]"
        case .ruleSet(let tags, _, _, _, _): tags.count == 1 ? "rule_set=\(tags[0])" : "rule_set=[\(tags.joined(separator: " "))]"
        }
    }
}

/// A compiled DNS rule condition: a default rule (grouped items) or a logical one.
package indirect enum DNSRuleCondition: Sendable, CustomStringConvertible {
    case `default`(DefaultDNSRuleCondition)
    case logical(mode: LogicalRule.Mode, rules: [DNSRuleCondition], invert: Bool)

    /// Go's `WithAddressLimit`: some destination IP item needs the response to decide.
    /// True when the rule's items read the owning process (Go's `isProcessDNSRule`, through logical
    /// rules; the box checks every rule-set itself), so the router must look it up.
    package var readsProcess: Bool {
        switch self {
        case .default(let rule):
            rule.all.contains { item in
                if case .common(let common) = item { return common.needsProcess }
                return false
            }
        case .logical(_, let rules, _): rules.contains(where: \.readsProcess)
        }
    }

    package var hasAddressLimit: Bool {
        switch self {
        case .default(let rule):
            if !rule.destinationIPCIDR.isEmpty { return true }
            return rule.plain.contains { item in
                if case .ruleSet(_, _, let matchSource, _, let containsIPCIDR) = item { return containsIPCIDR && !matchSource }
                return false
            }
        case .logical(_, let rules, _): return rules.contains(where: \.hasAddressLimit)
        }
    }

    /// The first pass (Go's `DNSRule.Match`): destination IP items are ignored.
    package func matches(_ input: DNSRuleInput) -> Bool {
        var state = DNSRuleMatchState()
        return evaluate(input, &state, ignoringDestinationIPCIDR: true)
    }

    /// The second pass on a response's addresses (Go's `MatchAddressLimit`), from the state the
    /// first pass left behind.
    package func matchesAddressLimit(_ input: DNSRuleInput, addresses: [IPAddress]) -> Bool {
        var state = DNSRuleMatchState()
        var primed = input
        // Replay the first pass to rebuild Go's leftover flags, then check the addresses.
        _ = evaluate(primed, &state, ignoringDestinationIPCIDR: true)
        primed.metadata.destinationAddresses = addresses
        return evaluate(primed, &state, ignoringDestinationIPCIDR: false)
    }

    fileprivate func evaluate(_ input: DNSRuleInput, _ state: inout DNSRuleMatchState, ignoringDestinationIPCIDR: Bool) -> Bool {
        switch self {
        case .default(let rule):
            state.ignoreDestinationIPCIDR = ignoringDestinationIPCIDR
            return rule.evaluate(input, &state)
        case .logical(let mode, let rules, let invert):
            // Go resets the cache before each sub-rule.
            let result: Bool
            switch mode {
            case .and:
                result = rules.allSatisfy { rule in
                    var sub = DNSRuleMatchState()
                    return rule.evaluate(input, &sub, ignoringDestinationIPCIDR: ignoringDestinationIPCIDR)
                }
            case .or:
                result = rules.contains { rule in
                    var sub = DNSRuleMatchState()
                    return rule.evaluate(input, &sub, ignoringDestinationIPCIDR: ignoringDestinationIPCIDR)
                }
            }
            return result != invert
        }
    }

    package var description: String {
        switch self {
        case .default(let rule):
            return rule.description
        case .logical(let mode, let rules, let invert):
            let text = rules.map(\.description).joined(separator: mode == .and ? " && " : " || ")
            return invert ? "!(\(text))" : text
        }
    }
}

/// A default DNS rule's items, grouped once at build time.
package struct DefaultDNSRuleCondition: Sendable, CustomStringConvertible {
    package let all: [DNSRuleItem]
    package let invert: Bool
    let plain: [DNSRuleItem]
    let sourceAddress: [DNSRuleItem]
    let sourcePort: [DNSRuleItem]
    let destinationAddress: [DNSRuleItem]
    let destinationIPCIDR: [DNSRuleItem]
    let destinationPort: [DNSRuleItem]

    package init(items: [DNSRuleItem], invert: Bool) {
        all = items
        self.invert = invert
        var plain: [DNSRuleItem] = [], sourceAddress: [DNSRuleItem] = [], sourcePort: [DNSRuleItem] = []
        var destinationAddress: [DNSRuleItem] = [], destinationIPCIDR: [DNSRuleItem] = [], destinationPort: [DNSRuleItem] = []
        for item in items {
            switch item {
            case .queryType, .ruleSet, .outbound: plain.append(item)
            case .ipAcceptAny: destinationIPCIDR.append(item)
            case .common(let common):
                switch common.group {
                case .plain: plain.append(item)
                case .sourceAddress: sourceAddress.append(item)
                case .sourcePort: sourcePort.append(item)
                case .destinationAddress: destinationAddress.append(item)
                case .destinationIPCIDR: destinationIPCIDR.append(item)
                case .destinationPort: destinationPort.append(item)
                }
            }
        }
        self.plain = plain
        self.sourceAddress = sourceAddress
        self.sourcePort = sourcePort
        self.destinationAddress = destinationAddress
        self.destinationIPCIDR = destinationIPCIDR
        self.destinationPort = destinationPort
    }

    /// Go's `abstractDefaultRule.Match`, step for step (the flags in `state` outlive this call).
    func evaluate(_ input: DNSRuleInput, _ state: inout DNSRuleMatchState) -> Bool {
        if all.isEmpty { return true }
        let ignoreIPCIDR = state.ignoreDestinationIPCIDR
        func any(_ items: [DNSRuleItem], _ state: inout DNSRuleMatchState) -> Bool {
            for item in items where Self.matches(item, input, &state) { return true }
            return false
        }
        if !sourceAddress.isEmpty && !state.sourceAddressMatch {
            state.didMatch = true
            if any(sourceAddress, &state) { state.sourceAddressMatch = true }
        }
        if !sourcePort.isEmpty && !state.sourcePortMatch {
            state.didMatch = true
            if any(sourcePort, &state) { state.sourcePortMatch = true }
        }
        if !destinationAddress.isEmpty && !state.destinationAddressMatch {
            state.didMatch = true
            if any(destinationAddress, &state) { state.destinationAddressMatch = true }
        }
        if !ignoreIPCIDR && !destinationIPCIDR.isEmpty && !state.destinationAddressMatch {
            state.didMatch = true
            if any(destinationIPCIDR, &state) { state.destinationAddressMatch = true }
        }
        if !destinationPort.isEmpty && !state.destinationPortMatch {
            state.didMatch = true
            if any(destinationPort, &state) { state.destinationPortMatch = true }
        }
        for item in plain {
            if case .ruleSet = item {} else { state.didMatch = true }
            if !Self.matches(item, input, &state) { return invert }
        }
        if !sourceAddress.isEmpty && !state.sourceAddressMatch { return invert }
        if !sourcePort.isEmpty && !state.sourcePortMatch { return invert }
        if (!ignoreIPCIDR && !destinationIPCIDR.isEmpty || !destinationAddress.isEmpty) && !state.destinationAddressMatch {
            return invert
        }
        if !destinationPort.isEmpty && !state.destinationPortMatch { return invert }
        if !state.didMatch { return true }
        return !invert
    }

    /// One item, with the DNS meanings of ip_version, ip_cidr (match source, accept empty) and
    /// ip_is_private; every other route item reads the metadata as it does for flows.
    static func matches(_ item: DNSRuleItem, _ input: DNSRuleInput, _ state: inout DNSRuleMatchState) -> Bool {
        let metadata = input.metadata
        switch item {
        case .queryType(let types):
            guard let type = input.queryType else { return false }
            return types.contains(type)
        case .ipAcceptAny:
            return !metadata.destinationAddresses.isEmpty
        case .outbound(let tags):
            return input.isFlowless && tags.contains("any")
        case .ruleSet(_, let rules, let matchSource, let acceptEmpty, _):
            state.ipCIDRMatchSource = matchSource
            state.ipCIDRAcceptEmpty = acceptEmpty
            let ignore = state.ignoreDestinationIPCIDR
            for rule in rules where rule.evaluate(input, &state, ignoringDestinationIPCIDR: ignore) { return true }
            return false
        case .common(let common):
            switch common {
            case .ipVersion(let version):
                return input.ipVersion == version
            case .network where input.isFlowless:
                return false
            case .ipCIDR(false, let prefixes, _):
                if state.ipCIDRMatchSource {
                    guard let ip = metadata.source?.ip else { return false }
                    return prefixes.contains { $0.contains(ip) }
                }
                if metadata.destinationAddresses.isEmpty { return state.ipCIDRAcceptEmpty }
                return metadata.destinationAddresses.contains { ip in prefixes.contains { $0.contains(ip) } }
            case .ipSet(false, let set, _):
                // Rule-set IP lists compile to a range set (Rules); same semantics as ip_cidr above.
                if state.ipCIDRMatchSource {
                    guard let ip = metadata.source?.ip else { return false }
                    return set.contains(ip)
                }
                if metadata.destinationAddresses.isEmpty { return state.ipCIDRAcceptEmpty }
                return metadata.destinationAddresses.contains { set.contains($0) }
            default:
                return common.matches(metadata)
            }
        }
    }

    package var description: String {
        let text = all.map(\.description).joined(separator: " ")
        return invert ? "!(\(text))" : text
    }
}

// MARK: - Building from options

extension DNSRuleCondition {
    /// Compiles a DNS rule's condition with Go's checks and wording (`missing conditions`,
    /// `invalid ip version: 5`, `rule-set not found: x`). Items that have no meaning on Linux
    /// (`package_name`, `network_type`, Wi-Fi, …) fail loudly rather than never matching silently.
    package init(options: DNSRuleOptions, ruleSets: [String: RuleSet]) throws(RuleError) {
        switch options {
        case .default(let o):
            self = .default(try DefaultDNSRuleCondition(options: o, ruleSets: ruleSets))
        case .logical(let o):
            guard let mode = LogicalRule.Mode(rawValue: o.mode) else { throw RuleError("unknown logical mode: \(o.mode)") }
            guard !o.rules.isEmpty else { throw RuleError("missing conditions") }
            var rules: [DNSRuleCondition] = []
            for (index, sub) in o.rules.enumerated() {
                do { rules.append(try DNSRuleCondition(options: sub, ruleSets: ruleSets)) } catch {
                    throw RuleError("sub rule[\(index)]: \(error.message)")
                }
            }
            self = .logical(mode: mode, rules: rules, invert: o.invert)
        }
    }

    /// A rule-set rule as a DNS condition (the headless subset), sharing the route items.
    init(headless rule: HeadlessRule) {
        switch rule {
        case .default(let rule):
            self = .default(DefaultDNSRuleCondition(items: rule.items.map(DNSRuleItem.common), invert: rule.invert))
        case .logical(let rule):
            self = .logical(mode: rule.mode, rules: rule.rules.map(DNSRuleCondition.init(headless:)), invert: rule.invert)
        }
    }

    /// Whether a (headless) condition has a destination ip_cidr item (Go's `ContainsIPCIDRRule`).
    var containsIPCIDR: Bool {
        switch self {
        case .default(let rule):
            rule.all.contains { item in
                if case .common(.ipCIDR(false, _, _)) = item { return true }
                if case .common(.ipSet(false, _, _)) = item { return true }
                return false
            }
        case .logical(_, let rules, _): rules.contains(where: \.containsIPCIDR)
        }
    }
}

extension DefaultDNSRuleCondition {
    package init(options o: DefaultDNSRuleOptions, ruleSets: [String: RuleSet]) throws(RuleError) {
        var items: [DNSRuleItem] = []
        // The items a route rule also has, compiled by Rules (same order and wording as Go).
        var route = DefaultRuleOptions()
        route.inbound = o.inbound
        route.network = o.network
        route.authUser = o.authUser
        route.protocol = o.protocol
        route.domain = o.domain
        route.domainSuffix = o.domainSuffix
        route.domainKeyword = o.domainKeyword
        route.domainRegex = o.domainRegex
        route.geosite = o.geosite
        route.sourceGeoIP = o.sourceGeoIP
        route.geoip = o.geoip
        route.sourceIPCIDR = o.sourceIPCIDR
        route.sourceIPIsPrivate = o.sourceIPIsPrivate
        route.ipCIDR = o.ipCIDR
        route.ipIsPrivate = o.ipIsPrivate
        route.sourcePort = o.sourcePort
        route.sourcePortRange = o.sourcePortRange
        route.port = o.port
        route.portRange = o.portRange
        route.processName = o.processName
        route.processPath = o.processPath
        route.processPathRegex = o.processPathRegex
        route.packageName = o.packageName
        route.user = o.user
        route.userID = o.userID
        route.clashMode = o.clashMode
        route.networkType = o.networkType
        route.networkIsExpensive = o.networkIsExpensive
        route.networkIsConstrained = o.networkIsConstrained
        route.wifiSSID = o.wifiSSID
        route.wifiBSSID = o.wifiBSSID
        // Go's order: inbound, ip_version, query_type, then the rest (it shows in log lines).
        var dnsOnly: [DNSRuleItem] = []
        if let version = o.ipVersion, version != 0 {
            guard version == 4 || version == 6 else { throw RuleError("invalid ip version: \(version)") }
            dnsOnly.append(.common(.ipVersion(version)))
        }
        if !o.queryType.isEmpty { dnsOnly.append(.queryType(o.queryType.map(\.value))) }
        let common = try DefaultRule(options: route).items.map(DNSRuleItem.common)
        let split = o.inbound.isEmpty ? 0 : 1
        items = Array(common[..<split]) + dnsOnly + Array(common[split...])
        if o.ipAcceptAny { items.append(.ipAcceptAny) }
        if !o.outbound.isEmpty { items.append(.outbound(o.outbound)) }
        if !o.ruleSet.isEmpty {
            var rules: [DNSRuleCondition] = []
            for tag in o.ruleSet {
                guard let set = ruleSets[tag] else { throw RuleError("rule-set not found: \(tag)") }
                rules += set.rules.map(DNSRuleCondition.init(headless:))
            }
            let matchSource = o.ruleSetIPCIDRMatchSource || o.legacyRuleSetIPCIDRMatchSource
            items.append(.ruleSet(tags: o.ruleSet, rules: rules, matchSource: matchSource,
                                  acceptEmpty: o.ruleSetIPCIDRAcceptEmpty, containsIPCIDR: rules.contains(where: \.containsIPCIDR)))
        }
        guard !items.isEmpty else { throw RuleError("missing conditions") }
        self.init(items: items, invert: o.invert)
    }
}
