// Mixed: the `mixed` inbound — SOCKS4/4a/5 and HTTP proxy on one port. The first byte decides,
// as sing-box's mixed inbound peeks it: 4 or 5 is SOCKS, anything else is HTTP.
//
// Owns only the sniffing and the inbound adapter; the protocols' handlers come from `SOCKS` and
// `HTTPProxy` (STYLE.md §1 lets Mixed import their codecs and handlers). Imports: SOCKS,
// HTTPProxy, Adapter, Net, Config, NIOCore.

/// The module's name, for log lines and diagnostics.
package enum MixedModule {
    package static let name = "Mixed"
}
