// Rules: rule items and rule-sets shared by route and DNS.
// Owned by its folder; see ../shared/STYLE.md §1 for what it may import.

/// The module's name, for log lines and diagnostics.
package enum RulesModule {
    package static let name = "Rules"
}
