// Known answers for the VMess primitives. The expected values were computed outside this code:
// Python's hashlib (MD5, SHA-256, SHAKE128, a nested HMAC written from sing-vmess kdf.go's
// description), zlib's CRC-32, uuid.uuid5, and `openssl enc -aes-128-ecb` for the auth ID.
import Testing
@testable import VMess

func hex(_ bytes: [UInt8]) -> String { bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() }

@Suite struct VMessCryptoTests {
    static let uuid = "b831381d-6324-4d53-ad4f-8cda48b30811"

    @Test func commandKeyIsMD5OfUUIDAndConstant() {
        let key = VMessModule.commandKey(userID: VMessModule.userID(Self.uuid))
        #expect(hex(key) == "b50d916ac0cec067981af8e5f38a758f")
    }

    @Test func nonUUIDTextIsANameBasedUUID() {
        // gofrs uuid.NewV5(uuid.Nil, "hello") == Python uuid.uuid5(UUID(int=0), "hello")
        #expect(hex(VMessModule.userID("hello")) == "b7502f40115259f2ba1069aeed522cdf")
        #expect(hex(VMessModule.userID("B831381D6324-4d53-ad4f-8cda48b30811")) != hex(VMessModule.userID(Self.uuid)))
        #expect(hex(VMessModule.userID("{b831381d-6324-4d53-ad4f-8cda48b30811}")) == "b831381d63244d53ad4f8cda48b30811")
    }

    @Test func kdfMatchesNestedHMAC() {
        let key = VMessModule.commandKey(userID: VMessModule.userID(Self.uuid))
        #expect(hex(VMessCrypto.kdf(key, "AES Auth ID Encryption")) == "1415ba74ca8b3d041a8f583fb4116315c589ae7b6e81765b601aa166c62871f7")
        #expect(hex(VMessCrypto.kdf(key, "VMess Header AEAD Key_Length", Array(0..<16), Array(0..<8)))
                == "e6e3dfda1dad7338c6454d172ca8ac0a89bcc0fdb7c3d3a33398898595617474")
        #expect(hex(VMessCrypto.kdf(Array(0..<16), "auth_len")) == "1dccf11d87f6b6c6ffbaa5b90794383cc545c3407e3116bcc48f5891d4acb9eb")
    }

    @Test func authIDIsAESOfTimeRandomAndCRC() throws {
        let key = VMessModule.commandKey(userID: VMessModule.userID(Self.uuid))
        // plaintext 000000006553f100 01020304 b85575f7 (time 1700000000, random 1 2 3 4, crc32)
        let id = VMessHeader.authID(commandKey: key, time: 1_700_000_000, random: [1, 2, 3, 4])
        #expect(hex(id) == "4774fe5cc901ea4f81f2159909767a36")
        let users = [VMessServerUser(name: "other", index: 0, uuid: "00000000-0000-0000-0000-000000000001"),
                     VMessServerUser(name: "a", index: 1, uuid: Self.uuid)]
        let filter = VMessReplayFilter()
        #expect(try VMessHeader.identify(authID: id, users: users, filter: filter, now: 1_700_000_100) == 1)
        #expect(throws: VMessError.replayed) { try VMessHeader.identify(authID: id, users: users, filter: filter, now: 1_700_000_100) }
        #expect(throws: VMessError.badTimestamp) { try VMessHeader.identify(authID: id, users: users, filter: VMessReplayFilter(), now: 1_700_000_121) }
        #expect(throws: VMessError.badRequest) { try VMessHeader.identify(authID: id, users: [users[0]], filter: filter, now: 1_700_000_000) }
    }

    @Test func shake128StreamsLikeHashlib() {
        var shake = VMessShake128(message: Array(0..<16))
        #expect(hex(shake.squeeze(4)) == "98481946")
        _ = shake.squeeze(388)
        #expect(hex(shake.squeeze(8)) == "5f749e3e85ed2501")
        var words = VMessShake128(message: Array(0..<16))
        #expect(words.nextUInt16() == 0x9848 && words.nextUInt16() == 0x1946)
    }

    @Test func checksums() {
        #expect(VMessCrypto.crc32(Array("123456789".utf8)) == 0xcbf43926)
        #expect(VMessCrypto.fnv1a32(Array("a".utf8)) == 0xe40c292c)
        #expect(VMessCrypto.fnv1a32([UInt8]()) == 0x811c9dc5)
    }
}
