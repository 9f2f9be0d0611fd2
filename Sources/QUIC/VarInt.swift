// Variable-length integers (RFC 9000 §16): the two high bits of the first byte give the length
// (1, 2, 4 or 8 bytes), the rest is the value in network byte order, up to 2^62 - 1.
package import NIOCore

/// The largest value a variable-length integer can carry (RFC 9000 §16).
package let quicVarIntMax: UInt64 = (1 << 62) - 1

extension ByteBuffer {
    /// Reads a variable-length integer; nil (nothing consumed) when the buffer ends first.
    package mutating func readQUICVarInt() -> UInt64? {
        guard let first: UInt8 = getInteger(at: readerIndex) else { return nil }
        switch first >> 6 {
        case 0:
            moveReaderIndex(forwardBy: 1)
            return UInt64(first)
        case 1:
            guard let value: UInt16 = readInteger() else { return nil }
            return UInt64(value & 0x3FFF)
        case 2:
            guard let value: UInt32 = readInteger() else { return nil }
            return UInt64(value & 0x3FFF_FFFF)
        default:
            guard let value: UInt64 = readInteger() else { return nil }
            return value & 0x3FFF_FFFF_FFFF_FFFF
        }
    }

    /// Writes `value` in the shortest encoding. The caller keeps `value <= quicVarIntMax` (our bug
    /// otherwise); returns the bytes written.
    @discardableResult package mutating func writeQUICVarInt(_ value: UInt64) -> Int {
        precondition(value <= quicVarIntMax, "QUIC varint out of range")
        switch value {
        case 0..<64: return writeInteger(UInt8(value))
        case 64..<16384: return writeInteger(UInt16(value) | 0x4000)
        case 16384..<(1 << 30): return writeInteger(UInt32(value) | 0x8000_0000)
        default: return writeInteger(value | 0xC000_0000_0000_0000)
        }
    }

    /// Writes `value` in exactly `length` bytes (1, 2, 4 or 8): for a Length field reserved
    /// before the payload is known.
    package mutating func setQUICVarInt(_ value: UInt64, at index: Int, length: Int) {
        switch length {
        case 1: setInteger(UInt8(value), at: index)
        case 2: setInteger(UInt16(value) | 0x4000, at: index)
        case 4: setInteger(UInt32(value) | 0x8000_0000, at: index)
        default: setInteger(value | 0xC000_0000_0000_0000, at: index)
        }
    }
}

/// The bytes the shortest encoding of `value` takes.
package func quicVarIntLength(_ value: UInt64) -> Int {
    switch value {
    case 0..<64: 1
    case 64..<16384: 2
    case 16384..<(1 << 30): 4
    default: 8
    }
}
