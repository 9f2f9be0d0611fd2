import Testing
import NetstackWire

// IPv4, IHL 5, TOS 0, total 0x73 = 115, id 0, DF, TTL 64, UDP, checksum 0xb861,
// 192.168.0.1 → 192.168.0.199; then 95 payload bytes (zeros).
let ipv4Header: [UInt8] = [0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61,
                           0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7]
let ipv4Packet = ipv4Header + [UInt8](repeating: 0, count: 95)

@Test func readsIPv4Header() throws {
    let ip = try IPv4HeaderView(validating: ipv4Packet.span.bytes)
    #expect(ip.headerLength == 20)
    #expect(ip.totalLength == 115)
    #expect(ip.dontFragment && !ip.moreFragments && !ip.isFragment)
    #expect(ip.timeToLive == 64)
    #expect(ip.protocolNumber == IPProtocol.udp)
    #expect(ip.headerChecksum == 0xb861)
    #expect(ip.source == IPv4Address(192, 168, 0, 1))
    #expect(ip.destination == IPv4Address(192, 168, 0, 199))
    #expect(ip.payloadRange == 20..<115)
    let valid = ip.isChecksumValid
    #expect(valid)
}

@Test func detectsBadIPv4Checksum() throws {
    var bytes = ipv4Packet
    bytes[11] ^= 1
    let valid = try IPv4HeaderView(validating: bytes.span.bytes).isChecksumValid
    #expect(!valid)
}

@Test(arguments: 0..<115) func rejectsTruncatedIPv4(length: Int) {
    let bytes = Array(ipv4Packet.prefix(length))
    #expect(throws: WireError.self) { _ = try IPv4HeaderView(validating: bytes.span.bytes) }
}

@Test func ignoresLinkPaddingPastTotalLength() throws {
    let padded = ipv4Packet + [0xee, 0xee]
    let ip = try IPv4HeaderView(validating: padded.span.bytes)
    #expect(ip.payloadRange.upperBound == 115)
}

@Test func rejectsBadVersionAndLengths() {
    var v6 = ipv4Packet; v6[0] = 0x65
    #expect(throws: WireError.badVersion(6)) { _ = try IPv4HeaderView(validating: v6.span.bytes) }
    var ihl = ipv4Packet; ihl[0] = 0x44
    #expect(throws: WireError.badHeaderLength(.ipv4, 16)) { _ = try IPv4HeaderView(validating: ihl.span.bytes) }
    var total = ipv4Packet; total[3] = 19
    #expect(throws: WireError.badLength(.ipv4, 19)) { _ = try IPv4HeaderView(validating: total.span.bytes) }
}

@Test func readsOptionsAndFragmentFields() throws {
    // IHL 6 (one 4-byte option: NOP NOP NOP EOL), MF set, offset 185 units = 1480 bytes.
    var bytes: [UInt8] = [0x46, 0x00, 0x00, 0x20, 0x12, 0x34, 0x20, 0xb9, 0x01, 0x06, 0x00, 0x00,
                          10, 0, 0, 1, 10, 0, 0, 2, 0x01, 0x01, 0x01, 0x00] + [UInt8](repeating: 7, count: 8)
    let sum = bytes[0..<24].withUnsafeBytes { Checksum.compute($0) }
    bytes.setBE16(sum, at: 10)
    let ip = try IPv4HeaderView(validating: bytes.span.bytes)
    #expect(ip.headerLength == 24 && ip.optionsRange == 20..<24)
    #expect(ip.moreFragments && ip.isFragment && ip.fragmentOffset == 1480)
    #expect(ip.identification == 0x1234 && ip.timeToLive == 1 && ip.protocolNumber == 6)
    let valid = ip.isChecksumValid
    #expect(valid)
    #expect(ip.payloadRange == 24..<32)
}

@Test func writesIPv4HeaderThatReadsBack() throws {
    var header = IPv4Header(source: IPv4Address(192, 168, 0, 1), destination: IPv4Address(192, 168, 0, 199),
                            protocolNumber: IPProtocol.udp, totalLength: 115)
    header.dontFragment = true
    var bytes = [UInt8](repeating: 0, count: 20)
    bytes.withUnsafeMutableBytes { header.write(to: $0) }
    #expect(bytes == ipv4Header)
    header.moreFragments = true; header.fragmentOffset = 1480; header.identification = 9; header.dontFragment = false
    header.totalLength = 20
    bytes.withUnsafeMutableBytes { header.write(to: $0) }
    let ip = try IPv4HeaderView(validating: bytes.span.bytes)
    #expect(ip.fragmentOffset == 1480 && ip.moreFragments && ip.identification == 9 && ip.isChecksumValid)
}
