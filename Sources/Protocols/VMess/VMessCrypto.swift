// The primitives under VMess: digests and HMAC through OpenSSL EVP, the nested-HMAC KDF of the
// AEAD header, AES-128 on single blocks (auth IDs), the body AEADs on persistent EVP contexts,
// SHAKE128 as a stream of 16-bit masks, FNV-1a and CRC-32.
//
// Handshake helpers allocate freely; `VMessAEAD` and `VMessShake128` are the data path: keyed
// once per connection and direction, then used in place. Loop-confined, not thread-safe.
import COpenSSL
import CZlib

/// Handshake-time crypto helpers (pure functions over byte arrays).
package enum VMessCrypto {
    /// MD5 of `data`.
    package static func md5(_ data: [UInt8]) -> [UInt8] { digest(data, EVP_md5(), 16) }
    /// SHA-1 of `data` (name-based UUIDs).
    package static func sha1(_ data: [UInt8]) -> [UInt8] { digest(data, EVP_sha1(), 20) }
    /// SHA-256 of `data`.
    package static func sha256(_ data: [UInt8]) -> [UInt8] { digest(data, EVP_sha256(), 32) }

    private static func digest(_ data: [UInt8], _ md: OpaquePointer?, _ size: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: size)
        var length: UInt32 = 0
        let ok = data.withUnsafeBufferPointer { input in
            EVP_Digest(input.baseAddress, input.count, &out, &length, md, nil) == 1
        }
        precondition(ok && Int(length) == size, "EVP digest failed")
        return out
    }

    /// `KDF(key, salt, path...)` of sing-vmess (kdf.go): HMAC whose hash is an HMAC whose hash …
    /// down to HMAC-SHA256 keyed with "VMess AEAD KDF"; the next levels are keyed with `salt` and
    /// each `path` element, and the outermost one hashes `key`. 32 bytes.
    package static func kdf(_ key: [UInt8], _ salt: String, _ path: [UInt8]...) -> [UInt8] {
        var hash: ([UInt8]) -> [UInt8] = sha256
        for level in [Array("VMess AEAD KDF".utf8), Array(salt.utf8)] + path {
            hash = hmac(key: level, hash: hash)
        }
        return hash(key)
    }

    /// RFC 2104 HMAC over an arbitrary 64-byte-block hash (every level here has SHA-256's block).
    private static func hmac(key: [UInt8], hash: @escaping ([UInt8]) -> [UInt8]) -> ([UInt8]) -> [UInt8] {
        var block = key.count > 64 ? hash(key) : key
        block += [UInt8](repeating: 0, count: 64 - block.count)
        let inner = block.map { $0 ^ 0x36 }, outer = block.map { $0 ^ 0x5c }
        return { message in hash(outer + hash(inner + message)) }
    }

    /// 32-bit FNV-1a of `data` (the header checksum).
    package static func fnv1a32(_ data: some Sequence<UInt8>) -> UInt32 {
        var hash: UInt32 = 0x811c9dc5
        for byte in data {
            hash ^= UInt32(byte)
            hash = hash &* 0x0100_0193
        }
        return hash
    }

    /// IEEE CRC-32 (zlib) of `data`.
    package static func crc32(_ data: [UInt8]) -> UInt32 {
        data.withUnsafeBufferPointer { UInt32(truncatingIfNeeded: CZlib.crc32(0, $0.baseAddress, UInt32($0.count))) }
    }

    /// AES-128 (ECB) on one 16-byte block: encrypts when `encrypt`, else decrypts.
    package static func aes128Block(key: [UInt8], _ block: [UInt8], encrypt: Bool) -> [UInt8] {
        precondition(key.count == 16 && block.count == 16, "AES block sizes")
        guard let context = EVP_CIPHER_CTX_new() else { preconditionFailure("EVP_CIPHER_CTX_new failed") }
        defer { EVP_CIPHER_CTX_free(context) }
        var out = [UInt8](repeating: 0, count: 32)
        var written: Int32 = 0
        let ok = key.withUnsafeBufferPointer { key in
            encrypt ? EVP_EncryptInit_ex(context, EVP_aes_128_ecb(), nil, key.baseAddress, nil) == 1
                    : EVP_DecryptInit_ex(context, EVP_aes_128_ecb(), nil, key.baseAddress, nil) == 1
        }
        precondition(ok, "EVP AES-ECB init failed")
        EVP_CIPHER_CTX_set_padding(context, 0)
        _ = encrypt ? EVP_EncryptUpdate(context, &out, &written, block, 16) : EVP_DecryptUpdate(context, &out, &written, block, 16)
        return Array(out.prefix(16))
    }

    /// HMAC-MD5 (the legacy header's auth).
    package static func hmacMD5(key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 16)
        var length: UInt32 = 0
        key.withUnsafeBufferPointer { key in
            data.withUnsafeBufferPointer { data in
                _ = HMAC(EVP_md5(), key.baseAddress, Int32(key.count), data.baseAddress, data.count, &digest, &length)
            }
        }
        return digest
    }

    /// sing-vmess `GenerateChacha20Poly1305Key`: MD5(key) ‖ MD5(MD5(key)).
    package static func chachaKey(_ key: [UInt8]) -> [UInt8] {
        let first = md5(key)
        return first + md5(first)
    }

    /// `count` bytes from OpenSSL's CSPRNG.
    package static func random(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        guard count > 0 else { return out }
        precondition(RAND_bytes(&out, Int32(count)) == 1, "RAND_bytes failed")
        return out
    }
}

/// One AEAD key in one direction (AES-128-GCM or ChaCha20-Poly1305), sealing or opening in place
/// with the 16-byte tag after the text. The EVP context is keyed once; each call sets the nonce.
package final class VMessAEAD {
    /// The two body ciphers.
    package enum Kind: Sendable { case aes128GCM, chacha20Poly1305 }

    private let context: OpaquePointer
    private let sealing: Bool

    /// `key`: 16 bytes for AES-128-GCM, 32 for ChaCha20-Poly1305 (derived by us: a mismatch is our bug).
    package init(kind: Kind, key: [UInt8], sealing: Bool) {
        precondition(key.count == (kind == .aes128GCM ? 16 : 32), "VMess AEAD key length")
        guard let context = EVP_CIPHER_CTX_new() else { preconditionFailure("EVP_CIPHER_CTX_new failed") }
        let cipher = kind == .aes128GCM ? EVP_aes_128_gcm() : EVP_chacha20_poly1305()
        let ok = key.withUnsafeBufferPointer { key in
            sealing ? EVP_EncryptInit_ex(context, cipher, nil, key.baseAddress, nil) == 1
                    : EVP_DecryptInit_ex(context, cipher, nil, key.baseAddress, nil) == 1
        }
        precondition(ok, "EVP AEAD init failed")
        self.context = context
        self.sealing = sealing
    }

    deinit { EVP_CIPHER_CTX_free(context) }

    /// Encrypts `bytes[0..<count-16]` in place and writes the tag into the last 16 bytes.
    /// `nonce` has 12 bytes; `aad` may be empty.
    package func seal(nonce: UnsafeRawBufferPointer, aad: UnsafeRawBufferPointer? = nil, inPlace bytes: UnsafeMutableRawBufferPointer) {
        precondition(sealing && bytes.count >= 16 && nonce.count == 12)
        let plainCount = bytes.count - 16
        let base = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var written: Int32 = 0
        _ = EVP_EncryptInit_ex(context, nil, nil, nil, nonce.baseAddress!.assumingMemoryBound(to: UInt8.self))
        if let aad, aad.count > 0 {
            _ = EVP_EncryptUpdate(context, nil, &written, aad.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(aad.count))
        }
        if plainCount > 0 { _ = EVP_EncryptUpdate(context, base, &written, base, Int32(plainCount)) }
        _ = EVP_EncryptFinal_ex(context, base + plainCount, &written)
        _ = EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, 16, base + plainCount)
    }

    /// Verifies the trailing tag and decrypts `bytes[0..<count-16]` in place. False on a bad tag
    /// or fewer than 16 bytes; the bytes are then garbage.
    package func open(nonce: UnsafeRawBufferPointer, aad: UnsafeRawBufferPointer? = nil, inPlace bytes: UnsafeMutableRawBufferPointer) -> Bool {
        precondition(!sealing && nonce.count == 12)
        guard bytes.count >= 16 else { return false }
        let plainCount = bytes.count - 16
        let base = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var written: Int32 = 0
        _ = EVP_DecryptInit_ex(context, nil, nil, nil, nonce.baseAddress!.assumingMemoryBound(to: UInt8.self))
        _ = EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_TAG, 16, base + plainCount)
        if let aad, aad.count > 0 {
            guard EVP_DecryptUpdate(context, nil, &written, aad.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(aad.count)) == 1 else {
                return false
            }
        }
        if plainCount > 0 { guard EVP_DecryptUpdate(context, base, &written, base, Int32(plainCount)) == 1 else { return false } }
        return EVP_DecryptFinal_ex(context, base + plainCount, &written) == 1
    }

    /// Seals `plain` into a new array (handshake headers).
    package func sealed(_ plain: [UInt8], nonce: [UInt8], aad: [UInt8] = []) -> [UInt8] {
        var out = plain + [UInt8](repeating: 0, count: 16)
        out.withUnsafeMutableBytes { bytes in
            nonce.withUnsafeBytes { nonce in aad.withUnsafeBytes { aad in seal(nonce: nonce, aad: aad, inPlace: bytes) } }
        }
        return out
    }

    /// Opens `sealed` (text ‖ tag) into a new array; nil on a bad tag.
    package func opened(_ sealed: [UInt8], nonce: [UInt8], aad: [UInt8] = []) -> [UInt8]? {
        var out = sealed
        let ok = out.withUnsafeMutableBytes { bytes in
            nonce.withUnsafeBytes { nonce in aad.withUnsafeBytes { aad in open(nonce: nonce, aad: aad, inPlace: bytes) } }
        }
        return ok ? Array(out.prefix(sealed.count - 16)) : nil
    }
}

/// SHAKE128 (FIPS 202) absorbing one short message, then squeezed without end two bytes at a
/// time: sing-vmess reads big-endian u16s from it for chunk masks and padding lengths. OpenSSL 3.0
/// cannot squeeze incrementally, so the Keccak-f[1600] permutation is here.
package struct VMessShake128 {
    private static let rate = 168
    private static let roundConstants: [UInt64] = [
        0x0000_0000_0000_0001, 0x0000_0000_0000_8082, 0x8000_0000_0000_808A, 0x8000_0000_8000_8000,
        0x0000_0000_0000_808B, 0x0000_0000_8000_0001, 0x8000_0000_8000_8081, 0x8000_0000_0000_8009,
        0x0000_0000_0000_008A, 0x0000_0000_0000_0088, 0x0000_0000_8000_8009, 0x0000_0000_8000_000A,
        0x0000_0000_8000_808B, 0x8000_0000_0000_008B, 0x8000_0000_0000_8089, 0x8000_0000_0000_8003,
        0x8000_0000_0000_8002, 0x8000_0000_0000_0080, 0x0000_0000_0000_800A, 0x8000_0000_8000_000A,
        0x8000_0000_8000_8081, 0x8000_0000_0000_8080, 0x0000_0000_8000_0001, 0x8000_0000_8000_8008,
    ]
    /// ρ rotation amounts and π lane order, walked together from lane 1.
    private static let rotations: [UInt64] = [1, 3, 6, 10, 15, 21, 28, 36, 45, 55, 2, 14, 27, 41, 56, 8, 25, 43, 62, 18, 39, 61, 20, 44]
    private static let piLanes: [Int] = [10, 7, 11, 17, 18, 3, 5, 16, 8, 21, 24, 4, 15, 23, 19, 13, 12, 2, 20, 14, 22, 9, 6, 1]

    private var state = [UInt64](repeating: 0, count: 25)
    private var output = [UInt8](repeating: 0, count: 168)
    private var offset = 168

    /// Absorbs `message` (shorter than the 168-byte rate: VMess feeds 16-byte nonces) and pads.
    package init(message: [UInt8]) {
        precondition(message.count < Self.rate, "short SHAKE128 input only")
        var block = message + [UInt8](repeating: 0, count: Self.rate - message.count)
        block[message.count] ^= 0x1f
        block[Self.rate - 1] ^= 0x80
        for lane in 0..<(Self.rate / 8) {
            var value: UInt64 = 0
            for byte in 0..<8 { value |= UInt64(block[lane * 8 + byte]) << (8 * UInt64(byte)) }
            state[lane] ^= value
        }
    }

    /// The next `count` bytes of output.
    package mutating func squeeze(_ count: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        for _ in 0..<count { out.append(nextByte()) }
        return out
    }

    /// The next two bytes as a big-endian u16 (Go's `binary.Read(shake, BigEndian, &u16)`).
    @inline(__always) package mutating func nextUInt16() -> UInt16 {
        let high = nextByte()
        return UInt16(high) << 8 | UInt16(nextByte())
    }

    private mutating func nextByte() -> UInt8 {
        if offset == Self.rate {
            Self.permute(&state)
            for lane in 0..<(Self.rate / 8) {
                let value = state[lane]
                for byte in 0..<8 { output[lane * 8 + byte] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(byte))) }
            }
            offset = 0
        }
        defer { offset += 1 }
        return output[offset]
    }

    private static func permute(_ a: inout [UInt64]) {
        var c = InlineArray<5, UInt64>(repeating: 0)  // no allocation per permutation
        for round in 0..<24 {
            // θ
            for x in 0..<5 { c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20] }
            for x in 0..<5 {
                let d = c[(x + 4) % 5] ^ c[(x + 1) % 5].rotatedLeft(1)
                for y in stride(from: 0, to: 25, by: 5) { a[y + x] ^= d }
            }
            // ρ and π
            var carried = a[1]
            for i in 0..<24 {
                let lane = piLanes[i]
                let next = a[lane]
                a[lane] = carried.rotatedLeft(rotations[i])
                carried = next
            }
            // χ
            for y in stride(from: 0, to: 25, by: 5) {
                for x in 0..<5 { c[x] = a[y + x] }
                for x in 0..<5 { a[y + x] ^= ~c[(x + 1) % 5] & c[(x + 2) % 5] }
            }
            // ι
            a[0] ^= roundConstants[round]
        }
    }
}

extension UInt64 {
    @inline(__always) fileprivate func rotatedLeft(_ count: UInt64) -> UInt64 {
        (self << count) | (self >> (64 - count))
    }
}

/// AES-128-CFB (CFB128) as a stream, one direction: the legacy header and response. Keyed once;
/// successive calls continue the stream.
package final class VMessCFB {
    private let context: OpaquePointer
    private let encrypting: Bool

    /// `key` and `iv` are 16 bytes (derived by us).
    package init(key: [UInt8], iv: [UInt8], encrypting: Bool) {
        precondition(key.count == 16 && iv.count == 16, "AES-CFB sizes")
        guard let context = EVP_CIPHER_CTX_new() else { preconditionFailure("EVP_CIPHER_CTX_new failed") }
        let ok = encrypting ? EVP_EncryptInit_ex(context, EVP_aes_128_cfb128(), nil, key, iv) == 1
                            : EVP_DecryptInit_ex(context, EVP_aes_128_cfb128(), nil, key, iv) == 1
        precondition(ok, "EVP AES-CFB init failed")
        self.context = context
        self.encrypting = encrypting
    }

    deinit { EVP_CIPHER_CTX_free(context) }

    /// The next `bytes.count` bytes of the stream applied to `bytes` in place (the body's data path).
    package func apply(inPlace bytes: UnsafeMutableRawBufferPointer) {
        guard bytes.count > 0 else { return }
        let base = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var written: Int32 = 0
        _ = encrypting ? EVP_EncryptUpdate(context, base, &written, base, Int32(bytes.count))
                       : EVP_DecryptUpdate(context, base, &written, base, Int32(bytes.count))
    }

    /// The next `bytes.count` bytes of the stream applied to `bytes`.
    package func apply(_ bytes: [UInt8]) -> [UInt8] {
        guard !bytes.isEmpty else { return [] }
        var out = [UInt8](repeating: 0, count: bytes.count + 16)
        var written: Int32 = 0
        _ = encrypting ? EVP_EncryptUpdate(context, &out, &written, bytes, Int32(bytes.count))
                       : EVP_DecryptUpdate(context, &out, &written, bytes, Int32(bytes.count))
        return Array(out.prefix(bytes.count))
    }
}
