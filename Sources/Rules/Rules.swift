// Rules: the rule items and headless rules shared by route rules and DNS rules.
//
// A headless rule is a condition without an action: `DefaultRule` (items grouped and combined as
// sing-box does) or `LogicalRule` (and/or over headless rules). The router and the DNS router pair
// one with their own action type. Matching reads a `FlowMetadata` and never allocates.
//
// Rule-sets come inline, from source JSON or from binary `.srs` files (`BinaryRuleSet`, byte-
// compatible with Go). A binary set is matched in place: `domain`/`domain_suffix` through the
// file's succinct trie (`SuccinctDomainSet`), IP items through sorted ranges (`IPRangeSet`).
// Match state (`RuleMatchState`) is shared between a rule and the rule-sets it names, as in Go.
//
// Invariants: rules are immutable after construction and `Sendable`; construction validates every
// item and throws `RuleError` with sing-box's wording.
// Imports: Adapter, Config (STYLE.md §1). Never Router, DNS or Net.

/// The module's name, for log lines and diagnostics.
package enum RulesModule {
    package static let name = "Rules"
}

/// A rule that could not be built: `ipcidr: parse [0]: …`, `missing conditions`.
package struct RuleError: Error, CustomStringConvertible, Sendable, Equatable {
    package var message: String
    package init(_ message: String) { self.message = message }
    package var description: String { message }
}
