/// The Internet checksum (RFC 1071): a 16-bit one's-complement sum of 16-bit big-endian words.
///
/// `Checksum` is an accumulator. Feed it bytes (any lengths, in order: an odd-length chunk shifts the
/// byte parity of the next one, as RFC 1071 §2(B) allows) and 16/32-bit words, then read `sum` (the
/// folded one's-complement sum) or `value` (its complement, what goes in a header field).
/// Verifying a packet that carries its checksum: the sum over everything is `0xffff`.
///
/// All values are host integers holding the big-endian reading of the words (`0x4500` for bytes 45 00).
public struct Checksum: Sendable, Equatable {
    /// Unfolded sum in the big-endian-word domain. Kept in 64 bits so adds never overflow in practice;
    /// `add` still folds carries when it gets large.
    @usableFromInline var accumulator: UInt64
    /// Whether an odd number of bytes has been added so far (the next byte is a low byte).
    @usableFromInline var odd: Bool

    @inlinable public init() { accumulator = 0; odd = false }

    /// Starts from a folded sum, for example a pseudo-header sum or a partial checksum read from a field.
    @inlinable public init(sum: UInt16) { accumulator = UInt64(sum); odd = false }

    /// Adds one 16-bit word at an even position.
    @inlinable public mutating func add(_ word: UInt16) {
        precondition(!odd, "word added at an odd byte position")
        accumulator &+= UInt64(word)
    }

    /// Adds a 32-bit value as two 16-bit words (an IPv4 address, a TCP length).
    @inlinable public mutating func add(_ word: UInt32) {
        precondition(!odd, "word added at an odd byte position")
        accumulator &+= UInt64(word >> 16) &+ UInt64(word & 0xffff)
    }

    /// Adds bytes. The fast path reads 64-bit words (see `Checksum.nativeSum`).
    @inlinable public mutating func add(bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        // RFC 1071 §2(B): the sum is byte-order independent, so a chunk that starts at an odd
        // position contributes its own sum with the two bytes of every word swapped.
        let chunk = Checksum.fold(Checksum.nativeSum(bytes)).byteSwapped  // big-endian domain
        accumulator &+= UInt64(odd ? chunk.byteSwapped : chunk)
        if bytes.count & 1 == 1 { odd.toggle() }
    }

    /// Adds the bytes of a span.
    @inlinable public mutating func add(bytes: RawSpan) {
        bytes.withUnsafeBytes { add(bytes: $0) }
    }

    /// The folded one's-complement sum (never 0 unless nothing non-zero was added).
    @inlinable public var sum: UInt16 { Checksum.fold(accumulator) }

    /// The checksum field value: the complement of the sum.
    @inlinable public var value: UInt16 { ~sum }

    /// Folds a 64-bit one's-complement accumulator to 16 bits with end-around carries.
    @inlinable public static func fold(_ value: UInt64) -> UInt16 {
        var s = (value >> 32) &+ (value & 0xffff_ffff)  // ≤ 33 bits
        s = (s >> 32) &+ (s & 0xffff_ffff)              // ≤ 32 bits
        s = (s >> 16) &+ (s & 0xffff)                   // ≤ 17 bits
        s = (s >> 16) &+ (s & 0xffff)                   // 16 bits
        return UInt16(truncatingIfNeeded: s)
    }

    /// The one's-complement sum of `bytes` read as host-order (little-endian) words, unfolded.
    ///
    /// SWIFT-LINUX §6: UInt64 loads with end-around carry, two accumulators, 32 bytes per iteration
    /// runs at ~28 GB/s in release. Folding the result and byte-swapping it gives the big-endian sum.
    @inlinable public static func nativeSum(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        guard let base = bytes.baseAddress else { return 0 }
        let count = bytes.count
        var a: UInt64 = 0
        var b: UInt64 = 0
        var i = 0
        while i + 32 <= count {
            let w0 = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            let w1 = base.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self)
            let w2 = base.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self)
            let w3 = base.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self)
            var o: Bool
            (a, o) = a.addingReportingOverflow(w0); a &+= o ? 1 : 0
            (b, o) = b.addingReportingOverflow(w1); b &+= o ? 1 : 0
            (a, o) = a.addingReportingOverflow(w2); a &+= o ? 1 : 0
            (b, o) = b.addingReportingOverflow(w3); b &+= o ? 1 : 0
            i &+= 32
        }
        while i + 8 <= count {
            let w = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            var o: Bool
            (a, o) = a.addingReportingOverflow(w); a &+= o ? 1 : 0
            i &+= 8
        }
        // Tail of 0–7 bytes, little-endian: a lone last byte is the high byte of a big-endian word,
        // which is the low byte of a host word at an even offset.
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < count {
            tail |= UInt64(base.load(fromByteOffset: i, as: UInt8.self)) << shift
            shift &+= 8
            i &+= 1
        }
        var o: Bool
        (a, o) = a.addingReportingOverflow(tail); a &+= o ? 1 : 0
        (a, o) = a.addingReportingOverflow(b); a &+= o ? 1 : 0
        return a
    }

    /// The checksum field value for `bytes` alone.
    @inlinable public static func compute(_ bytes: UnsafeRawBufferPointer) -> UInt16 {
        var c = Checksum()
        c.add(bytes: bytes)
        return c.value
    }

    /// The checksum field value for the bytes of a span.
    @inlinable public static func compute(_ bytes: RawSpan) -> UInt16 {
        bytes.withUnsafeBytes { compute($0) }
    }

    /// RFC 1624 eqn. 3: the new checksum field after one 16-bit word changed from `old` to `new`:
    /// `HC' = ~(~HC + ~m + m')`. Never produces `0x0000` from a nonzero sum (unlike eqn. 2's pitfall).
    @inlinable public static func update(_ checksum: UInt16, old: UInt16, new: UInt16) -> UInt16 {
        let s = UInt64(~checksum) &+ UInt64(~old) &+ UInt64(new)
        return ~fold(s)
    }

    /// RFC 1624 for a 32-bit change (an IPv4 address): two word updates in one.
    @inlinable public static func update(_ checksum: UInt16, old: UInt32, new: UInt32) -> UInt16 {
        let s = UInt64(~checksum) &+ UInt64(~UInt16(truncatingIfNeeded: old >> 16)) &+ UInt64(~UInt16(truncatingIfNeeded: old))
            &+ UInt64(new >> 16) &+ UInt64(new & 0xffff)
        return ~fold(s)
    }

    /// The folded sum of the IPv4 pseudo-header (RFC 793 §3.1, RFC 768): source, destination,
    /// zero + protocol, upper-layer length.
    @inlinable public static func pseudoHeaderSum(source: IPv4Address, destination: IPv4Address,
                                                   protocol proto: UInt8, length: Int) -> UInt16 {
        var c = Checksum()
        c.add(source.rawValue)
        c.add(destination.rawValue)
        c.add(UInt16(proto))
        c.add(UInt32(truncatingIfNeeded: length))
        return c.sum
    }

    /// The folded sum of the IPv6 pseudo-header (RFC 8200 §8.1): source, destination,
    /// 32-bit upper-layer length, three zero bytes and the next header.
    @inlinable public static func pseudoHeaderSum(source: IPv6Address, destination: IPv6Address,
                                                   protocol proto: UInt8, length: Int) -> UInt16 {
        var c = Checksum()
        c.add(UInt32(truncatingIfNeeded: source.high >> 32)); c.add(UInt32(truncatingIfNeeded: source.high))
        c.add(UInt32(truncatingIfNeeded: source.low >> 32)); c.add(UInt32(truncatingIfNeeded: source.low))
        c.add(UInt32(truncatingIfNeeded: destination.high >> 32)); c.add(UInt32(truncatingIfNeeded: destination.high))
        c.add(UInt32(truncatingIfNeeded: destination.low >> 32)); c.add(UInt32(truncatingIfNeeded: destination.low))
        c.add(UInt32(truncatingIfNeeded: length))
        c.add(UInt16(proto))
        return c.sum
    }

    /// The pseudo-header sum for either family; both addresses must be of the same family.
    @inlinable public static func pseudoHeaderSum(source: IPAddress, destination: IPAddress,
                                                   protocol proto: UInt8, length: Int) -> UInt16 {
        switch (source, destination) {
        case let (.v4(s), .v4(d)): return pseudoHeaderSum(source: s, destination: d, protocol: proto, length: length)
        case let (.v6(s), .v6(d)): return pseudoHeaderSum(source: s, destination: d, protocol: proto, length: length)
        default: preconditionFailure("pseudo-header with mixed address families")
        }
    }
}
