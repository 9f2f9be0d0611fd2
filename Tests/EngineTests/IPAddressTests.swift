// IP and destination values: parse and print as Go's netip does.
import Adapter
import NIOCore
import Testing

@Suite struct IPAddressTests {
    @Test(arguments: [
        ("1.2.3.4", "1.2.3.4"), ("::1", "::1"), ("2001:db8::1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"), ("::", "::"),
        ("fe80::1:0:0:1", "fe80::1:0:0:1"), ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
        ("::ffff:10.0.0.1", "::ffff:10.0.0.1"), ("FD00::ABCD", "fd00::abcd"), ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
    ])
    func parsesAndPrintsLikeGo(input: String, printed: String) throws {
        let ip = try #require(IPAddress(input))
        #expect(ip.description == printed)
        #expect(IPAddress(ip.description) == ip)
        #expect(IPAddress(bytes: ip.bytes) == ip)
    }

    @Test(arguments: ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1::2::3", ":1", "1:", "1:2:3:4:5:6:7:8:9", "x::1", "fe80::1%eth0", "12345::"])
    func rejectsMalformed(input: String) {
        #expect(IPAddress(input) == nil)
    }

    @Test func prefixesContainWhatGoContains() throws {
        let v4 = try #require(IPPrefix("10.1.2.3/8"))
        #expect(v4.description == "10.0.0.0/8")
        #expect(v4.contains(IPAddress("10.255.0.1")!))
        #expect(!v4.contains(IPAddress("11.0.0.1")!))
        #expect(v4.contains(IPAddress("::ffff:10.0.0.9")!), "mapped addresses are judged as IPv4")
        let v6 = try #require(IPPrefix("2001:db8::/32"))
        #expect(v6.contains(IPAddress("2001:db8:ffff::1")!))
        #expect(!v6.contains(IPAddress("2001:db9::1")!))
        #expect(IPPrefix("fc00::/7")!.contains(IPAddress("fdff::1")!))
        #expect(IPPrefix("0.0.0.0/0")!.contains(IPAddress("8.8.8.8")!))
        #expect(IPPrefix("::/0")!.contains(IPAddress("2001::1")!))
        #expect(IPPrefix("1.2.3.4")!.bits == 32)
        #expect(IPPrefix("::1/129") == nil)
        #expect(IPPrefix("2001:db8::/65")!.contains(IPAddress("2001:db8::7fff:ffff:ffff:ffff")!))
        #expect(!IPPrefix("2001:db8::/65")!.contains(IPAddress("2001:db8::8000:0:0:0")!))
    }

    @Test(arguments: [
        ("10.0.0.1", true), ("172.16.5.4", true), ("172.32.0.1", false), ("192.168.1.1", true), ("127.0.0.1", true),
        ("169.254.1.1", true), ("224.0.0.251", true), ("0.0.0.0", true), ("8.8.8.8", false), ("100.64.0.1", false),
        ("fd12::1", true), ("fe80::1", true), ("ff02::1", true), ("::1", true), ("::", true), ("2606:4700::1111", false),
        ("::ffff:192.168.0.1", true),
    ])
    func privateAddressesFollowSingBox(address: String, isPrivate: Bool) {
        #expect(IPAddress(address)!.isPrivate == isPrivate)
    }

    @Test func destinationsPrintLikeSocksaddr() throws {
        #expect(Destination("example.com:80")?.description == "example.com:80")
        #expect(Destination("[::1]:443")?.description == "[::1]:443")
        #expect(Destination("1.2.3.4:53")?.ip == IPAddress("1.2.3.4"))
        #expect(Destination("::1:80") == nil)
        let address = SocketAddress(ip: IPAddress("2001:db8::5")!, port: 8080)
        #expect(Destination(address)?.description == "[2001:db8::5]:8080")
        #expect(Destination(SocketAddress(ip: IPAddress("192.0.2.7")!, port: 1))?.description == "192.0.2.7:1")
    }
}
