/// A TCP header over borrowed bytes (RFC 9293 §3.1).
///
/// `init(validating:)` checks the fixed header and the data offset once; after it succeeds no accessor
/// can trap. Nothing is copied. The options are parsed on demand by `options()`, which validates them.
/// The checksum is not verified here: the stack owns the pseudo-header and the virtio-net flags.
public struct TCPHeaderView: ~Escapable {
    /// The whole segment (header, options and payload) or at least the header with its options.
    public let bytes: RawSpan
    /// The header length from the data offset, in bytes (20…60), already checked against `bytes`.
    public let headerByteCount: Int

    /// The fixed part of every TCP header.
    public static let minimumByteCount = 20

    @_lifetime(copy bytes)
    public init(validating bytes: RawSpan) throws(TCPWireError) {
        guard bytes.byteCount >= Self.minimumByteCount else {
            throw .truncated(need: Self.minimumByteCount, have: bytes.byteCount)
        }
        let length = Int(bytes.unsafeLoad(fromByteOffset: 12, as: UInt8.self) >> 4) * 4
        guard length >= Self.minimumByteCount else { throw .badHeaderLength(length) }
        guard length <= bytes.byteCount else { throw .truncated(need: length, have: bytes.byteCount) }
        self.bytes = bytes
        self.headerByteCount = length
    }

    @inlinable public var sourcePort: UInt16 { bytes.tcpBigEndian(at: 0) }
    @inlinable public var destinationPort: UInt16 { bytes.tcpBigEndian(at: 2) }
    @inlinable public var sequenceNumber: SeqNumber { SeqNumber(bytes.tcpBigEndian(at: 4)) }
    @inlinable public var acknowledgmentNumber: SeqNumber { SeqNumber(bytes.tcpBigEndian(at: 8)) }
    @inlinable public var flags: TCPFlags { TCPFlags(rawValue: bytes.unsafeLoad(fromByteOffset: 13, as: UInt8.self)) }
    /// The window field as sent (not scaled).
    @inlinable public var window: UInt16 { bytes.tcpBigEndian(at: 14) }
    @inlinable public var checksum: UInt16 { bytes.tcpBigEndian(at: 16) }
    @inlinable public var urgentPointer: UInt16 { bytes.tcpBigEndian(at: 18) }
    /// Bytes after the header within `bytes`.
    @inlinable public var payloadByteCount: Int { bytes.byteCount - headerByteCount }

    /// Parses and validates the options between byte 20 and the data offset.
    public func options() throws(TCPWireError) -> TCPOptions {
        try TCPOptions(parsing: bytes, range: Self.minimumByteCount..<headerByteCount)
    }
}

extension RawSpan {
    /// A big-endian load; the caller has validated `offset + size <= byteCount`.
    @inlinable public func tcpBigEndian<T: FixedWidthInteger & BitwiseCopyable>(at offset: Int) -> T {
        T(bigEndian: unsafeLoadUnaligned(fromByteOffset: offset, as: T.self))
    }
}
