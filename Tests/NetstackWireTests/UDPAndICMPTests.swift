import Testing
import NetstackWire

@Test func readsAndVerifiesUDP() throws {
    // UDP 1234 → 53 with 4 payload bytes "abcd", over 10.0.0.1 → 10.0.0.2.
    var udp: [UInt8] = [0x04, 0xd2, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, 0x61, 0x62, 0x63, 0x64]
    let pseudo = Checksum.pseudoHeaderSum(source: IPv4Address(10, 0, 0, 1), destination: IPv4Address(10, 0, 0, 2), protocol: 17, length: 12)
    udp.withUnsafeMutableBytes { UDPHeader(sourcePort: 1234, destinationPort: 53, length: 12).write(to: $0, pseudoHeaderSum: pseudo) }
    // Reference: sum of pseudo-header words and the UDP words.
    let ref = ~referenceSum([10, 0, 0, 1, 10, 0, 0, 2, 0, 17, 0, 12] + Array(udp.prefix(6)) + [0, 0] + Array(udp.suffix(4)))
    #expect(udp.be16(6) == ref)
    do {
        let view = try UDPHeaderView(validating: udp.span.bytes)
        #expect(view.sourcePort == 1234 && view.destinationPort == 53 && view.length == 12 && view.payloadRange == 8..<12)
        let valid = view.isChecksumValid(pseudoHeaderSum: pseudo, zeroAllowed: false)
        #expect(valid)
    }
    udp[9] ^= 0x10
    let corrupted = try UDPHeaderView(validating: udp.span.bytes).isChecksumValid(pseudoHeaderSum: pseudo, zeroAllowed: false)
    #expect(!corrupted)
}

@Test func zeroUDPChecksumMeansNoneOnlyOverIPv4() throws {
    let udp: [UInt8] = [0x04, 0xd2, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00]
    let view = try UDPHeaderView(validating: udp.span.bytes)
    let over4 = view.isChecksumValid(pseudoHeaderSum: 0x1234, zeroAllowed: true)
    let over6 = view.isChecksumValid(pseudoHeaderSum: 0x1234, zeroAllowed: false)
    #expect(over4 && !over6)
}

@Test(arguments: 0..<12) func rejectsTruncatedUDP(length: Int) {
    let udp: [UInt8] = [0x04, 0xd2, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, 0x61, 0x62, 0x63, 0x64]
    let bytes = Array(udp.prefix(length))
    #expect(throws: WireError.self) { _ = try UDPHeaderView(validating: bytes.span.bytes) }
}

@Test func rejectsUDPLengthBelowHeader() {
    let udp: [UInt8] = [0x04, 0xd2, 0x00, 0x35, 0x00, 0x07, 0x00, 0x00]
    #expect(throws: WireError.badLength(.udp, 7)) { _ = try UDPHeaderView(validating: udp.span.bytes) }
}

// ICMPv4 echo request, id 0x1234, seq 1, payload "hi"; checksum computed by hand:
// ~(0x0800 + 0x1234 + 0x0001 + 0x6869) = ~0x829e = 0x7d61.
let echoRequest: [UInt8] = [0x08, 0x00, 0x7d, 0x61, 0x12, 0x34, 0x00, 0x01, 0x68, 0x69]

@Test func readsICMPEcho() throws {
    let icmp = try ICMPHeaderView(validating: echoRequest.span.bytes)
    #expect(icmp.type == ICMPv4Type.echoRequest && icmp.code == 0)
    #expect(icmp.identifier == 0x1234 && icmp.sequenceNumber == 1)
    #expect(icmp.checksum == 0x7d61 && icmp.isChecksumValid(pseudoHeaderSum: 0))
    #expect(icmp.bodyRange == 8..<10)
    var written = echoRequest
    written.withUnsafeMutableBytes { ICMPHeader.echo(type: 8, identifier: 0x1234, sequenceNumber: 1).write(to: $0, pseudoHeaderSum: 0) }
    #expect(written == echoRequest)
}

@Test(arguments: 0..<8) func rejectsTruncatedICMP(length: Int) {
    let bytes = Array(echoRequest.prefix(length))
    #expect(throws: WireError.truncated(.icmpv6, need: 8, have: length)) {
        _ = try ICMPHeaderView(validating: bytes.span.bytes, layer: .icmpv6)
    }
}

@Test func icmpErrorClassification() {
    #expect(ICMPv4Type.isError(3) && ICMPv4Type.isError(11) && !ICMPv4Type.isError(8) && !ICMPv4Type.isError(0))
    #expect(ICMPv6Type.isError(1) && ICMPv6Type.isError(2) && !ICMPv6Type.isError(128))
}
