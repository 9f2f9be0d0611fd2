/// Cuts a GSO super-packet (TCPv4, TCPv6 or UDP_L4, as a TUN device with offloads hands it over) into
/// wire-size packets with complete checksums, for peers that take no GSO (WireGuard, a datagram flow).
///
/// 1. `init` parses the IP header (IPv4, or IPv6 with its extension chain) and the TCP/UDP header
///    itself: the kernel's `hdr_len` is only a hint and is not trusted.
/// 2. `segment(_:into:)` writes segment *i*: the headers copied, lengths fixed, IPv4 identification
///    + i and header checksum, TCP sequence + i·gsoSize (FIN and PSH only on the last segment, CWR only
///    on the first, as Linux's tcp_gso_segment does), then the transport checksum over the segment.
/// Nothing is allocated; the caller supplies each output buffer.
public struct GSOSegmenter {
    /// The super-packet, starting at the IP header (borrowed; must outlive the segmenter's use).
    public let packet: UnsafeRawBufferPointer
    /// Bytes of IP header(s) plus transport header copied into each segment.
    public let headerLength: Int
    /// Where the transport header starts.
    public let transportOffset: Int
    public let isIPv4: Bool
    public let isTCP: Bool
    /// Payload bytes per segment (the last may be shorter).
    public let segmentSize: Int
    /// Total payload bytes.
    public let payloadLength: Int

    /// Validates `packet` (from the IP header to the end) for `offload`.
    public init(packet: UnsafeRawBufferPointer, offload: VirtioNetHeader) throws(WireError) {
        let count = packet.count
        guard count >= 1 else { throw .truncated(.ipv4, need: 20, have: 0) }
        let version = packet[0] >> 4
        var transport: Int
        var proto: UInt8
        var ipEnd: Int
        switch version {
        case 4:
            let ip = try IPv4HeaderView(validating: RawSpan(_unsafeBytes: packet))
            guard !ip.isFragment else { throw .unsupported(.ipv4, ip.fragmentOffset) }
            transport = ip.headerLength; proto = ip.protocolNumber; ipEnd = ip.totalLength
        case 6:
            let ip = try IPv6HeaderView(validating: RawSpan(_unsafeBytes: packet))
            guard ip.fragment == nil else { throw .unsupported(.ipv6Extension, Int(IPProtocol.ipv6Fragment)) }
            transport = ip.upperLayerOffset; proto = ip.upperLayerProtocol; ipEnd = ip.totalLength
        default:
            throw .badVersion(Int(version))
        }
        switch (offload.gsoKind, proto) {
        case (VirtioNetHeader.gsoTCPv4, IPProtocol.tcp) where version == 4,
             (VirtioNetHeader.gsoTCPv6, IPProtocol.tcp) where version == 6:
            guard transport + 20 <= ipEnd else { throw .truncated(.tcp, need: transport + 20, have: ipEnd) }
            let dataOffset = Int(packet[transport + 12] >> 4) * 4
            guard dataOffset >= 20, transport + dataOffset <= ipEnd else { throw .badHeaderLength(.tcp, dataOffset) }
            headerLength = transport + dataOffset
            isTCP = true
        case (VirtioNetHeader.gsoUDPL4, IPProtocol.udp):
            guard transport + 8 <= ipEnd else { throw .truncated(.udp, need: transport + 8, have: ipEnd) }
            headerLength = transport + 8
            isTCP = false
        default:
            throw .unsupported(.virtioNet, Int(offload.gsoType))
        }
        guard offload.gsoSize > 0 else { throw .badLength(.virtioNet, 0) }
        self.packet = UnsafeRawBufferPointer(rebasing: packet[0..<ipEnd])
        self.transportOffset = transport
        self.isIPv4 = version == 4
        self.segmentSize = Int(offload.gsoSize)
        self.payloadLength = ipEnd - headerLength
    }

    /// How many segments the packet yields (at least one).
    public var count: Int { max(1, (payloadLength + segmentSize - 1) / segmentSize) }

    /// The size of segment `index` on the wire.
    public func length(ofSegment index: Int) -> Int {
        headerLength + min(segmentSize, payloadLength - index * segmentSize)
    }

    /// Writes segment `index` into `out` (at least `length(ofSegment:)` bytes) and returns its length.
    public func segment(_ index: Int, into out: UnsafeMutableRawBufferPointer) -> Int {
        precondition(index >= 0 && index < count)
        let payloadStart = index * segmentSize
        let payload = min(segmentSize, payloadLength - payloadStart)
        let total = headerLength + payload
        precondition(out.count >= total, "segment buffer too small")
        let base = out.baseAddress!
        base.copyMemory(from: packet.baseAddress!, byteCount: headerLength)
        (base + headerLength).copyMemory(from: packet.baseAddress! + headerLength + payloadStart, byteCount: payload)
        let segmentBytes = UnsafeMutableRawBufferPointer(rebasing: out[0..<total])
        let transportLength = total - transportOffset
        let pseudo: UInt16
        if isIPv4 {
            segmentBytes.storeBigEndian(UInt16(total), at: 2)
            let id = packet.loadBigEndian(at: 4, as: UInt16.self) &+ UInt16(truncatingIfNeeded: index)
            segmentBytes.storeBigEndian(id, at: 4)
            segmentBytes.storeBigEndian(UInt16(0), at: 10)
            let headerSum = Checksum.compute(UnsafeRawBufferPointer(rebasing: segmentBytes[0..<transportOffset]))
            segmentBytes.storeBigEndian(headerSum, at: 10)
            pseudo = Checksum.pseudoHeaderSum(
                source: IPv4Address(packet.loadBigEndian(at: 12)), destination: IPv4Address(packet.loadBigEndian(at: 16)),
                protocol: isTCP ? IPProtocol.tcp : IPProtocol.udp, length: transportLength)
        } else {
            segmentBytes.storeBigEndian(UInt16(total - 40), at: 4)
            pseudo = Checksum.pseudoHeaderSum(
                source: IPv6Address(high: packet.loadBigEndian(at: 8), low: packet.loadBigEndian(at: 16)),
                destination: IPv6Address(high: packet.loadBigEndian(at: 24), low: packet.loadBigEndian(at: 32)),
                protocol: isTCP ? IPProtocol.tcp : IPProtocol.udp, length: transportLength)
        }
        let t = transportOffset
        let checksumField: Int
        if isTCP {
            let seq = packet.loadBigEndian(at: t + 4, as: UInt32.self) &+ UInt32(truncatingIfNeeded: payloadStart)
            segmentBytes.storeBigEndian(seq, at: t + 4)
            var flags = packet[t + 13]
            if index != count - 1 { flags &= ~0x09 }  // FIN 0x01, PSH 0x08 only on the last
            if index != 0 { flags &= ~0x80 }           // CWR only on the first
            segmentBytes.storeBigEndian(flags, at: t + 13)
            checksumField = t + 16
        } else {
            segmentBytes.storeBigEndian(UInt16(transportLength), at: t + 4)
            checksumField = t + 6
        }
        segmentBytes.storeBigEndian(UInt16(0), at: checksumField)
        var c = Checksum(sum: pseudo)
        c.add(bytes: UnsafeRawBufferPointer(rebasing: segmentBytes[t..<total]))
        let value = c.value
        segmentBytes.storeBigEndian(!isTCP && value == 0 ? 0xffff : value, at: checksumField)
        return total
    }
}
