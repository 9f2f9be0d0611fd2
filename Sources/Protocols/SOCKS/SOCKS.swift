// SOCKS: the SOCKS 4/4a/5 wire format (RFC 1928, RFC 1929, the SOCKS4 and SOCKS4A memos), the
// `socks` inbound and outbound, and the handshake handlers the `mixed` inbound reuses.
//
// Layout: value codecs (`SOCKS4Request`, `SOCKS5Request`, …) parse from and write to `ByteBuffer`
// with typed throws; `SOCKSServerHandshake` is the pure server state machine; the channel handlers
// wrap it; the adapters (`SOCKSInbound`, `SOCKSOutbound`) meet the router through `Adapter`.
//
// Invariants: nothing a peer sends can trap; every variable-length field is bounded by the wire
// format (255 bytes) so a handshake never buffers more than `SOCKSServerHandshake.maximumBuffered`.
// Imports: Adapter, Net, Config, NIOCore only (STYLE.md §1, floor 8); never another protocol.

/// The module's name, for log lines and diagnostics.
package enum SOCKSModule {
    package static let name = "SOCKS"
}
