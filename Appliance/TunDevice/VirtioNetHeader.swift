// The virtio-net header (struct virtio_net_hdr, 10 bytes) in front of every TUN packet with
// IFF_VNET_HDR: GSO type and size, and where a partial checksum must be completed. Fields are
// host-endian (little-endian on the hosts we run on, as the kernel's tun_is_little_endian assumes).
package import NIOCore

/// struct virtio_net_hdr (virtio spec 1.1 §5.1.6).
package struct VirtioNetHeader: Hashable, Sendable {
    /// The header's size on the wire (TUNSETVNETHDRSZ).
    package static let size = 10

    /// VIRTIO_NET_HDR_F_NEEDS_CSUM: the checksum at csumStart + csumOffset holds only the pseudo-header
    /// sum; whoever forwards the packet must complete it.
    package static let needsChecksum: UInt8 = 1
    /// VIRTIO_NET_HDR_F_DATA_VALID: the checksum was verified.
    package static let dataValid: UInt8 = 2
    /// gso_type values.
    package static let gsoNone: UInt8 = 0, gsoTCPv4: UInt8 = 1, gsoUDP: UInt8 = 3, gsoTCPv6: UInt8 = 4
    /// VIRTIO_NET_HDR_GSO_UDP_L4 (Linux 6.2; missing from Debian 12 headers).
    package static let gsoUDPL4: UInt8 = 5
    /// VIRTIO_NET_HDR_GSO_ECN bit.
    package static let gsoECN: UInt8 = 0x80

    /// flags (NEEDS_CSUM, DATA_VALID).
    package var flags: UInt8 = 0
    /// gso_type.
    package var gsoType: UInt8 = 0
    /// hdr_len: length of the headers to replicate per segment.
    package var headerLength: UInt16 = 0
    /// gso_size: payload bytes per segment (the MSS).
    package var gsoSize: UInt16 = 0
    /// csum_start: where checksumming starts (the L4 header).
    package var checksumStart: UInt16 = 0
    /// csum_offset: where the checksum field is, from checksumStart.
    package var checksumOffset: UInt16 = 0

    /// An all-zero header (no GSO, checksum complete).
    package init() {}

    /// A header with the given fields.
    package init(flags: UInt8, gsoType: UInt8, headerLength: UInt16, gsoSize: UInt16, checksumStart: UInt16, checksumOffset: UInt16) {
        self.flags = flags
        self.gsoType = gsoType
        self.headerLength = headerLength
        self.gsoSize = gsoSize
        self.checksumStart = checksumStart
        self.checksumOffset = checksumOffset
    }

    /// Reads a header at `buffer`'s reader index without moving it; nil if fewer than 10 bytes.
    package init?(reading buffer: ByteBuffer) {
        guard buffer.readableBytes >= VirtioNetHeader.size,
              let flags = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
              let gsoType = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self),
              let headerLength = buffer.getInteger(at: buffer.readerIndex + 2, endianness: .little, as: UInt16.self),
              let gsoSize = buffer.getInteger(at: buffer.readerIndex + 4, endianness: .little, as: UInt16.self),
              let checksumStart = buffer.getInteger(at: buffer.readerIndex + 6, endianness: .little, as: UInt16.self),
              let checksumOffset = buffer.getInteger(at: buffer.readerIndex + 8, endianness: .little, as: UInt16.self)
        else { return nil }
        self.init(flags: flags, gsoType: gsoType, headerLength: headerLength, gsoSize: gsoSize,
                  checksumStart: checksumStart, checksumOffset: checksumOffset)
    }

    /// The 10 wire bytes.
    package var bytes: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) {
        (flags, gsoType, UInt8(truncatingIfNeeded: headerLength), UInt8(truncatingIfNeeded: headerLength >> 8),
         UInt8(truncatingIfNeeded: gsoSize), UInt8(truncatingIfNeeded: gsoSize >> 8),
         UInt8(truncatingIfNeeded: checksumStart), UInt8(truncatingIfNeeded: checksumStart >> 8),
         UInt8(truncatingIfNeeded: checksumOffset), UInt8(truncatingIfNeeded: checksumOffset >> 8))
    }

    /// Writes the header at the buffer's writer index.
    package func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(flags)
        buffer.writeInteger(gsoType)
        buffer.writeInteger(headerLength, endianness: .little)
        buffer.writeInteger(gsoSize, endianness: .little)
        buffer.writeInteger(checksumStart, endianness: .little)
        buffer.writeInteger(checksumOffset, endianness: .little)
    }
}
