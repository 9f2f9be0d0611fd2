import COpenSSL
import CSodium

/// AEAD(key, counter, plain, aad) of the whitepaper: ChaCha20-Poly1305 (RFC 8439) with a 96-bit nonce of
/// 32 zero bits followed by the 64-bit little-endian counter; XAEAD for cookie replies is XChaCha20-Poly1305.
///
/// Handshake and cookie messages use libsodium's one-shot detached calls (no per-key setup to amortise).
/// The data path uses `TransportAEAD`, a per-key persistent context that seals and opens in place.
package enum AEAD {
    /// Poly1305 tag size.
    package static let tagByteCount = 16

    /// The 12-byte nonce for `counter`.
    /// Three 32-bit words so the tuple has no padding: zero, then the counter's low and high halves.
    @inline(__always) static func nonce(_ counter: UInt64) -> (UInt32, UInt32, UInt32) {
        (0, UInt32(truncatingIfNeeded: counter).littleEndian, UInt32(truncatingIfNeeded: counter >> 32).littleEndian)
    }

    /// Seals `plaintext` into `output` (`plaintext.count + 16` bytes: ciphertext then tag). `output` may alias `plaintext`.
    package static func seal(key: Bytes32, counter: UInt64, plaintext: UnsafeRawBufferPointer,
                             aad: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) {
        precondition(output.count >= plaintext.count + tagByteCount)
        var nonce = nonce(counter)
        key.withUnsafeBytes { key in
            withUnsafeBytes(of: &nonce) { nonce in
                let out = output.baseAddress!.assumingMemoryBound(to: UInt8.self)
                _ = crypto_aead_chacha20poly1305_ietf_encrypt_detached(
                    out, out + plaintext.count, nil,
                    plaintext.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(plaintext.count),
                    aad.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(aad.count), nil,
                    nonce.baseAddress!.assumingMemoryBound(to: UInt8.self), key.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
    }

    /// Opens `ciphertext` (ciphertext then 16-byte tag) into `output` (`ciphertext.count - 16` bytes).
    /// Returns false when the tag does not verify; then `output` holds nothing useful.
    package static func open(key: Bytes32, counter: UInt64, ciphertext: UnsafeRawBufferPointer,
                             aad: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Bool {
        guard ciphertext.count >= tagByteCount else { return false }
        let plainCount = ciphertext.count - tagByteCount
        precondition(output.count >= plainCount)
        var nonce = nonce(counter)
        return key.withUnsafeBytes { key in
            withUnsafeBytes(of: &nonce) { nonce in
                let input = ciphertext.baseAddress!.assumingMemoryBound(to: UInt8.self)
                return crypto_aead_chacha20poly1305_ietf_decrypt_detached(
                    output.baseAddress?.assumingMemoryBound(to: UInt8.self), nil, input, UInt64(plainCount), input + plainCount,
                    aad.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(aad.count),
                    nonce.baseAddress!.assumingMemoryBound(to: UInt8.self), key.baseAddress!.assumingMemoryBound(to: UInt8.self)) == 0
            }
        }
    }

    /// XAEAD seal (XChaCha20-Poly1305, 24-byte nonce) for the cookie reply.
    package static func xseal(key: Bytes32, nonce: Bytes24, plaintext: UnsafeRawBufferPointer,
                              aad: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) {
        precondition(output.count >= plaintext.count + tagByteCount)
        key.withUnsafeBytes { key in
            nonce.withUnsafeBytes { nonce in
                let out = output.baseAddress!.assumingMemoryBound(to: UInt8.self)
                _ = crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
                    out, out + plaintext.count, nil,
                    plaintext.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(plaintext.count),
                    aad.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(aad.count), nil,
                    nonce.baseAddress!.assumingMemoryBound(to: UInt8.self), key.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
    }

    /// XAEAD open; false when the tag does not verify.
    package static func xopen(key: Bytes32, nonce: Bytes24, ciphertext: UnsafeRawBufferPointer,
                              aad: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Bool {
        guard ciphertext.count >= tagByteCount else { return false }
        let plainCount = ciphertext.count - tagByteCount
        precondition(output.count >= plainCount)
        return key.withUnsafeBytes { key in
            nonce.withUnsafeBytes { nonce in
                let input = ciphertext.baseAddress!.assumingMemoryBound(to: UInt8.self)
                return crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
                    output.baseAddress?.assumingMemoryBound(to: UInt8.self), nil, input, UInt64(plainCount), input + plainCount,
                    aad.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(aad.count),
                    nonce.baseAddress!.assumingMemoryBound(to: UInt8.self), key.baseAddress!.assumingMemoryBound(to: UInt8.self)) == 0
            }
        }
    }
}

/// The data-path AEAD: the one picked by measurement (see `Tests/WireGuardTests/AEADBenchmarkTests.swift`).
package typealias TransportAEAD = OpenSSLChaChaPoly

/// ChaCha20-Poly1305 over OpenSSL EVP with two persistent contexts: one keyed with the sending key (seal),
/// one with the receiving key (open), keyed once per session.
///
/// Each packet only re-inits the nonce (`EVP_*Init_ex(ctx, nil, nil, nil, iv)` keeps the key) and works in
/// place; no allocation. Owned by one keypair on one event loop: not thread-safe.
package final class OpenSSLChaChaPoly {
    private let sealContext: OpaquePointer
    private let openContext: OpaquePointer

    /// Keys both contexts; traps only if OpenSSL cannot allocate or lacks ChaCha20-Poly1305 (a broken install).
    package init(sendKey: Bytes32, receiveKey: Bytes32) {
        guard let seal = EVP_CIPHER_CTX_new(), let open = EVP_CIPHER_CTX_new() else {
            preconditionFailure("EVP_CIPHER_CTX_new failed")
        }
        let cipher = EVP_chacha20_poly1305()
        let ok = sendKey.withUnsafeBytes { sendKey -> Bool in
            receiveKey.withUnsafeBytes { receiveKey -> Bool in
                EVP_EncryptInit_ex(seal, cipher, nil, sendKey.baseAddress!.assumingMemoryBound(to: UInt8.self), nil) == 1
                    && EVP_DecryptInit_ex(open, cipher, nil, receiveKey.baseAddress!.assumingMemoryBound(to: UInt8.self), nil) == 1
            }
        }
        precondition(ok, "EVP ChaCha20-Poly1305 init failed")
        sealContext = seal
        openContext = open
    }

    deinit {
        // EVP_CIPHER_CTX_free cleanses the key schedule.
        EVP_CIPHER_CTX_free(sealContext)
        EVP_CIPHER_CTX_free(openContext)
    }

    /// Encrypts `bytes[0..<count-16]` in place and writes the tag into the last 16 bytes.
    @inline(__always)
    package func seal(counter: UInt64, inPlace bytes: UnsafeMutableRawBufferPointer) {
        let plainCount = bytes.count - AEAD.tagByteCount
        var nonce = AEAD.nonce(counter)
        let base = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var written: Int32 = 0
        withUnsafeBytes(of: &nonce) { nonce in
            _ = EVP_EncryptInit_ex(sealContext, nil, nil, nil, nonce.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        if plainCount > 0 { _ = EVP_EncryptUpdate(sealContext, base, &written, base, Int32(plainCount)) }
        _ = EVP_EncryptFinal_ex(sealContext, base + Int(written), &written)
        _ = EVP_CIPHER_CTX_ctrl(sealContext, EVP_CTRL_AEAD_GET_TAG, Int32(AEAD.tagByteCount), base + plainCount)
    }

    /// Verifies the trailing tag and decrypts `bytes[0..<count-16]` in place. False when the tag is wrong
    /// (the bytes are then garbage and must be dropped).
    @inline(__always)
    package func open(counter: UInt64, inPlace bytes: UnsafeMutableRawBufferPointer) -> Bool {
        guard bytes.count >= AEAD.tagByteCount else { return false }
        let plainCount = bytes.count - AEAD.tagByteCount
        var nonce = AEAD.nonce(counter)
        let base = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var written: Int32 = 0
        withUnsafeBytes(of: &nonce) { nonce in
            _ = EVP_DecryptInit_ex(openContext, nil, nil, nil, nonce.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        _ = EVP_CIPHER_CTX_ctrl(openContext, EVP_CTRL_AEAD_SET_TAG, Int32(AEAD.tagByteCount), base + plainCount)
        if plainCount > 0 { guard EVP_DecryptUpdate(openContext, base, &written, base, Int32(plainCount)) == 1 else { return false } }
        return EVP_DecryptFinal_ex(openContext, base + Int(written), &written) == 1
    }
}

/// ChaCha20-Poly1305 over libsodium's detached IETF calls: the same contract as `OpenSSLChaChaPoly`,
/// kept to measure against it.
package final class SodiumChaChaPoly {
    private var sendKey: Bytes32
    private var receiveKey: Bytes32

    /// Keeps both keys (wiped in deinit).
    package init(sendKey: Bytes32, receiveKey: Bytes32) {
        self.sendKey = sendKey
        self.receiveKey = receiveKey
    }

    deinit {
        sendKey.withUnsafeMutableBytes { sodium_memzero($0.baseAddress!, 32) }
        receiveKey.withUnsafeMutableBytes { sodium_memzero($0.baseAddress!, 32) }
    }

    @inline(__always)
    package func seal(counter: UInt64, inPlace bytes: UnsafeMutableRawBufferPointer) {
        let plainCount = bytes.count - AEAD.tagByteCount
        var nonce = AEAD.nonce(counter)
        let base = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        sendKey.withUnsafeBytes { key in
            withUnsafeBytes(of: &nonce) { nonce in
                _ = crypto_aead_chacha20poly1305_ietf_encrypt_detached(
                    base, base + plainCount, nil, base, UInt64(plainCount), nil, 0, nil,
                    nonce.baseAddress!.assumingMemoryBound(to: UInt8.self), key.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
    }

    @inline(__always)
    package func open(counter: UInt64, inPlace bytes: UnsafeMutableRawBufferPointer) -> Bool {
        guard bytes.count >= AEAD.tagByteCount else { return false }
        let plainCount = bytes.count - AEAD.tagByteCount
        var nonce = AEAD.nonce(counter)
        let base = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        return receiveKey.withUnsafeBytes { key in
            withUnsafeBytes(of: &nonce) { nonce in
                crypto_aead_chacha20poly1305_ietf_decrypt_detached(
                    base, nil, base, UInt64(plainCount), base + plainCount, nil, 0,
                    nonce.baseAddress!.assumingMemoryBound(to: UInt8.self), key.baseAddress!.assumingMemoryBound(to: UInt8.self)) == 0
            }
        }
    }
}
