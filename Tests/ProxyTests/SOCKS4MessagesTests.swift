import Adapter
import NIOCore
import SOCKS
import Testing

// VN 4, CD 1 (CONNECT), port 80, 192.168.1.2, USERID "bob", NUL
private let socks4Connect: [UInt8] = [0x04, 0x01, 0x00, 0x50, 0xc0, 0xa8, 0x01, 0x02, 0x62, 0x6f, 0x62, 0x00]
// VN 4, CD 1, port 443, 0.0.0.1 (4A), USERID "", NUL, "example.com", NUL
private let socks4aConnect: [UInt8] = [0x04, 0x01, 0x01, 0xbb, 0x00, 0x00, 0x00, 0x01, 0x00]
    + Array("example.com".utf8) + [0x00]

@Suite struct SOCKS4MessagesTests {
    @Test func readsSOCKS4Connect() throws {
        var b = buffer(socks4Connect)
        let request = try #require(try SOCKS4Request.read(from: &b))
        #expect(request.command == SOCKS4.commandConnect)
        #expect(request.destination == Destination(ip: .v4(0xC0A8_0102), port: 80))
        #expect(request.userID == "bob")
        #expect(b.readableBytes == 0)
    }

    @Test func readsSOCKS4aDomain() throws {
        var b = buffer(socks4aConnect + [0x16, 0x03])  // followed by early payload
        let request = try #require(try SOCKS4Request.read(from: &b))
        #expect(request.destination == Destination(domain: "example.com", port: 443))
        #expect(request.userID == "")
        #expect(bytes(b) == [0x16, 0x03])
    }

    @Test func socks4aLiteralIPBecomesIP() throws {
        var b = buffer([0x04, 0x01, 0x00, 0x35, 0x00, 0x00, 0x00, 0x07, 0x00] + Array("10.0.0.1".utf8) + [0x00])
        let request = try #require(try SOCKS4Request.read(from: &b))
        #expect(request.destination == Destination(ip: .v4(0x0A00_0001), port: 53))
    }

    @Test(arguments: 0..<socks4Connect.count) func waitsOnTruncatedSOCKS4(length: Int) throws {
        var b = buffer(Array(socks4Connect.prefix(length)))
        #expect(try SOCKS4Request.read(from: &b) == nil)
        #expect(b.readableBytes == length)  // nothing consumed
    }

    @Test(arguments: 0..<socks4aConnect.count) func waitsOnTruncatedSOCKS4a(length: Int) throws {
        var b = buffer(Array(socks4aConnect.prefix(length)))
        #expect(try SOCKS4Request.read(from: &b) == nil)
    }

    @Test func rejectsWrongVersion() {
        var b = buffer([0x05, 0x01, 0x00, 0x50])
        #expect(throws: SOCKSError.badVersion(5)) { try SOCKS4Request.read(from: &b) }
    }

    @Test func rejectsOverlongUserID() {
        var b = buffer([0x04, 0x01, 0x00, 0x50, 1, 2, 3, 4] + [UInt8](repeating: 0x41, count: 300))
        #expect(throws: SOCKSError.fieldTooLong(.userID, length: 300)) { try SOCKS4Request.read(from: &b) }
    }

    @Test func acceptsUserIDOf255() throws {
        var b = buffer([0x04, 0x01, 0x00, 0x50, 1, 2, 3, 4] + [UInt8](repeating: 0x41, count: 255) + [0])
        #expect(try SOCKS4Request.read(from: &b)?.userID.count == 255)
    }

    @Test func rejectsOverlongHostName() {
        var b = buffer([0x04, 0x01, 0x00, 0x50, 0, 0, 0, 1, 0] + [UInt8](repeating: 0x61, count: 256))
        #expect(throws: SOCKSError.fieldTooLong(.domain, length: 256)) { try SOCKS4Request.read(from: &b) }
    }

    @Test func rejectsEmptyHostName() {
        var b = buffer([0x04, 0x01, 0x00, 0x50, 0, 0, 0, 1, 0, 0])
        #expect(throws: SOCKSError.emptyDomain) { try SOCKS4Request.read(from: &b) }
    }

    @Test func writesRoundTrip() throws {
        for request in [SOCKS4Request(command: 1, destination: Destination(ip: .v4(0xC0A8_0102), port: 80), userID: "bob"),
                        SOCKS4Request(command: 1, destination: Destination(domain: "example.com", port: 443))] {
            var out = ByteBuffer()
            try request.write(to: &out)
            #expect(try SOCKS4Request.read(from: &out) == request)
        }
        var out = ByteBuffer()
        try SOCKS4Request(command: 1, destination: Destination(domain: "example.com", port: 443)).write(to: &out)
        #expect(bytes(out) == socks4aConnect)
    }

    @Test func writeRefusesOverlongFields() {
        var out = ByteBuffer()
        #expect(throws: SOCKSError.self) {
            try SOCKS4Request(command: 1, destination: Destination(domain: String(repeating: "a", count: 256), port: 1)).write(to: &out)
        }
        #expect(out.readableBytes == 0)
    }

    // VN 0, CD 90 (granted), port 8080, 10.0.0.1
    @Test func readsAndWritesReply() throws {
        let literal: [UInt8] = [0x00, 0x5a, 0x1f, 0x90, 0x0a, 0x00, 0x00, 0x01]
        var b = buffer(literal)
        let reply = try #require(try SOCKS4Reply.read(from: &b))
        #expect(reply == SOCKS4Reply(code: SOCKS4.granted, port: 8080, ipv4: 0x0A00_0001))
        var out = ByteBuffer()
        reply.write(to: &out)
        #expect(bytes(out) == literal)
        for length in 0..<literal.count {
            var short = buffer(Array(literal.prefix(length)))
            #expect(try SOCKS4Reply.read(from: &short) == nil)
        }
        var bad = buffer([0x04, 0x5a, 0, 0, 0, 0, 0, 0])
        #expect(throws: SOCKSError.badVersion(4)) { try SOCKS4Reply.read(from: &bad) }
    }
}
