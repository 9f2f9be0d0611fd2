import Testing
import Adapter
@testable import DNS

/// A message holding one record of every modelled type, plus an unknown type and EDNS with ECS.
func kitchenSinkMessage() throws -> DNSMessage {
    let name = try DNSName("www.example.com")
    let zone = try DNSName("example.com")
    var message = DNSMessage(id: 0xbeef, isResponse: true, isAuthoritative: true, recursionDesired: true,
                             recursionAvailable: true, authenticatedData: true, rcode: .noError,
                             questions: [DNSQuestion(name: name, type: .a)])
    message.answers = [
        .address(name, ip("192.0.2.1"), ttl: 300),
        .address(name, ip("2001:db8::1"), ttl: 300),
        DNSResourceRecord(name: name, type: .cname, ttl: 60, data: .name(try DNSName("cdn.example.net"))),
        DNSResourceRecord(name: try DNSName("1.2.0.192.in-addr.arpa"), type: .ptr, ttl: 60, data: .name(name)),
        DNSResourceRecord(name: zone, type: .mx, ttl: 60, data: .mx(preference: 10, exchange: try DNSName("mail.example.com"))),
        DNSResourceRecord(name: zone, type: .txt, ttl: 60, data: .txt([Array("v=spf1 -all".utf8), [], Array(repeating: 0x41, count: 255)])),
        DNSResourceRecord(name: try DNSName("_sip._tcp.example.com"), type: .srv, ttl: 60,
                          data: .srv(DNSSRV(priority: 1, weight: 2, port: 5060, target: try DNSName("sip.example.com")))),
        DNSResourceRecord(name: zone, type: .https, ttl: 60, data: .svcb(DNSSVCB(priority: 1, target: .root, parameters: [
            DNSSVCParameter(key: DNSSVCParameter.alpn, value: [2, 0x68, 0x32, 2, 0x68, 0x33]),
            DNSSVCParameter(key: DNSSVCParameter.port, value: [0x01, 0xbb]),
            DNSSVCParameter(key: DNSSVCParameter.ipv4hint, value: [192, 0, 2, 1, 192, 0, 2, 2]),
            DNSSVCParameter(key: DNSSVCParameter.ipv6hint, value: ip("2001:db8::2").bytes),
        ]))),
        DNSResourceRecord(name: zone, type: .svcb, ttl: 60, data: .svcb(DNSSVCB(priority: 0, target: try DNSName("svc.example.com"), parameters: []))),
        DNSResourceRecord(name: zone, type: .caa, ttl: 60, data: .caa(DNSCAA(flags: 128, tag: Array("issue".utf8), value: Array("letsencrypt.org".utf8)))),
        DNSResourceRecord(name: zone, type: DNSType(99), class: DNSClass(3), ttl: 60, data: .unknown([1, 2, 3, 0xc0, 0x0c])),
        DNSResourceRecord(name: zone, type: DNSType(48), ttl: 60, data: .unknown([])),
    ]
    message.authorities = [
        DNSResourceRecord(name: zone, type: .ns, ttl: 3600, data: .name(try DNSName("ns1.example.com"))),
        DNSResourceRecord(name: zone, type: .soa, ttl: 3600, data: .soa(DNSSOA(
            mname: try DNSName("ns1.example.com"), rname: try DNSName("hostmaster.example.com"),
            serial: 2024010101, refresh: 7200, retry: 3600, expire: 1209600, minimum: 300))),
    ]
    message.edns = DNSEDNS(udpPayloadSize: 1232, flags: 0x8000, options: [DNSEDNSOption(code: 10, data: [1, 2, 3, 4, 5, 6, 7, 8])])
    return message.settingClientSubnet(try #require(IPPrefix("203.0.113.77/24")))
}

@Suite struct DNSMessageTests {
    // A query for example.com A with RD, id 0x1234:
    // 12 34 | 01 00 (RD) | 0001 0000 0000 0000 | 7 example 3 com 0 | 0001 (A) 0001 (IN)
    let query: [UInt8] = [0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                          7, 101, 120, 97, 109, 112, 108, 101, 3, 99, 111, 109, 0, 0x00, 0x01, 0x00, 0x01]

    @Test func readsQuery() throws {
        let message = try DNSMessage(parsing: query)
        #expect(message.id == 0x1234)
        #expect(message.recursionDesired && !message.isResponse)
        #expect(message.question == DNSQuestion(name: try DNSName("example.com"), type: .a))
        #expect(try message.encoded() == query)
    }

    @Test(arguments: 0..<29) func rejectsTruncatedQuery(length: Int) {
        #expect(throws: DNSWireError.self) { try DNSMessage(parsing: Array(query.prefix(length))) }
    }

    @Test func compressesNames() throws {
        var response = try DNSMessage(parsing: query)
        response.isResponse = true
        response.answers = [.address(try DNSName("example.com"), ip("10.1.2.3"), ttl: 60),
                            .address(try DNSName("www.example.com"), ip("10.1.2.4"), ttl: 60)]
        let bytes = try response.encoded()
        // First answer owner: a pointer to offset 12 (c0 0c); second: 3 "www" then c0 0c.
        #expect(Array(bytes[29..<31]) == [0xc0, 0x0c])
        #expect(Array(bytes[45..<51]) == [3, 119, 119, 119, 0xc0, 0x0c])
        #expect(try DNSMessage(parsing: bytes) == response)
    }

    @Test func roundTripsEveryType() throws {
        let message = try kitchenSinkMessage()
        let bytes = try message.encoded()
        let parsed = try DNSMessage(parsing: bytes, strict: true)
        #expect(parsed == message)
        #expect(try parsed.encoded() == bytes)
        #expect(parsed.clientSubnet == DNSClientSubnet(prefix: try #require(IPPrefix("203.0.113.0/24")), scopePrefixLength: 0))
        #expect(parsed.edns?.udpPayloadSize == 1232)
        #expect(parsed.edns?.dnssecOK == true)
        if case .svcb(let svcb) = parsed.answers[7].data {
            #expect(svcb.ipv4Hints == [ip("192.0.2.1"), ip("192.0.2.2")])
            #expect(svcb.ipv6Hints == [ip("2001:db8::2")])
            #expect(svcb.alpn == [Array("h2".utf8), Array("h3".utf8)])
            #expect(svcb.port == 443)
        } else {
            Issue.record("not svcb")
        }
    }

    @Test func roundTripsEveryTypeSeparately() throws {
        let sink = try kitchenSinkMessage()
        for record in sink.allRecords {
            var message = DNSMessage(id: 7, isResponse: true)
            message.answers = [record]
            let parsed = try DNSMessage(parsing: try message.encoded(), strict: true)
            #expect(parsed == message, "\(record.type)")
        }
    }

    @Test func rejectsEveryTruncationOfKitchenSink() throws {
        let bytes = try kitchenSinkMessage().encoded()
        for length in 0..<bytes.count {
            #expect(throws: DNSWireError.self) { try DNSMessage(parsing: Array(bytes.prefix(length))) }
        }
    }

    @Test func extendedRcode() throws {
        var message = DNSMessage(isResponse: true, rcode: DNSRcode(0x7))
        message.edns = DNSEDNS(udpPayloadSize: 512, extendedRcodeHigh: 1)
        let parsed = try DNSMessage(parsing: try message.encoded())
        #expect(parsed.extendedRcode == DNSRcode(0x17))
        #expect(DNSRcode.nameError.description == "NXDOMAIN")
    }

    // Header with one question whose name is given, then type/class.
    func messageWithName(_ name: [UInt8], prefix: [UInt8] = []) -> [UInt8] {
        [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0] + prefix + name + [0, 1, 0, 1]
    }

    @Test func rejectsSelfPointer() {
        // Name at offset 12 is a pointer to offset 12 itself.
        #expect(throws: DNSWireError.badPointer(offset: 12, target: 12)) { try DNSMessage(parsing: messageWithName([0xc0, 12])) }
    }

    @Test func rejectsForwardPointer() {
        // Pointer at 12 to offset 14 (after itself), where a valid name sits.
        let bytes: [UInt8] = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 14, 1, 97, 0, 0, 1, 0, 1]
        #expect(throws: DNSWireError.badPointer(offset: 12, target: 14)) { try DNSMessage(parsing: bytes) }
    }

    @Test func rejectsPointerLoopThroughLabels() {
        // Answer owner at 29: 1 "a" then a pointer back to 29: a loop through its own labels.
        var bytes: [UInt8] = [0, 1, 0x80, 0, 0, 1, 0, 1, 0, 0, 0, 0,
                              7, 101, 120, 97, 109, 112, 108, 101, 3, 99, 111, 109, 0, 0, 1, 0, 1]
        bytes += [1, 97, 0xc0, 29, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4]
        #expect(throws: DNSWireError.badPointer(offset: 31, target: 29)) { try DNSMessage(parsing: bytes) }
        // Two names pointing at each other: 12 → 14 is forward, refused before any loop.
        let mutual: [UInt8] = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 14, 0xc0, 12, 0, 1, 0, 1]
        #expect(throws: DNSWireError.self) { try DNSMessage(parsing: mutual) }
    }

    @Test func rejectsLongLabelAndName() {
        // A 64-octet label has length octet 0x40: a retired label type.
        #expect(throws: DNSWireError.badLabelType(offset: 12)) {
            try DNSMessage(parsing: messageWithName([64] + Array(repeating: 97, count: 64) + [0]))
        }
        // Five 63-octet labels: over 255 octets.
        let label: [UInt8] = [63] + Array(repeating: 97, count: 63)
        #expect(throws: DNSWireError.nameTooLong(257)) {
            try DNSMessage(parsing: messageWithName(label + label + label + label + [0]))
        }
        // A long name built from pointers: each pointer adds 63 octets: still refused at 255.
        var chain: [UInt8] = label + [0]  // name A at 12
        var previous = 12
        for _ in 0..<5 {
            let here = 12 + chain.count
            chain += label + [0xc0 | UInt8(previous >> 8), UInt8(previous & 0xff)]
            previous = here
        }
        var bytes: [UInt8] = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0] + chain
        bytes[5] = 1
        // The question's name is the last chained one; place it last by pointing to it.
        bytes += [0xc0 | UInt8(previous >> 8), UInt8(previous & 0xff), 0, 1, 0, 1]
        // Questions are read from offset 12, so the first name parses fine and the rest is garbage;
        // read the chain explicitly instead.
        var reader = DNSReader(bytes: bytes)
        reader.offset = bytes.count - 6
        #expect(throws: DNSWireError.self) { try reader.readName() }
    }

    @Test func rejectsHostileCounts() {
        let bytes: [UInt8] = [0, 1, 0x80, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        #expect(throws: DNSWireError.badCount(4 * 0xffff)) { try DNSMessage(parsing: bytes) }
    }

    @Test func rejectsRDataOverrun() throws {
        // An A record with RDLENGTH 5.
        var message = DNSMessage(isResponse: true)
        message.answers = [DNSResourceRecord(name: .root, type: .a, ttl: 1, data: .unknown([1, 2, 3, 4, 5]))]
        #expect(throws: DNSWireError.badRData(type: 1, offset: 23)) { try DNSMessage(parsing: try message.encoded()) }
        // A CNAME whose name runs past its RDLENGTH of 2.
        message.answers = [DNSResourceRecord(name: .root, type: .cname, ttl: 1, data: .unknown([3, 97, 98, 99, 0]))]
        var bytes = try message.encoded()
        bytes[22] = 2
        #expect(throws: DNSWireError.self) { try DNSMessage(parsing: bytes) }
        // SVCB keys out of order.
        message.answers = [DNSResourceRecord(name: .root, type: .svcb, ttl: 1, data: .unknown([0, 1, 0, 0, 3, 0, 0, 0, 1, 0, 0]))]
        #expect(throws: DNSWireError.badRData(type: 64, offset: 23)) { try DNSMessage(parsing: try message.encoded()) }
    }

    @Test func rejectsOversizedValuesOnEmit() throws {
        var message = DNSMessage()
        message.answers = [DNSResourceRecord(name: .root, type: .txt, ttl: 1, data: .txt([Array(repeating: 0, count: 256)]))]
        #expect(throws: DNSWireError.valueTooLarge(256)) { try message.encoded() }
    }

    @Test func truncatesForUDP() throws {
        var message = DNSMessage(id: 1, isResponse: true, questions: [DNSQuestion(name: try DNSName("big.test"), type: .a)])
        for i in 0..<60 { message.answers.append(.address(try DNSName("big.test"), .v4(0x0a00_0000 | UInt32(i)), ttl: 60)) }
        message.edns = DNSEDNS(udpPayloadSize: 512)
        let bytes = try message.encoded(maxSize: 512)
        #expect(bytes.count <= 512)
        let parsed = try DNSMessage(parsing: bytes)
        #expect(parsed.isTruncated)
        #expect(parsed.edns != nil)
        #expect(parsed.answers.count < 60 && parsed.answers.count > 20)
        #expect(try message.encoded(maxSize: 4096) == message.encoded())
    }

    @Test func udpReplySizeFollowsTheRequest() throws {
        var response = DNSMessage(id: 1, isResponse: true, questions: [DNSQuestion(name: try DNSName("big.test"), type: .a)])
        for i in 0..<100 { response.answers.append(.address(try DNSName("big.test"), .v4(0x0a00_0000 | UInt32(i)), ttl: 60)) }
        let plain = DNSMessage.query(name: try DNSName("big.test"), type: .a)
        #expect(try response.encodedForUDP(replyingTo: plain).count <= 512)
        var edns = plain
        edns.edns = DNSEDNS(udpPayloadSize: 1232)
        let bigger = try response.encodedForUDP(replyingTo: edns)
        #expect(bigger.count > 512 && bigger.count <= 1232)
        #expect(try DNSMessage(parsing: bigger).isTruncated)
        edns.edns = DNSEDNS(udpPayloadSize: 100)
        #expect(try response.encodedForUDP(replyingTo: edns).count <= 512)
    }

    @Test func clientSubnetOption() throws {
        let v6 = DNSEDNSOption(clientSubnet: try #require(IPPrefix("2001:db8:abcd::1/48")))
        // family 2, source 48, scope 0, six address octets.
        #expect(v6.data == [0, 2, 48, 0, 0x20, 0x01, 0x0d, 0xb8, 0xab, 0xcd])
        #expect(v6.clientSubnet?.prefix.description == "2001:db8:abcd::/48")
        #expect(DNSEDNSOption(code: 8, data: [0, 1, 24, 0, 1, 2]).clientSubnet == nil)  // 2 octets for /24
        #expect(DNSEDNSOption(code: 8, data: [0, 3, 0, 0]).clientSubnet == nil)
        #expect(DNSEDNSOption(code: 8, data: [0, 1, 33, 0, 1, 2, 3, 4, 5]).clientSubnet == nil)
        let zero = DNSEDNSOption(clientSubnet: try #require(IPPrefix("0.0.0.0/0")))
        #expect(zero.data == [0, 1, 0, 0])
    }
}

@Test func refusesAddressOfTheWrongFamilyOnEmit() {
    var message = DNSMessage()
    message.answers = [DNSResourceRecord(name: .root, type: .a, ttl: 1, data: .a(ip("::1")))]
    #expect(throws: DNSWireError.addressFamilyMismatch) { try message.encoded() }
    message.answers = [DNSResourceRecord(name: .root, type: .aaaa, ttl: 1, data: .aaaa(ip("1.2.3.4")))]
    #expect(throws: DNSWireError.addressFamilyMismatch) { try message.encoded() }
}

@Suite struct DNSRecordTextTests {
    @Test func printsLikeMiekgThroughFormatQuestion() throws {
        let sink = try kitchenSinkMessage()
        let lines = sink.allRecords.map(\.description)
        #expect(lines == [
            "www.example.com. 300 IN A 192.0.2.1",
            "www.example.com. 300 IN AAAA 2001:db8::1",
            "www.example.com. 60 IN CNAME cdn.example.net.",
            "1.2.0.192.in-addr.arpa. 60 IN PTR www.example.com.",
            "example.com. 60 IN MX 10 mail.example.com.",
            "example.com. 60 IN TXT \"v=spf1 -all\" \"\" \"\(String(repeating: "A", count: 255))\"",
            "_sip._tcp.example.com. 60 IN SRV 1 2 5060 sip.example.com.",
            "example.com. 60 IN HTTPS 1 . alpn=\"h2,h3\" port=\"443\" ipv4hint=\"192.0.2.1,192.0.2.2\" ipv6hint=\"2001:db8::2\"",
            "example.com. 60 IN SVCB 0 svc.example.com.",
            "example.com. 60 IN CAA 128 issue \"letsencrypt.org\"",
            "example.com. 60 CH TYPE99 \\# 5 010203c00c",
            "example.com. 60 IN TYPE48 \\# 0",
            "example.com. 3600 IN NS ns1.example.com.",
            "example.com. 3600 IN SOA ns1.example.com. hostmaster.example.com. 2024010101 7200 3600 1209600 300",
            "OPT PSEUDOSECTION: EDNS: version 0; flags: do; udp: 1232",
        ])
    }
}
