public import NetstackWire

/// One IP packet and the offload metadata that came with it (or goes with it).
///
/// `bytes` starts at the IP header (the virtio-net header, if any, is parsed off into `offload`).
/// Buffers the stack emits keep `Stack.headroom` free bytes before the reader index, so a device can
/// put a virtio-net or tunnel header in front without copying.
public struct Packet: Sendable {
    /// The packet from its IP header on; `Stack.headroom` free bytes precede it in buffers the stack builds.
    public var bytes: PacketBuffer
    /// Checksum and segmentation state: what the virtio-net header said on input, or must say on output.
    public var offload: VirtioNetHeader

    /// A packet with its offload state (`.none`: complete checksums, no GSO).
    @inlinable public init(bytes: PacketBuffer, offload: VirtioNetHeader = .none) {
        self.bytes = bytes
        self.offload = offload
    }
}

/// A batch of packets moved in one call between a device and the stack. Reused across calls:
/// `removeAll()` keeps its storage so steady-state batches allocate nothing.
public struct PacketBatch: Sendable {
    /// The packets, in device order.
    public var packets: [Packet]

    /// An empty batch with room for `capacity` packets.
    public init(capacity: Int = 64) {
        packets = []
        packets.reserveCapacity(capacity)
    }

    /// Packets in the batch.
    @inlinable public var count: Int { packets.count }
    /// Whether the batch has no packets.
    @inlinable public var isEmpty: Bool { packets.isEmpty }
    /// Adds a packet at the end.
    @inlinable public mutating func append(_ packet: Packet) { packets.append(packet) }
    /// Empties the batch and keeps its capacity.
    @inlinable public mutating func removeAll() { packets.removeAll(keepingCapacity: true) }
}

/// The stack's whole contract with its owner: packets and time in, packets and a deadline out.
public protocol PacketStack {
    /// Takes a batch read from the device. Never blocks and never reads a clock. Empties `batch`.
    mutating func receive(_ batch: inout PacketBatch, now: Instant)
    /// Appends what to send to `batch`; returns when to call again (`nil`: only on new input).
    mutating func transmit(into batch: inout PacketBatch, now: Instant) -> Instant?
}
