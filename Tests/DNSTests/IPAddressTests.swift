import Testing
@testable import DNS

@Suite struct IPAddressTests {
    @Test(arguments: [
        ("0.0.0.0", 0x0000_0000 as UInt32), ("10.1.2.3", 0x0a01_0203), ("255.255.255.255", 0xffff_ffff),
    ])
    func parsesIPv4(text: String, value: UInt32) throws {
        let address = try #require(IPv4Address(text))
        #expect(address.value == value)
        #expect(address.description == text)
    }

    @Test(arguments: ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1..2.3", "a.b.c.d", "1.2.3.4 "])
    func rejectsBadIPv4(text: String) {
        #expect(IPv4Address(text) == nil)
    }

    @Test(arguments: [
        ("::", "::"), ("::1", "::1"), ("1::", "1::"), ("2001:db8::1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"), ("fe80::1:0:0:1", "fe80::1:0:0:1"),
        ("1:0:0:2:0:0:0:3", "1:0:0:2::3"), ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"), ("1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7"),
        ("::ffff:10.1.2.3", "::ffff:a01:203"), ("FC00::ABCD", "fc00::abcd"),
    ])
    func parsesAndFormatsIPv6(text: String, canonical: String) throws {
        let address = try #require(IPv6Address(text))
        #expect(address.description == canonical)
        #expect(IPv6Address(canonical) == address)
        #expect(IPv6Address(bytes: address.bytes) == address)
    }

    @Test(arguments: [":", ":::", "1::2::3", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "12345::", "1:", ":1", "g::", "1:2:3:4:5:6:7::8", "::1.2.3"])
    func rejectsBadIPv6(text: String) {
        #expect(IPv6Address(text) == nil)
    }

    @Test func prefixContainsAndMasks() throws {
        let prefix = try #require(IPPrefix("198.18.0.0/15"))
        #expect(prefix.contains(.v4(IPv4Address(198, 19, 255, 255))))
        #expect(!prefix.contains(.v4(IPv4Address(198, 20, 0, 0))))
        #expect(!prefix.contains(try #require(IPAddress("::1"))))
        let v6 = try #require(IPPrefix("fc00::1234/18"))
        #expect(v6.masked.description == "fc00::/18")
        #expect(IPPrefix("10.0.0.1")?.bits == 32)
        #expect(IPPrefix("10.0.0.0/33") == nil)
    }
}
