// NetstackWire: header views and values (IPv4/6, TCP, UDP, ICMP), checksums, sequence numbers.
//
// Owns: the RFC 1071 checksum (`Checksum`, UInt64 loads, RFC 1624 updates, pseudo-headers), validated
// views over borrowed bytes (`IPv4HeaderView`, `IPv6HeaderView` with its extension chain, `UDPHeaderView`,
// `ICMPHeaderView`; the TCP view is NetstackTCP's engineer's `TCPHeaderView`), header writers, the
// virtio-net header of a TUN with offloads (`VirtioNetHeader`, partial-checksum completion) and
// `GSOSegmenter` for TCPv4/TCPv6/UDP_L4 super-packets; `WireError` for every parse failure.
// Invariants: a view's `init(validating:)` checks every length once and after it no accessor can trap
// on peer input; writers trap only on the caller's own bugs (buffer too small). Nothing allocates.
// Must not import: anything of ours; from NIO only value types (STYLE §1). No Foundation, no clock.

/// The module's name, for log lines and diagnostics.
package enum NetstackWireModule {
    package static let name = "NetstackWire"
}
