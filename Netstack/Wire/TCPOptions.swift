
/// One SACK block (RFC 2018 §3): the peer holds `[start, end)`.
public struct TCPSACKBlock: Hashable, Sendable, CustomStringConvertible {
    public var start: SeqNumber
    public var end: SeqNumber
    @inlinable public init(start: SeqNumber, end: SeqNumber) { self.start = start; self.end = end }
    public var description: String { "\(start)-\(end)" }
}

/// Up to four SACK blocks in fixed storage: a segment's option space holds at most four
/// (three beside timestamps), so no segment allocates for them.
public struct TCPSACKBlocks: Equatable, Sendable, RandomAccessCollection {
    /// The most blocks any segment can carry (40 option bytes, RFC 2018 §3).
    public static let capacity = 4

    @usableFromInline var storage: InlineArray<4, TCPSACKBlock>
    @usableFromInline var _count: Int

    @inlinable public init() {
        storage = InlineArray(repeating: TCPSACKBlock(start: SeqNumber(0), end: SeqNumber(0)))
        _count = 0
    }

    @inlinable public var startIndex: Int { 0 }
    @inlinable public var endIndex: Int { _count }
    @inlinable public subscript(position: Int) -> TCPSACKBlock {
        get { precondition(position < _count); return storage[position] }
        set { precondition(position < _count); storage[position] = newValue }
    }

    /// Appends a block; returns false (and drops it) when all four slots are used.
    @inlinable @discardableResult public mutating func append(_ block: TCPSACKBlock) -> Bool {
        guard _count < Self.capacity else { return false }
        storage[_count] = block
        _count += 1
        return true
    }

    @inlinable public mutating func removeAll() { _count = 0 }

    /// Keeps the first `count` blocks.
    @inlinable public mutating func truncate(to count: Int) { _count = Swift.min(_count, Swift.max(0, count)) }

    @inlinable public static func == (lhs: TCPSACKBlocks, rhs: TCPSACKBlocks) -> Bool {
        lhs.elementsEqual(rhs)
    }
}

/// The timestamps option (RFC 7323 §3): our clock value and the echo of the peer's.
public struct TCPTimestampOption: Hashable, Sendable {
    public var value: UInt32
    public var echoReply: UInt32
    @inlinable public init(value: UInt32, echoReply: UInt32) { self.value = value; self.echoReply = echoReply }
}

/// The TCP options this stack understands, parsed from or emitted into a header's option space.
///
/// Parsing skips NOPs and unknown kinds, stops at EOL, and throws on a length byte that is missing, below
/// two or runs past the option space, and on a known option with the wrong length (RFC 9293 §3.1 requires
/// a receiver to be ready for any option; a length it cannot trust leaves the rest unparseable).
/// A SACK option with more than four blocks cannot fit and is rejected by the length check.
public struct TCPOptions: Equatable, Sendable {
    /// Maximum segment size (kind 2, only meaningful on SYNs).
    public var maximumSegmentSize: UInt16?
    /// Window scale shift (kind 3, SYNs only). Values above 14 are kept here; the connection clamps them.
    public var windowScale: UInt8?
    /// SACK-permitted (kind 4, SYNs only).
    public var sackPermitted: Bool
    /// Timestamps (kind 8).
    public var timestamp: TCPTimestampOption?
    /// SACK blocks (kind 5).
    public var sackBlocks: TCPSACKBlocks

    public enum Kind {
        public static let endOfList: UInt8 = 0
        public static let noOperation: UInt8 = 1
        public static let maximumSegmentSize: UInt8 = 2
        public static let windowScale: UInt8 = 3
        public static let sackPermitted: UInt8 = 4
        public static let sack: UInt8 = 5
        public static let timestamp: UInt8 = 8
    }

    /// The most option bytes a header can hold (data offset 15 words minus the fixed 5).
    public static let maximumByteCount = 40

    @inlinable public init(maximumSegmentSize: UInt16? = nil, windowScale: UInt8? = nil, sackPermitted: Bool = false,
                            timestamp: TCPTimestampOption? = nil, sackBlocks: TCPSACKBlocks = TCPSACKBlocks()) {
        self.maximumSegmentSize = maximumSegmentSize
        self.windowScale = windowScale
        self.sackPermitted = sackPermitted
        self.timestamp = timestamp
        self.sackBlocks = sackBlocks
    }

    /// Parses the options in `bytes[range]` (the caller has checked the range lies within `bytes`).
    public init(parsing bytes: RawSpan, range: Range<Int>) throws(TCPWireError) {
        self.init()
        var index = range.lowerBound
        let end = range.upperBound
        while index < end {
            let kind = bytes.unsafeLoad(fromByteOffset: index, as: UInt8.self)
            if kind == Kind.endOfList { break }
            if kind == Kind.noOperation { index += 1; continue }
            guard index + 1 < end else { throw .malformedOption(kind: kind, offset: index - range.lowerBound) }
            let length = Int(bytes.unsafeLoad(fromByteOffset: index + 1, as: UInt8.self))
            guard length >= 2, index + length <= end else {
                throw .malformedOption(kind: kind, offset: index - range.lowerBound)
            }
            let body = index + 2
            switch kind {
            case Kind.maximumSegmentSize:
                guard length == 4 else { throw .badOptionLength(kind: kind, length: length) }
                maximumSegmentSize = bytes.tcpBigEndian(at: body)
            case Kind.windowScale:
                guard length == 3 else { throw .badOptionLength(kind: kind, length: length) }
                windowScale = bytes.unsafeLoad(fromByteOffset: body, as: UInt8.self)
            case Kind.sackPermitted:
                guard length == 2 else { throw .badOptionLength(kind: kind, length: length) }
                sackPermitted = true
            case Kind.sack:
                // RFC 2018 §3: 2 + 8n bytes; n ≤ 4 follows from the 40-byte option space.
                guard length >= 10, (length - 2) % 8 == 0 else { throw .badOptionLength(kind: kind, length: length) }
                sackBlocks.removeAll()
                var offset = body
                while offset < index + length {
                    let start = SeqNumber(bytes.tcpBigEndian(at: offset))
                    let stop = SeqNumber(bytes.tcpBigEndian(at: offset + 4))
                    sackBlocks.append(TCPSACKBlock(start: start, end: stop))
                    offset += 8
                }
            case Kind.timestamp:
                guard length == 10 else { throw .badOptionLength(kind: kind, length: length) }
                timestamp = TCPTimestampOption(value: bytes.tcpBigEndian(at: body),
                                               echoReply: bytes.tcpBigEndian(at: body + 4))
            default:
                break  // Unknown kinds are skipped by their length (RFC 9293 §3.1).
            }
            index += length
        }
    }

    /// How many SACK blocks fit beside the other options present.
    @inlinable public var sackBlocksThatFit: Int {
        let other = fixedByteCount
        return Swift.max(0, (Self.maximumByteCount - other - 4) / 8)
    }

    /// Bytes of everything but SACK blocks, each group padded to 4 with NOPs.
    @inlinable var fixedByteCount: Int {
        var count = 0
        if maximumSegmentSize != nil { count += 4 }
        if timestamp != nil || sackPermitted { count += timestamp != nil ? 12 : 4 }  // SACK-permitted rides in the timestamp's padding
        if windowScale != nil { count += 4 }
        return count
    }

    /// The option bytes `write(into:)` emits: always a multiple of four, at most 40.
    @inlinable public var encodedByteCount: Int {
        let blocks = Swift.min(sackBlocks.count, sackBlocksThatFit)
        return fixedByteCount + (blocks > 0 ? 4 + 8 * blocks : 0)
    }

    /// Writes the options padded with NOPs to a multiple of four (Linux's layout: MSS, SACK-permitted
    /// with timestamps, NOP + window scale, NOP NOP + SACK). SACK blocks that do not fit are left out.
    public func write(into buffer: inout PacketBuffer) {
        if let mss = maximumSegmentSize {
            buffer.writeInteger(Kind.maximumSegmentSize); buffer.writeInteger(UInt8(4)); buffer.writeInteger(mss)
        }
        if let ts = timestamp {
            if sackPermitted {
                buffer.writeInteger(Kind.sackPermitted); buffer.writeInteger(UInt8(2))
            } else {
                buffer.writeInteger(Kind.noOperation); buffer.writeInteger(Kind.noOperation)
            }
            buffer.writeInteger(Kind.timestamp); buffer.writeInteger(UInt8(10))
            buffer.writeInteger(ts.value); buffer.writeInteger(ts.echoReply)
        } else if sackPermitted {
            buffer.writeInteger(Kind.noOperation); buffer.writeInteger(Kind.noOperation)
            buffer.writeInteger(Kind.sackPermitted); buffer.writeInteger(UInt8(2))
        }
        if let scale = windowScale {
            buffer.writeInteger(Kind.noOperation)
            buffer.writeInteger(Kind.windowScale); buffer.writeInteger(UInt8(3)); buffer.writeInteger(scale)
        }
        let blocks = Swift.min(sackBlocks.count, sackBlocksThatFit)
        if blocks > 0 {
            buffer.writeInteger(Kind.noOperation); buffer.writeInteger(Kind.noOperation)
            buffer.writeInteger(Kind.sack); buffer.writeInteger(UInt8(2 + 8 * blocks))
            for block in sackBlocks.prefix(blocks) {
                buffer.writeInteger(block.start.rawValue); buffer.writeInteger(block.end.rawValue)
            }
        }
    }
}
