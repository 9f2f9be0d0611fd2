/// A TCP header over borrowed bytes (RFC 9293 §3.1).
///
/// `init(validating:)` checks the fixed header and the data offset once; after it succeeds no accessor
/// can trap. Nothing is copied. The options are parsed on demand by `options()`, which validates them.
/// The checksum is not verified here: the stack owns the pseudo-header and the virtio-net flags.
package struct TCPHeaderView: ~Escapable {
    /// The whole segment (header, options and payload) or at least the header with its options.
    package let bytes: RawSpan
    /// The header length from the data offset, in bytes (20…60), already checked against `bytes`.
    package let headerByteCount: Int

    /// The fixed part of every TCP header.
    package static let minimumByteCount = 20

    @_lifetime(copy bytes)
    package init(validating bytes: RawSpan) throws(TCPWireError) {
        guard bytes.byteCount >= Self.minimumByteCount else {
            throw .truncated(need: Self.minimumByteCount, have: bytes.byteCount)
        }
        let length = Int(bytes.unsafeLoad(fromByteOffset: 12, as: UInt8.self) >> 4) * 4
        guard length >= Self.minimumByteCount else { throw .badHeaderLength(length) }
        guard length <= bytes.byteCount else { throw .truncated(need: length, have: bytes.byteCount) }
        self.bytes = bytes
        self.headerByteCount = length
    }

    @inlinable package var sourcePort: UInt16 { bytes.tcpBigEndian(at: 0) }
    @inlinable package var destinationPort: UInt16 { bytes.tcpBigEndian(at: 2) }
    @inlinable package var sequenceNumber: SeqNumber { SeqNumber(bytes.tcpBigEndian(at: 4)) }
    @inlinable package var acknowledgmentNumber: SeqNumber { SeqNumber(bytes.tcpBigEndian(at: 8)) }
    @inlinable package var flags: TCPFlags { TCPFlags(rawValue: bytes.unsafeLoad(fromByteOffset: 13, as: UInt8.self)) }
    /// The window field as sent (not scaled).
    @inlinable package var window: UInt16 { bytes.tcpBigEndian(at: 14) }
    @inlinable package var checksum: UInt16 { bytes.tcpBigEndian(at: 16) }
    @inlinable package var urgentPointer: UInt16 { bytes.tcpBigEndian(at: 18) }
    /// Bytes after the header within `bytes`.
    @inlinable package var payloadByteCount: Int { bytes.byteCount - headerByteCount }

    /// Parses and validates the options between byte 20 and the data offset.
    package func options() throws(TCPWireError) -> TCPOptions {
        try TCPOptions(parsing: bytes, range: Self.minimumByteCount..<headerByteCount)
    }
}

extension RawSpan {
    /// A big-endian load; the caller has validated `offset + size <= byteCount`.
    @inlinable package func tcpBigEndian<T: FixedWidthInteger & BitwiseCopyable>(at offset: Int) -> T {
        T(bigEndian: unsafeLoadUnaligned(fromByteOffset: offset, as: T.self))
    }
}
