// The primitives under every method: AEADs on persistent OpenSSL EVP contexts (libsodium for
// XChaCha20-Poly1305, which OpenSSL 3 lacks), AES-ECB for the SIP022 UDP header, the legacy key
// schedule (EVP_BytesToKey with MD5, HKDF-SHA1 "ss-subkey"), SIP022 session keys (BLAKE3
// derive_key) and random bytes.
//
// Contexts are per connection or per UDP session and owned by one event loop: not thread-safe.
import COpenSSL
import CSodium

/// The AEAD construction of a method.
package enum ShadowsocksAEADKind: Sendable, Equatable {
    case aes128GCM, aes192GCM, aes256GCM, chacha20Poly1305, xchacha20Poly1305

    /// Nonce length: 24 for XChaCha20, 12 otherwise.
    package var nonceByteCount: Int { self == .xchacha20Poly1305 ? 24 : 12 }
    /// Key length.
    package var keyByteCount: Int {
        switch self {
        case .aes128GCM: 16
        case .aes192GCM: 24
        case .aes256GCM, .chacha20Poly1305, .xchacha20Poly1305: 32
        }
    }
}

/// One AEAD key in one direction, sealing or opening in place with a detached 16-byte tag after the
/// text. AES-GCM and ChaCha20-Poly1305 keep an EVP context keyed once; each call only sets the nonce.
package final class ShadowsocksAEAD {
    /// Tag length of every supported AEAD.
    package static let tagByteCount = 16

    /// The construction this context runs.
    package let kind: ShadowsocksAEADKind
    private let context: OpaquePointer?
    /// XChaCha20-Poly1305 only (libsodium takes the key per call).
    private var sodiumKey: [UInt8]
    private let sealing: Bool

    /// Keys a context for `sealing` (true) or opening. `key` must have `kind.keyByteCount` bytes:
    /// callers derive it, so a mismatch is our bug.
    package init(kind: ShadowsocksAEADKind, key: [UInt8], sealing: Bool) {
        precondition(key.count == kind.keyByteCount, "shadowsocks AEAD key length")
        self.kind = kind
        self.sealing = sealing
        let cipher: OpaquePointer?
        switch kind {
        case .aes128GCM: cipher = EVP_aes_128_gcm()
        case .aes192GCM: cipher = EVP_aes_192_gcm()
        case .aes256GCM: cipher = EVP_aes_256_gcm()
        case .chacha20Poly1305: cipher = EVP_chacha20_poly1305()
        case .xchacha20Poly1305: cipher = nil
        }
        if let cipher {
            guard let context = EVP_CIPHER_CTX_new() else { preconditionFailure("EVP_CIPHER_CTX_new failed") }
            let ok = key.withUnsafeBufferPointer { key in
                sealing ? EVP_EncryptInit_ex(context, cipher, nil, key.baseAddress, nil) == 1
                        : EVP_DecryptInit_ex(context, cipher, nil, key.baseAddress, nil) == 1
            }
            precondition(ok, "EVP AEAD init failed")
            self.context = context
            self.sodiumKey = []
        } else {
            self.context = nil
            self.sodiumKey = key
        }
    }

    deinit {
        if let context { EVP_CIPHER_CTX_free(context) }
        if !sodiumKey.isEmpty { sodiumKey.withUnsafeMutableBytes { sodium_memzero($0.baseAddress, $0.count) } }
    }

    /// Encrypts `bytes[0..<count-16]` in place and writes the tag into the last 16 bytes.
    /// `nonce` has `kind.nonceByteCount` bytes.
    package func seal(nonce: UnsafeRawBufferPointer, inPlace bytes: UnsafeMutableRawBufferPointer) {
        precondition(sealing && bytes.count >= Self.tagByteCount && nonce.count == kind.nonceByteCount)
        let plainCount = bytes.count - Self.tagByteCount
        let base = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let iv = nonce.baseAddress!.assumingMemoryBound(to: UInt8.self)
        guard let context else {
            _ = sodiumKey.withUnsafeBufferPointer { key in
                crypto_aead_xchacha20poly1305_ietf_encrypt_detached(base, base + plainCount, nil, base, UInt64(plainCount),
                                                                    nil, 0, nil, iv, key.baseAddress!)
            }
            return
        }
        var written: Int32 = 0
        _ = EVP_EncryptInit_ex(context, nil, nil, nil, iv)
        if plainCount > 0 { _ = EVP_EncryptUpdate(context, base, &written, base, Int32(plainCount)) }
        _ = EVP_EncryptFinal_ex(context, base + Int(written), &written)
        _ = EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, Int32(Self.tagByteCount), base + plainCount)
    }

    /// Verifies the trailing tag and decrypts `bytes[0..<count-16]` in place. False on a bad tag
    /// (or fewer than 16 bytes); the bytes are then garbage.
    package func open(nonce: UnsafeRawBufferPointer, inPlace bytes: UnsafeMutableRawBufferPointer) -> Bool {
        precondition(!sealing && nonce.count == kind.nonceByteCount)
        guard bytes.count >= Self.tagByteCount else { return false }
        let plainCount = bytes.count - Self.tagByteCount
        let base = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let iv = nonce.baseAddress!.assumingMemoryBound(to: UInt8.self)
        guard let context else {
            return sodiumKey.withUnsafeBufferPointer { key in
                crypto_aead_xchacha20poly1305_ietf_decrypt_detached(base, nil, base, UInt64(plainCount), base + plainCount,
                                                                    nil, 0, iv, key.baseAddress!) == 0
            }
        }
        var written: Int32 = 0
        _ = EVP_DecryptInit_ex(context, nil, nil, nil, iv)
        _ = EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_TAG, Int32(Self.tagByteCount), base + plainCount)
        if plainCount > 0 { guard EVP_DecryptUpdate(context, base, &written, base, Int32(plainCount)) == 1 else { return false } }
        return EVP_DecryptFinal_ex(context, base + Int(written), &written) == 1
    }
}

/// A little-endian counter nonce (SIP004: starts at zero, incremented after each seal or open).
package struct ShadowsocksNonce {
    /// The nonce as sent on the wire.
    package private(set) var bytes: [UInt8]

    /// The zero nonce of `byteCount` bytes.
    package init(byteCount: Int) { bytes = [UInt8](repeating: 0, count: byteCount) }

    /// Adds one, carrying from byte 0 upwards (sing's `increaseNonce`).
    package mutating func increment() {
        for i in bytes.indices {
            bytes[i] &+= 1
            if bytes[i] != 0 { return }
        }
    }
}

/// AES in ECB mode on single 16-byte blocks: SIP022's UDP separate header (session id + packet id)
/// is one block encrypted with the PSK. One persistent context per direction.
package final class ShadowsocksAESBlock {
    private let context: OpaquePointer
    private let encrypting: Bool

    /// `key` is 16 or 32 bytes (the method's PSK, validated at config time).
    package init(key: [UInt8], encrypting: Bool) {
        guard let context = EVP_CIPHER_CTX_new() else { preconditionFailure("EVP_CIPHER_CTX_new failed") }
        let cipher = key.count == 16 ? EVP_aes_128_ecb() : EVP_aes_256_ecb()
        let ok = key.withUnsafeBufferPointer { key in
            encrypting ? EVP_EncryptInit_ex(context, cipher, nil, key.baseAddress, nil) == 1
                       : EVP_DecryptInit_ex(context, cipher, nil, key.baseAddress, nil) == 1
        }
        precondition(ok, "EVP AES-ECB init failed")
        EVP_CIPHER_CTX_set_padding(context, 0)
        self.context = context
        self.encrypting = encrypting
    }

    deinit { EVP_CIPHER_CTX_free(context) }

    /// Transforms the 16 bytes at `block` in place.
    package func apply(_ block: UnsafeMutableRawPointer) {
        let base = block.assumingMemoryBound(to: UInt8.self)
        var written: Int32 = 0
        if encrypting {
            _ = EVP_EncryptUpdate(context, base, &written, base, 16)
        } else {
            _ = EVP_DecryptUpdate(context, base, &written, base, 16)
        }
    }
}

/// Key schedules and randomness.
package enum ShadowsocksKDF {
    /// OpenSSL's EVP_BytesToKey with MD5 and no salt, one iteration: the legacy master key from a
    /// password (D_i = MD5(D_{i-1} || password), concatenated, truncated).
    package static func legacyKey(password: String, byteCount: Int) -> [UInt8] {
        let password = Array(password.utf8)
        var out: [UInt8] = []
        var previous: [UInt8] = []
        while out.count < byteCount {
            previous = md5(previous + password)
            out += previous
        }
        return Array(out.prefix(byteCount))
    }

    /// MD5 of `data`.
    static func md5(_ data: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 16)
        var length: UInt32 = 0
        _ = data.withUnsafeBufferPointer { input in
            EVP_Digest(input.baseAddress, input.count, &digest, &length, EVP_md5(), nil)
        }
        return digest
    }

    /// HMAC-SHA1.
    static func hmacSHA1(key: [UInt8], data: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 20)
        var length: UInt32 = 0
        key.withUnsafeBufferPointer { key in
            data.withUnsafeBufferPointer { data in
                _ = HMAC(EVP_sha1(), key.baseAddress, Int32(key.count), data.baseAddress, data.count, &digest, &length)
            }
        }
        return digest
    }

    /// SIP004 session subkey: HKDF-SHA1(key: master, salt: salt, info: "ss-subkey").
    package static func legacySubkey(masterKey: [UInt8], salt: some Collection<UInt8>, byteCount: Int) -> [UInt8] {
        hkdfSHA1(key: masterKey, salt: Array(salt), info: Array("ss-subkey".utf8), byteCount: byteCount)
    }

    /// HKDF with HMAC-SHA1 (RFC 5869): extract with `salt`, expand with `info`.
    package static func hkdfSHA1(key: [UInt8], salt: [UInt8], info: [UInt8], byteCount: Int) -> [UInt8] {
        let prk = hmacSHA1(key: salt, data: key)
        var out: [UInt8] = []
        var block: [UInt8] = []
        var counter: UInt8 = 1
        while out.count < byteCount {
            block = hmacSHA1(key: prk, data: block + info + [counter])
            out += block
            counter &+= 1
        }
        return Array(out.prefix(byteCount))
    }

    /// SIP022 session subkey: BLAKE3 derive_key("shadowsocks 2022 session subkey", psk || salt).
    package static func sessionKey(psk: [UInt8], salt: some Collection<UInt8>, byteCount: Int) -> [UInt8] {
        BLAKE3.deriveKey(context: "shadowsocks 2022 session subkey", material: psk + Array(salt), byteCount: byteCount)
    }

    /// SIP022 identity subkey: BLAKE3 derive_key("shadowsocks 2022 identity subkey", psk || salt).
    package static func identityKey(psk: [UInt8], salt: some Collection<UInt8>) -> [UInt8] {
        BLAKE3.deriveKey(context: "shadowsocks 2022 identity subkey", material: psk + Array(salt), byteCount: psk.count)
    }

    /// `count` bytes from OpenSSL's CSPRNG.
    package static func random(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        fillRandom(&out)
        return out
    }

    /// Fills `bytes` from OpenSSL's CSPRNG (traps only if the CSPRNG is broken).
    package static func fillRandom(_ bytes: inout [UInt8]) {
        guard !bytes.isEmpty else { return }
        let ok = bytes.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32($0.count)) == 1 }
        precondition(ok, "RAND_bytes failed")
    }

    /// Fills raw memory from the CSPRNG.
    package static func fillRandom(_ bytes: UnsafeMutableRawBufferPointer) {
        guard bytes.count > 0 else { return }
        precondition(RAND_bytes(bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(bytes.count)) == 1, "RAND_bytes failed")
    }

    /// A uniformly random integer in `range` (padding lengths).
    package static func randomInt(in range: ClosedRange<Int>) -> Int {
        var generator = SystemRandomNumberGenerator()
        return Int.random(in: range, using: &generator)
    }
}

extension ShadowsocksKDF {
    /// SHA-256 of `data` (Go's `Key` for a 2022 PSK longer than the method's key).
    static func sha256(_ data: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = data.withUnsafeBufferPointer { input in
            EVP_Digest(input.baseAddress, input.count, &digest, &length, EVP_sha256(), nil)
        }
        return digest
    }
}
