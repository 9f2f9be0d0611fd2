// Key schedules and the in-place AEAD wrapper.
import Testing
@testable import Shadowsocks

@Suite struct ShadowsocksCryptoTests {
    /// EVP_BytesToKey(MD5) of "foobar" (computed with Python's hashlib: MD5 chains).
    @Test func legacyKeyIsEVPBytesToKey() {
        #expect(hex(ShadowsocksKDF.legacyKey(password: "foobar", byteCount: 16)) == "3858f62230ac3c915f300c664312c63f")
        #expect(hex(ShadowsocksKDF.legacyKey(password: "foobar", byteCount: 24)) == "3858f62230ac3c915f300c664312c63f568378529614d22d")
        #expect(hex(ShadowsocksKDF.legacyKey(password: "foobar", byteCount: 32))
                == "3858f62230ac3c915f300c664312c63f568378529614d22ddb49237d2f60bfdf")
    }

    /// RFC 5869 test case 4 (HKDF-SHA1, 42 bytes).
    @Test func hkdfSHA1MatchesRFC5869() {
        let okm = ShadowsocksKDF.hkdfSHA1(key: [UInt8](repeating: 0x0b, count: 11), salt: Array(0...12),
                                          info: Array(0xf0...0xf9), byteCount: 42)
        #expect(hex(okm) == "085a01ea1b10f36933068b56efa5ad81a4f14b822f5b091568a9cdd4f155fda2c22e422478d305f3f896")
    }

    /// The "ss-subkey" subkey of a known master key and salt (Python's hmac module computed it).
    @Test func legacySubkey() {
        let master = ShadowsocksKDF.legacyKey(password: "foobar", byteCount: 32)
        #expect(hex(ShadowsocksKDF.legacySubkey(masterKey: master, salt: Array(0..<32), byteCount: 32))
                == "c4f0e9818348b2f30188d82b37a4cddc9f5ea531070ec67225160209faff573c")
    }

    /// The SIP022 session key is BLAKE3 derive_key over PSK ‖ salt with the spec's context.
    @Test func sessionKeyIsDeriveKeyOverPSKAndSalt() {
        let psk = [UInt8](repeating: 7, count: 32), salt = [UInt8](repeating: 9, count: 32)
        #expect(ShadowsocksKDF.sessionKey(psk: psk, salt: salt, byteCount: 32)
                == BLAKE3.deriveKey(context: "shadowsocks 2022 session subkey", material: psk + salt, byteCount: 32))
    }

    @Test(arguments: [ShadowsocksAEADKind.aes128GCM, .aes192GCM, .aes256GCM, .chacha20Poly1305, .xchacha20Poly1305])
    func aeadSealsAndOpensInPlaceAndRejectsTampering(kind: ShadowsocksAEADKind) {
        let key = ShadowsocksKDF.random(kind.keyByteCount)
        let sealer = ShadowsocksAEAD(kind: kind, key: key, sealing: true)
        let opener = ShadowsocksAEAD(kind: kind, key: key, sealing: false)
        let nonce = ShadowsocksKDF.random(kind.nonceByteCount)
        let message = Array("attack at dawn".utf8)
        var buffer = message + [UInt8](repeating: 0, count: 16)
        nonce.withUnsafeBytes { iv in buffer.withUnsafeMutableBytes { sealer.seal(nonce: iv, inPlace: $0) } }
        #expect(Array(buffer.prefix(message.count)) != message)
        var tampered = buffer
        tampered[3] ^= 1
        #expect(nonce.withUnsafeBytes { iv in buffer.withUnsafeMutableBytes { opener.open(nonce: iv, inPlace: $0) } })
        #expect(Array(buffer.prefix(message.count)) == message)
        #expect(!nonce.withUnsafeBytes { iv in tampered.withUnsafeMutableBytes { opener.open(nonce: iv, inPlace: $0) } })
        var short = [UInt8](repeating: 0, count: 15)
        #expect(!nonce.withUnsafeBytes { iv in short.withUnsafeMutableBytes { opener.open(nonce: iv, inPlace: $0) } })
    }

    @Test func nonceIncrementsLittleEndianWithCarry() {
        var nonce = ShadowsocksNonce(byteCount: 12)
        for _ in 0..<256 { nonce.increment() }
        #expect(nonce.bytes == [0, 1] + [UInt8](repeating: 0, count: 10))
    }
}
