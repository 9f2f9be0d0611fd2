// Direct: the direct inbound and outbound.
// Owned by its folder; see ../shared/STYLE.md §1 for what it may import.

/// The module's name, for log lines and diagnostics.
package enum DirectModule {
    package static let name = "Direct"
}
