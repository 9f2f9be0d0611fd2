// TProxy: the `tproxy` inbound. nftables `tproxy` delivers LAN TCP and UDP for foreign addresses to a
// local transparent socket (IP_TRANSPARENT); the original destination is the accepted socket's local
// address for TCP and each datagram's IP_ORIGDSTADDR for UDP. UDP replies leave from a transparent
// socket bound to the original destination, so the client sees the server answer. As Go's
// protocol/tproxy.
//
// 1. TCP: accept → local address = destination → router.
// 2. UDP: reader thread → the table's event loop → per-client `TProxyPacketConnection` (first datagram
//    hands it to the router) → replies through `TransparentPacketSender`s.
//
// Imports: Adapter, Net, Config, NIOCore. Never Appliance (the box hands `TransparentSockets` in).
package import Adapter

/// The module's name, for log lines and diagnostics.
package enum TProxyModule {
    package static let name = "TProxy"
}
