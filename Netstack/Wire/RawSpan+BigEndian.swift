extension RawSpan {
    /// Loads a big-endian integer at `offset`. The caller has validated that the bytes are there;
    /// the load is still bounds-checked by `RawSpan`, so a caller bug traps instead of reading past.
    @inlinable public func bigEndian<T: FixedWidthInteger & BitwiseCopyable>(at offset: Int) -> T {
        T(bigEndian: unsafeLoadUnaligned(fromByteOffset: offset, as: T.self))
    }

    /// The byte at `offset` (bounds-checked).
    @inlinable public func byte(at offset: Int) -> UInt8 {
        unsafeLoad(fromByteOffset: offset, as: UInt8.self)
    }
}

extension UnsafeMutableRawBufferPointer {
    /// Stores `value` big-endian at `offset`. The caller guarantees `offset + size <= count`.
    @inlinable public func storeBigEndian<T: FixedWidthInteger & BitwiseCopyable>(_ value: T, at offset: Int) {
        precondition(offset >= 0 && offset + MemoryLayout<T>.size <= count, "store past the buffer")
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: T.self)
    }
}

extension UnsafeRawBufferPointer {
    /// Loads a big-endian integer at `offset`. The caller guarantees `offset + size <= count`.
    @inlinable public func loadBigEndian<T: FixedWidthInteger & BitwiseCopyable>(at offset: Int, as: T.Type = T.self) -> T {
        precondition(offset >= 0 && offset + MemoryLayout<T>.size <= count, "load past the buffer")
        return T(bigEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}

extension UnsafeMutableRawBufferPointer {
    /// Loads a big-endian integer at `offset`. The caller guarantees `offset + size <= count`.
    @inlinable public func loadBigEndian<T: FixedWidthInteger & BitwiseCopyable>(at offset: Int, as: T.Type = T.self) -> T {
        UnsafeRawBufferPointer(self).loadBigEndian(at: offset, as: T.self)
    }
}
