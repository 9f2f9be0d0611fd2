// QUICCrypto: the primitives that open a QUIC Initial packet (RFC 9001 §5): HKDF-SHA256 over
// OpenSSL's SHA-256, AES-128-ECB for the header protection mask, AES-128-GCM to open the payload.
// Control-path code (first datagrams of a flow only): arrays are fine here.
import COpenSSL

enum QUICCrypto {
    /// SHA-256 of the concatenated parts.
    static func sha256(_ parts: [ArraySlice<UInt8>]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        guard let context = EVP_MD_CTX_new() else { return digest }
        defer { EVP_MD_CTX_free(context) }
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
        for part in parts { part.withUnsafeBufferPointer { _ = EVP_DigestUpdate(context, $0.baseAddress, $0.count) } }
        var length: UInt32 = 32
        EVP_DigestFinal_ex(context, &digest, &length)
        return digest
    }

    /// HMAC-SHA256 (RFC 2104), built on the digest: H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ m)).
    static func hmac(key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        var block = key.count > 64 ? sha256([key[...]]) : key
        block += [UInt8](repeating: 0, count: 64 - block.count)
        let inner = sha256([block.map { $0 ^ 0x36 }[...], message[...]])
        return sha256([block.map { $0 ^ 0x5C }[...], inner[...]])
    }

    /// HKDF-Extract (RFC 5869 §2.2).
    static func extract(salt: [UInt8], ikm: [UInt8]) -> [UInt8] { hmac(key: salt, ikm) }

    /// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context, for lengths up to 32 (one block).
    static func expandLabel(_ secret: [UInt8], _ label: String, length: Int) -> [UInt8] {
        let full = Array("tls13 \(label)".utf8)
        let info = [UInt8(length >> 8), UInt8(length & 0xFF), UInt8(full.count)] + full + [0]
        return Array(hmac(key: secret, info + [1]).prefix(length))
    }

    /// AES-128 of one 16-byte block (ECB, no padding): the header protection mask.
    static func aesBlock(key: [UInt8], _ block: ArraySlice<UInt8>) -> [UInt8]? {
        guard key.count == 16, block.count == 16, let context = EVP_CIPHER_CTX_new() else { return nil }
        defer { EVP_CIPHER_CTX_free(context) }
        var out = [UInt8](repeating: 0, count: 32)
        var length: Int32 = 0
        let input = Array(block)
        guard EVP_EncryptInit_ex(context, EVP_aes_128_ecb(), nil, key, nil) == 1 else { return nil }
        EVP_CIPHER_CTX_set_padding(context, 0)
        guard EVP_EncryptUpdate(context, &out, &length, input, 16) == 1, length == 16 else { return nil }
        return Array(out.prefix(16))
    }

    /// AES-128-GCM open: `sealed` is ciphertext ‖ 16-byte tag. Nil when the tag does not verify.
    static func open(key: [UInt8], nonce: [UInt8], aad: ArraySlice<UInt8>, sealed: ArraySlice<UInt8>) -> [UInt8]? {
        guard key.count == 16, nonce.count == 12, sealed.count >= 16, let context = EVP_CIPHER_CTX_new() else { return nil }
        defer { EVP_CIPHER_CTX_free(context) }
        let ciphertext = Array(sealed.dropLast(16))
        var tag = Array(sealed.suffix(16))
        let header = Array(aad)
        var plain = [UInt8](repeating: 0, count: ciphertext.count + 16)
        var length: Int32 = 0
        guard EVP_DecryptInit_ex(context, EVP_aes_128_gcm(), nil, key, nonce) == 1,
              EVP_DecryptUpdate(context, nil, &length, header, Int32(header.count)) == 1,
              EVP_DecryptUpdate(context, &plain, &length, ciphertext, Int32(ciphertext.count)) == 1 else { return nil }
        let written = Int(length)
        guard EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, 16, &tag) == 1 else { return nil }
        var final: Int32 = 0
        guard plain.withUnsafeMutableBufferPointer({ EVP_DecryptFinal_ex(context, $0.baseAddress! + written, &final) }) == 1 else {
            return nil
        }
        return Array(plain.prefix(written + Int(final)))
    }
}
