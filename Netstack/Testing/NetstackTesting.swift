// NetstackTesting: packet builders, a simulated lossy link between stacks, a pcap writer.
//
// For tests and benchmarks only; nothing in the product imports it. Deterministic: every random
// choice comes from a seed the test passes, and time is an `Instant` the link advances.
// Must not import: Foundation, Glibc, anything with an EventLoop (STYLE §1).

/// The module's name, for log lines and diagnostics.
package enum NetstackTestingModule {
    package static let name = "NetstackTesting"
}
