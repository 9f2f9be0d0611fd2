// Netstack: IP, ICMP, UDP, the flow table, the accept policy, fragments, GSO input, timers.
//
// Owns: `Stack` — a sans-I/O IPv4/IPv6 host that terminates TUN (or WireGuard) traffic. Its owner feeds
// it packet batches and the time (`receive(_:now:)`), takes packets and a deadline back
// (`transmit(into:now:)`), and drives flows through `StackEvent`s and flow calls.
// Invariants: never reads a clock, never blocks, never allocates per packet in steady state beyond
// what a new flow or reassembly needs; every bound (flows, SYN backlog, buffered bytes, reassembly
// memory, output queue) is enforced where the memory is taken.
// Imports: NetstackTCP and NetstackWire only: no NIO, Foundation or Glibc. Bytes are NetstackWire's
// `PacketBuffer`; the glue (NetstackNIO) copies between it and NIO's `ByteBuffer` at the flow edge.

/// The module's name, for log lines and diagnostics.
package enum NetstackModule {
    /// "Netstack".
    package static let name = "Netstack"
}
