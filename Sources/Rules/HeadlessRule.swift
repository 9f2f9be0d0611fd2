// HeadlessRule: default and logical rule conditions with sing-box's combination semantics.
package import Adapter

/// A condition without an action (Go's `adapter.HeadlessRule`).
package indirect enum HeadlessRule: Sendable, CustomStringConvertible {
    case `default`(DefaultRule)
    case logical(LogicalRule)

    /// Matches with a fresh match state (Go resets the rule cache before each top-level rule).
    package func matches(_ metadata: FlowMetadata) -> Bool {
        var state = RuleMatchState()
        return matches(metadata, state: &state)
    }

    /// Matches sharing `state` with the caller (a rule-set's rules and the rule naming the set).
    package func matches(_ metadata: FlowMetadata, state: inout RuleMatchState) -> Bool {
        switch self {
        case .default(let rule): rule.matches(metadata, state: &state)
        case .logical(let rule): rule.matches(metadata, state: &state)
        }
    }

    package var description: String {
        switch self {
        case .default(let rule): rule.description
        case .logical(let rule): rule.description
        }
    }

    /// True when some item reads the flow's owning process (Go's `NeedFindProcess`), so the
    /// router must look it up before matching.
    package var needsProcess: Bool {
        switch self {
        case .default(let rule): rule.items.contains { $0.needsProcess }
        case .logical(let rule): rule.rules.contains { $0.needsProcess }
        }
    }
}

/// Go's per-rule match cache (`InboundContext.ResetRuleCache` fields). Address and port group
/// results live here, not in the rule, because a `rule_set` item's rules share them with the rule
/// that names the set: a set's `ip_cidr` can satisfy the outer rule's destination address group,
/// and once a group is satisfied later rules of the same set skip it (sing-box 1.12 behaviour).
package struct RuleMatchState: Sendable {
    package var sourceAddressMatch = false
    package var sourcePortMatch = false
    package var destinationAddressMatch = false
    package var destinationPortMatch = false
    /// Some non-rule-set item was evaluated (a rule of only rule-set items that evaluated
    /// nothing matches, as Go's `DidMatch`).
    package var didMatch = false
    /// `rule_set_ip_cidr_match_source`: the set's `ip_cidr` items test the source address.
    package var ipCIDRMatchSource = false
    /// `rule_set_ip_cidr_accept_empty`: `ip_cidr` matches a domain not yet resolved.
    package var ipCIDRAcceptEmpty = false
    /// Skip `ip_cidr` / `ip_is_private` destination items (Go's `IgnoreDestinationIPCIDRMatch`,
    /// set by the DNS router before a query is answered).
    package var ignoreDestinationIPCIDR = false

    package init() {}

    /// Go's `ResetRuleCache` (leaves `ignoreDestinationIPCIDR`, which the caller owns).
    package mutating func reset() {
        let ignore = ignoreDestinationIPCIDR
        self = RuleMatchState()
        ignoreDestinationIPCIDR = ignore
    }
}

/// Items of a default rule. Plain items must all match; within each address/port group any one
/// item may match, and every present group must (sing-box's `abstractDefaultRule`). `invert`
/// negates the result. A rule with no items matches everything.
package struct DefaultRule: Sendable, CustomStringConvertible {
    package let items: [RuleItem]
    package let invert: Bool
    private let plain: [RuleItem]
    private let sourceAddress: [RuleItem]
    private let sourcePort: [RuleItem]
    private let destinationAddress: [RuleItem]
    private let destinationIPCIDR: [RuleItem]
    private let destinationPort: [RuleItem]

    package init(items: [RuleItem], invert: Bool = false) {
        self.items = items
        self.invert = invert
        self.plain = items.filter { $0.group == .plain }
        self.sourceAddress = items.filter { $0.group == .sourceAddress }
        self.sourcePort = items.filter { $0.group == .sourcePort }
        self.destinationAddress = items.filter { $0.group == .destinationAddress }
        self.destinationIPCIDR = items.filter { $0.group == .destinationIPCIDR }
        self.destinationPort = items.filter { $0.group == .destinationPort }
    }

    package func matches(_ metadata: FlowMetadata) -> Bool {
        var state = RuleMatchState()
        return matches(metadata, state: &state)
    }

    /// Go's `abstractDefaultRule.Match`, step for step:
    /// 1. each address/port group not yet satisfied is tried, and marks the state when an item hits
    ///    (ip_cidr items satisfy the destination address group too);
    /// 2. plain items (rule_set among them) must all match; a rule_set's rules share the state;
    /// 3. every present group must be satisfied in the state;
    /// 4. a rule that evaluated nothing but rule-sets matches.
    package func matches(_ metadata: FlowMetadata, state: inout RuleMatchState) -> Bool {
        if items.isEmpty { return true }
        // Written out per group (no key paths): this runs for every rule of every flow.
        if !sourceAddress.isEmpty && !state.sourceAddressMatch {
            state.didMatch = true
            if Self.any(sourceAddress, metadata, &state) { state.sourceAddressMatch = true }
        }
        if !sourcePort.isEmpty && !state.sourcePortMatch {
            state.didMatch = true
            if Self.any(sourcePort, metadata, &state) { state.sourcePortMatch = true }
        }
        if !destinationAddress.isEmpty && !state.destinationAddressMatch {
            state.didMatch = true
            if Self.any(destinationAddress, metadata, &state) { state.destinationAddressMatch = true }
        }
        if !state.ignoreDestinationIPCIDR && !destinationIPCIDR.isEmpty && !state.destinationAddressMatch {
            state.didMatch = true
            if Self.any(destinationIPCIDR, metadata, &state) { state.destinationAddressMatch = true }
        }
        if !destinationPort.isEmpty && !state.destinationPortMatch {
            state.didMatch = true
            if Self.any(destinationPort, metadata, &state) { state.destinationPortMatch = true }
        }
        for item in plain {
            if !item.isRuleSet { state.didMatch = true }
            if !item.matches(metadata, state: &state) { return invert }
        }
        if !sourceAddress.isEmpty && !state.sourceAddressMatch { return invert }
        if !sourcePort.isEmpty && !state.sourcePortMatch { return invert }
        let needsDestination = !destinationAddress.isEmpty || (!state.ignoreDestinationIPCIDR && !destinationIPCIDR.isEmpty)
        if needsDestination && !state.destinationAddressMatch { return invert }
        if !destinationPort.isEmpty && !state.destinationPortMatch { return invert }
        if !state.didMatch { return true }
        return !invert
    }

    /// True when one of `items` matches (the state is passed through to rule-set items).
    @inline(__always)
    private static func any(_ items: [RuleItem], _ metadata: FlowMetadata, _ state: inout RuleMatchState) -> Bool {
        for item in items where item.matches(metadata, state: &state) { return true }
        return false
    }

    package var description: String {
        let text = items.map(\.description).joined(separator: " ")
        return invert ? "!(\(text))" : text
    }
}

/// `and` / `or` over headless rules, with `invert`.
package struct LogicalRule: Sendable, CustomStringConvertible {
    package enum Mode: String, Sendable { case and, or }
    package let mode: Mode
    package let rules: [HeadlessRule]
    package let invert: Bool

    package init(mode: Mode, rules: [HeadlessRule], invert: Bool = false) {
        self.mode = mode
        self.rules = rules
        self.invert = invert
    }

    package func matches(_ metadata: FlowMetadata) -> Bool {
        var state = RuleMatchState()
        return matches(metadata, state: &state)
    }

    /// Go's `abstractLogicalRule.Match`: the state is reset before each sub-rule.
    package func matches(_ metadata: FlowMetadata, state: inout RuleMatchState) -> Bool {
        var result = mode == .and
        for rule in rules {
            state.reset()
            let hit = rule.matches(metadata, state: &state)
            if mode == .and && !hit { result = false; break }
            if mode == .or && hit { result = true; break }
        }
        return result != invert
    }

    package var description: String {
        let op = mode == .and ? " && " : " || "
        let text = rules.map(\.description).joined(separator: op)
        return invert ? "!(\(text))" : text
    }
}
