package import NetstackWire

/// Writes packets as a classic pcap capture (nanosecond timestamps, LINKTYPE_RAW = 101: each record is
/// an IPv4 or IPv6 packet), into a `PacketBuffer` the caller saves. Opens in Wireshark/tcpdump.
package struct PcapWriter {
    package private(set) var buffer: PacketBuffer

    /// Starts a capture with the file header.
    package init(snapshotLength: UInt32 = 262_144) {
        buffer = PacketBuffer(capacity: 1 << 16)
        buffer.writeInteger(UInt32(0xa1b2_3c4d), endianness: .little)  // nanosecond-resolution magic
        buffer.writeInteger(UInt16(2), endianness: .little)
        buffer.writeInteger(UInt16(4), endianness: .little)
        buffer.writeInteger(Int32(0), endianness: .little)  // thiszone
        buffer.writeInteger(UInt32(0), endianness: .little)  // sigfigs
        buffer.writeInteger(snapshotLength, endianness: .little)
        buffer.writeInteger(UInt32(101), endianness: .little)  // LINKTYPE_RAW
    }

    /// Appends one packet (its readable bytes) seen at `time`.
    package mutating func write(_ packet: PacketBuffer, at time: Instant) {
        let seconds = UInt32(truncatingIfNeeded: time.nanoseconds / 1_000_000_000)
        let nanos = UInt32(truncatingIfNeeded: time.nanoseconds % 1_000_000_000)
        buffer.writeInteger(seconds, endianness: .little)
        buffer.writeInteger(nanos, endianness: .little)
        buffer.writeInteger(UInt32(packet.readableBytes), endianness: .little)
        buffer.writeInteger(UInt32(packet.readableBytes), endianness: .little)
        var copy = packet
        buffer.writeBuffer(&copy)
    }
}
