import Adapter
import NIOCore
import SOCKS
import Testing

// VER 5, CMD 1 (CONNECT), RSV, ATYP 3 (domain) len 11 "example.com", port 443
private let connectDomain: [UInt8] = [0x05, 0x01, 0x00, 0x03, 0x0b] + Array("example.com".utf8) + [0x01, 0xbb]
// VER 5, CMD 1, RSV, ATYP 1, 127.0.0.1, port 8080
private let connectIPv4: [UInt8] = [0x05, 0x01, 0x00, 0x01, 0x7f, 0x00, 0x00, 0x01, 0x1f, 0x90]
// VER 5, CMD 3 (UDP ASSOCIATE), RSV, ATYP 4, 2001:db8::1, port 53
private let associateIPv6: [UInt8] = [0x05, 0x03, 0x00, 0x04, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00, 0x35]
// RFC 1929: VER 1, ULEN 3 "bob", PLEN 6 "secret"
private let passwordRequest: [UInt8] = [0x01, 0x03, 0x62, 0x6f, 0x62, 0x06] + Array("secret".utf8)
// UDP: RSV RSV FRAG 0, ATYP 1, 10.1.2.3, port 53, then payload "hi"
private let udpDatagram: [UInt8] = [0x00, 0x00, 0x00, 0x01, 0x0a, 0x01, 0x02, 0x03, 0x00, 0x35, 0x68, 0x69]

@Suite struct SOCKS5MessagesTests {
    @Test func readsGreeting() throws {
        // VER 5, NMETHODS 2: no auth, username/password
        var b = buffer([0x05, 0x02, 0x00, 0x02])
        #expect(try SOCKS5Greeting.read(from: &b) == SOCKS5Greeting(methods: [0x00, 0x02]))
        for length in 0..<4 {
            var short = buffer(Array([0x05, 0x02, 0x00, 0x02].prefix(length)))
            #expect(try SOCKS5Greeting.read(from: &short) == nil)
        }
        var bad = buffer([0x04, 0x01, 0x00])
        #expect(throws: SOCKSError.badVersion(4)) { try SOCKS5Greeting.read(from: &bad) }
        var out = ByteBuffer()
        SOCKS5Greeting(methods: [0x00, 0x02]).write(to: &out)
        #expect(bytes(out) == [0x05, 0x02, 0x00, 0x02])
    }

    @Test func readsMethodSelection() throws {
        var b = buffer([0x05, 0xff])
        #expect(try SOCKS5MethodSelection.read(from: &b)?.method == 0xff)
        var short = buffer([0x05])
        #expect(try SOCKS5MethodSelection.read(from: &short) == nil)
        var bad = buffer([0x01, 0x00])
        #expect(throws: SOCKSError.badVersion(1)) { try SOCKS5MethodSelection.read(from: &bad) }
    }

    @Test func readsPasswordRequest() throws {
        var b = buffer(passwordRequest)
        #expect(try SOCKS5PasswordRequest.read(from: &b) == SOCKS5PasswordRequest(username: "bob", password: "secret"))
        var out = ByteBuffer()
        try SOCKS5PasswordRequest(username: "bob", password: "secret").write(to: &out)
        #expect(bytes(out) == passwordRequest)
        var bad = buffer([0x05, 0x00, 0x00])
        #expect(throws: SOCKSError.badVersion(5)) { try SOCKS5PasswordRequest.read(from: &bad) }
        #expect(throws: SOCKSError.fieldTooLong(.password, length: 256)) {
            try SOCKS5PasswordRequest(username: "u", password: String(repeating: "p", count: 256)).write(to: &out)
        }
    }

    @Test(arguments: 0..<passwordRequest.count) func waitsOnTruncatedPasswordRequest(length: Int) throws {
        var b = buffer(Array(passwordRequest.prefix(length)))
        #expect(try SOCKS5PasswordRequest.read(from: &b) == nil)
    }

    @Test func readsEmptyCredentials() throws {
        var b = buffer([0x01, 0x00, 0x00])
        #expect(try SOCKS5PasswordRequest.read(from: &b) == SOCKS5PasswordRequest(username: "", password: ""))
    }

    @Test func readsRequests() throws {
        var domain = buffer(connectDomain)
        #expect(try SOCKS5Message.read(from: &domain) == SOCKS5Message(code: 1, address: Destination(domain: "example.com", port: 443)))
        var ipv4 = buffer(connectIPv4)
        #expect(try SOCKS5Message.read(from: &ipv4) == SOCKS5Message(code: 1, address: Destination(ip: .v4(0x7F00_0001), port: 8080)))
        var ipv6 = buffer(associateIPv6)
        let message = try #require(try SOCKS5Message.read(from: &ipv6))
        #expect(message.code == SOCKS5.commandUDPAssociate)
        #expect(message.address.description == "[2001:db8::1]:53")
    }

    @Test(arguments: [connectDomain, connectIPv4, associateIPv6])
    func waitsOnEveryTruncation(message: [UInt8]) throws {
        for length in 0..<message.count {
            var b = buffer(Array(message.prefix(length)))
            #expect(try SOCKS5Message.read(from: &b) == nil, "length \(length)")
            #expect(b.readableBytes == length)
        }
    }

    @Test(arguments: [connectDomain, connectIPv4, associateIPv6])
    func roundTrips(message: [UInt8]) throws {
        var b = buffer(message)
        let parsed = try #require(try SOCKS5Message.read(from: &b))
        var out = ByteBuffer()
        try parsed.write(to: &out)
        #expect(bytes(out) == message)
    }

    @Test func rejectsBadAddressTypeAndEmptyDomain() {
        var badType = buffer([0x05, 0x01, 0x00, 0x02, 0x00])
        #expect(throws: SOCKSError.badAddressType(2)) { try SOCKS5Message.read(from: &badType) }
        var empty = buffer([0x05, 0x01, 0x00, 0x03, 0x00, 0x00, 0x50])
        #expect(throws: SOCKSError.emptyDomain) { try SOCKS5Message.read(from: &empty) }
    }

    @Test func domainHoldingIPLiteralBecomesIP() throws {
        // ATYP 3 "::1" port 80
        var b = buffer([0x05, 0x01, 0x00, 0x03, 0x03] + Array("::1".utf8) + [0x00, 0x50])
        #expect(try SOCKS5Message.read(from: &b)?.address == Destination(ip: .v6(IPv6Bits(high: 0, low: 1)), port: 80))
    }

    @Test func writesMappedIPv6AsIPv4AndRefusesLongDomains() throws {
        var out = ByteBuffer()
        try SOCKS5Message(code: 0, address: Destination(ip: .v6(IPv6Bits(high: 0, low: 0xffff_7f00_0001)), port: 1)).write(to: &out)
        #expect(bytes(out) == [0x05, 0x00, 0x00, 0x01, 0x7f, 0x00, 0x00, 0x01, 0x00, 0x01])
        var long = ByteBuffer()
        #expect(throws: SOCKSError.fieldTooLong(.domain, length: 256)) {
            try SOCKS5Message(code: 1, address: Destination(domain: String(repeating: "a", count: 256), port: 1)).write(to: &long)
        }
        #expect(long.readableBytes == 0)
    }

    @Test func readsUDPHeader() throws {
        var b = buffer(udpDatagram)
        #expect(try SOCKS5UDPHeader.read(from: &b) == Destination(ip: .v4(0x0A01_0203), port: 53))
        #expect(bytes(b) == Array("hi".utf8))
        var out = ByteBuffer()
        try SOCKS5UDPHeader.write(Destination(ip: .v4(0x0A01_0203), port: 53), to: &out)
        out.writeString("hi")
        #expect(bytes(out) == udpDatagram)
        #expect(SOCKS5UDPHeader.length(for: Destination(ip: .v4(1), port: 1)) == 10)
    }

    @Test(arguments: 0..<10) func rejectsTruncatedUDPHeader(length: Int) {
        var b = buffer(Array(udpDatagram.prefix(length)))
        #expect(throws: SOCKSError.self) { try SOCKS5UDPHeader.read(from: &b) }
    }

    @Test func dropsFragments() {
        var b = buffer([0x00, 0x00, 0x01] + udpDatagram.dropFirst(3))
        #expect(throws: SOCKSError.fragmented(1)) { try SOCKS5UDPHeader.read(from: &b) }
    }

    @Test func garbageNeverTraps() {
        // Every byte value in every position of short messages: parse or throw, never crash.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let length = Int.random(in: 0..<40, using: &generator)
            let junk = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            var a = buffer(junk), b = buffer(junk), c = buffer(junk), d = buffer(junk), e = buffer(junk)
            _ = try? SOCKS5Message.read(from: &a)
            _ = try? SOCKS5UDPHeader.read(from: &b)
            _ = try? SOCKS4Request.read(from: &c)
            _ = try? SOCKS5PasswordRequest.read(from: &d)
            _ = try? SOCKS5Greeting.read(from: &e)
        }
    }
}
