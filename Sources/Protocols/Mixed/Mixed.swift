// Mixed: the mixed inbound: SOCKS and HTTP on one port.
// Owned by its folder; see ../shared/STYLE.md §1 for what it may import.

/// The module's name, for log lines and diagnostics.
package enum MixedModule {
    package static let name = "Mixed"
}
