// Config: the sing-box 1.12 schema, strict decoding with JSON-path errors, merge, format.
// Owned by its folder; see ../shared/STYLE.md §1 for what it may import.

/// The module's name, for log lines and diagnostics.
package enum ConfigModule {
    package static let name = "Config"
}
