// NetstackTCP: one TCP connection as a pure state machine (RFC 9293 and the RFCs around it).
//
// What it owns: `TCPConnection` (states, sequence space, buffers, timers, loss recovery, congestion
// control) and its helpers (`TCPReceiveQueue`, `TCPScoreboard`, `TCPRTTEstimator`, the congestion
// controllers). Wire types (`TCPSegment`, `TCPOptions`, `TCPHeaderView`) live in NetstackWire.
//
// Invariants:
// - Sans-I/O: segments and `Instant`s in, segments and a deadline out. No clock, no randomness (the owner
//   passes the initial sequence number and timestamp offset), no event loop, no Foundation.
// - Peer input never traps: every field of a received segment is checked before it moves state.
// - Steady state allocates nothing per segment: payloads are PacketBuffer slices, SACK blocks are inline,
//   queues keep their capacity.
//
// Imports: NetstackWire only (its PacketBuffer and RingQueue carry the bytes).

/// The module's name, for log lines and diagnostics.
package enum NetstackTCPModule {
    package static let name = "NetstackTCP"
}

import NetstackWire

/// The later of two sequence numbers (modulo 2^32; `SeqNumber` is deliberately not `Comparable`).
@inline(__always) func laterSeq(_ a: SeqNumber, _ b: SeqNumber) -> SeqNumber { a >= b ? a : b }
/// The earlier of two sequence numbers.
@inline(__always) func earlierSeq(_ a: SeqNumber, _ b: SeqNumber) -> SeqNumber { a <= b ? a : b }
