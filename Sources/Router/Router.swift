// Router: route rules, actions, sniffing, hand-off to Relay.
// Owned by its folder; see ../shared/STYLE.md §1 for what it may import.

/// The module's name, for log lines and diagnostics.
package enum RouterModule {
    package static let name = "Router"
}
