// HeadlessRule: default and logical rule conditions with sing-box's combination semantics.
package import Adapter

/// A condition without an action (Go's `adapter.HeadlessRule`).
package indirect enum HeadlessRule: Sendable, CustomStringConvertible {
    case `default`(DefaultRule)
    case logical(LogicalRule)

    package func matches(_ metadata: FlowMetadata) -> Bool {
        switch self {
        case .default(let rule): rule.matches(metadata)
        case .logical(let rule): rule.matches(metadata)
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

/// Items of a default rule. Plain items must all match; within each address/port group any one
/// item may match, and every present group must (sing-box's `abstractDefaultRule`). `invert`
/// negates the result. A rule with no items matches everything.
package struct DefaultRule: Sendable, CustomStringConvertible {
    package let items: [RuleItem]
    package let invert: Bool
    private let plain: [RuleItem]
    private let groups: [[RuleItem]]

    package init(items: [RuleItem], invert: Bool = false) {
        self.items = items
        self.invert = invert
        self.plain = items.filter { $0.group == .plain }
        let order: [RuleItem.Group] = [.sourceAddress, .sourcePort, .destinationAddress, .destinationPort]
        var groups = order.map { group in items.filter { $0.group == group } }
        // ip_cidr / ip_is_private join the destination address group: a domain item or an IP item
        // may satisfy it (Go ORs `destinationIPCIDRItems` into the destination address state).
        groups[2] += items.filter { $0.group == .destinationIPCIDR }
        self.groups = groups.filter { !$0.isEmpty }
    }

    package func matches(_ metadata: FlowMetadata) -> Bool {
        if items.isEmpty { return true }
        for item in plain where !item.matches(metadata) { return invert }
        for group in groups where !group.contains(where: { $0.matches(metadata) }) { return invert }
        return !invert
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
        let result = switch mode {
        case .and: rules.allSatisfy { $0.matches(metadata) }
        case .or: rules.contains { $0.matches(metadata) }
        }
        return result != invert
    }

    package var description: String {
        let op = mode == .and ? " && " : " || "
        let text = rules.map(\.description).joined(separator: op)
        return invert ? "!(\(text))" : text
    }
}
