import NetstackWire

// Packet input.
// 1. Read the version nibble; validate the IP header through its view (IPv4: header checksum too).
// 2. Drop what is not for us: multicast/broadcast destinations, bad sources, and (ordinary mode)
//    destinations that are not our own addresses.
// 3. Fragments go to the family's `Reassembler`; a completed datagram gets its header fixed and
//    re-enters step 1 as an unfragmented packet.
// 4. Demux on the protocol: ICMP / ICMPv6, UDP, TCP; anything else is counted.
// Transport checksums are verified unless the virtio-net header marks them partial (NEEDS_CSUM:
// the kernel built the packet and only the pseudo-header sum is there) or already verified.

/// What the transport layer needs to know about the IP header of a packet.
struct IPInfo {
    var source: IPAddress
    var destination: IPAddress
    var proto: UInt8
    /// Whether the transport checksum must be verified (false for offloaded/partial checksums).
    var verifyChecksum: Bool
    /// Where the transport header starts in the packet (IP header and extension headers before it).
    var transportOffset: Int
}

extension Stack {
    func receive(_ packet: Packet, now: Instant) {
        statistics.packetsReceived += 1
        let bytes = packet.bytes
        guard let first = bytes.getInteger(at: bytes.readerIndex, as: UInt8.self) else {
            statistics.malformed += 1
            return
        }
        switch first >> 4 {
        case 4: receiveIPv4(bytes, offload: packet.offload, now: now)
        case 6: receiveIPv6(bytes, offload: packet.offload, now: now)
        default: statistics.malformed += 1
        }
    }

    private func receiveIPv4(_ input: PacketBuffer, offload: VirtioNetHeader, now: Instant) {
        var bytes = input
        let source: IPv4Address, destination: IPv4Address
        let headerLength: Int, totalLength: Int, proto: UInt8
        let isFragment: Bool, moreFragments: Bool, fragmentOffset: Int, identification: UInt16
        do {
            let ip = try IPv4HeaderView(validating: bytes.readableBytesSpan)
            guard ip.isChecksumValid else {
                statistics.badChecksum += 1
                return
            }
            source = ip.source; destination = ip.destination
            headerLength = ip.headerLength; totalLength = ip.totalLength; proto = ip.protocolNumber
            isFragment = ip.isFragment; moreFragments = ip.moreFragments
            fragmentOffset = ip.fragmentOffset; identification = ip.identification
        } catch {
            statistics.malformed += 1
            return
        }
        // Link padding past the total length is not ours to deliver.
        bytes.moveWriterIndex(to: bytes.readerIndex + totalLength)

        guard !destination.isMulticast, !destination.isBroadcast else { statistics.notForUs += 1; return }
        guard !source.isMulticast, !source.isBroadcast else { statistics.malformed += 1; return }
        guard configuration.transparent || isOwn(.v4(destination)) else { statistics.notForUs += 1; return }

        if isFragment {
            statistics.fragmentsReceived += 1
            let key = ReassemblyKey(source: .v4(source), destination: .v4(destination),
                                    identification: UInt32(identification), proto: proto)
            let data = bytes.getSlice(at: bytes.readerIndex + headerLength, length: totalLength - headerLength)!
            let header = fragmentOffset == 0 ? bytes.getSlice(at: bytes.readerIndex, length: headerLength) : nil
            switch reassembly4.insert(key: key, offset: fragmentOffset, moreFragments: moreFragments, data: data,
                                      header: header, packet: bytes, headroom: Stack.headroom, now: now) {
            case .incomplete:
                return
            case .dropped:
                statistics.fragmentsDropped += 1
                return
            case .complete(var whole, let headerLength):
                statistics.datagramsReassembled += 1
                let total = whole.readableBytes
                guard total <= 0xffff else { statistics.fragmentsDropped += 1; return }
                whole.withUnsafeMutableReadableBytes { raw in
                    raw.storeBigEndian(UInt16(total), at: 2)
                    // Keep DF (bit 0x4000); clear MF and the offset.
                    raw.storeBigEndian(raw.loadBigEndian(at: 6, as: UInt16.self) & 0x4000, at: 6)
                    raw.storeBigEndian(UInt16(0), at: 10)
                    raw.storeBigEndian(Checksum.compute(UnsafeRawBufferPointer(rebasing: raw[0..<headerLength])), at: 10)
                }
                receiveIPv4(whole, offload: .none, now: now)
                return
            }
        }

        let info = IPInfo(source: .v4(source), destination: .v4(destination), proto: proto,
                          verifyChecksum: !offload.needsChecksum && !offload.isDataValid, transportOffset: headerLength)
        let transport = bytes.getSlice(at: bytes.readerIndex + headerLength, length: totalLength - headerLength)!
        deliver(info, transport: transport, packet: bytes, offload: offload, now: now)
    }

    private func receiveIPv6(_ input: PacketBuffer, offload: VirtioNetHeader, now: Instant) {
        var bytes = input
        let source: IPv6Address, destination: IPv6Address
        let upperOffset: Int, totalLength: Int, proto: UInt8
        let fragment: IPv6FragmentHeader?, lastNextHeaderOffset: Int
        do {
            let ip = try IPv6HeaderView(validating: bytes.readableBytesSpan)
            source = ip.source; destination = ip.destination
            upperOffset = ip.upperLayerOffset; totalLength = ip.totalLength; proto = ip.upperLayerProtocol
            fragment = ip.fragment; lastNextHeaderOffset = ip.lastNextHeaderOffset
        } catch {
            statistics.malformed += 1
            return
        }
        bytes.moveWriterIndex(to: bytes.readerIndex + totalLength)

        guard !destination.isMulticast else { statistics.notForUs += 1; return }
        guard !source.isMulticast else { statistics.malformed += 1; return }
        guard configuration.transparent || isOwn(.v6(destination)) else { statistics.notForUs += 1; return }

        if let fragment {
            statistics.fragmentsReceived += 1
            let key = ReassemblyKey(source: .v6(source), destination: .v6(destination),
                                    identification: fragment.identification, proto: 0)
            let data = bytes.getSlice(at: bytes.readerIndex + upperOffset, length: totalLength - upperOffset)!
            // The unfragmentable part: everything before the fragment header (RFC 8200 §4.5).
            let header = fragment.offset == 0 ? bytes.getSlice(at: bytes.readerIndex, length: fragment.headerOffset) : nil
            switch reassembly6.insert(key: key, offset: fragment.offset, moreFragments: fragment.moreFragments, data: data,
                                      header: header, packet: bytes, headroom: Stack.headroom, now: now) {
            case .incomplete:
                return
            case .dropped:
                statistics.fragmentsDropped += 1
                return
            case .complete(var whole, _):
                statistics.datagramsReassembled += 1
                let payload = whole.readableBytes - 40
                guard payload <= 0xffff else { statistics.fragmentsDropped += 1; return }
                whole.withUnsafeMutableReadableBytes { raw in
                    raw.storeBigEndian(UInt16(payload), at: 4)
                    raw.storeBigEndian(fragment.nextHeader, at: lastNextHeaderOffset)
                }
                receiveIPv6(whole, offload: .none, now: now)
                return
            }
        }

        let info = IPInfo(source: .v6(source), destination: .v6(destination), proto: proto,
                          verifyChecksum: !offload.needsChecksum && !offload.isDataValid, transportOffset: upperOffset)
        let transport = bytes.getSlice(at: bytes.readerIndex + upperOffset, length: totalLength - upperOffset)!
        deliver(info, transport: transport, packet: bytes, offload: offload, now: now)
    }

    private func deliver(_ ip: IPInfo, transport: PacketBuffer, packet: PacketBuffer, offload: VirtioNetHeader, now: Instant) {
        switch ip.proto {
        case IPProtocol.udp:
            receiveUDP(ip, segment: transport, packet: packet, offload: offload, now: now)
        case IPProtocol.tcp:
            receiveTCP(ip, segment: transport, packet: packet, offload: offload, now: now)
        case IPProtocol.icmp where ip.source.isIPv4:
            receiveICMPv4(ip, message: transport, packet: packet, now: now)
        case IPProtocol.icmpv6 where !ip.source.isIPv4:
            receiveICMPv6(ip, message: transport, packet: packet, now: now)
        default:
            statistics.unknownProtocol += 1
            if isOwn(ip.destination) { sendICMPError(.protocolUnreachable, about: packet, now: now) }
        }
    }
}
