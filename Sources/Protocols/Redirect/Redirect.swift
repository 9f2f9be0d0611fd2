// Redirect: the `redirect` inbound. An nftables/iptables `redirect` (or DNAT) sends LAN TCP to a
// local port; each accepted connection asks the kernel where it was going (SO_ORIGINAL_DST through
// Adapter's `TransparentSockets`) and goes to the router with that destination, as Go's
// protocol/redirect does.
//
// Imports: Adapter, Net, Config, NIOCore. Never Appliance (the box hands `TransparentSockets` in).
package import Adapter

/// The module's name, for log lines and diagnostics.
package enum RedirectModule {
    package static let name = "Redirect"
}
