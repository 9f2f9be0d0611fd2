/// A UDP header (RFC 768) over borrowed bytes that start at the header and end at the IP payload's end.
///
/// `init(validating:)` checks that 8 bytes are there and that the length field fits the bytes;
/// bytes past `length` are ignored. The checksum is checked by `isChecksumValid(pseudoHeaderSum:)`.
public struct UDPHeaderView: ~Escapable {
    public let bytes: RawSpan

    public static let length = 8

    @_lifetime(copy bytes)
    @inlinable public init(validating bytes: RawSpan) throws(WireError) {
        let count = bytes.byteCount
        guard count >= 8 else { throw .truncated(.udp, need: 8, have: count) }
        let length = Int(bytes.bigEndian(at: 4) as UInt16)
        guard length >= 8 else { throw .badLength(.udp, length) }
        guard length <= count else { throw .truncated(.udp, need: length, have: count) }
        self.bytes = bytes
    }

    @inlinable public var sourcePort: UInt16 { bytes.bigEndian(at: 0) }
    @inlinable public var destinationPort: UInt16 { bytes.bigEndian(at: 2) }
    /// Header plus payload, from the length field.
    @inlinable public var length: Int { Int(bytes.bigEndian(at: 4) as UInt16) }
    @inlinable public var checksum: UInt16 { bytes.bigEndian(at: 6) }
    @inlinable public var payloadRange: Range<Int> { 8..<length }

    /// Whether the checksum verifies against the pseudo-header sum of the enclosing IP header.
    /// Over IPv4 a zero field means "no checksum" (RFC 768) and passes; over IPv6 it is invalid
    /// (RFC 8200 §8.1), so IPv6 callers pass `zeroAllowed: false`.
    @inlinable public func isChecksumValid(pseudoHeaderSum: UInt16, zeroAllowed: Bool) -> Bool {
        if checksum == 0 { return zeroAllowed }
        var c = Checksum(sum: pseudoHeaderSum)
        c.add(bytes: bytes.extracting(0..<length))
        return c.sum == 0xffff
    }
}

/// A UDP header to write.
public struct UDPHeader: Sendable, Equatable {
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    /// Header plus payload.
    public var length: Int

    @inlinable public init(sourcePort: UInt16, destinationPort: UInt16, length: Int) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.length = length
    }

    /// Writes the header into `out[0..<8]` and its checksum over `out[0..<length]`, which must hold the
    /// payload already. A computed 0 is sent as 0xffff (RFC 768).
    @inlinable public func write(to out: UnsafeMutableRawBufferPointer, pseudoHeaderSum: UInt16) {
        precondition(out.count >= length && length >= 8 && length <= 0xffff)
        out.storeBigEndian(sourcePort, at: 0)
        out.storeBigEndian(destinationPort, at: 2)
        out.storeBigEndian(UInt16(length), at: 4)
        out.storeBigEndian(UInt16(0), at: 6)
        var c = Checksum(sum: pseudoHeaderSum)
        c.add(bytes: UnsafeRawBufferPointer(rebasing: out[0..<length]))
        let value = c.value
        out.storeBigEndian(value == 0 ? 0xffff : value, at: 6)
    }
}
