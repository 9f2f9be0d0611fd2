// The outbound's legacy stream ciphers (sing-shadowsocks `shadowstream`): the salt is the IV, the
// rest of the stream (TCP) or of the datagram (UDP) is XORed with the keystream; nothing is
// authenticated. AES-CTR/CFB and ChaCha20 run on OpenSSL's EVP; XChaCha20 derives its subkey with
// libsodium's HChaCha20 and continues as IETF ChaCha20 over the last 8 nonce bytes (as Go's
// x/crypto); RC4 (OpenSSL 3 keeps it in the legacy provider) is computed here, keyed with
// MD5(key ‖ salt) as rc4-md5 defines.
import COpenSSL
import CSodium
package import NIOCore

/// The stream methods Go's outbound knows.
package enum ShadowsocksStreamKind: Sendable, Equatable {
    case aes128CTR, aes192CTR, aes256CTR, aes128CFB, aes192CFB, aes256CFB, rc4MD5, chacha20IETF, xchacha20

    package init?(name: String) {
        switch name {
        case "aes-128-ctr": self = .aes128CTR
        case "aes-192-ctr": self = .aes192CTR
        case "aes-256-ctr": self = .aes256CTR
        case "aes-128-cfb": self = .aes128CFB
        case "aes-192-cfb": self = .aes192CFB
        case "aes-256-cfb": self = .aes256CFB
        case "rc4-md5": self = .rc4MD5
        case "chacha20-ietf": self = .chacha20IETF
        case "xchacha20": self = .xchacha20
        default: return nil
        }
    }

    package var keyByteCount: Int {
        switch self {
        case .aes128CTR, .aes128CFB, .rc4MD5: 16
        case .aes192CTR, .aes192CFB: 24
        case .aes256CTR, .aes256CFB, .chacha20IETF, .xchacha20: 32
        }
    }

    /// The IV (salt) in front of a stream or datagram.
    package var saltByteCount: Int {
        switch self {
        case .chacha20IETF: 12
        case .xchacha20: 24
        default: 16
        }
    }
}

/// One direction's keystream: `apply` XORs bytes in place and moves on. Not thread-safe (one per
/// connection direction, on its loop).
package final class ShadowsocksStreamCipher {
    private var context: OpaquePointer?
    private var rc4: RC4?

    package init(kind: ShadowsocksStreamKind, key: [UInt8], salt: [UInt8], encrypting: Bool) {
        precondition(key.count == kind.keyByteCount && salt.count == kind.saltByteCount)
        var cipherKey = key
        var iv = salt
        let cipher: OpaquePointer?
        switch kind {
        case .aes128CTR: cipher = EVP_aes_128_ctr()
        case .aes192CTR: cipher = EVP_aes_192_ctr()
        case .aes256CTR: cipher = EVP_aes_256_ctr()
        case .aes128CFB: cipher = EVP_aes_128_cfb128()
        case .aes192CFB: cipher = EVP_aes_192_cfb128()
        case .aes256CFB: cipher = EVP_aes_256_cfb128()
        case .chacha20IETF:
            cipher = EVP_chacha20()
            iv = [0, 0, 0, 0] + salt  // OpenSSL's IV: 32-bit block counter (little-endian), then the nonce
        case .xchacha20:
            cipher = EVP_chacha20()
            var subkey = [UInt8](repeating: 0, count: 32)
            _ = crypto_core_hchacha20(&subkey, Array(salt[0..<16]), key, nil)
            cipherKey = subkey
            iv = [0, 0, 0, 0, 0, 0, 0, 0] + salt[16..<24]
        case .rc4MD5:
            rc4 = RC4(key: ShadowsocksKDF.md5(key + salt))
            return
        }
        guard let context = EVP_CIPHER_CTX_new() else { preconditionFailure("EVP_CIPHER_CTX_new failed") }
        let ok = encrypting ? EVP_EncryptInit_ex(context, cipher, nil, cipherKey, iv) == 1
                            : EVP_DecryptInit_ex(context, cipher, nil, cipherKey, iv) == 1
        precondition(ok, "EVP init failed for a stream cipher")
        self.context = context
    }

    deinit { if let context { EVP_CIPHER_CTX_free(context) } }

    /// XORs `bytes` with the next keystream bytes (CFB: encrypts or decrypts as made).
    package func apply(_ bytes: UnsafeMutableRawBufferPointer) {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count > 0 else { return }
        if rc4 != nil {
            rc4!.apply(base, count: bytes.count)
            return
        }
        var written: Int32 = 0
        var offset = 0
        // EVP_*Update takes an Int32 length.
        while offset < bytes.count {
            let count = min(bytes.count - offset, 1 << 30)
            _ = EVP_CipherUpdate(context, base + offset, &written, base + offset, Int32(count))
            offset += count
        }
    }

    /// XORs the readable bytes of `buffer` in place, from `offset` on.
    package func apply(to buffer: inout ByteBuffer, from offset: Int = 0) {
        buffer.withUnsafeMutableReadableBytes { raw in apply(UnsafeMutableRawBufferPointer(rebasing: raw[offset...])) }
    }
}

extension ShadowsocksStreamCipher {
    /// The RC4 core alone, for its test vectors.
    static func rc4ForTesting(key: [UInt8]) -> RC4 { RC4(key: key) }
}

/// RC4 (for rc4-md5 only).
struct RC4 {
    private var state = [UInt8](repeating: 0, count: 256)
    private var i: UInt8 = 0
    private var j: UInt8 = 0

    init(key: [UInt8]) {
        for index in 0..<256 { state[index] = UInt8(index) }
        var j: UInt8 = 0
        for index in 0..<256 {
            j = j &+ state[index] &+ key[index % key.count]
            state.swapAt(index, Int(j))
        }
    }

    mutating func apply(_ bytes: UnsafeMutableRawBufferPointer) {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        apply(base, count: bytes.count)
    }

    mutating func apply(_ bytes: UnsafeMutablePointer<UInt8>, count: Int) {
        state.withUnsafeMutableBufferPointer { s in
            for index in 0..<count {
                i = i &+ 1
                j = j &+ s[Int(i)]
                s.swapAt(Int(i), Int(j))
                bytes[index] ^= s[Int(s[Int(i)] &+ s[Int(j)])]
            }
        }
    }
}
