// Multi-user inbounds: SIP022 identity headers (a client with `iPSK:uPSK`) over TCP and UDP, and
// legacy users told apart by which key opens the first chunk or packet.
import Testing
import Adapter
import NIOCore
@testable import Shadowsocks

@Suite struct ShadowsocksMultiUserTests {
    static let identityPSK = "ZGRkZGRkZGRkZGRkZGRkZA=="   // 16 × "d"
    static let alice = "YWFhYWFhYWFhYWFhYWFhYQ=="         // 16 × "a"
    static let bob = "YmJiYmJiYmJiYmJiYmJiYg=="           // 16 × "b"
    static let carol = "Y2NjY2NjY2NjY2NjY2NjYw=="         // 16 × "c"
    let destination = Destination(domain: "example.org", port: 80)

    func serverSide(_ name: String, password: String) throws -> (ShadowsocksMethod, ShadowsocksUserTable) {
        let method = try ShadowsocksMethod.server(name: name, password: password, multiUser: true)
        let users = name.hasPrefix("2022")
            ? try ShadowsocksUserTable(method: method, users: [("alice", Self.alice), ("bob", Self.bob)])
            : try ShadowsocksUserTable(method: method, users: [("alice", "alice-pw"), ("", "bob-pw")])
        return (method, users)
    }

    @Test func sip022IdentityHeaderNamesTheUserOverTCP() throws {
        let name = "2022-blake3-aes-128-gcm"
        let (serverMethod, users) = try serverSide(name, password: Self.identityPSK)
        let clientMethod = try ShadowsocksMethod.client(name: name, password: "\(Self.identityPSK):\(Self.bob)")
        #expect(clientMethod.identityKeys.count == 1)
        var client = ShadowsocksClientSession(method: clientMethod, destination: destination)
        var server = ShadowsocksServerSession(method: serverMethod, saltFilter: ShadowsocksSaltFilter(), users: users)
        var received: [ByteBuffer] = []
        try server.receive(client.request(payload: buffer(patterned(300))), into: &received)
        #expect(server.user == "bob" && server.destination == destination)
        #expect(joined(received) == patterned(300))
        var delivered: [ByteBuffer] = []
        try client.receive(server.seal(buffer(patterned(9))), into: &delivered)
        #expect(joined(delivered) == patterned(9))

        // A user the inbound does not know.
        var stranger = ShadowsocksClientSession(method: try ShadowsocksMethod.client(name: name, password: "\(Self.identityPSK):\(Self.carol)"),
                                                destination: destination)
        var refused = ShadowsocksServerSession(method: serverMethod, saltFilter: ShadowsocksSaltFilter(), users: users)
        #expect(throws: ShadowsocksError.invalidRequest) { try refused.receive(stranger.request(payload: ByteBuffer()), into: &received) }
    }

    @Test func sip022IdentityHeaderNamesTheUserOverUDP() throws {
        let name = "2022-blake3-aes-128-gcm"
        let (serverMethod, users) = try serverSide(name, password: Self.identityPSK)
        let clientMethod = try ShadowsocksMethod.client(name: name, password: "\(Self.identityPSK):\(Self.alice)")
        let clientCodec = ShadowsocksPacketCodec(method: clientMethod, isServer: false)
        let serverCodec = ShadowsocksPacketCodec(method: serverMethod, isServer: true, users: users)
        let sender = ShadowsocksUDPSender(method: clientMethod)
        var packet = clientCodec.seal(buffer(patterned(33)), address: destination, sender: sender)
        let header = try serverCodec.openHeader(&packet)
        #expect(header.user?.name == "alice" && header.sessionID == sender.sessionID)
        let opened = try serverCodec.openBody(packet, header: header, opener: serverCodec.remoteOpener(sessionID: header.sessionID, psk: header.user!.key))
        #expect(opened.address == destination && Array(opened.payload.readableBytesView) == patterned(33))
        // The reply goes out under alice's key, which is the client's last PSK.
        let serverSender = ShadowsocksUDPSender(method: serverMethod, psk: header.user!.key)
        var reply = serverCodec.seal(buffer([1, 2, 3]), address: destination, sender: serverSender, clientSessionID: sender.sessionID)
        let replyHeader = try clientCodec.openHeader(&reply)
        let back = try clientCodec.openBody(reply, header: replyHeader, opener: clientCodec.remoteOpener(sessionID: replyHeader.sessionID))
        #expect(Array(back.payload.readableBytesView) == [1, 2, 3] && back.clientSessionID == sender.sessionID)
    }

    @Test func legacyUsersAreFoundByTheirKey() throws {
        let name = "chacha20-ietf-poly1305"
        let (serverMethod, users) = try serverSide(name, password: "")
        var client = ShadowsocksClientSession(method: try ShadowsocksMethod.client(name: name, password: "bob-pw"), destination: destination)
        var server = ShadowsocksServerSession(method: serverMethod, saltFilter: nil, users: users)
        var received: [ByteBuffer] = []
        let wire = client.request(payload: buffer(patterned(20)))
        // Byte by byte: the trial needs the whole first length chunk.
        var rest = wire
        while let byte = rest.readSlice(length: 1) { try server.receive(byte, into: &received) }
        #expect(server.user == "1")  // unnamed users are called by their index, as in Go
        #expect(joined(received) == patterned(20))
        var delivered: [ByteBuffer] = []
        try client.receive(server.seal(buffer([7])), into: &delivered)
        #expect(joined(delivered) == [7])

        var stranger = ShadowsocksClientSession(method: try ShadowsocksMethod.client(name: name, password: "eve"), destination: destination)
        var refused = ShadowsocksServerSession(method: serverMethod, saltFilter: nil, users: users)
        #expect(throws: ShadowsocksError.authenticationFailed) { try refused.receive(stranger.request(payload: ByteBuffer()), into: &received) }

        // UDP: the packet names its user too, and the reply is sealed with that user's key.
        let codec = ShadowsocksPacketCodec(method: serverMethod, isServer: true, users: users)
        let clientCodec = ShadowsocksPacketCodec(method: try ShadowsocksMethod.client(name: name, password: "alice-pw"), isServer: false)
        let opened = try codec.openLegacy(clientCodec.seal(buffer([5]), address: destination, sender: nil))
        #expect(opened.user?.name == "alice")
        let back = try clientCodec.openLegacy(codec.seal(buffer([6]), address: destination, sender: nil, legacyKey: opened.user?.key))
        #expect(Array(back.payload.readableBytesView) == [6])
    }

    /// Random bytes, whole or byte by byte, never trap a multi-user server (TCP or UDP).
    @Test(arguments: ["2022-blake3-aes-256-gcm", "aes-256-gcm"])
    func garbageNeverTrapsMultiUserServers(name: String) throws {
        let password = name.hasPrefix("2022") ? "ZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGQ=" : ""
        let method = try ShadowsocksMethod.server(name: name, password: password, multiUser: true)
        let users = try ShadowsocksUserTable(method: method, users: name.hasPrefix("2022")
            ? [("a", "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE=")] : [("a", "pw"), ("b", "pw2")])
        let codec = ShadowsocksPacketCodec(method: method, isServer: true, users: users)
        var generator = SystemRandomNumberGenerator()
        for round in 0..<300 {
            let junk = (0..<(round * 7 % 500)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            var server = ShadowsocksServerSession(method: method, saltFilter: ShadowsocksSaltFilter(), users: users)
            var received: [ByteBuffer] = []
            if round % 2 == 0 {
                _ = try? server.receive(buffer(junk), into: &received)
            } else {
                for byte in junk { if (try? server.receive(buffer([byte]), into: &received)) == nil { break } }
            }
            if method.family == .blake3 {
                var packet = buffer(junk)
                if let header = try? codec.openHeader(&packet) {
                    _ = try? codec.openBody(packet, header: header, opener: codec.remoteOpener(sessionID: header.sessionID, psk: header.user?.key))
                }
            } else {
                _ = try? codec.openLegacy(buffer(junk))
            }
        }
    }

    @Test func multiUserConfigErrorsAreGos() {
        #expect(throws: AdapterError.self) { try ShadowsocksMethod.server(name: "2022-blake3-chacha20-poly1305", password: Self.alice, multiUser: true) }
        #expect(throws: AdapterError.self) { try ShadowsocksMethod.server(name: "none", password: "", multiUser: true) }
        func message(_ body: () throws -> Void) -> String? {
            do { try body(); return nil } catch { return "\(error)" }
        }
        let method = try? ShadowsocksMethod.server(name: "2022-blake3-aes-128-gcm", password: Self.identityPSK, multiUser: true)
        #expect(message { _ = try ShadowsocksUserTable(method: method!, users: [("x", "")]) } == "missing password")
        #expect(message { _ = try ShadowsocksUserTable(method: method!, users: [("x", "AAAA")]) } == "bad key")
        #expect(message { _ = try ShadowsocksUserTable(method: method!, users: [("x", "A*")]) } == "decode psk: illegal base64 data at input byte 1")
        #expect(message { _ = try ShadowsocksMethod.server(name: "2022-blake3-chacha20-poly1305", password: Self.alice, multiUser: true) }
                == "invalid argument")
    }
}
