
/// One TCP segment as the connection sees it: no ports (the flow table owns the 4-tuple), no checksum
/// (the stack verifies and fills it from the pseudo-header).
///
/// The payload is a `PacketBuffer` slice: parsing shares the packet's storage, and the connection hands out
/// slices of its send buffer, so a segment copies nothing. A payload may exceed the MSS when the stack
/// coalesced it (GRO) or will split it (GSO/TSO).
public struct TCPSegment: Sendable, CustomStringConvertible {
    public var sequenceNumber: SeqNumber
    /// Meaningful only when `flags` contains `.ack`.
    public var acknowledgmentNumber: SeqNumber
    public var flags: TCPFlags
    /// The window field as on the wire (not scaled).
    public var window: UInt16
    public var options: TCPOptions
    public var payload: PacketBuffer

    @inlinable public init(sequenceNumber: SeqNumber, acknowledgmentNumber: SeqNumber = SeqNumber(0),
                            flags: TCPFlags, window: UInt16 = 0, options: TCPOptions = TCPOptions(),
                            payload: PacketBuffer = PacketBuffer()) {
        self.sequenceNumber = sequenceNumber
        self.acknowledgmentNumber = acknowledgmentNumber
        self.flags = flags
        self.window = window
        self.options = options
        self.payload = payload
    }

    /// Reads a segment from a validated header and its payload (a slice of the same packet; not copied).
    public init(header: borrowing TCPHeaderView, payload: PacketBuffer) throws(TCPWireError) {
        self.init(sequenceNumber: header.sequenceNumber, acknowledgmentNumber: header.acknowledgmentNumber,
                  flags: header.flags, window: header.window, options: try header.options(), payload: payload)
    }

    /// Reads a segment from `packet`'s readable bytes: the TCP header, its options, then the payload,
    /// which becomes a slice of `packet` (no copy). Throws if the header or its options are malformed.
    public init(parsing packet: PacketBuffer) throws(TCPWireError) {
        let view = try TCPHeaderView(validating: packet.readableBytesSpan)
        let headerLength = view.headerByteCount
        let payload = packet.getSlice(at: packet.readerIndex + headerLength,
                                      length: packet.readableBytes - headerLength) ?? PacketBuffer()
        try self.init(header: view, payload: payload)
    }

    /// Sequence space the segment occupies: payload bytes plus one each for SYN and FIN.
    @inlinable public var sequenceLength: Int {
        payload.readableBytes + (flags.contains(.syn) ? 1 : 0) + (flags.contains(.fin) ? 1 : 0)
    }

    /// The sequence number just past this segment.
    @inlinable public var endSequenceNumber: SeqNumber { sequenceNumber + sequenceLength }

    /// The header length `writeHeader` emits (20 plus padded options).
    @inlinable public var headerByteCount: Int { TCPHeaderView.minimumByteCount + options.encodedByteCount }

    /// Writes the header with its options and a zero checksum field; the stack fills the checksum.
    public func writeHeader(into buffer: inout PacketBuffer, sourcePort: UInt16, destinationPort: UInt16) {
        buffer.writeInteger(sourcePort)
        buffer.writeInteger(destinationPort)
        buffer.writeInteger(sequenceNumber.rawValue)
        buffer.writeInteger(flags.contains(.ack) ? acknowledgmentNumber.rawValue : 0)
        buffer.writeInteger(UInt8(headerByteCount / 4) << 4)
        buffer.writeInteger(flags.rawValue)
        buffer.writeInteger(window)
        buffer.writeInteger(UInt16(0))  // checksum: filled by the stack from the pseudo-header
        buffer.writeInteger(UInt16(0))  // urgent pointer: URG is never sent
        options.write(into: &buffer)
    }

    /// Writes the header (checksum 0) followed by the payload.
    public func write(into buffer: inout PacketBuffer, sourcePort: UInt16, destinationPort: UInt16) {
        writeHeader(into: &buffer, sourcePort: sourcePort, destinationPort: destinationPort)
        var payload = self.payload
        buffer.writeBuffer(&payload)
    }

    public var description: String {
        var text = "\(flags) seq \(sequenceNumber)"
        if flags.contains(.ack) { text += " ack \(acknowledgmentNumber)" }
        text += " win \(window) len \(payload.readableBytes)"
        if !options.sackBlocks.isEmpty { text += " sack \(Array(options.sackBlocks))" }
        return text
    }
}
