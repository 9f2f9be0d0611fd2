import Adapter
import Testing

@Test(arguments: [
    ("10.0.0.1/24", "10.0.0.1/24"), ("0.0.0.0/0", "0.0.0.0/0"), ("2001:db8::1/64", "2001:db8::1/64"),
    ("::/0", "::/0"), ("fe80:0:0:0:0:0:0:1", "fe80::1/128"), ("2001:db8:0:1:0:0:0:0/64", "2001:db8:0:1::/64"),
    ("1:0:0:1:0:0:0:1", "1:0:0:1::1/128"), ("1:0:0:1:0:0:1:1", "1::1:0:0:1:1/128"), ("::ffff:192.0.2.1", "::ffff:c000:201/128"),
])
func prefixRoundTrip(text: String, expected: String) throws {
    let prefix = try #require(NetworkPrefix(text))
    #expect(prefix.description == expected)
}

@Test(arguments: ["10.0.0.1/33", "10.0.0/8", "1::2::3", "2001:db8::g", "", "::1/129", "256.0.0.1"])
func prefixRejects(text: String) {
    #expect(NetworkPrefix(text) == nil)
}

@Test func prefixMaskAndContains() throws {
    let prefix = try #require(NetworkPrefix("192.168.77.130/25"))
    #expect(prefix.masked.description == "192.168.77.128/25")
    #expect(prefix.contains([192, 168, 77, 200]))
    #expect(!prefix.contains([192, 168, 77, 100]))
    #expect(NetworkPrefix("10.1.2.3")!.isGlobalUnicast)
    #expect(!NetworkPrefix("127.0.0.1")!.isGlobalUnicast)
    #expect(!NetworkPrefix("fe80::1")!.isGlobalUnicast)
    #expect(NetworkPrefix("2001:db8::1")!.isGlobalUnicast)
}
