/// An ICMPv4 (RFC 792) or ICMPv6 (RFC 4443) message over borrowed bytes: type, code, checksum, the
/// 4-byte rest of header (identifier/sequence, MTU, pointer) and the body.
///
/// Both families share the layout; they differ in checksum (ICMPv6 covers a pseudo-header) and type
/// numbers (`ICMPv4Type`, `ICMPv6Type`). `init(validating:)` checks that the 8 header bytes are there.
public struct ICMPHeaderView: ~Escapable {
    public let bytes: RawSpan

    public static let length = 8

    @_lifetime(copy bytes)
    @inlinable public init(validating bytes: RawSpan, layer: WireError.Layer = .icmpv4) throws(WireError) {
        guard bytes.byteCount >= 8 else { throw .truncated(layer, need: 8, have: bytes.byteCount) }
        self.bytes = bytes
    }

    @inlinable public var type: UInt8 { bytes.byte(at: 0) }
    @inlinable public var code: UInt8 { bytes.byte(at: 1) }
    @inlinable public var checksum: UInt16 { bytes.bigEndian(at: 2) }
    /// Echo identifier (bytes 4–5).
    @inlinable public var identifier: UInt16 { bytes.bigEndian(at: 4) }
    /// Echo sequence number (bytes 6–7).
    @inlinable public var sequenceNumber: UInt16 { bytes.bigEndian(at: 6) }
    /// Bytes 4–7 as one word: the MTU of "packet too big", the pointer of "parameter problem", or
    /// the next-hop MTU in the low half of ICMPv4 "fragmentation needed".
    @inlinable public var restOfHeader: UInt32 { bytes.bigEndian(at: 4) }
    @inlinable public var bodyRange: Range<Int> { 8..<bytes.byteCount }

    /// Whether the checksum verifies. ICMPv4 passes `pseudoHeaderSum: 0`; ICMPv6 the IPv6 pseudo-header sum.
    @inlinable public func isChecksumValid(pseudoHeaderSum: UInt16) -> Bool {
        var c = Checksum(sum: pseudoHeaderSum)
        c.add(bytes: bytes)
        return c.sum == 0xffff
    }
}

/// An ICMP header to write; the body is already in place after it.
public struct ICMPHeader: Sendable, Equatable {
    public var type: UInt8
    public var code: UInt8
    public var restOfHeader: UInt32

    @inlinable public init(type: UInt8, code: UInt8, restOfHeader: UInt32 = 0) {
        self.type = type
        self.code = code
        self.restOfHeader = restOfHeader
    }

    /// An echo request or reply header.
    @inlinable public static func echo(type: UInt8, identifier: UInt16, sequenceNumber: UInt16) -> ICMPHeader {
        ICMPHeader(type: type, code: 0, restOfHeader: UInt32(identifier) << 16 | UInt32(sequenceNumber))
    }

    /// Writes the header into `out[0..<8]` and the checksum over all of `out` (header and body).
    /// ICMPv4 passes `pseudoHeaderSum: 0`.
    @inlinable public func write(to out: UnsafeMutableRawBufferPointer, pseudoHeaderSum: UInt16) {
        precondition(out.count >= 8)
        out.storeBigEndian(type, at: 0)
        out.storeBigEndian(code, at: 1)
        out.storeBigEndian(UInt16(0), at: 2)
        out.storeBigEndian(restOfHeader, at: 4)
        var c = Checksum(sum: pseudoHeaderSum)
        c.add(bytes: UnsafeRawBufferPointer(out))
        out.storeBigEndian(c.value, at: 2)
    }
}

/// ICMPv4 types and codes used by the stack (RFC 792, RFC 1191).
public enum ICMPv4Type {
    public static let echoReply: UInt8 = 0
    public static let destinationUnreachable: UInt8 = 3
    public static let echoRequest: UInt8 = 8
    public static let timeExceeded: UInt8 = 11
    public static let parameterProblem: UInt8 = 12

    /// Codes of destination unreachable.
    public static let netUnreachable: UInt8 = 0
    public static let hostUnreachable: UInt8 = 1
    public static let protocolUnreachable: UInt8 = 2
    public static let portUnreachable: UInt8 = 3
    public static let fragmentationNeeded: UInt8 = 4
    public static let administrativelyProhibited: UInt8 = 13
    /// Codes of time exceeded.
    public static let ttlExceeded: UInt8 = 0
    public static let reassemblyTimeExceeded: UInt8 = 1

    /// Whether `type` is an error message (never answered with another error, RFC 1122 §3.2.2).
    @inlinable public static func isError(_ type: UInt8) -> Bool {
        type == 3 || type == 4 || type == 5 || type == 11 || type == 12
    }
}

/// ICMPv6 types and codes used by the stack (RFC 4443).
public enum ICMPv6Type {
    public static let destinationUnreachable: UInt8 = 1
    public static let packetTooBig: UInt8 = 2
    public static let timeExceeded: UInt8 = 3
    public static let parameterProblem: UInt8 = 4
    public static let echoRequest: UInt8 = 128
    public static let echoReply: UInt8 = 129

    /// Codes of destination unreachable.
    public static let noRoute: UInt8 = 0
    public static let administrativelyProhibited: UInt8 = 1
    public static let addressUnreachable: UInt8 = 3
    public static let portUnreachable: UInt8 = 4
    /// Codes of time exceeded.
    public static let hopLimitExceeded: UInt8 = 0
    public static let reassemblyTimeExceeded: UInt8 = 1

    /// Error messages are types 0–127 (RFC 4443 §2.1).
    @inlinable public static func isError(_ type: UInt8) -> Bool { type < 128 }
}
