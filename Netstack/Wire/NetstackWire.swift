// NetstackWire: header views and values (IPv4/6, TCP, UDP, ICMP), checksums, sequence numbers.
//
// Owns: the RFC 1071 checksum (`Checksum`, UInt64 loads, RFC 1624 updates, pseudo-headers), validated
// views over borrowed bytes (`IPv4HeaderView`, `IPv6HeaderView` with its extension chain, `UDPHeaderView`,
// `ICMPHeaderView`; the TCP view is NetstackTCP's engineer's `TCPHeaderView`), header writers, the
// virtio-net header of a TUN with offloads (`VirtioNetHeader`, partial-checksum completion) and
// `GSOSegmenter` for TCPv4/TCPv6/UDP_L4 super-packets; `WireError` for every parse failure; and the
// bytes the whole stack works in: `PacketBuffer` (shared blocks, slices, copy-on-write) and `RingQueue`.
// Invariants: a view's `init(validating:)` checks every length once and after it no accessor can trap
// on peer input; writers trap only on the caller's own bugs (buffer too small). Nothing allocates.
// Must not import: anything at all but the standard library (no NIO, Foundation or Glibc), no clock.
//
// Access: this module's API is `public`, not `package`. With SwiftPM's release build (Swift 6.3) an
// `@inlinable package` body is not inlined into other modules: every `SeqNumber` comparison, checksum
// step and unspecialised generic `PacketBuffer` call was an out-of-line call from the TCP and IP code
// (seen in `objdump` of the release binary). `@inlinable public` bodies are inlined and specialised.

/// The module's name, for log lines and diagnostics.
public enum NetstackWireModule {
    public static let name = "NetstackWire"
}
