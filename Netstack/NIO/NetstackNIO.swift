// NetstackNIO: one Stack on one EventLoop; flows as Channels.
// Owned by its folder; see ../shared/STYLE.md §1 for what it may import.

/// The module's name, for log lines and diagnostics.
package enum NetstackNIOModule {
    package static let name = "NetstackNIO"
}
