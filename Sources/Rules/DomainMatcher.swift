// DomainMatcher: exact domains and domain suffixes (sing's `domain.Matcher` semantics).

/// Matches a lowercase host name against `domain` and `domain_suffix` lists.
///
/// `domain_suffix: "example.com"` matches `example.com` and every subdomain; `".example.com"`
/// (leading dot) matches subdomains only. Lookups walk the host's label boundaries against two
/// hash sets, so cost grows with the host's label count, not the list length. A matcher read
/// from a binary rule-set keeps the file's succinct trie instead (same answers, far less memory).
package struct DomainMatcher: Sendable {
    /// Hosts that match exactly (from `domain`, and suffixes without a leading dot).
    private let exact: Set<String>
    /// Suffixes that match any proper subdomain, stored without their leading dot.
    private let parents: Set<String>
    /// Set when built from a binary rule-set: `exact` and `parents` are then empty.
    private let succinct: SuccinctDomainSet?

    /// Matches with a rule-set file's domain set as read (sing's `domain.Matcher`).
    package init(succinct: SuccinctDomainSet) {
        self.exact = []
        self.parents = []
        self.succinct = succinct
    }

    package init(domains: [String], suffixes: [String]) {
        var exact = Set(domains.map { $0.lowercased() })
        var parents = Set<String>()
        for suffix in suffixes {
            let lower = suffix.lowercased()
            if lower.hasPrefix(".") {
                parents.insert(String(lower.dropFirst()))
            } else {
                exact.insert(lower)
                parents.insert(lower)
            }
        }
        self.exact = exact
        self.parents = parents
        self.succinct = nil
    }

    /// Built from a binary rule-set (Go describes it as `domain/domain_suffix=<binary>`).
    package var isBinary: Bool { succinct != nil }

    /// True when `host` (already lowercased) matches.
    package func matches(_ host: String) -> Bool {
        if let succinct { return succinct.matches(host) }
        if exact.contains(host) { return true }
        if parents.isEmpty { return false }
        var index = host.startIndex
        while let dot = host[index...].firstIndex(of: ".") {
            let parent = host.index(after: dot)
            if parents.contains(String(host[parent...])) { return true }
            index = parent
        }
        return false
    }
}
