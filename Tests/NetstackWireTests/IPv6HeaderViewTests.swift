import Testing
import NetstackWire

// IPv6, TC 0, flow 0x12345, payload 8, next UDP, hop limit 64, 2001:db8::1 → 2001:db8::2,
// then UDP 1234 → 53, length 8, checksum 0.
let ipv6UDP: [UInt8] = [0x60, 0x01, 0x23, 0x45, 0x00, 0x08, 0x11, 0x40,
                        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
                        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02,
                        0x04, 0xd2, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00]

/// An IPv6 packet with the given extension headers (each (type, bytes) with its own next-header byte
/// filled in here) and `payload` after them under `upper`.
func ipv6(extensions: [(UInt8, [UInt8])], upper: UInt8, payload: [UInt8]) -> [UInt8] {
    var body: [UInt8] = []
    for (index, ext) in extensions.enumerated() {
        var bytes = ext.1
        bytes[0] = index + 1 < extensions.count ? extensions[index + 1].0 : upper
        body += bytes
    }
    body += payload
    var header = Array(ipv6UDP.prefix(40))
    header.setBE16(UInt16(body.count), at: 4)
    header[6] = extensions.first?.0 ?? upper
    return header + body
}

@Test func readsIPv6Header() throws {
    let ip = try IPv6HeaderView(validating: ipv6UDP.span.bytes)
    #expect(ip.flowLabel == 0x12345 && ip.trafficClass == 0)
    #expect(ip.payloadLength == 8 && ip.hopLimit == 64)
    #expect(ip.upperLayerProtocol == IPProtocol.udp && ip.upperLayerOffset == 40)
    #expect(ip.source == IPv6Address("2001:db8::1") && ip.destination == IPv6Address("2001:db8::2"))
    #expect(ip.fragment == nil && ip.lastNextHeaderOffset == 6)
    #expect(ip.payloadRange == 40..<48)
}

@Test(arguments: 0..<48) func rejectsTruncatedIPv6(length: Int) {
    let bytes = Array(ipv6UDP.prefix(length))
    #expect(throws: WireError.self) { _ = try IPv6HeaderView(validating: bytes.span.bytes) }
}

@Test func skipsHopByHopRoutingAndDestinationOptions() throws {
    let hbh: [UInt8] = [0, 0, 1, 4, 0, 0, 0, 0]                     // PadN, 8 bytes
    let routing: [UInt8] = [0, 2, 0, 0, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 16)  // 24 bytes
    let dst: [UInt8] = [0, 0, 1, 4, 0, 0, 0, 0]
    let packet = ipv6(extensions: [(0, hbh), (43, routing), (60, dst)], upper: 6, payload: [UInt8](repeating: 9, count: 20))
    let ip = try IPv6HeaderView(validating: packet.span.bytes)
    #expect(ip.upperLayerProtocol == 6)
    #expect(ip.upperLayerOffset == 40 + 8 + 24 + 8)
    #expect(ip.lastNextHeaderOffset == 40 + 8 + 24)
    #expect(ip.fragment == nil)
}

@Test func stopsAtFragmentHeader() throws {
    // Fragment header: next UDP, offset 1448 (181 units << 3), M=1, id 0xdeadbeef.
    let frag: [UInt8] = [0, 0, 0x05, 0xa9, 0xde, 0xad, 0xbe, 0xef]
    let dst: [UInt8] = [0, 0, 1, 4, 0, 0, 0, 0]
    let packet = ipv6(extensions: [(60, dst), (44, frag)], upper: 17, payload: [1, 2, 3, 4, 5, 6, 7, 8])
    let ip = try IPv6HeaderView(validating: packet.span.bytes)
    let maybeFragment = ip.fragment
    let fragment = try #require(maybeFragment)
    #expect(fragment == IPv6FragmentHeader(nextHeader: 17, offset: 1448, moreFragments: true, identification: 0xdead_beef, headerOffset: 48))
    #expect(ip.upperLayerProtocol == 17 && ip.upperLayerOffset == 56)
    #expect(ip.lastNextHeaderOffset == 40)
    var written = [UInt8](repeating: 0, count: 8)
    written.withUnsafeMutableBytes { fragment.write(to: $0) }
    #expect(written == frag.enumerated().map { $0.offset == 0 ? 17 : $0.element })
}

@Test func rejectsLateHopByHopAndLongChains() {
    let opt: [UInt8] = [0, 0, 1, 4, 0, 0, 0, 0]
    let late = ipv6(extensions: [(60, opt), (0, opt)], upper: 17, payload: [])
    #expect(throws: WireError.unsupported(.ipv6Extension, 0)) { _ = try IPv6HeaderView(validating: late.span.bytes) }
    let long = ipv6(extensions: Array(repeating: (60, opt), count: 9), upper: 17, payload: [])
    #expect(throws: WireError.unsupported(.ipv6Extension, 9)) { _ = try IPv6HeaderView(validating: long.span.bytes) }
}

@Test func rejectsExtensionRunningPastPayload() {
    // Destination options claiming 16 bytes with only 8 present.
    let opt: [UInt8] = [0, 1, 1, 4, 0, 0, 0, 0]
    let packet = ipv6(extensions: [(60, opt)], upper: 17, payload: [])
    #expect(throws: WireError.truncated(.ipv6Extension, need: 56, have: 48)) { _ = try IPv6HeaderView(validating: packet.span.bytes) }
}

@Test func readsAuthenticationHeaderLength() throws {
    // AH payload length 4 → (4+2)*4 = 24 bytes.
    let ah: [UInt8] = [0, 4] + [UInt8](repeating: 0, count: 22)
    let packet = ipv6(extensions: [(51, ah)], upper: 6, payload: [UInt8](repeating: 0, count: 20))
    let ip = try IPv6HeaderView(validating: packet.span.bytes)
    #expect(ip.upperLayerOffset == 64 && ip.upperLayerProtocol == 6)
}

@Test func writesIPv6HeaderThatReadsBack() throws {
    var header = IPv6Header(source: try #require(IPv6Address("2001:db8::1")), destination: try #require(IPv6Address("2001:db8::2")),
                            nextHeader: 17, payloadLength: 8)
    header.flowLabel = 0x12345
    var bytes = [UInt8](repeating: 0, count: 48)
    bytes.withUnsafeMutableBytes { header.write(to: $0) }
    #expect(Array(bytes.prefix(40)) == Array(ipv6UDP.prefix(40)))
}
