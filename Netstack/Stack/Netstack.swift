// Netstack: IP, ICMP, UDP, the flow table, the accept policy, fragments, GSO input, timers.
//
// Owns: `Stack` — a sans-I/O IPv4/IPv6 host that terminates TUN (or WireGuard) traffic. Its owner feeds
// it packet batches and the time (`receive(_:now:)`), takes packets and a deadline back
// (`transmit(into:now:)`), and drives flows through `StackEvent`s and flow calls.
// Invariants: never reads a clock, never blocks, never allocates per packet in steady state beyond
// what a new flow or reassembly needs; every bound (flows, SYN backlog, buffered bytes, reassembly
// memory, output queue) is enforced where the memory is taken.
// Must not import: Foundation, Glibc, NIOPosix, anything with an EventLoop (STYLE §1). From NIO only
// the value types ByteBuffer and CircularBuffer.

/// The module's name, for log lines and diagnostics.
package enum NetstackModule {
    package static let name = "Netstack"
}
