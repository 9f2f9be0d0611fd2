// NetstackNIO: one `Stack` on one `EventLoop`; flows as NIO `Channel`s.
//
// Owns: `NetstackDriver` (feeds device batches and the loop's clock into the stack, writes what it
// transmits, schedules its deadline), the `PacketDevice` protocol a TUN/WireGuard device implements,
// and `NetstackFlowChannel` (a TCP flow as a stream channel, a UDP flow as a datagram channel).
// Invariants: everything runs on the driver's event loop; the stack is never touched off it.
// Back-pressure: a TCP channel reads from the stack only when the pipeline asks (`read()`), so the
// receive window follows the reader; writes wait in the channel until the send buffer takes them.
// May import: Netstack, NetstackWire, NIOCore (this is the one netstack target with an event loop).
// The edge, in `PacketBuffer+NIO.swift`: flow data written to a channel is copied into the stack;
// data read from the stack is lent to NIO (no copy), and small chunks are copied. The core never sees
// a NIO type.

/// The module's name, for log lines and diagnostics.
package enum NetstackNIOModule {
    package static let name = "NetstackNIO"
}
