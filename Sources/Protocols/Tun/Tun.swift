// Tun: sing-box 1.12's `tun` inbound on our netstack.
//
// Owns: `TunInbound` (a TUN device read by a `NetstackDriver` in transparent-termination mode: every
// TCP SYN and UDP datagram, whatever its destination, becomes a flow handed to the router with its
// original destination), `TunPacketConnection` (a UDP flow as a `PacketConnection`; replies may come
// from any address, as in Go 1.12), `TunSettings` (the options with Go's defaults), and `TunPlatform`,
// the seam through which the box hands in the Linux parts (TUN device, route installer, firewall,
// interface monitor) — this module never imports Appliance. Under `auto_redirect` TCP reaches us
// through Net's `RedirectListener` (nftables `redirect`, SO_ORIGINAL_DST) and UDP through the TUN.
//
// `stack`: Go offers `system` (the kernel's TCP stack through a local listener), `gvisor` (a userspace
// stack) and `mixed` (system for TCP, gvisor for UDP). Here all three are accepted and served by our
// own netstack (Netstack/): it terminates TCP and UDP in user space, with TSO/GRO through the TUN's
// virtio-net header, so the choice changes nothing but the log line.
//
// Invariants: one TUN queue, one event loop, one `Stack`; the data path never leaves that loop.
// Everything `auto_route` / `auto_redirect` installs is removed in `close()`, and an earlier run's
// leftovers (a SIGKILL) are removed before installing.
// May import: Adapter, Net, Config, Netstack, NetstackNIO, NetstackWire, NIOCore. Not Router, not Appliance.

/// The module's name, for log lines and diagnostics.
package enum TunModule {
    package static let name = "Tun"
}
