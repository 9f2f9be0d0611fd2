/// An IPv6 header (RFC 8200 §3) and its extension-header chain over borrowed bytes.
///
/// `init(validating:)` checks the fixed header and payload length, then walks the extension headers
/// (hop-by-hop, routing, destination options, AH) until the upper layer, a fragment header or "no next
/// header". It stops at a fragment header: what follows belongs to the reassembled datagram
/// (RFC 8200 §4.5), so `upperLayerProtocol` is then the fragment header's next header and
/// `fragment` is set. Hop-by-hop anywhere but first is rejected (RFC 8200 §4.3).
public struct IPv6HeaderView: ~Escapable {
    public let bytes: RawSpan
    /// The protocol after the walked chain (TCP, UDP, ICMPv6, 59 = none, or an unknown one).
    public let upperLayerProtocol: UInt8
    /// Offset of the upper-layer header (or of the fragment data when `fragment` is set).
    public let upperLayerOffset: Int
    /// The fragment header, if the chain contains one.
    public let fragment: IPv6FragmentHeader?
    /// Offset of the next-header byte that names the first header after the walked part; for a
    /// fragment, the byte naming the fragment header (reassembly rewrites it).
    public let lastNextHeaderOffset: Int

    public static let fixedLength = 40
    /// Most extension headers walked before giving up, against chains crafted to burn CPU.
    public static let maximumExtensionHeaders = 8

    @_lifetime(copy bytes)
    @inlinable public init(validating bytes: RawSpan) throws(WireError) {
        let count = bytes.byteCount
        guard count >= 40 else { throw .truncated(.ipv6, need: 40, have: count) }
        let version = Int(bytes.byte(at: 0) >> 4)
        guard version == 6 else { throw .badVersion(version) }
        let payloadLength = Int(bytes.bigEndian(at: 4) as UInt16)
        // A jumbogram (payload length 0 + hop-by-hop jumbo option, RFC 2675) is not supported: with
        // a zero length and a nonzero next header other than 59 the chain below finds no room.
        let end = 40 + payloadLength
        guard end <= count else { throw .truncated(.ipv6, need: end, have: count) }
        var next = bytes.byte(at: 6)
        var nextOffset = 6
        var offset = 40
        var fragment: IPv6FragmentHeader? = nil
        var walked = 0
        chain: while true {
            switch next {
            case IPProtocol.hopByHop, IPProtocol.ipv6Routing, IPProtocol.ipv6DestinationOptions, IPProtocol.ah:
                if next == IPProtocol.hopByHop && offset != 40 { throw .unsupported(.ipv6Extension, Int(next)) }
                walked += 1
                guard walked <= IPv6HeaderView.maximumExtensionHeaders else { throw .unsupported(.ipv6Extension, walked) }
                guard offset + 8 <= end else { throw .truncated(.ipv6Extension, need: offset + 8, have: end) }
                // AH counts 4-byte units minus 2 (RFC 4302 §2.2); the others 8-byte units minus 1.
                let units = Int(bytes.byte(at: offset + 1))
                let length = next == IPProtocol.ah ? (units + 2) * 4 : (units + 1) * 8
                guard offset + length <= end else { throw .truncated(.ipv6Extension, need: offset + length, have: end) }
                nextOffset = offset
                next = bytes.byte(at: offset)
                offset += length
            case IPProtocol.ipv6Fragment:
                guard offset + 8 <= end else { throw .truncated(.ipv6Extension, need: offset + 8, have: end) }
                let field = bytes.bigEndian(at: offset + 2) as UInt16
                fragment = IPv6FragmentHeader(
                    nextHeader: bytes.byte(at: offset),
                    offset: Int(field & 0xfff8),
                    moreFragments: field & 1 != 0,
                    identification: bytes.bigEndian(at: offset + 4),
                    headerOffset: offset)
                next = bytes.byte(at: offset)
                offset += 8
                break chain
            default:
                break chain
            }
        }
        self.bytes = bytes
        self.upperLayerProtocol = next
        self.upperLayerOffset = offset
        self.fragment = fragment
        self.lastNextHeaderOffset = nextOffset
    }

    @inlinable public var trafficClass: UInt8 {
        UInt8(truncatingIfNeeded: (bytes.bigEndian(at: 0) as UInt16) >> 4)
    }
    @inlinable public var flowLabel: UInt32 { (bytes.bigEndian(at: 0) as UInt32) & 0x000f_ffff }
    @inlinable public var payloadLength: Int { Int(bytes.bigEndian(at: 4) as UInt16) }
    /// The next-header field of the fixed header.
    @inlinable public var nextHeader: UInt8 { bytes.byte(at: 6) }
    @inlinable public var hopLimit: UInt8 { bytes.byte(at: 7) }
    @inlinable public var source: IPv6Address {
        IPv6Address(high: bytes.bigEndian(at: 8), low: bytes.bigEndian(at: 16))
    }
    @inlinable public var destination: IPv6Address {
        IPv6Address(high: bytes.bigEndian(at: 24), low: bytes.bigEndian(at: 32))
    }
    /// Header, extension headers and payload: the packet's length.
    @inlinable public var totalLength: Int { 40 + payloadLength }
    /// The upper-layer bytes (or fragment data).
    @inlinable public var payloadRange: Range<Int> { upperLayerOffset..<totalLength }
}

/// The parsed fragment header of an IPv6 packet (RFC 8200 §4.5).
public struct IPv6FragmentHeader: Sendable, Equatable {
    /// The protocol of the fragmentable part.
    public var nextHeader: UInt8
    /// The fragment's offset in bytes.
    public var offset: Int
    public var moreFragments: Bool
    public var identification: UInt32
    /// Where the fragment header starts in the packet.
    public var headerOffset: Int

    @inlinable public init(nextHeader: UInt8, offset: Int, moreFragments: Bool, identification: UInt32, headerOffset: Int) {
        self.nextHeader = nextHeader
        self.offset = offset
        self.moreFragments = moreFragments
        self.identification = identification
        self.headerOffset = headerOffset
    }

    /// Writes an 8-byte fragment header into `out[0..<8]`.
    @inlinable public func write(to out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= 8 && offset % 8 == 0 && offset <= 0xfff8)
        out.storeBigEndian(nextHeader, at: 0)
        out.storeBigEndian(UInt8(0), at: 1)
        out.storeBigEndian(UInt16(offset) | (moreFragments ? 1 : 0), at: 2)
        out.storeBigEndian(identification, at: 4)
    }
}

/// A fixed IPv6 header to write (no extension headers; callers put a fragment header after it).
public struct IPv6Header: Sendable, Equatable {
    public var trafficClass: UInt8 = 0
    public var flowLabel: UInt32 = 0
    public var payloadLength: Int
    public var nextHeader: UInt8
    public var hopLimit: UInt8 = 64
    public var source: IPv6Address
    public var destination: IPv6Address

    public static let length = 40

    @inlinable public init(source: IPv6Address, destination: IPv6Address, nextHeader: UInt8, payloadLength: Int) {
        self.source = source
        self.destination = destination
        self.nextHeader = nextHeader
        self.payloadLength = payloadLength
    }

    /// Writes the 40-byte header into `out[0..<40]`.
    @inlinable public func write(to out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= 40 && payloadLength <= 0xffff)
        out.storeBigEndian(UInt32(6) << 28 | UInt32(trafficClass) << 20 | (flowLabel & 0xfffff), at: 0)
        out.storeBigEndian(UInt16(payloadLength), at: 4)
        out.storeBigEndian(nextHeader, at: 6)
        out.storeBigEndian(hopLimit, at: 7)
        out.storeBigEndian(source.high, at: 8)
        out.storeBigEndian(source.low, at: 16)
        out.storeBigEndian(destination.high, at: 24)
        out.storeBigEndian(destination.low, at: 32)
    }
}
