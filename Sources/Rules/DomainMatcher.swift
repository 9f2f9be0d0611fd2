// DomainMatcher: exact domains and domain suffixes (sing's `domain.Matcher` semantics).

/// Matches a lowercase host name against `domain` and `domain_suffix` lists.
///
/// `domain_suffix: "example.com"` matches `example.com` and every subdomain; `".example.com"`
/// (leading dot) matches subdomains only. Lookups walk the host's label boundaries against two
/// hash sets, so cost grows with the host's label count, not the list length.
package struct DomainMatcher: Sendable {
    /// Hosts that match exactly (from `domain`, and suffixes without a leading dot).
    private let exact: Set<String>
    /// Suffixes that match any proper subdomain, stored without their leading dot.
    private let parents: Set<String>

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
    }

    /// True when `host` (already lowercased) matches.
    package func matches(_ host: String) -> Bool {
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
