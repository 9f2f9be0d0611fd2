/// An IPv4 header (RFC 791 §3.1) over borrowed bytes that start at the header.
///
/// `init(validating:)` checks version, IHL and total length once; afterwards no accessor can trap.
/// Bytes past `totalLength` (link padding) are not part of the packet. The header checksum is not
/// checked by the initializer (`isChecksumValid` does, so a caller holding a NEEDS_CSUM packet decides).
public struct IPv4HeaderView: ~Escapable {
    /// The packet's bytes from the start of the header (may extend past `totalLength`).
    public let bytes: RawSpan

    /// The fixed header size.
    public static let minimumLength = 20

    @_lifetime(copy bytes)
    @inlinable public init(validating bytes: RawSpan) throws(WireError) {
        let count = bytes.byteCount
        guard count >= 20 else { throw .truncated(.ipv4, need: 20, have: count) }
        let first = bytes.byte(at: 0)
        guard first >> 4 == 4 else { throw .badVersion(Int(first >> 4)) }
        let headerLength = Int(first & 0x0f) * 4
        guard headerLength >= 20 else { throw .badHeaderLength(.ipv4, headerLength) }
        guard headerLength <= count else { throw .truncated(.ipv4, need: headerLength, have: count) }
        let total = Int(bytes.bigEndian(at: 2) as UInt16)
        guard total >= headerLength else { throw .badLength(.ipv4, total) }
        guard total <= count else { throw .truncated(.ipv4, need: total, have: count) }
        self.bytes = bytes
    }

    @inlinable public var headerLength: Int { Int(bytes.byte(at: 0) & 0x0f) * 4 }
    /// DSCP and ECN (the former TOS byte).
    @inlinable public var trafficClass: UInt8 { bytes.byte(at: 1) }
    @inlinable public var totalLength: Int { Int(bytes.bigEndian(at: 2) as UInt16) }
    @inlinable public var identification: UInt16 { bytes.bigEndian(at: 4) }
    @inlinable public var dontFragment: Bool { bytes.byte(at: 6) & 0x40 != 0 }
    @inlinable public var moreFragments: Bool { bytes.byte(at: 6) & 0x20 != 0 }
    /// The fragment offset in bytes (the field counts 8-byte units).
    @inlinable public var fragmentOffset: Int { Int((bytes.bigEndian(at: 6) as UInt16) & 0x1fff) * 8 }
    /// Whether this is a fragment (not the whole datagram): MF set or a nonzero offset.
    @inlinable public var isFragment: Bool { (bytes.bigEndian(at: 6) as UInt16) & 0x3fff != 0 }
    @inlinable public var timeToLive: UInt8 { bytes.byte(at: 8) }
    @inlinable public var protocolNumber: UInt8 { bytes.byte(at: 9) }
    @inlinable public var headerChecksum: UInt16 { bytes.bigEndian(at: 10) }
    @inlinable public var source: IPv4Address { IPv4Address(bytes.bigEndian(at: 12)) }
    @inlinable public var destination: IPv4Address { IPv4Address(bytes.bigEndian(at: 16)) }
    /// The payload's byte range within `bytes`.
    @inlinable public var payloadRange: Range<Int> { headerLength..<totalLength }
    /// Options bytes (empty for a 20-byte header).
    @inlinable public var optionsRange: Range<Int> { 20..<headerLength }

    /// Whether the header checksum verifies (RFC 791: the sum over the header is 0xffff).
    @inlinable public var isChecksumValid: Bool {
        var c = Checksum()
        c.add(bytes: bytes.extracting(0..<headerLength))
        return c.sum == 0xffff
    }
}

/// An IPv4 header to write: 20 bytes, or 20 + options with `write(to:options:)`.
public struct IPv4Header: Sendable, Equatable {
    public var trafficClass: UInt8 = 0
    public var totalLength: Int
    public var identification: UInt16 = 0
    public var dontFragment: Bool = false
    public var moreFragments: Bool = false
    /// In bytes; must be a multiple of 8.
    public var fragmentOffset: Int = 0
    public var timeToLive: UInt8 = 64
    public var protocolNumber: UInt8
    public var source: IPv4Address
    public var destination: IPv4Address

    public static let length = 20

    @inlinable public init(source: IPv4Address, destination: IPv4Address, protocolNumber: UInt8, totalLength: Int) {
        self.source = source
        self.destination = destination
        self.protocolNumber = protocolNumber
        self.totalLength = totalLength
    }

    /// Writes the 20-byte header with its checksum into `out[0..<20]`.
    @inlinable public func write(to out: UnsafeMutableRawBufferPointer) {
        write(to: out, options: UnsafeRawBufferPointer(start: nil, count: 0))
    }

    /// Writes the header followed by `options` (a multiple of 4 bytes, at most 40, already padded with
    /// EOL/NOP as RFC 791 §3.1 requires) into `out[0..<20 + options.count]`, IHL and checksum included.
    /// `totalLength` counts the options too.
    @inlinable public func write(to out: UnsafeMutableRawBufferPointer, options: UnsafeRawBufferPointer) {
        let headerLength = 20 + options.count
        precondition(options.count % 4 == 0 && options.count <= 40, "IPv4 options must be padded to 4 bytes, at most 40")
        precondition(out.count >= headerLength && totalLength <= 0xffff && totalLength >= headerLength && fragmentOffset % 8 == 0)
        out.storeBigEndian(UInt8(0x40 | headerLength / 4), at: 0)
        out.storeBigEndian(trafficClass, at: 1)
        out.storeBigEndian(UInt16(totalLength), at: 2)
        out.storeBigEndian(identification, at: 4)
        let flags: UInt16 = (dontFragment ? 0x4000 : 0) | (moreFragments ? 0x2000 : 0)
        out.storeBigEndian(flags | UInt16(fragmentOffset / 8), at: 6)
        out.storeBigEndian(timeToLive, at: 8)
        out.storeBigEndian(protocolNumber, at: 9)
        out.storeBigEndian(UInt16(0), at: 10)
        out.storeBigEndian(source.rawValue, at: 12)
        out.storeBigEndian(destination.rawValue, at: 16)
        if options.count > 0 {
            UnsafeMutableRawBufferPointer(rebasing: out[20..<headerLength]).copyMemory(from: options)
        }
        let sum = Checksum.compute(UnsafeRawBufferPointer(rebasing: out[0..<headerLength]))
        out.storeBigEndian(sum, at: 10)
    }
}
