// NetstackTesting: simulated lossy links, packet builders, pcap; tests and benches only.
// Owned by its folder; see ../shared/STYLE.md §1 for what it may import.

/// The module's name, for log lines and diagnostics.
package enum NetstackTestingModule {
    package static let name = "NetstackTesting"
}
