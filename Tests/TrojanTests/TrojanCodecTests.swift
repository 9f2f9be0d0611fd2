// The trojan wire format as bytes: the password key, the request header, UDP frames both ways.
import Adapter
import NIOCore
import Testing
import Trojan

@Suite struct TrojanCodecTests {
    /// hex(SHA-224("password")), as `hashlib.sha224(b"password").hexdigest()` prints it.
    @Test func keyIsLowercaseHexSHA224() {
        #expect(String(decoding: TrojanModule.key(password: "password"), as: UTF8.self)
                == "d63dc919e201d7bc4c825630d2cf25fdc93d4b2f0d46706d29038d01")
        #expect(TrojanModule.key(password: "").count == TrojanModule.keyLength)
    }

    @Test func connectRequestToAnIPv4Destination() throws {
        let key = TrojanModule.key(password: "password")
        var buffer = ByteBuffer()
        let destination = Destination(ip: .v4(0x7f00_0001), port: 8080)
        try TrojanCodec.writeRequest(key: key, command: TrojanModule.commandConnect, destination: destination, to: &buffer)
        // key, CRLF, 01 connect, 01 IPv4 127.0.0.1 port 8080 (0x1f90), CRLF
        let expected = key + [0x0d, 0x0a, 0x01, 0x01, 127, 0, 0, 1, 0x1f, 0x90, 0x0d, 0x0a]
        #expect(Array(buffer.readableBytesView) == expected)
        #expect(buffer.readableBytes == TrojanCodec.requestLength(for: destination))
    }

    @Test func udpRequestToADomain() throws {
        let key = TrojanModule.key(password: "x")
        var buffer = ByteBuffer()
        let destination = Destination(host: .domain("a.io"), port: 53)
        try TrojanCodec.writeRequest(key: key, command: TrojanModule.commandUDPAssociate, destination: destination, to: &buffer)
        // key, CRLF, 03 UDP, 03 domain len 4 "a.io" port 53, CRLF
        let expected = key + [0x0d, 0x0a, 0x03, 0x03, 4] + Array("a.io".utf8) + [0x00, 0x35, 0x0d, 0x0a]
        #expect(Array(buffer.readableBytesView) == expected)
    }

    @Test func tooLongDomainWritesNothing() {
        var buffer = ByteBuffer()
        let destination = Destination(host: .domain(String(repeating: "a", count: 256)), port: 1)
        #expect(throws: TrojanError.domainTooLong(256)) {
            try TrojanCodec.writeRequest(key: TrojanModule.key(password: ""), command: 1, destination: destination, to: &buffer)
        }
        #expect(buffer.readableBytes == 0)
    }

    // 01 IPv4 10.0.0.1 port 53, length 3, CRLF, payload "abc"
    static let frame: [UInt8] = [0x01, 10, 0, 0, 1, 0x00, 0x35, 0x00, 0x03, 0x0d, 0x0a, 0x61, 0x62, 0x63]

    @Test func udpFrameRoundTrip() throws {
        var buffer = ByteBuffer()
        try TrojanCodec.writePacket(ByteBuffer(bytes: Array("abc".utf8)), to: Destination(ip: .v4(0x0a00_0001), port: 53), into: &buffer)
        #expect(Array(buffer.readableBytesView) == Self.frame)
        // Two frames back to back come out one at a time.
        buffer.writeBytes(Self.frame)
        for _ in 0..<2 {
            let frame = try TrojanCodec.readPacket(from: &buffer)
            let (source, payload) = try #require(frame)
            #expect(source == Destination(ip: .v4(0x0a00_0001), port: 53))
            #expect(Array(payload.readableBytesView) == Array("abc".utf8))
        }
        #expect(buffer.readableBytes == 0)
    }

    @Test(arguments: 0..<frame.count)
    func truncatedFrameWaitsAndConsumesNothing(length: Int) throws {
        var buffer = ByteBuffer(bytes: Self.frame.prefix(length))
        let frame = try TrojanCodec.readPacket(from: &buffer)
        #expect(frame == nil)
        #expect(buffer.readableBytes == length)
    }

    @Test func badAddressTypeFromTheServerThrows() {
        var buffer = ByteBuffer(bytes: [0x02, 1, 2, 3, 4, 0, 53, 0, 0, 0x0d, 0x0a])
        #expect(throws: TrojanError.badAddress) { _ = try TrojanCodec.readPacket(from: &buffer) }
    }

    @Test func oversizedPayloadIsRefused() {
        var buffer = ByteBuffer()
        let payload = ByteBuffer(repeating: 0, count: 65_536)
        #expect(throws: TrojanError.packetTooLarge(65_536)) {
            try TrojanCodec.writePacket(payload, to: Destination(ip: .v4(1), port: 1), into: &buffer)
        }
    }
}
