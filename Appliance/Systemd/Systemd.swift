// Systemd: sd_notify and the watchdog.
// Owned by its folder; see ../shared/STYLE.md §1 for what it may import.

/// The module's name, for log lines and diagnostics.
package enum SystemdModule {
    package static let name = "Systemd"
}
