// SOCKS: SOCKS 4/4a/5 wire format, inbound and outbound.
// Owned by its folder; see ../shared/STYLE.md §1 for what it may import.

/// The module's name, for log lines and diagnostics.
package enum SOCKSModule {
    package static let name = "SOCKS"
}
