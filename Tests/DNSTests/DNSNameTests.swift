import Testing
@testable import DNS

@Suite struct DNSNameTests {
    @Test(arguments: [("example.com", "example.com."), ("example.com.", "example.com."), (".", "."), ("", "."),
                      ("a\\.b.c", "a\\.b.c."), ("\\065bc", "Abc."), ("sp\\032ace", "sp\\032ace.")])
    func parsesText(text: String, canonical: String) throws {
        let name = try DNSName(text)
        #expect(name.description == canonical)
        #expect(try DNSName(name.description) == name)
    }

    @Test func wireForm() throws {
        // 7 "example" 3 "com" 0
        #expect(try DNSName("example.com").wire == [7, 101, 120, 97, 109, 112, 108, 101, 3, 99, 111, 109, 0])
        #expect(DNSName.root.wire == [0])
        #expect(try DNSName("Example.COM").lowercased() == DNSName("example.com"))
        #expect(try DNSName("Example.COM").equalsIgnoringCase(DNSName("example.com")))
        #expect(try DNSName("example.com").domain == "example.com")
    }

    @Test func limits() throws {
        let label63 = String(repeating: "a", count: 63)
        #expect(throws: DNSWireError.labelTooLong(64)) { try DNSName(label63 + "a.com") }
        _ = try DNSName(label63 + ".com")
        // 4 × (1 + 63) = 256 > 255 once the root octet is added.
        let tooLong = Array(repeating: label63, count: 4).joined(separator: ".")
        #expect(throws: DNSWireError.self) { try DNSName(tooLong) }
        // 3 × 64 + 1 + 61 + 1 = 255: the longest name.
        let longest = Array(repeating: label63, count: 3).joined(separator: ".") + "." + String(repeating: "b", count: 61)
        #expect(try DNSName(longest).wire.count == 255)
        #expect(throws: DNSWireError.emptyLabel) { try DNSName("a..b") }
        #expect(throws: DNSWireError.badEscape) { try DNSName("a\\") }
        #expect(throws: DNSWireError.badEscape) { try DNSName("a\\25") }
        #expect(throws: DNSWireError.badEscape) { try DNSName("a\\256") }
    }
}
