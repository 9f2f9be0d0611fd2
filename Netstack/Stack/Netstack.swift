// Netstack: IP, ICMP, UDP, flow table, accept policy, fragments, GRO/GSO, timers.
// Owned by its folder; see ../shared/STYLE.md §1 for what it may import.

/// The module's name, for log lines and diagnostics.
package enum NetstackModule {
    package static let name = "Netstack"
}
