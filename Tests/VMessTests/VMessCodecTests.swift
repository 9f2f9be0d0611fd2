// Header and body round trips (both ends built from the same request, as client and server are),
// for every security and option set, and hostile input: truncations and garbage never trap.
import Adapter
import NIOCore
import Testing
@testable import VMess

@Suite struct VMessCodecTests {
    static let uuid = "b831381d-6324-4d53-ad4f-8cda48b30811"
    static var commandKey: [UInt8] { VMessModule.commandKey(userID: VMessModule.userID(uuid)) }

    static func request(security: UInt8, option: UInt8, command: UInt8 = VMessModule.commandTCP,
                        destination: Destination = Destination(domain: "example.com", port: 443)) -> VMessRequest {
        VMessRequest(bodyKey: VMessCrypto.random(16), bodyNonce: VMessCrypto.random(16), responseHeader: 0x5a, option: option,
                     security: security, command: command, destination: destination)
    }

    @Test(arguments: [Destination(domain: "example.com", port: 443), Destination(ip: IPAddress("10.1.2.3")!, port: 53),
                      Destination(ip: IPAddress("2001:db8::1")!, port: 8080)])
    func requestHeaderRoundTrips(destination: Destination) throws {
        let request = Self.request(security: VMessModule.securityAES128GCM, option: 5, destination: destination)
        let sealed = try VMessHeader.sealRequest(request, commandKey: Self.commandKey, time: vmessSystemClock())
        let users = [VMessServerUser(name: "", index: 0, uuid: Self.uuid)]
        #expect(try VMessHeader.identify(authID: Array(sealed[0..<16]), users: users, filter: VMessReplayFilter(), now: vmessSystemClock()) == 0)
        let length = try VMessHeader.openLength(sealed, commandKey: Self.commandKey)
        #expect(sealed.count == VMessHeader.headerIndex + length + 16)
        #expect(try VMessHeader.openRequest(sealed, length: length, commandKey: Self.commandKey) == request)
        // The plaintext ends with the FNV-1a of what precedes it.
        let plain = try VMessHeader.encodeRequest(request, padding: [9, 9, 9])
        #expect(Array(plain.suffix(4)) == VMessHeader.bigEndian(VMessCrypto.fnv1a32(plain.dropLast(4))))
        #expect(plain[35] == 3 << 4 | VMessModule.securityAES128GCM)
    }

    @Test func wrongKeyDoesNotOpenTheHeader() throws {
        let request = Self.request(security: VMessModule.securityAES128GCM, option: 5)
        let sealed = try VMessHeader.sealRequest(request, commandKey: Self.commandKey, time: vmessSystemClock())
        let other = VMessModule.commandKey(userID: VMessModule.userID("00000000-0000-0000-0000-000000000001"))
        #expect(throws: VMessError.authenticationFailed) { try VMessHeader.openLength(sealed, commandKey: other) }
    }

    @Test func headerDecodingRefusesBadFields() throws {
        let request = Self.request(security: VMessModule.securityNone, option: 0)
        let plain = try VMessHeader.encodeRequest(request, padding: [])
        var badVersion = plain
        badVersion[0] = 2
        #expect(throws: VMessError.badVersion(2)) { try VMessHeader.decodeRequest(badVersion) }
        var badCommand = plain
        badCommand[37] = 9
        #expect(throws: VMessError.unknownCommand(9)) { try VMessHeader.decodeRequest(badCommand) }
        var udpWithoutChunks = plain
        udpWithoutChunks[37] = VMessModule.commandUDP
        #expect(throws: VMessError.badPacketConnection) { try VMessHeader.decodeRequest(udpWithoutChunks) }
        var badType = plain
        badType[40] = 7
        #expect(throws: VMessError.badAddressType(7)) { try VMessHeader.decodeRequest(badType) }
        // Every truncation fails cleanly.
        for length in 0..<plain.count - 4 {
            #expect(throws: VMessError.self) { try VMessHeader.decodeRequest(Array(plain.prefix(length))) }
        }
    }

    @Test func responseRoundTrips() throws {
        let request = Self.request(security: VMessModule.securityAES128GCM, option: 5)
        let sealed = VMessHeader.sealResponse(responseHeader: 0x5a, option: 5, responseKey: request.responseKey, responseNonce: request.responseNonce)
        #expect(sealed.count == 18 + 4 + 16)
        let length = try VMessHeader.openResponseLength(Array(sealed[0..<18]), responseKey: request.responseKey, responseNonce: request.responseNonce)
        #expect(length == 4)
        #expect(try VMessHeader.openResponse(Array(sealed[18...]), responseKey: request.responseKey, responseNonce: request.responseNonce)
                == [0x5a, 5, 0, 0])
    }

    static let bodyCases: [(UInt8, UInt8)] = [
        (VMessModule.securityAES128GCM, 1 | 4), (VMessModule.securityAES128GCM, 1 | 4 | 8), (VMessModule.securityAES128GCM, 1 | 4 | 16),
        (VMessModule.securityAES128GCM, 1 | 4 | 8 | 16), (VMessModule.securityChaCha20Poly1305, 1 | 4),
        (VMessModule.securityChaCha20Poly1305, 1 | 4 | 8 | 16), (VMessModule.securityNone, 0), (VMessModule.securityNone, 1),
        (VMessModule.securityNone, 1 | 8), (VMessModule.securityLegacy, 1), (VMessModule.securityLegacy, 1 | 4 | 8),
        (VMessModule.securityLegacy, 0),
    ]

    /// Seals payloads of many sizes (some above one chunk) and opens them fed 7 bytes at a time (lengths
    /// and tags split across reads), 4 KiB at a time and
    /// all at once: the bytes come back in order, both directions.
    @Test(arguments: 0..<bodyCases.count)
    func bodyRoundTrips(index: Int) throws {
        let (security, option) = Self.bodyCases[index]
        let request = Self.request(security: security, option: option)
        for direction in [VMessBodyParameters.request(request), .response(request)] {
            var sealer = try VMessChunkSealer(direction)
            var wire = ByteBuffer()
            var sent: [UInt8] = []
            for size in [1, 100, 15000, 15001, 40000, 3] {
                let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ size) }
                sent += payload
                sealer.seal(ByteBuffer(bytes: payload), into: &wire)
            }
            for step in [7, 4096, Int.max] {
                var opener = try VMessChunkOpener(direction)
                var received: [UInt8] = []
                var pending = ByteBuffer()
                var input = wire
                while input.readableBytes > 0 {
                    var piece = input.readSlice(length: min(step, input.readableBytes))!
                    pending.writeBuffer(&piece)
                    var payloads: [ByteBuffer] = []
                    try opener.open(&pending, into: &payloads)
                    for payload in payloads { received += payload.readableBytesView }
                    pending.discardReadBytes()
                }
                #expect(received == sent, "security \(security) option \(option) step \(step)")
            }
        }
    }

    /// UDP: each datagram is one chunk and comes back as one payload.
    @Test(arguments: [VMessModule.securityAES128GCM, VMessModule.securityChaCha20Poly1305, VMessModule.securityNone])
    func packetsAreOneChunkEach(security: UInt8) throws {
        let option: UInt8 = security == VMessModule.securityNone ? 1 : 5
        let request = Self.request(security: security, option: option, command: VMessModule.commandUDP)
        var sealer = try VMessChunkSealer(.request(request))
        var opener = try VMessChunkOpener(.request(request))
        var wire = ByteBuffer()
        let datagrams = [[UInt8](repeating: 1, count: 20000), [2, 3], [UInt8](repeating: 4, count: 1400)]
        for datagram in datagrams { #expect(sealer.seal(ByteBuffer(bytes: datagram), into: &wire, asOnePacket: true)) }
        #expect(!sealer.seal(ByteBuffer(bytes: [UInt8](repeating: 0, count: 65535)), into: &wire, asOnePacket: true))
        var payloads: [ByteBuffer] = []
        try opener.open(&wire, into: &payloads)
        #expect(payloads.map { Array($0.readableBytesView) } == datagrams)
    }

    /// A tampered chunk fails with an authentication error; random garbage either fails or waits for
    /// more, and never traps, for every security.
    @Test(arguments: 0..<bodyCases.count)
    func garbageNeverTraps(index: Int) throws {
        let (security, option) = Self.bodyCases[index]
        let request = Self.request(security: security, option: option)
        var generator = SystemRandomNumberGenerator()
        for length in [0, 1, 2, 17, 18, 19, 100, 5000] {
            var opener = try VMessChunkOpener(.request(request))
            var garbage = ByteBuffer(bytes: (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) })
            var payloads: [ByteBuffer] = []
            _ = try? opener.open(&garbage, into: &payloads)
        }
        guard security != VMessModule.securityNone else { return }
        var sealer = try VMessChunkSealer(.request(request))
        var wire = ByteBuffer()
        sealer.seal(ByteBuffer(bytes: [1, 2, 3, 4, 5]), into: &wire)
        wire.setInteger(wire.getInteger(at: wire.writerIndex - 1, as: UInt8.self)! ^ 1, at: wire.writerIndex - 1)
        var opener = try VMessChunkOpener(.request(request))
        var payloads: [ByteBuffer] = []
        if option & 8 == 0 && option & 1 != 0 {  // with padding the last byte is padding, not the tag
            let expected: VMessError = security == VMessModule.securityLegacy ? .invalidChecksum : .authenticationFailed
            #expect(throws: expected) { try opener.open(&wire, into: &payloads) }
        }
    }

    @Test func unknownSecurityIsRefused() {
        let request = Self.request(security: 2, option: 1)  // `auto` never travels
        #expect(throws: VMessError.unsupportedSecurity(2)) { try VMessChunkSealer(.request(request)) }
        #expect(throws: VMessError.unsupportedSecurity(9)) { try VMessChunkOpener(.request(Self.request(security: 9, option: 1))) }
    }
}

@Suite struct VMessPacketAddressTests {
    @Test func framesRoundTripAndTruncationsAreDropped() throws {
        let allocator = ByteBufferAllocator()
        for destination in [Destination(ip: IPAddress("10.1.2.3")!, port: 53), Destination(ip: IPAddress("2001:db8::7")!, port: 443)] {
            let framed = try #require(VMessPacketAddress.frame(ByteBuffer(bytes: [1, 2, 3]), to: destination, allocator: allocator))
            // 01 0a010203 0035 010203 for the IPv4 case
            if destination.ip?.isIPv4 == true { #expect(Array(framed.readableBytesView) == [1, 10, 1, 2, 3, 0, 53, 1, 2, 3]) }
            var packet = framed
            #expect(VMessPacketAddress.read(&packet) == destination)
            #expect(Array(packet.readableBytesView) == [1, 2, 3])
            for length in 0..<(framed.readableBytes - 3) {
                var short = framed.getSlice(at: framed.readerIndex, length: length)!
                #expect(VMessPacketAddress.read(&short) == nil)
            }
        }
        #expect(VMessPacketAddress.frame(ByteBuffer(), to: Destination(domain: "a.example", port: 1), allocator: allocator) == nil)
        var unknown = ByteBuffer(bytes: [3, 0, 0, 0, 0, 0, 0])
        #expect(VMessPacketAddress.read(&unknown) == nil)
    }
}

@Suite struct VMessLegacyHeaderTests {
    static let uuid = "b831381d-6324-4d53-ad4f-8cda48b30811"

    /// Known answers from Python's hashlib/hmac: the first alter ID and its auth at 1700000000.
    @Test func alterIDAndAuthKnownAnswers() {
        let alter = VMessModule.alterID(VMessModule.userID(Self.uuid))
        #expect(hex(alter) == "5a07183412d5980a72ac845d5568d17d")
        #expect(hex(VMessCrypto.hmacMD5(key: alter, VMessHeader.bigEndian(UInt64(1_700_000_000)))) == "56e8c2bc23bffa8fcc79da1aea97bcaa")
    }

    @Test(arguments: [Destination(domain: "example.com", port: 443), Destination(ip: IPAddress("10.1.2.3")!, port: 53),
                      Destination(ip: IPAddress("2001:db8::1")!, port: 8080)])
    func legacyRequestRoundTrips(destination: Destination) throws {
        let commandKey = VMessModule.commandKey(userID: VMessModule.userID(Self.uuid))
        var request = VMessCodecTests.request(security: VMessModule.securityAES128GCM, option: 5, destination: destination)
        request.legacy = true
        let now = vmessSystemClock()
        let sealed = try VMessHeader.sealLegacyRequest(request, commandKey: commandKey, alterID: VMessModule.alterID(VMessModule.userID(Self.uuid)), time: now)
        let table = VMessLegacyTable(users: [(0, "00000000-0000-0000-0000-000000000001", 0), (1, Self.uuid, 4)])
        let found = try #require(table.lookup(Array(sealed[0..<16]), now: now + 30))
        #expect(found.user == 1 && found.time == now)
        let body = Array(sealed[16...])
        // Every prefix is "not yet"; the whole header opens to the request.
        for length in 0..<body.count { #expect(try VMessHeader.openLegacyRequest(Array(body.prefix(length)), commandKey: commandKey, time: now) == nil) }
        let opened = try #require(try VMessHeader.openLegacyRequest(body + [1, 2, 3], commandKey: commandKey, time: now))
        #expect(opened.0 == request && opened.1 == body.count)
        #expect(table.lookup(Array(sealed[0..<16]), now: now + 200) == nil)
    }
}

@Suite struct VMessXUDPTests {
    static let first = Destination(ip: IPAddress("127.0.0.1")!, port: 53)

    @Test func framesFromTheServer() throws {
        // keep frame with an address: len 12 ‖ session 0 ‖ keep ‖ data ‖ UDP ‖ port 53, IPv4 10.1.2.3 ‖ len 2 ‖ "hi"
        let keep: [UInt8] = [0, 12, 0, 0, 2, 1, 2, 0, 53, 1, 10, 1, 2, 3, 0, 2, 0x68, 0x69]
        // keep frame without an address: from the first destination
        let bare: [UInt8] = [0, 4, 0, 0, 2, 1, 0, 1, 0x21]
        let end: [UInt8] = [0, 4, 0, 0, 3, 0]
        var buffer = ByteBuffer(bytes: keep + bare + end)
        #expect(try VMessXUDP.readFrame(from: &buffer, defaultSource: Self.first)
                == .packet(ByteBuffer(bytes: [0x68, 0x69]), from: Destination(ip: IPAddress("10.1.2.3")!, port: 53)))
        #expect(try VMessXUDP.readFrame(from: &buffer, defaultSource: Self.first) == .packet(ByteBuffer(bytes: [0x21]), from: Self.first))
        #expect(try VMessXUDP.readFrame(from: &buffer, defaultSource: Self.first) == .end)
        #expect(try VMessXUDP.readFrame(from: &buffer, defaultSource: Self.first) == nil)
        // Every truncation waits; nothing is consumed.
        for length in 0..<keep.count {
            var short = ByteBuffer(bytes: keep.prefix(length))
            #expect(try VMessXUDP.readFrame(from: &short, defaultSource: Self.first) == nil)
            #expect(short.readableBytes == length)
        }
        var new = ByteBuffer(bytes: [0, 4, 0, 0, 1, 0])
        #expect(throws: VMessXUDP.FrameError.unexpectedNew) { try VMessXUDP.readFrame(from: &new, defaultSource: Self.first) }
        var badType = ByteBuffer(bytes: [0, 8, 0, 0, 2, 1, 2, 0, 53, 9, 0, 1, 0x21])
        #expect(throws: VMessXUDP.FrameError.badAddress) { try VMessXUDP.readFrame(from: &badType, defaultSource: Self.first) }
    }
}

@Suite struct VMessMuxFrameTests {
    @Test func clientFramesAreRead() throws {
        // new: len 12 ‖ session 0 ‖ new ‖ data ‖ UDP ‖ port 53, IPv4 127.0.0.1 ‖ len 1 ‖ "x"
        let new: [UInt8] = [0, 12, 0, 0, 1, 1, 2, 0, 53, 1, 127, 0, 0, 1, 0, 1, 0x78]
        let end: [UInt8] = [0, 4, 0, 0, 3, 0]
        var buffer = ByteBuffer(bytes: new + end)
        let first = try #require(try VMessMuxFrame.read(from: &buffer))
        #expect(first.status == 1 && first.network == 2 && first.destination == Destination(ip: IPAddress("127.0.0.1")!, port: 53))
        #expect(first.data == ByteBuffer(bytes: [0x78]))
        let second = try #require(try VMessMuxFrame.read(from: &buffer))
        #expect(second.status == 3 && second.data == nil && second.destination == nil)
        for length in 0..<new.count {
            var short = ByteBuffer(bytes: new.prefix(length))
            #expect(try VMessMuxFrame.read(from: &short) == nil)
        }
        var tiny = ByteBuffer(bytes: [0, 2, 0, 0])
        #expect(throws: VMessError.badMuxFrame) { try VMessMuxFrame.read(from: &tiny) }
        var badType = ByteBuffer(bytes: [0, 8, 0, 0, 1, 0, 2, 0, 53, 9])
        #expect(throws: VMessError.badAddressType(9)) { try VMessMuxFrame.read(from: &badType) }
    }
}
