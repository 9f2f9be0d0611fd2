package import NIOCore
package import NetstackWire

/// One IP packet and the offload metadata that came with it (or goes with it).
///
/// `bytes` starts at the IP header (the virtio-net header, if any, is parsed off into `offload`).
/// Buffers the stack emits keep `Stack.headroom` free bytes before the reader index, so a device can
/// put a virtio-net or tunnel header in front without copying.
package struct Packet: Sendable {
    package var bytes: ByteBuffer
    package var offload: VirtioNetHeader

    @inlinable package init(bytes: ByteBuffer, offload: VirtioNetHeader = .none) {
        self.bytes = bytes
        self.offload = offload
    }
}

/// A batch of packets moved in one call between a device and the stack. Reused across calls:
/// `removeAll()` keeps its storage so steady-state batches allocate nothing.
package struct PacketBatch: Sendable {
    package var packets: [Packet]

    package init(capacity: Int = 64) {
        packets = []
        packets.reserveCapacity(capacity)
    }

    @inlinable package var count: Int { packets.count }
    @inlinable package var isEmpty: Bool { packets.isEmpty }
    @inlinable package mutating func append(_ packet: Packet) { packets.append(packet) }
    /// Empties the batch and keeps its capacity.
    @inlinable package mutating func removeAll() { packets.removeAll(keepingCapacity: true) }
}

/// The stack's whole contract with its owner: packets and time in, packets and a deadline out.
package protocol PacketStack {
    /// Takes a batch read from the device. Never blocks and never reads a clock. Empties `batch`.
    mutating func receive(_ batch: inout PacketBatch, now: Instant)
    /// Appends what to send to `batch`; returns when to call again (`nil`: only on new input).
    mutating func transmit(into batch: inout PacketBatch, now: Instant) -> Instant?
}
