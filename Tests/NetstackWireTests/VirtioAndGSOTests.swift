import Testing
import NetstackWire

// flags NEEDS_CSUM, gso TCPV4, hdr_len 40, gso_size 1460, csum_start 20, csum_offset 16 (little-endian).
let vnetTCPv4: [UInt8] = [0x01, 0x01, 0x28, 0x00, 0xb4, 0x05, 0x14, 0x00, 0x10, 0x00]

@Test func readsAndWritesVirtioNetHeader() throws {
    let h = try VirtioNetHeader(validating: vnetTCPv4.span.bytes)
    #expect(h == VirtioNetHeader(flags: 1, gsoType: 1, headerLength: 40, gsoSize: 1460, checksumStart: 20, checksumOffset: 16))
    #expect(h.needsChecksum && !h.isDataValid && h.isGSO && h.gsoKind == VirtioNetHeader.gsoTCPv4)
    var out = [UInt8](repeating: 0xaa, count: 10)
    out.withUnsafeMutableBytes { h.write(to: $0) }
    #expect(out == vnetTCPv4)
    #expect(!VirtioNetHeader.none.isGSO && !VirtioNetHeader.none.needsChecksum)
}

@Test(arguments: 0..<10) func rejectsTruncatedVirtioNetHeader(length: Int) {
    let bytes = Array(vnetTCPv4.prefix(length))
    #expect(throws: WireError.truncated(.virtioNet, need: 10, have: length)) { _ = try VirtioNetHeader(validating: bytes.span.bytes) }
}

@Test func rejectsLegacyUFO() {
    var bytes = vnetTCPv4; bytes[1] = 3
    #expect(throws: WireError.unsupported(.virtioNet, 3)) { _ = try VirtioNetHeader(validating: bytes.span.bytes) }
}

/// IPv4 + UDP packet whose UDP checksum field holds only the pseudo-header sum (as TUN hands it over).
func partialUDPv4(payload: [UInt8]) -> [UInt8] {
    let length = 8 + payload.count
    var bytes = [UInt8](repeating: 0, count: 20 + length)
    bytes.withUnsafeMutableBytes { raw in
        IPv4Header(source: IPv4Address(10, 0, 0, 1), destination: IPv4Address(10, 0, 0, 2), protocolNumber: 17, totalLength: 20 + length).write(to: raw)
        raw.storeBigEndian(UInt16(5000), at: 20); raw.storeBigEndian(UInt16(53), at: 22); raw.storeBigEndian(UInt16(length), at: 24)
        let pseudo = Checksum.pseudoHeaderSum(source: IPv4Address(10, 0, 0, 1), destination: IPv4Address(10, 0, 0, 2), protocol: 17, length: length)
        raw.storeBigEndian(pseudo, at: 26)
    }
    bytes.replaceSubrange(28..., with: payload)
    return bytes
}

@Test func completesPartialChecksum() throws {
    var bytes = partialUDPv4(payload: Array("hello, world".utf8))
    let h = VirtioNetHeader(flags: 1, gsoType: 0, headerLength: 0, gsoSize: 0, checksumStart: 20, checksumOffset: 6)
    try bytes.withUnsafeMutableBytes { try h.completeChecksum(in: $0) }
    let pseudo = Checksum.pseudoHeaderSum(source: IPv4Address(10, 0, 0, 1), destination: IPv4Address(10, 0, 0, 2), protocol: 17, length: bytes.count - 20)
    let tail = Array(bytes[20...])
    let udp = try UDPHeaderView(validating: tail.span.bytes)
    #expect(udp.checksum != 0 && udp.isChecksumValid(pseudoHeaderSum: pseudo, zeroAllowed: false))
}

@Test func refusesChecksumOffsetsOutside() {
    var bytes = partialUDPv4(payload: [1, 2])
    let h = VirtioNetHeader(flags: 1, gsoType: 0, headerLength: 0, gsoSize: 0, checksumStart: 20, checksumOffset: 100)
    #expect(throws: WireError.self) { try bytes.withUnsafeMutableBytes { try h.completeChecksum(in: $0) } }
}

/// A TCP super-packet: IP header, 20-byte TCP header (seq 1000, flags from `flags`), `payload`.
func tcpSuperPacket(ipv6: Bool, payload: [UInt8], flags: UInt8) -> [UInt8] {
    let ipLength = ipv6 ? 40 : 20
    var bytes = [UInt8](repeating: 0, count: ipLength + 20 + payload.count)
    let s6 = IPv6Address("2001:db8::1")!, d6 = IPv6Address("2001:db8::2")!
    bytes.withUnsafeMutableBytes { raw in
        if ipv6 {
            IPv6Header(source: s6, destination: d6, nextHeader: 6, payloadLength: 20 + payload.count).write(to: raw)
        } else {
            var h = IPv4Header(source: IPv4Address(10, 0, 0, 1), destination: IPv4Address(10, 0, 0, 2), protocolNumber: 6, totalLength: raw.count)
            h.identification = 0xfffe  // wraps across segments
            h.write(to: raw)
        }
        let t = UnsafeMutableRawBufferPointer(rebasing: raw[ipLength...])
        t.storeBigEndian(UInt16(40000), at: 0); t.storeBigEndian(UInt16(443), at: 2)
        t.storeBigEndian(UInt32(1000), at: 4); t.storeBigEndian(UInt32(77), at: 8)
        t.storeBigEndian(UInt8(0x50), at: 12); t.storeBigEndian(flags, at: 13); t.storeBigEndian(UInt16(65535), at: 14)
    }
    bytes.replaceSubrange((ipLength + 20)..., with: payload)
    return bytes
}

@Test(arguments: [false, true]) func splitsTCPSuperPacket(ipv6: Bool) throws {
    var rng = SeededGenerator(seed: 99)
    let payload = randomBytes(2500, &rng)
    let packet = tcpSuperPacket(ipv6: ipv6, payload: payload, flags: 0x80 | 0x10 | 0x08 | 0x01)  // CWR ACK PSH FIN
    let offload = VirtioNetHeader(flags: 1, gsoType: ipv6 ? VirtioNetHeader.gsoTCPv6 : VirtioNetHeader.gsoTCPv4,
                                  headerLength: 0, gsoSize: 1000, checksumStart: ipv6 ? 40 : 20, checksumOffset: 16)
    var joined: [UInt8] = []
    try packet.withUnsafeBytes { raw in
        let gso = try GSOSegmenter(packet: raw, offload: offload)
        #expect(gso.count == 3)
        var out = [UInt8](repeating: 0, count: 2000)
        for i in 0..<gso.count {
            let length = out.withUnsafeMutableBytes { gso.segment(i, into: $0) }
            #expect(length == gso.length(ofSegment: i))
            let seg = Array(out.prefix(length))
            let t: Int
            let pseudo: UInt16
            if ipv6 {
                let ip = try IPv6HeaderView(validating: seg.span.bytes)
                #expect(ip.totalLength == length)
                t = 40
                pseudo = Checksum.pseudoHeaderSum(source: ip.source, destination: ip.destination, protocol: 6, length: length - 40)
            } else {
                let ip = try IPv4HeaderView(validating: seg.span.bytes)
                #expect(ip.totalLength == length && ip.isChecksumValid)
                #expect(ip.identification == 0xfffe &+ UInt16(i))
                t = 20
                pseudo = Checksum.pseudoHeaderSum(source: ip.source, destination: ip.destination, protocol: 6, length: length - 20)
            }
            #expect(seg.be32(t + 4) == 1000 + UInt32(i * 1000))
            let flags = seg[t + 13]
            #expect(flags & 0x10 != 0)
            #expect((flags & 0x80 != 0) == (i == 0))
            #expect((flags & 0x09 == 0x09) == (i == 2))
            #expect(flags & 0x09 == 0 || i == 2)
            var c = Checksum(sum: pseudo)
            seg[t...].withUnsafeBytes { c.add(bytes: $0) }
            #expect(c.sum == 0xffff)
            joined += seg[(t + 20)...]
        }
    }
    #expect(joined == payload)
}

@Test func splitsUDPL4SuperPacket() throws {
    var rng = SeededGenerator(seed: 5)
    let payload = randomBytes(2900, &rng)
    let packet = partialUDPv4(payload: payload)
    let offload = VirtioNetHeader(flags: 1, gsoType: VirtioNetHeader.gsoUDPL4, headerLength: 28, gsoSize: 1400, checksumStart: 20, checksumOffset: 6)
    var datagrams: [[UInt8]] = []
    try packet.withUnsafeBytes { raw in
        let gso = try GSOSegmenter(packet: raw, offload: offload)
        #expect(gso.count == 3)
        for i in 0..<gso.count {
            var out = [UInt8](repeating: 0, count: gso.length(ofSegment: i))
            _ = out.withUnsafeMutableBytes { gso.segment(i, into: $0) }
            let ip = try IPv4HeaderView(validating: out.span.bytes)
            let tail = Array(out[20...])
            let udp = try UDPHeaderView(validating: tail.span.bytes)
            let pseudo = Checksum.pseudoHeaderSum(source: ip.source, destination: ip.destination, protocol: 17, length: udp.length)
            let valid = udp.isChecksumValid(pseudoHeaderSum: pseudo, zeroAllowed: false)
            #expect(valid)
            #expect(udp.length == out.count - 20)
            datagrams.append(Array(out[28...]))
        }
    }
    #expect(datagrams.map(\.count) == [1400, 1400, 100])
    #expect(datagrams.flatMap { $0 } == payload)
}

@Test func refusesMismatchedGSOType() {
    let packet = partialUDPv4(payload: [1, 2, 3])
    let offload = VirtioNetHeader(flags: 1, gsoType: VirtioNetHeader.gsoTCPv4, headerLength: 0, gsoSize: 1, checksumStart: 20, checksumOffset: 6)
    #expect(throws: WireError.self) { try packet.withUnsafeBytes { _ = try GSOSegmenter(packet: $0, offload: offload) } }
}

@Test(arguments: 0..<60) func refusesTruncatedSuperPacket(length: Int) {
    let packet = Array(tcpSuperPacket(ipv6: false, payload: [UInt8](repeating: 1, count: 20), flags: 0x10).prefix(length))
    let offload = VirtioNetHeader(flags: 1, gsoType: VirtioNetHeader.gsoTCPv4, headerLength: 0, gsoSize: 10, checksumStart: 20, checksumOffset: 16)
    #expect(throws: WireError.self) { try packet.withUnsafeBytes { _ = try GSOSegmenter(packet: $0, offload: offload) } }
}
