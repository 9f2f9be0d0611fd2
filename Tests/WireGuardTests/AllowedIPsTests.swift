import Testing
@testable import WireGuard

@Suite struct AllowedIPsTests {
    @Test func longestPrefixWins() throws {
        var table = AllowedIPs()
        table.insert(address: [0, 0, 0, 0], prefixLength: 0, peer: 0)
        table.insert(address: [10, 0, 0, 0], prefixLength: 8, peer: 1)
        table.insert(address: [10, 1, 0, 0], prefixLength: 16, peer: 2)
        table.insert(address: [10, 1, 2, 3], prefixLength: 32, peer: 3)
        #expect(table.lookup([8, 8, 8, 8]) == 0)
        #expect(table.lookup([10, 9, 9, 9]) == 1)
        #expect(table.lookup([10, 1, 9, 9]) == 2)
        #expect(table.lookup([10, 1, 2, 3]) == 3)
        #expect(table.lookup([10, 1, 2, 4]) == 2)
    }

    @Test func hostBitsMaskedAndPrefixMoves() {
        var table = AllowedIPs()
        table.insert(address: [192, 168, 1, 77], prefixLength: 24, peer: 0)
        #expect(table.entries == [AllowedIPs.Entry(address: [192, 168, 1, 0], prefixLength: 24, peer: 0)])
        table.insert(address: [192, 168, 1, 0], prefixLength: 24, peer: 1)
        #expect(table.lookup([192, 168, 1, 5]) == 1)
        #expect(table.entries.count == 1)
        #expect(table.lookup([192, 168, 2, 5]) == nil)
    }

    @Test func ipv6AndFamiliesApart() throws {
        var table = AllowedIPs()
        let prefix = try #require(AllowedIPs.parsePrefix("fd7a:115c:a1e0::/48"))
        table.insert(address: prefix.address, prefixLength: prefix.prefixLength, peer: 4)
        let v4 = try #require(AllowedIPs.parsePrefix("0.0.0.0/0"))
        table.insert(address: v4.address, prefixLength: v4.prefixLength, peer: 5)
        #expect(table.lookup(try #require(IPAddressText.parseIPv6("fd7a:115c:a1e0:ab12::1"))) == 4)
        #expect(table.lookup(try #require(IPAddressText.parseIPv6("fd7a:115c:a1e1::1"))) == nil)
        #expect(table.lookup([1, 2, 3, 4]) == 5)
    }

    @Test func removeRenumbers() {
        var table = AllowedIPs()
        table.insert(address: [10, 0, 0, 0], prefixLength: 8, peer: 0)
        table.insert(address: [10, 1, 0, 0], prefixLength: 16, peer: 1)
        table.insert(address: [10, 2, 0, 0], prefixLength: 16, peer: 2)
        table.remove(peer: 1, renumber: true)
        #expect(table.lookup([10, 1, 0, 1]) == 0)
        #expect(table.lookup([10, 2, 0, 1]) == 1)
    }

    @Test func parsing() {
        #expect(AllowedIPs.parsePrefix("10.0.0.1")! == ([10, 0, 0, 1], 32))
        #expect(AllowedIPs.parsePrefix("::/0")! == (Array(repeating: 0, count: 16), 0))
        #expect(AllowedIPs.parsePrefix("10.0.0.0/33") == nil)
        #expect(AllowedIPs.parsePrefix("10.0.0/8") == nil)
        #expect(AllowedIPs.parsePrefix("fe80::1/129") == nil)
        #expect(IPAddressText.parseIPv6("::ffff:1.2.3.4") == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4])
        #expect(IPAddressText.format(IPAddressText.parseIPv6("2001:db8:0:0:1:0:0:1")!) == "2001:db8::1:0:0:1")
        #expect(WireGuardEndpoint(parsing: "[2001:db8::1]:51820")?.description == "[2001:db8::1]:51820")
        #expect(WireGuardEndpoint(parsing: "198.51.100.1:7")?.port == 7)
        #expect(WireGuardEndpoint(parsing: "198.51.100.1") == nil)
    }
}
