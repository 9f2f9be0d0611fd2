// QUICPacketProtection: RFC 9001 §5 — secrets to keys, AEAD payload protection and header
// protection, over BoringSSL's EVP_AEAD (persistent context per key, in-place seal/open) and
// AES/ChaCha20 block functions for the header mask.
//
// 1. A TLS secret (from BoringSSL's set_read/write_secret, or the Initial derivation) becomes key,
//    IV and HP key with HKDF-Expand-Label "quic key"/"quic iv"/"quic hp" (§5.1).
// 2. Protect: seal the payload with nonce = IV ⊕ packet number (§5.3), then mask the first byte's
//    low bits and the packet number with a mask from a 16-byte sample 4 bytes after the PN start (§5.4).
// 3. Unprotect: the reverse; a failed open is a dropped packet, never an error the peer controls.
import CNIOBoringSSL
package import NIOCore

/// A TLS 1.3 cipher suite QUIC can protect packets with (RFC 9001 §5.3).
package enum QUICCipherSuite: Sendable, Equatable {
    case aes128GCMSHA256, aes256GCMSHA384, chacha20Poly1305SHA256

    /// The suite for a TLS cipher suite id (0x1301…0x1303), nil for anything else.
    package init?(tlsID: UInt16) {
        switch tlsID {
        case 0x1301: self = .aes128GCMSHA256
        case 0x1302: self = .aes256GCMSHA384
        case 0x1303: self = .chacha20Poly1305SHA256
        default: return nil
        }
    }

    var keyLength: Int { self == .aes128GCMSHA256 ? 16 : 32 }
    var hashLength: Int { self == .aes256GCMSHA384 ? 48 : 32 }
    var digest: OpaquePointer { self == .aes256GCMSHA384 ? EVP_sha384() : EVP_sha256() }
    var aead: OpaquePointer {
        switch self {
        case .aes128GCMSHA256: EVP_aead_aes_128_gcm()
        case .aes256GCMSHA384: EVP_aead_aes_256_gcm()
        case .chacha20Poly1305SHA256: EVP_aead_chacha20_poly1305()
        }
    }
}

/// HKDF (RFC 5869) and TLS 1.3's HKDF-Expand-Label (RFC 8446 §7.1) over BoringSSL.
package enum QUICHKDF {
    /// HKDF-Extract(salt, ikm) with SHA-256.
    package static func extract(salt: [UInt8], secret: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 64)
        var length = 0
        let ok = HKDF_extract(&out, &length, EVP_sha256(), secret, secret.count, salt, salt.count)
        precondition(ok == 1, "HKDF_extract failed")
        return Array(out.prefix(length))
    }

    /// HKDF-Expand-Label(secret, label, "", length) with the suite's hash.
    package static func expandLabel(_ secret: [UInt8], _ label: String, length: Int, suite: QUICCipherSuite = .aes128GCMSHA256) -> [UInt8] {
        let full = Array("tls13 \(label)".utf8)
        let info = [UInt8(length >> 8), UInt8(length & 0xFF), UInt8(full.count)] + full + [0]
        var out = [UInt8](repeating: 0, count: length)
        let ok = HKDF_expand(&out, length, suite.digest, secret, secret.count, info, info.count)
        precondition(ok == 1, "HKDF_expand failed")
        return out
    }
}

/// The salt of QUIC v1 Initial secrets (RFC 9001 §5.2).
package let quicV1InitialSalt: [UInt8] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a,
]

/// The client and server Initial secrets for the client's first Destination Connection ID (RFC 9001 §5.2).
package func quicInitialSecrets(destinationID: QUICConnectionID) -> (client: [UInt8], server: [UInt8]) {
    let initial = QUICHKDF.extract(salt: quicV1InitialSalt, secret: destinationID.bytes)
    return (QUICHKDF.expandLabel(initial, "client in", length: 32), QUICHKDF.expandLabel(initial, "server in", length: 32))
}

/// The keys of one direction at one encryption level: AEAD context, IV and header protection key.
/// Owns its BoringSSL contexts; freed with the object. Not thread-safe (one connection owns it).
package final class QUICPacketKey {
    package let suite: QUICCipherSuite
    /// The traffic secret the keys came from (kept for key updates, RFC 9001 §6).
    package let secret: [UInt8]
    let iv: [UInt8]
    let hpKey: [UInt8]
    private let context: UnsafeMutablePointer<EVP_AEAD_CTX>
    private let aesKey: UnsafeMutablePointer<AES_KEY>?
    /// AEAD tag length (all QUIC v1 suites: 16).
    package static let tagLength = 16

    /// Derives key, IV and HP key from `secret` (RFC 9001 §5.1). `hpKey` keeps the first
    /// phase's header protection key across key updates (§6.1: it is not updated).
    package init(suite: QUICCipherSuite, secret: [UInt8], hpKey: [UInt8]? = nil) {
        self.suite = suite
        self.secret = secret
        let key = QUICHKDF.expandLabel(secret, "quic key", length: suite.keyLength, suite: suite)
        iv = QUICHKDF.expandLabel(secret, "quic iv", length: 12, suite: suite)
        let hpKey = hpKey ?? QUICHKDF.expandLabel(secret, "quic hp", length: suite.keyLength, suite: suite)
        self.hpKey = hpKey
        guard let context = EVP_AEAD_CTX_new(suite.aead, key, key.count, Self.tagLength) else {
            preconditionFailure("EVP_AEAD_CTX_new failed")
        }
        self.context = context
        if suite == .chacha20Poly1305SHA256 {
            aesKey = nil
        } else {
            let schedule = UnsafeMutablePointer<AES_KEY>.allocate(capacity: 1)
            AES_set_encrypt_key(hpKey, UInt32(hpKey.count * 8), schedule)
            aesKey = schedule
        }
    }

    deinit {
        EVP_AEAD_CTX_free(context)
        aesKey?.deallocate()
    }

    /// The keys of the next key phase (RFC 9001 §6.1): a new secret, the same header protection key.
    package func nextPhase() -> QUICPacketKey {
        let next = QUICHKDF.expandLabel(secret, "quic ku", length: suite.hashLength, suite: suite)
        return QUICPacketKey(suite: suite, secret: next, hpKey: hpKey)
    }

    /// The 5-byte header protection mask for a 16-byte sample (RFC 9001 §5.4.3, §5.4.4).
    func mask(sample: UnsafeRawBufferPointer) -> (UInt8, UInt8, UInt8, UInt8, UInt8) {
        var out = [UInt8](repeating: 0, count: 16)
        let input = Array(sample.prefix(16))
        if let aesKey {
            AES_encrypt(input, &out, aesKey)
        } else {
            // ChaCha20: counter = sample[0..<4] little-endian, nonce = sample[4..<16], over five zeros.
            let counter = UInt32(input[0]) | UInt32(input[1]) << 8 | UInt32(input[2]) << 16 | UInt32(input[3]) << 24
            let zeros = [UInt8](repeating: 0, count: 5)
            CRYPTO_chacha_20(&out, zeros, 5, hpKey, Array(input[4..<16]), counter)
        }
        return (out[0], out[1], out[2], out[3], out[4])
    }

    private func nonce(_ packetNumber: UInt64) -> [UInt8] {
        var nonce = iv
        for index in 0..<8 { nonce[11 - index] ^= UInt8(truncatingIfNeeded: packetNumber >> (8 * UInt64(index))) }
        return nonce
    }

    /// Protects one packet in place. `packet` holds exactly header ‖ plaintext payload (readable
    /// bytes); the packet number of `packetNumberLength` bytes starts at `packetNumberOffset`
    /// (relative to the reader index). Appends the tag, encrypts, then applies header protection.
    package func protect(_ packet: inout ByteBuffer, packetNumberOffset: Int, packetNumberLength: Int, packetNumber: UInt64) {
        let headerLength = packetNumberOffset + packetNumberLength
        packet.writeRepeatingByte(0, count: Self.tagLength)
        let nonce = nonce(packetNumber)
        packet.withUnsafeMutableReadableBytes { raw in
            let base = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
            let plainLength = raw.count - headerLength - Self.tagLength
            var written = 0
            let ok = EVP_AEAD_CTX_seal(context, base + headerLength, &written, plainLength + Self.tagLength, nonce, nonce.count,
                                       base + headerLength, plainLength, base, headerLength)
            precondition(ok == 1 && written == plainLength + Self.tagLength, "AEAD seal failed")
            let sampleOffset = packetNumberOffset + 4
            let mask = self.mask(sample: UnsafeRawBufferPointer(rebasing: raw[sampleOffset..<(sampleOffset + 16)]))
            // Long headers protect the low 4 bits of the first byte, short headers the low 5 (§5.4.1).
            base[0] ^= mask.0 & (base[0] & 0x80 != 0 ? 0x0F : 0x1F)
            let masks = [mask.1, mask.2, mask.3, mask.4]
            for index in 0..<packetNumberLength { base[packetNumberOffset + index] ^= masks[index] }
        }
    }

    /// What `unprotect` recovered from a packet.
    package struct Opened {
        /// The first byte with header protection removed (reserved bits, key phase, PN length).
        package var firstByte: UInt8
        package var packetNumber: UInt64
        /// The decrypted payload.
        package var payload: ByteBuffer
    }

    /// Removes header protection and opens the packet `datagram[start..<end]` whose packet number
    /// starts at `packetNumberOffset`. Nil when the packet is too short or does not authenticate
    /// (the caller drops it: RFC 9001 §5.5). `largestReceived` recovers the full packet number.
    package func unprotect(_ datagram: ByteBuffer, start: Int, packetNumberOffset: Int, end: Int, largestReceived: UInt64?) -> Opened? {
        // The sample needs 4 + 16 bytes after the PN start (§5.4.2), the AEAD at least a tag.
        guard packetNumberOffset + 20 <= end, end <= datagram.writerIndex, start < packetNumberOffset,
              var packet = datagram.getSlice(at: start, length: end - start) else { return nil }
        let pnOffset = packetNumberOffset - start
        let result = packet.withUnsafeMutableReadableBytes { raw -> (UInt8, UInt64, Int, Int)? in
            let base = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
            let mask = self.mask(sample: UnsafeRawBufferPointer(rebasing: raw[(pnOffset + 4)..<(pnOffset + 20)]))
            let first = base[0] ^ (mask.0 & (base[0] & 0x80 != 0 ? 0x0F : 0x1F))
            let pnLength = Int(first & 0x03) + 1
            let masks = [mask.1, mask.2, mask.3, mask.4]
            var truncated: UInt64 = 0
            for index in 0..<pnLength { truncated = truncated << 8 | UInt64(base[pnOffset + index] ^ masks[index]) }
            let packetNumber = QUICPacketNumber.decode(truncated: truncated, bits: pnLength * 8, largestReceived: largestReceived)
            let headerLength = pnOffset + pnLength
            guard raw.count - headerLength >= Self.tagLength else { return nil }
            // The AAD is the header as sent, with protection removed (§5.3).
            base[0] = first
            for index in 0..<pnLength { base[pnOffset + index] ^= masks[index] }
            let nonce = nonce(packetNumber)
            var written = 0
            let ok = EVP_AEAD_CTX_open(context, base + headerLength, &written, raw.count - headerLength, nonce, nonce.count,
                                       base + headerLength, raw.count - headerLength, base, headerLength)
            guard ok == 1 else { ERR_clear_error(); return nil }
            return (first, packetNumber, headerLength, written)
        }
        guard let (first, packetNumber, headerLength, written) = result,
              let payload = packet.getSlice(at: packet.readerIndex + headerLength, length: written) else { return nil }
        return Opened(firstByte: first, packetNumber: packetNumber, payload: payload)
    }
}

/// The Retry integrity tag (RFC 9001 §5.8): AES-128-GCM with fixed key and nonce over the
/// pseudo-packet (original DCID length ‖ original DCID ‖ Retry packet without its tag).
package func quicRetryIntegrityTag(retryWithoutTag: [UInt8], originalDestinationID: QUICConnectionID) -> [UInt8] {
    let key: [UInt8] = [0xbe, 0x0c, 0x69, 0x0b, 0x9f, 0x66, 0x57, 0x5a, 0x1d, 0x76, 0x6b, 0x54, 0xe3, 0x68, 0xc8, 0x4e]
    let nonce: [UInt8] = [0x46, 0x15, 0x99, 0xd3, 0x5d, 0x63, 0x2b, 0xf2, 0x23, 0x98, 0x25, 0xbb]
    let pseudo = [UInt8(originalDestinationID.count)] + originalDestinationID.bytes + retryWithoutTag
    guard let context = EVP_AEAD_CTX_new(EVP_aead_aes_128_gcm(), key, key.count, 16) else { return [] }
    defer { EVP_AEAD_CTX_free(context) }
    var tag = [UInt8](repeating: 0, count: 16)
    var written = 0
    _ = EVP_AEAD_CTX_seal(context, &tag, &written, 16, nonce, nonce.count, nil, 0, pseudo, pseudo.count)
    return tag
}
