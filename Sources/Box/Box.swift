// Box: build the box from options, staged start, reload, shutdown.
// Owned by its folder; see ../shared/STYLE.md §1 for what it may import.

/// The module's name, for log lines and diagnostics.
package enum BoxModule {
    package static let name = "Box"
}
