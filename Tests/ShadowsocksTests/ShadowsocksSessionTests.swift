// TCP sessions end to end without sockets: our client's request through our server's parser and
// back, for every method, fed whole and byte by byte; then what a server must refuse.
import Testing
import Adapter
import NIOCore
@testable import Shadowsocks

let allMethods: [(name: String, password: String)] = [
    ("none", ""),
    ("aes-128-gcm", "password"), ("aes-192-gcm", "password"), ("aes-256-gcm", "password"),
    ("chacha20-ietf-poly1305", "password"), ("xchacha20-ietf-poly1305", "password"),
    ("2022-blake3-aes-128-gcm", "AAECAwQFBgcICQoLDA0ODw=="),
    ("2022-blake3-aes-256-gcm", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
    ("2022-blake3-chacha20-poly1305", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
]
let methodNames = allMethods.map(\.name)

func methods(_ name: String) throws -> (client: ShadowsocksMethod, server: ShadowsocksMethod) {
    let password = allMethods.first { $0.name == name }!.password
    return (try ShadowsocksMethod.client(name: name, password: password), try ShadowsocksMethod.server(name: name, password: password))
}

func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

func joined(_ pieces: [ByteBuffer]) -> [UInt8] { pieces.flatMap { Array($0.readableBytesView) } }

func patterned(_ count: Int, seed: Int = 0) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed) } }

@Suite struct ShadowsocksSessionTests {
    let destination = Destination(domain: "example.com", port: 443)

    /// Request + 3 payloads up and 2 down, large enough to span several chunks (and a SIP022 header
    /// block), delivered in one piece or one byte at a time.
    @Test(arguments: methodNames, [false, true])
    func roundTrip(name: String, byteByByte: Bool) throws {
        let (clientMethod, serverMethod) = try methods(name)
        var client = ShadowsocksClientSession(method: clientMethod, destination: destination)
        var server = ShadowsocksServerSession(method: serverMethod, saltFilter: ShadowsocksSaltFilter())
        let first = patterned(100), second = patterned(70_000, seed: 3), third = patterned(1)
        var wire = client.request(payload: buffer(first))
        wire.writeImmutableBuffer(client.seal(buffer(second)))
        wire.writeImmutableBuffer(client.seal(buffer(third)))
        var received: [ByteBuffer] = []
        if byteByByte {
            while let byte = wire.readSlice(length: 1) { try server.receive(byte, into: &received) }
        } else {
            try server.receive(wire, into: &received)
        }
        #expect(server.destination == destination)
        #expect(joined(received) == first + second + third)

        let down1 = patterned(5, seed: 9), down2 = patterned(40_000, seed: 11)
        var back = server.seal(buffer(down1))
        back.writeImmutableBuffer(server.seal(buffer(down2)))
        var delivered: [ByteBuffer] = []
        if byteByByte {
            while let byte = back.readSlice(length: 1) { try client.receive(byte, into: &delivered) }
        } else {
            try client.receive(back, into: &delivered)
        }
        #expect(joined(delivered) == down1 + down2)
    }

    /// A header sent alone (the early-payload timeout fired) still parses; SIP022 pads it.
    @Test(arguments: methodNames)
    func emptyRequestCarriesOnlyTheHeader(name: String) throws {
        let (clientMethod, serverMethod) = try methods(name)
        var client = ShadowsocksClientSession(method: clientMethod, destination: Destination(ip: .v4(0x7f00_0001), port: 80))
        var server = ShadowsocksServerSession(method: serverMethod, saltFilter: ShadowsocksSaltFilter())
        var received: [ByteBuffer] = []
        try server.receive(client.request(payload: ByteBuffer()), into: &received)
        #expect(server.destination == Destination(ip: .v4(0x7f00_0001), port: 80))
        #expect(received.isEmpty)
    }

    /// Every prefix of a request leaves the server waiting (no destination, no error, no trap).
    @Test(arguments: methodNames)
    func truncatedRequestsWait(name: String) throws {
        let (clientMethod, serverMethod) = try methods(name)
        var client = ShadowsocksClientSession(method: clientMethod, destination: destination)
        let wire = client.request(payload: buffer(patterned(10)))
        for length in 0..<(name == "none" ? 15 : wire.readableBytes - 10) {
            var server = ShadowsocksServerSession(method: serverMethod, saltFilter: ShadowsocksSaltFilter())
            var received: [ByteBuffer] = []
            try server.receive(wire.getSlice(at: 0, length: length)!, into: &received)
            #expect(server.destination == nil, "prefix \(length)")
        }
    }

    /// A flipped bit anywhere after the salt fails authentication; a different key fails at once.
    @Test(arguments: methodNames.filter { $0 != "none" })
    func tamperedOrForeignRequestsAreRefused(name: String) throws {
        let (clientMethod, serverMethod) = try methods(name)
        var client = ShadowsocksClientSession(method: clientMethod, destination: destination)
        let wire = Array(client.request(payload: buffer(patterned(50))).readableBytesView)
        for index in stride(from: serverMethod.saltByteCount, to: wire.count, by: 7) {
            var bad = wire
            bad[index] ^= 0x40
            var server = ShadowsocksServerSession(method: serverMethod, saltFilter: ShadowsocksSaltFilter())
            var received: [ByteBuffer] = []
            #expect(throws: ShadowsocksError.self, "byte \(index)") { try server.receive(buffer(bad), into: &received) }
            #expect(received.isEmpty)
        }
        let other = name.hasPrefix("2022") ? "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" : "other"
        let foreign = try ShadowsocksMethod.server(name: name, password: name == "2022-blake3-aes-128-gcm" ? "AAAAAAAAAAAAAAAAAAAAAA==" : other)
        var server = ShadowsocksServerSession(method: foreign, saltFilter: ShadowsocksSaltFilter())
        var received: [ByteBuffer] = []
        #expect(throws: ShadowsocksError.authenticationFailed) { try server.receive(buffer(wire), into: &received) }
    }

    /// Random bytes never trap the server: they fail or wait.
    @Test(arguments: methodNames)
    func garbageNeverTraps(name: String) throws {
        let serverMethod = try methods(name).server
        var generator = SystemRandomNumberGenerator()
        for round in 0..<200 {
            var server = ShadowsocksServerSession(method: serverMethod, saltFilter: ShadowsocksSaltFilter())
            let junk = (0..<(round * 3 % 400)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            var received: [ByteBuffer] = []
            _ = try? server.receive(buffer(junk), into: &received)
        }
    }

    /// SIP022: a replayed request is refused by the salt filter; a client 31 s off is refused
    /// with Go's wording; a response that does not echo the request salt is refused.
    @Test(arguments: ShadowsocksMethod.blake3Names)
    func sip022ReplayTimestampAndSaltChecks(name: String) throws {
        let (clientMethod, serverMethod) = try methods(name)
        var client = ShadowsocksClientSession(method: clientMethod, destination: destination)
        let wire = client.request(payload: buffer(patterned(20)))
        let filter = ShadowsocksSaltFilter()
        var first = ShadowsocksServerSession(method: serverMethod, saltFilter: filter)
        var received: [ByteBuffer] = []
        try first.receive(wire, into: &received)
        #expect(first.destination == destination)
        var replay = ShadowsocksServerSession(method: serverMethod, saltFilter: filter)
        #expect(throws: ShadowsocksError.saltNotUnique) { try replay.receive(wire, into: &received) }

        let now = shadowsocksSystemClock()
        var skewed = ShadowsocksClientSession(method: clientMethod, destination: destination, clock: { now - 31 })
        var strict = ShadowsocksServerSession(method: serverMethod, saltFilter: filter, clock: { now })
        let error = try #require(throws: ShadowsocksError.self) { try strict.receive(skewed.request(payload: ByteBuffer()), into: &received) }
        #expect(error.description == "bad timestamp: received \(now - 31), diff 31s")

        // A response meant for another request (other salt echoed).
        var otherClient = ShadowsocksClientSession(method: clientMethod, destination: destination)
        var otherServer = ShadowsocksServerSession(method: serverMethod, saltFilter: filter)
        try otherServer.receive(otherClient.request(payload: ByteBuffer()), into: &received)
        var delivered: [ByteBuffer] = []
        #expect(throws: ShadowsocksError.badRequestSalt) { try client.receive(otherServer.seal(buffer([1])), into: &delivered) }
    }

    /// SIP004 refuses a chunk longer than 0x3FFF (the length sealed with the right key).
    @Test func legacyChunkLengthIsBounded() throws {
        let method = try ShadowsocksMethod.client(name: "aes-128-gcm", password: "pw")
        let key = [UInt8](repeating: 1, count: 16)
        var sealer = ShadowsocksChunkSealer(aead: ShadowsocksAEAD(kind: .aes128GCM, key: key, sealing: true), maximumChunk: 0xFFFF)
        var wire = ByteBuffer()
        sealer.seal(buffer(patterned(0x4000)), into: &wire)
        var opener = ShadowsocksChunkOpener(aead: ShadowsocksAEAD(kind: .aes128GCM, key: key, sealing: false), maximumChunk: method.maximumChunk)
        var payloads: [ByteBuffer] = []
        #expect(throws: ShadowsocksError.chunkTooLong(0x4000)) { try opener.open(&wire, into: &payloads) }
    }
}
