// WireGuard: WireGuard: Noise_IKpsk2, sessions, timers, the wireguard endpoint.
// Owned by its folder; see ../shared/STYLE.md §1 for what it may import.

/// The module's name, for log lines and diagnostics.
package enum WireGuardModule {
    package static let name = "WireGuard"
}
