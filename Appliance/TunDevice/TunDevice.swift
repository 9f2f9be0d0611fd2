// TunDevice: TUN with the virtio-net header and offloads.
// Owned by its folder; see ../shared/STYLE.md §1 for what it may import.

/// The module's name, for log lines and diagnostics.
package enum TunDeviceModule {
    package static let name = "TunDevice"
}
