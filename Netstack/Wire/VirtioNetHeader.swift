/// The 10-byte `virtio_net_hdr` a TUN device with `IFF_VNET_HDR` puts before every packet
/// (virtio spec §5.1.6; SWIFT-LINUX §2). Fields are little-endian: TUN uses the host's order unless
/// `TUNSETVNETBE`, and the appliance runs on little-endian x86_64/arm64.
///
/// With `TUN_F_CSUM` on, even plain packets arrive with `needsChecksum` set and only the pseudo-header
/// sum in the transport checksum field; GSO packets are up to 64 KiB of TCP/UDP payload to be cut
/// into `gsoSize` pieces.
public struct VirtioNetHeader: Sendable, Equatable {
    public var flags: UInt8
    public var gsoType: UInt8
    /// Length of the headers (the kernel's hint; the netstack computes its own).
    public var headerLength: UInt16
    /// Payload bytes per segment of a GSO packet.
    public var gsoSize: UInt16
    /// Where checksumming starts (the transport header), counted from the IP header.
    public var checksumStart: UInt16
    /// Where the checksum field is, counted from `checksumStart`.
    public var checksumOffset: UInt16

    public static let length = 10

    /// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum field holds the pseudo-header sum only.
    public static let flagNeedsChecksum: UInt8 = 1
    /// `VIRTIO_NET_HDR_F_DATA_VALID`: the checksum was already verified.
    public static let flagDataValid: UInt8 = 2

    /// `VIRTIO_NET_HDR_GSO_*` values.
    public static let gsoNone: UInt8 = 0
    public static let gsoTCPv4: UInt8 = 1
    public static let gsoUDP: UInt8 = 3
    public static let gsoTCPv6: UInt8 = 4
    /// Linux ≥ 6.2 USO; missing from Debian 12's headers (SWIFT-LINUX §2).
    public static let gsoUDPL4: UInt8 = 5
    public static let gsoECN: UInt8 = 0x80

    /// No offload: a complete packet with a complete checksum.
    public static let none = VirtioNetHeader(flags: 0, gsoType: 0, headerLength: 0, gsoSize: 0, checksumStart: 0, checksumOffset: 0)

    @inlinable public init(flags: UInt8, gsoType: UInt8, headerLength: UInt16, gsoSize: UInt16,
                            checksumStart: UInt16, checksumOffset: UInt16) {
        self.flags = flags
        self.gsoType = gsoType
        self.headerLength = headerLength
        self.gsoSize = gsoSize
        self.checksumStart = checksumStart
        self.checksumOffset = checksumOffset
    }

    /// Reads the header from the first 10 bytes.
    @inlinable public init(validating bytes: RawSpan) throws(WireError) {
        guard bytes.byteCount >= 10 else { throw .truncated(.virtioNet, need: 10, have: bytes.byteCount) }
        func le(_ offset: Int) -> UInt16 { UInt16(littleEndian: bytes.unsafeLoadUnaligned(fromByteOffset: offset, as: UInt16.self)) }
        flags = bytes.byte(at: 0)
        gsoType = bytes.byte(at: 1)
        headerLength = le(2)
        gsoSize = le(4)
        checksumStart = le(6)
        checksumOffset = le(8)
        guard gsoType & ~VirtioNetHeader.gsoECN != VirtioNetHeader.gsoUDP else { throw .unsupported(.virtioNet, Int(gsoType)) }
    }

    /// Writes the header into `out[0..<10]`.
    @inlinable public func write(to out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= 10)
        out.storeBytes(of: flags, toByteOffset: 0, as: UInt8.self)
        out.storeBytes(of: gsoType, toByteOffset: 1, as: UInt8.self)
        out.storeBytes(of: headerLength.littleEndian, toByteOffset: 2, as: UInt16.self)
        out.storeBytes(of: gsoSize.littleEndian, toByteOffset: 4, as: UInt16.self)
        out.storeBytes(of: checksumStart.littleEndian, toByteOffset: 6, as: UInt16.self)
        out.storeBytes(of: checksumOffset.littleEndian, toByteOffset: 8, as: UInt16.self)
    }

    @inlinable public var needsChecksum: Bool { flags & VirtioNetHeader.flagNeedsChecksum != 0 }
    @inlinable public var isDataValid: Bool { flags & VirtioNetHeader.flagDataValid != 0 }
    /// The GSO type without the ECN bit.
    @inlinable public var gsoKind: UInt8 { gsoType & ~VirtioNetHeader.gsoECN }
    @inlinable public var isGSO: Bool { gsoKind != VirtioNetHeader.gsoNone }

    /// Finishes a partial checksum (NEEDS_CSUM) in `packet`, which starts at the IP header: the field at
    /// `checksumStart + checksumOffset` holds the pseudo-header sum; the one's-complement sum from
    /// `checksumStart` to the end is complemented into it. Throws if the offsets point outside.
    @inlinable public func completeChecksum(in packet: UnsafeMutableRawBufferPointer) throws(WireError) {
        let start = Int(checksumStart)
        let field = start + Int(checksumOffset)
        guard start < packet.count, field + 2 <= packet.count else {
            throw .truncated(.virtioNet, need: field + 2, have: packet.count)
        }
        var c = Checksum()
        c.add(bytes: UnsafeRawBufferPointer(rebasing: packet[start...]))
        let value = c.value
        // UDP (checksum field at offset 6) sends a computed zero as 0xffff (RFC 768).
        packet.storeBigEndian(value == 0 && checksumOffset == 6 ? 0xffff : value, at: field)
    }
}
