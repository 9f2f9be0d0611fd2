/// The bytes the stack works in: a reference-counted block of memory and a view of part of it, with a
/// reader and a writer index. Slices share the block (no copy); a write into a block somebody else also
/// holds copies it first (copy-on-write), so a slice handed out never changes under its holder.
///
/// The methods follow the names of the buffer type the engine's event loop uses, so the stack reads
/// the same as code on either side of it; the glue copies (or maps) between the two at the edge.
///
/// Indices are relative to the view: `getSlice` returns a buffer whose reader index is 0 and whose
/// capacity ends where the slice ends. A view may grow past its capacity: in place when its block is
/// uniquely held and has room, else into a new block.
public struct PacketBuffer: Sendable {
    /// The shared block, nil while nothing was ever allocated (an empty buffer costs nothing).
    @usableFromInline var storage: Storage?
    /// Where this view starts in the block.
    @usableFromInline var base: UInt32
    /// Bytes of the block this view may use, from `base`.
    @usableFromInline var limit: UInt32
    @usableFromInline var reader: UInt32
    @usableFromInline var writer: UInt32

    /// Byte order of an integer read or write; network order unless told.
    public enum Endianness: Sendable { case big, little }

    /// A block of raw memory, freed with its last holder: our own allocation, or memory another owner
    /// lent us (released to that owner instead).
    @usableFromInline final class Storage: @unchecked Sendable {
        @usableFromInline let bytes: UnsafeMutableRawPointer
        @usableFromInline let capacity: Int
        /// The lender of `bytes`, retained once for this block; nil when the block allocated them.
        @usableFromInline let lender: Unmanaged<AnyObject>?

        @inlinable init(capacity: Int) {
            self.capacity = capacity
            self.bytes = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(capacity, 1), alignment: 16)
            self.lender = nil
        }

        @usableFromInline init(borrowing bytes: UnsafeMutableRawBufferPointer, lender: Unmanaged<AnyObject>) {
            self.capacity = bytes.count
            self.bytes = bytes.baseAddress!
            self.lender = lender
        }

        deinit {
            if let lender { lender.release() } else { bytes.deallocate() }
        }
    }

    /// An empty buffer; allocates on the first write.
    @inlinable public init() {
        storage = nil
        base = 0
        limit = 0
        reader = 0
        writer = 0
    }

    /// An empty buffer with room for `capacity` bytes.
    @inlinable public init(capacity: Int) {
        precondition(capacity >= 0 && capacity <= Int(UInt32.max), "PacketBuffer: capacity \(capacity) out of range")
        self.init()
        if capacity > 0 {
            storage = Storage(capacity: capacity)
            limit = UInt32(capacity)
        }
    }

    /// A buffer holding a copy of `bytes`.
    @inlinable public init(bytes: some Sequence<UInt8>) {
        self.init(capacity: bytes.underestimatedCount)
        writeBytes(bytes)
    }

    /// A buffer holding the UTF-8 bytes of `string`.
    @inlinable public init(string: String) {
        self.init(bytes: string.utf8)
    }

    /// A buffer holding `count` copies of `byte`.
    @inlinable public init(repeating byte: UInt8, count: Int) {
        self.init(capacity: count)
        writeRepeatingByte(byte, count: count)
    }

    /// A buffer over memory another owner lends: `bytes` (non-empty) stay valid until `lender`, which
    /// the caller retained once for this buffer, is released, which happens when the last view of them
    /// goes. The views may write into `bytes` in place while they hold them alone.
    public init(borrowing bytes: UnsafeMutableRawBufferPointer, lender: Unmanaged<AnyObject>, readerIndex: Int, writerIndex: Int) {
        precondition(bytes.baseAddress != nil && bytes.count <= Int(UInt32.max), "PacketBuffer: bad borrowed memory")
        precondition(readerIndex >= 0 && readerIndex <= writerIndex && writerIndex <= bytes.count, "PacketBuffer: bad indices")
        self.init()
        storage = Storage(borrowing: bytes, lender: lender)
        limit = UInt32(bytes.count)
        reader = UInt32(readerIndex)
        writer = UInt32(writerIndex)
    }

    // MARK: Indices

    /// Index of the first unread byte.
    @inlinable public var readerIndex: Int { Int(reader) }
    /// Index just past the last written byte.
    @inlinable public var writerIndex: Int { Int(writer) }
    /// Bytes between the reader and the writer index.
    @inlinable public var readableBytes: Int { Int(writer &- reader) }
    /// Bytes that can be written before the view must grow.
    @inlinable public var writableBytes: Int { Int(limit &- writer) }
    /// Size of this view: indices run from 0 to `capacity`.
    @inlinable public var capacity: Int { Int(limit) }

    /// Moves the reader index to `index` (0 ... writerIndex).
    @inlinable public mutating func moveReaderIndex(to index: Int) {
        precondition(index >= 0 && index <= Int(writer), "PacketBuffer: reader index \(index) outside 0...\(writer)")
        reader = UInt32(truncatingIfNeeded: index)
    }

    /// Moves the reader index by `offset` (may be negative, never below 0 or above the writer index).
    @inlinable public mutating func moveReaderIndex(forwardBy offset: Int) {
        moveReaderIndex(to: Int(reader) + offset)
    }

    /// Moves the writer index to `index` (readerIndex ... capacity); the bytes in between count as written.
    @inlinable public mutating func moveWriterIndex(to index: Int) {
        precondition(index >= Int(reader) && index <= Int(limit), "PacketBuffer: writer index \(index) outside \(reader)...\(limit)")
        writer = UInt32(truncatingIfNeeded: index)
    }

    /// Moves the writer index by `offset`.
    @inlinable public mutating func moveWriterIndex(forwardBy offset: Int) {
        moveWriterIndex(to: Int(writer) + offset)
    }

    /// Whether no other view holds this buffer's block (an empty buffer holds none).
    @inlinable public var isUniquelyReferenced: Bool {
        mutating get { isKnownUniquelyReferenced(&storage) }
    }

    /// Forgets all bytes. Keeps the block when nothing else holds it.
    @inlinable public mutating func clear() {
        if storage != nil && !isKnownUniquelyReferenced(&storage) {
            storage = Storage(capacity: Int(limit))
            base = 0
        }
        reader = 0
        writer = 0
    }

    /// Moves the readable bytes to index 0, reclaiming what was read.
    @inlinable public mutating func discardReadBytes() {
        guard reader > 0 else { return }
        let count = readableBytes
        if storage != nil && isKnownUniquelyReferenced(&storage) {
            let start = storage!.bytes + Int(base)
            if count > 0 { start.copyMemory(from: start + Int(reader), byteCount: count) }
        } else if count > 0 {
            let fresh = Storage(capacity: Int(limit))
            fresh.bytes.copyMemory(from: storage!.bytes + Int(base) + Int(reader), byteCount: count)
            storage = fresh
            base = 0
        }
        reader = 0
        writer = UInt32(count)
    }

    /// Ensures the block is held by this view alone and the view reaches `end`.
    @inlinable @inline(__always) mutating func makeWritable(upTo end: Int) {
        if _fastPath(end <= Int(limit) && isKnownUniquelyReferenced(&storage)) { return }
        makeWritableSlowPath(upTo: end)
    }

    @usableFromInline @inline(never) mutating func makeWritableSlowPath(upTo end: Int) {
        precondition(end >= 0 && end <= Int(UInt32.max), "PacketBuffer: capacity \(end) out of range")
        if isKnownUniquelyReferenced(&storage), storage!.capacity - Int(base) >= end {
            limit = UInt32(storage!.capacity - Int(base))  // the block has room past this view's end
            return
        }
        var newCapacity = Swift.max(end, Int(limit))
        if end > Int(limit) {
            // Grow geometrically so appending byte by byte stays linear.
            var grown = 64
            while grown < end { grown <<= 1 }
            newCapacity = Swift.min(grown, Int(UInt32.max))
        }
        let fresh = Storage(capacity: newCapacity)
        if let storage, writer > 0 {
            fresh.bytes.copyMemory(from: storage.bytes + Int(base), byteCount: Int(writer))
        }
        storage = fresh
        base = 0
        limit = UInt32(newCapacity)
    }

    // MARK: Slices

    /// A view of `length` bytes from `index` sharing this buffer's block; nil unless all of them are
    /// readable (readerIndex ≤ index, index + length ≤ writerIndex). The slice's reader index is 0 and
    /// its capacity `length`.
    @inlinable public func getSlice(at index: Int, length: Int) -> PacketBuffer? {
        guard index >= Int(reader), length >= 0, index <= Int(writer) - length else { return nil }
        var slice = PacketBuffer()
        guard length > 0 else { return slice }
        slice.storage = storage
        slice.base = base &+ UInt32(truncatingIfNeeded: index)
        slice.limit = UInt32(truncatingIfNeeded: length)
        slice.writer = slice.limit
        return slice
    }

    /// The next `length` readable bytes as a slice, moving the reader index past them; nil if fewer are readable.
    @inlinable public mutating func readSlice(length: Int) -> PacketBuffer? {
        guard length >= 0, length <= readableBytes, let slice = getSlice(at: Int(reader), length: length) else { return nil }
        reader &+= UInt32(truncatingIfNeeded: length)
        return slice
    }

    // MARK: Raw access

    /// Calls `body` with the readable bytes.
    @inlinable public func withUnsafeReadableBytes<T, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> T) throws(E) -> T {
        guard let storage else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try body(UnsafeRawBufferPointer(start: storage.bytes + Int(base) + Int(reader), count: readableBytes))
    }

    /// Calls `body` with the readable bytes, writable (copying the block first if it is shared).
    @inlinable public mutating func withUnsafeMutableReadableBytes<T, E: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(E) -> T
    ) throws(E) -> T {
        try withMutableRange(from: Int(reader), count: readableBytes, body)
    }

    /// Calls `body` with `count` bytes of the view from `index`, made writable (the block copied first
    /// if it is shared); an empty range when `count` is 0.
    @inlinable mutating func withMutableRange<T, E: Error>(
        from index: Int, count: Int, _ body: (UnsafeMutableRawBufferPointer) throws(E) -> T
    ) throws(E) -> T {
        guard count > 0 else { return try body(UnsafeMutableRawBufferPointer(start: nil, count: 0)) }
        makeWritable(upTo: index + count)
        return try body(UnsafeMutableRawBufferPointer(start: storage!.bytes + Int(base) + index, count: count))
    }

    /// Calls `body` with the room after the writer index, writerIndex ..< capacity (copying the block
    /// first if it is shared); the writer index does not move.
    @inlinable public mutating func withUnsafeMutableWritableBytes<T, E: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(E) -> T
    ) throws(E) -> T {
        try withMutableRange(from: Int(writer), count: writableBytes, body)
    }

    /// Lends the readable bytes to a holder outside the stack without copying them. `body` gets the
    /// bytes and a token that keeps their block alive; the holder passes the token to `endLoan(_:)`
    /// exactly once when it is done. While the loan lasts the block counts as shared, so no
    /// `PacketBuffer` writes into it in place. The holder may change the lent bytes (they are this
    /// view's alone) but nothing before or after them. Returns nil, without calling `body`, when
    /// nothing is readable.
    @inlinable public func withLoanedReadableBytes<T>(
        _ body: (UnsafeMutableRawBufferPointer, UnsafeMutableRawPointer) throws -> T
    ) rethrows -> T? {
        guard let storage, writer > reader else { return nil }
        let token = Unmanaged.passRetained(storage).toOpaque()
        return try body(UnsafeMutableRawBufferPointer(start: storage.bytes + Int(base) + Int(reader), count: readableBytes), token)
    }

    /// Gives this whole view away to a holder outside the stack, which may then write anywhere in it
    /// (in front of the reader index, past the writer index): `body` gets the view's memory
    /// (0 ..< capacity, copied first if the block is shared), the reader and writer index, and a loan
    /// token for `endLoan(_:)`. This buffer is left empty. Returns nil, without calling `body`, for a
    /// buffer of capacity 0.
    public mutating func lendWholeView<T>(
        _ body: (UnsafeMutableRawBufferPointer, _ readerIndex: Int, _ writerIndex: Int, UnsafeMutableRawPointer) throws -> T
    ) rethrows -> T? {
        guard limit > 0 else { return nil }
        makeWritable(upTo: Int(limit))
        let storage = self.storage!
        let memory = UnsafeMutableRawBufferPointer(start: storage.bytes + Int(base), count: Int(limit))
        let (readerIndex, writerIndex) = (Int(reader), Int(writer))
        self = PacketBuffer()
        return try body(memory, readerIndex, writerIndex, Unmanaged.passRetained(storage).toOpaque())
    }

    /// Ends a loan made by `withLoanedReadableBytes` or `lendWholeView`; the block is freed if nothing else holds it.
    public static func endLoan(_ token: UnsafeMutableRawPointer) {
        Unmanaged<Storage>.fromOpaque(token).release()
    }

    /// The readable bytes as a span.
    @inlinable public var readableBytesSpan: RawSpan {
        @_lifetime(borrow self)
        borrowing get {
            let pointer = storage.map { UnsafeRawPointer($0.bytes + Int(base) + Int(reader)) }
            let span = RawSpan(_unsafeBytes: UnsafeRawBufferPointer(start: pointer, count: readableBytes))
            return _overrideLifetime(span, borrowing: self)
        }
    }

    // MARK: Integers

    /// The integer at `index`, or nil if its bytes are not all readable.
    @inlinable public func getInteger<T: FixedWidthInteger>(at index: Int, endianness: Endianness = .big,
                                                           as: T.Type = T.self) -> T? {
        guard index >= Int(reader), index <= Int(writer) - MemoryLayout<T>.size, let storage else { return nil }
        let raw = (storage.bytes + Int(base) + index).loadUnaligned(as: T.self)
        return endianness == .big ? T(bigEndian: raw) : T(littleEndian: raw)
    }

    /// Reads the integer at the reader index and moves past it; nil if too few bytes are readable.
    @inlinable public mutating func readInteger<T: FixedWidthInteger>(endianness: Endianness = .big, as: T.Type = T.self) -> T? {
        guard let value = getInteger(at: Int(reader), endianness: endianness, as: T.self) else { return nil }
        reader &+= UInt32(MemoryLayout<T>.size)
        return value
    }

    /// Writes `value` at `index` (which need not be below the writer index); returns its size.
    @discardableResult
    @inlinable public mutating func setInteger<T: FixedWidthInteger>(_ value: T, at index: Int, endianness: Endianness = .big,
                                                                    as: T.Type = T.self) -> Int {
        precondition(index >= 0, "PacketBuffer: negative index")
        makeWritable(upTo: index + MemoryLayout<T>.size)
        let raw = endianness == .big ? value.bigEndian : value.littleEndian
        (storage!.bytes + Int(base) + index).storeBytes(of: raw, as: T.self)
        return MemoryLayout<T>.size
    }

    /// Appends `value`; returns its size.
    @discardableResult
    @inlinable public mutating func writeInteger<T: FixedWidthInteger>(_ value: T, endianness: Endianness = .big,
                                                                      as: T.Type = T.self) -> Int {
        let size = setInteger(value, at: Int(writer), endianness: endianness)
        writer &+= UInt32(size)
        return size
    }

    // MARK: Bytes

    /// Appends a copy of `bytes`; returns the count.
    @discardableResult
    @inlinable public mutating func writeBytes(_ bytes: UnsafeRawBufferPointer) -> Int {
        let count = bytes.count
        guard count > 0 else { return 0 }
        makeWritable(upTo: Int(writer) + count)
        (storage!.bytes + Int(base) + Int(writer)).copyMemory(from: bytes.baseAddress!, byteCount: count)
        writer &+= UInt32(truncatingIfNeeded: count)
        return count
    }

    /// Appends a copy of `bytes`; returns the count.
    @discardableResult
    @inlinable public mutating func writeBytes(_ bytes: some Sequence<UInt8>) -> Int {
        if let written = bytes.withContiguousStorageIfAvailable({ writeBytes(UnsafeRawBufferPointer($0)) }) {
            return written
        }
        var count = 0
        for byte in bytes { count += writeInteger(byte) }
        return count
    }

    /// Appends the UTF-8 bytes of `string`; returns the count.
    @discardableResult
    @inlinable public mutating func writeString(_ string: String) -> Int {
        var string = string
        return string.withUTF8 { writeBytes(UnsafeRawBufferPointer($0)) }
    }

    /// Appends `count` copies of `byte`; returns the count.
    @discardableResult
    @inlinable public mutating func writeRepeatingByte(_ byte: UInt8, count: Int) -> Int {
        guard count > 0 else { return 0 }
        makeWritable(upTo: Int(writer) + count)
        (storage!.bytes + Int(base) + Int(writer)).initializeMemory(as: UInt8.self, repeating: byte, count: count)
        writer &+= UInt32(truncatingIfNeeded: count)
        return count
    }

    /// Appends `other`'s readable bytes and consumes them from `other`; returns the count.
    @discardableResult
    @inlinable public mutating func writeBuffer(_ other: inout PacketBuffer) -> Int {
        let written = writeImmutableBuffer(other)
        other.reader = other.writer
        return written
    }

    /// Appends a copy of `other`'s readable bytes; returns the count.
    @discardableResult
    @inlinable public mutating func writeImmutableBuffer(_ other: PacketBuffer) -> Int {
        other.withUnsafeReadableBytes { writeBytes($0) }
    }

    /// `length` bytes from `index` as an array; nil if they are not all readable.
    @inlinable public func getBytes(at index: Int, length: Int) -> [UInt8]? {
        guard index >= Int(reader), length >= 0, index <= Int(writer) - length else { return nil }
        guard length > 0, let storage else { return [] }
        return Array(UnsafeRawBufferPointer(start: storage.bytes + Int(base) + index, count: length))
    }

    /// Reads `length` bytes as an array and moves past them; nil if fewer are readable.
    @inlinable public mutating func readBytes(length: Int) -> [UInt8]? {
        guard let bytes = getBytes(at: Int(reader), length: length) else { return nil }
        reader &+= UInt32(truncatingIfNeeded: length)
        return bytes
    }

    /// The readable bytes as a collection (read-only, shares the block).
    @inlinable public var readableBytesView: View { View(buffer: self) }

    /// The readable bytes of a buffer as a random-access collection of `UInt8`.
    public struct View: RandomAccessCollection, Sendable {
        @usableFromInline let buffer: PacketBuffer
        @inlinable init(buffer: PacketBuffer) { self.buffer = buffer }
        @inlinable public var startIndex: Int { 0 }
        @inlinable public var endIndex: Int { buffer.readableBytes }
        @inlinable public subscript(position: Int) -> UInt8 {
            precondition(position >= 0 && position < endIndex, "PacketBuffer.View: index out of range")
            return buffer.storage!.bytes.load(fromByteOffset: Int(buffer.base) + Int(buffer.reader) + position, as: UInt8.self)
        }
        @inlinable public func withContiguousStorageIfAvailable<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R? {
            try buffer.withUnsafeReadableBytes { raw in try body(raw.bindMemory(to: UInt8.self)) }
        }
    }
}

extension PacketBuffer: Equatable {
    /// Buffers are equal when their readable bytes are.
    @inlinable public static func == (lhs: PacketBuffer, rhs: PacketBuffer) -> Bool {
        guard lhs.readableBytes == rhs.readableBytes else { return false }
        return lhs.withUnsafeReadableBytes { a in rhs.withUnsafeReadableBytes { b in a.elementsEqual(b) } }
    }
}

extension PacketBuffer: CustomStringConvertible {
    public var description: String {
        "PacketBuffer { readerIndex: \(reader), writerIndex: \(writer), capacity: \(limit) }"
    }
}
