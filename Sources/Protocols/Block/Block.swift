// Block: the block outbound.
// Owned by its folder; see ../shared/STYLE.md §1 for what it may import.

/// The module's name, for log lines and diagnostics.
package enum BlockModule {
    package static let name = "Block"
}
