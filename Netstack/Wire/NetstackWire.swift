// NetstackWire: header views and values (IPv4/6, TCP, UDP, ICMP), checksums, sequence numbers.
// Owned by its folder; see ../shared/STYLE.md §1 for what it may import.

/// The module's name, for log lines and diagnostics.
package enum NetstackWireModule {
    package static let name = "NetstackWire"
}
