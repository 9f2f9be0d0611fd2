// NetstackTCP: one TCP connection as a pure state machine.
// Owned by its folder; see ../shared/STYLE.md §1 for what it may import.

/// The module's name, for log lines and diagnostics.
package enum NetstackTCPModule {
    package static let name = "NetstackTCP"
}
