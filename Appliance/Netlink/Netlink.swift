// Netlink: rtnetlink via libmnl: links, addresses, routes, rules, the interface monitor.
// Owned by its folder; see ../shared/STYLE.md §1 for what it may import.

/// The module's name, for log lines and diagnostics.
package enum NetlinkModule {
    package static let name = "Netlink"
}
