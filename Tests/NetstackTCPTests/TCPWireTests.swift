import NetstackWire
import Testing

/// TCP header view, options and segment: literal bytes, round trips, every truncation.
@Suite struct TCPWireTests {
    // SYN 51000 → 443, seq 1000, data offset 10 (40 bytes), SYN, window 64240, checksum 0xabcd,
    // options: MSS 1460 | SACK-permitted | TS val 0x01020304 ecr 0 | NOP | WS 7
    static let syn: [UInt8] = [
        0xc7, 0x38, 0x01, 0xbb, 0x00, 0x00, 0x03, 0xe8, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa, 0xf0,
        0xab, 0xcd, 0x00, 0x00,
        0x02, 0x04, 0x05, 0xb4,                                      // MSS 1460
        0x04, 0x02,                                                  // SACK-permitted
        0x08, 0x0a, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00,  // timestamps
        0x01,                                                        // NOP
        0x03, 0x03, 0x07,                                            // window scale 7
    ]

    @Test func readsSYNHeaderAndOptions() throws {
        let header = try TCPHeaderView(validating: Self.syn.span.bytes)
        #expect(header.sourcePort == 51000)
        #expect(header.destinationPort == 443)
        #expect(header.sequenceNumber == SeqNumber(1000))
        #expect(header.flags == .syn)
        #expect(header.window == 64240)
        #expect(header.checksum == 0xabcd)
        #expect(header.headerByteCount == 40)
        #expect(header.payloadByteCount == 0)
        let options = try header.options()
        #expect(options.maximumSegmentSize == 1460)
        #expect(options.sackPermitted)
        #expect(options.timestamp == TCPTimestampOption(value: 0x0102_0304, echoReply: 0))
        #expect(options.windowScale == 7)
        #expect(options.sackBlocks.isEmpty)
    }

    @Test(arguments: 0..<20)
    func rejectsTruncatedHeader(length: Int) {
        let bytes = Array(Self.syn.prefix(length))
        #expect(throws: TCPWireError.truncated(need: 20, have: length)) {
            _ = try TCPHeaderView(validating: bytes.span.bytes)
        }
    }

    @Test(arguments: 20..<40)
    func rejectsOptionsCutShort(length: Int) {
        let bytes = Array(Self.syn.prefix(length))
        #expect(throws: TCPWireError.truncated(need: 40, have: length)) {
            _ = try TCPHeaderView(validating: bytes.span.bytes)
        }
    }

    @Test(arguments: 0..<5)
    func rejectsDataOffsetBelowFive(words: UInt8) {
        var bytes = Array(Self.syn.prefix(20))
        bytes[12] = words << 4
        #expect(throws: TCPWireError.badHeaderLength(Int(words) * 4)) {
            _ = try TCPHeaderView(validating: bytes.span.bytes)
        }
    }

    /// A 20-byte header followed by `options` (padded by the test to a multiple of four).
    func header(options: [UInt8]) -> [UInt8] {
        var bytes = Array(Self.syn.prefix(20))
        bytes[12] = UInt8((20 + options.count) / 4) << 4
        return bytes + options
    }

    @Test func skipsUnknownOptionsAndStopsAtEndOfList() throws {
        // kind 30 (MPTCP-like) length 4, NOP, MSS 536, EOL, then garbage that must be ignored
        let bytes = header(options: [30, 4, 0xff, 0xff, 1, 2, 4, 0x02, 0x18, 0, 0xee, 0xee])
        let options = try TCPHeaderView(validating: bytes.span.bytes).options()
        #expect(options.maximumSegmentSize == 536)
    }

    @Test(arguments: [
        ([UInt8]([2, 4, 5, 180, 8, 0, 1, 1]), TCPWireError.malformedOption(kind: 8, offset: 4)),     // length 0
        ([2, 1, 0, 0], .malformedOption(kind: 2, offset: 0)),                                        // length 1
        ([1, 1, 1, 30], .malformedOption(kind: 30, offset: 3)),                                      // no length byte
        ([30, 9, 0, 0], .malformedOption(kind: 30, offset: 0)),                                      // runs past the end
        ([2, 3, 5, 1], .badOptionLength(kind: 2, length: 3)),                                        // MSS of 3
        ([3, 4, 7, 1], .badOptionLength(kind: 3, length: 4)),                                        // window scale of 4
        ([4, 3, 0, 1], .badOptionLength(kind: 4, length: 3)),                                        // SACK-permitted of 3
        ([5, 6, 0, 0, 0, 0, 1, 1], .badOptionLength(kind: 5, length: 6)),                            // SACK not 2 + 8n
        ([8, 8, 0, 0, 0, 0, 0, 0], .badOptionLength(kind: 8, length: 8)),                            // timestamps of 8
    ])
    func rejectsMalformedOptions(options: [UInt8], error: TCPWireError) {
        let bytes = header(options: options)
        #expect(throws: error) { _ = try TCPHeaderView(validating: bytes.span.bytes).options() }
    }

    @Test func parsesFourSACKBlocks() throws {
        var options: [UInt8] = [1, 1, 5, 34]
        for i in 0..<4 { options += [0, 0, 0, UInt8(i * 2), 0, 0, 0, UInt8(i * 2 + 1)] }
        options += [0, 0]  // EOL padding to 40
        let parsed = try TCPHeaderView(validating: header(options: options).span.bytes).options()
        #expect(parsed.sackBlocks.count == 4)
        #expect(parsed.sackBlocks[3] == TCPSACKBlock(start: SeqNumber(6), end: SeqNumber(7)))
    }

    @Test func segmentRoundTripsWithEveryOption() throws {
        var options = TCPOptions(maximumSegmentSize: 1400, windowScale: 9, sackPermitted: true,
                                 timestamp: TCPTimestampOption(value: 7, echoReply: 9))
        var segment = TCPSegment(sequenceNumber: SeqNumber(0xffff_fff0), acknowledgmentNumber: SeqNumber(42),
                                 flags: [.syn, .ack], window: 1234, options: options, payload: PacketBuffer(bytes: [1, 2, 3]))
        var buffer = PacketBuffer()
        segment.write(into: &buffer, sourcePort: 1, destinationPort: 2)
        #expect(buffer.readableBytes == segment.headerByteCount + 3)
        #expect(buffer.getInteger(at: 16, as: UInt16.self) == 0)  // checksum left to the stack
        var parsed = try TCPSegment(parsing: buffer)
        #expect(parsed.sequenceNumber == segment.sequenceNumber)
        #expect(parsed.acknowledgmentNumber == segment.acknowledgmentNumber)
        #expect(parsed.flags == segment.flags)
        #expect(parsed.window == 1234)
        #expect(parsed.options == options)
        #expect(parsed.payload == PacketBuffer(bytes: [1, 2, 3]))

        // A data segment with timestamps and SACK blocks.
        options = TCPOptions(timestamp: TCPTimestampOption(value: 1, echoReply: 2))
        for i in 0..<3 { options.sackBlocks.append(TCPSACKBlock(start: SeqNumber(UInt32(i * 100)), end: SeqNumber(UInt32(i * 100 + 50)))) }
        segment = TCPSegment(sequenceNumber: SeqNumber(5), acknowledgmentNumber: SeqNumber(6), flags: .ack, window: 9, options: options)
        buffer.clear()
        segment.write(into: &buffer, sourcePort: 1, destinationPort: 2)
        #expect(buffer.readableBytes == 60)
        parsed = try TCPSegment(parsing: buffer)
        #expect(parsed.options == options)
        #expect(parsed.payload.readableBytes == 0)
    }

    @Test func sackBlocksThatDoNotFitAreLeftOut() throws {
        var options = TCPOptions(timestamp: TCPTimestampOption(value: 1, echoReply: 2))
        for i in 0..<4 { options.sackBlocks.append(TCPSACKBlock(start: SeqNumber(UInt32(i * 100)), end: SeqNumber(UInt32(i * 100 + 50)))) }
        #expect(options.encodedByteCount == 40)  // 12 + 4 + 3 · 8
        var buffer = PacketBuffer()
        options.write(into: &buffer)
        #expect(buffer.readableBytes == 40)
        let segment = TCPSegment(sequenceNumber: SeqNumber(1), flags: .ack, options: options)
        buffer.clear()
        segment.write(into: &buffer, sourcePort: 1, destinationPort: 2)
        let parsed = try TCPSegment(parsing: buffer)
        #expect(parsed.options.sackBlocks.count == 3)
    }

    @Test func sackBlocksStorageHoldsFour() {
        var blocks = TCPSACKBlocks()
        for i in 0..<5 { _ = blocks.append(TCPSACKBlock(start: SeqNumber(UInt32(i)), end: SeqNumber(UInt32(i + 1)))) }
        #expect(blocks.count == 4)
        blocks.truncate(to: 2)
        #expect(Array(blocks).map(\.start) == [SeqNumber(0), SeqNumber(1)])
    }

    @Test func sequenceLengthCountsSYNAndFIN() {
        #expect(TCPSegment(sequenceNumber: SeqNumber(0), flags: [.syn, .fin], payload: PacketBuffer(bytes: [1, 2])).sequenceLength == 4)
        #expect(TCPSegment(sequenceNumber: SeqNumber(UInt32.max), flags: .fin).endSequenceNumber == SeqNumber(0))
    }
}
