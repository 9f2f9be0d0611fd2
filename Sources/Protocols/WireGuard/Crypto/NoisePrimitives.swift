/// The WireGuard whitepaper's named functions (§5.4): HASH, MAC, HMAC, KDF1/2/3, over BLAKE2s.
///
/// All take and return fixed-size values; nothing allocates. Inputs are raw buffers so message bytes can be
/// hashed where they lie.
package enum Noise {
    /// HASH(input): BLAKE2s-256.
    @inlinable package static func hash(_ input: UnsafeRawBufferPointer) -> Bytes32 {
        var state = BLAKE2s()
        state.update(input)
        return state.finalize()
    }

    /// HASH(a || b) without concatenating.
    package static func hash(_ a: Bytes32, _ b: UnsafeRawBufferPointer) -> Bytes32 {
        var state = BLAKE2s()
        state.update(a)
        state.update(b)
        return state.finalize()
    }

    /// HASH(a || b) for two 32-byte values.
    package static func hash(_ a: Bytes32, _ b: Bytes32) -> Bytes32 {
        b.withUnsafeBytes { hash(a, $0) }
    }

    /// MAC(key, input): keyed BLAKE2s with a 16-byte output.
    package static func mac(key: Bytes32, _ input: UnsafeRawBufferPointer) -> Bytes16 {
        var state = key.withUnsafeBytes { BLAKE2s(outputByteCount: 16, key: $0) }
        state.update(input)
        return state.finalize16()
    }

    /// MAC with a 16-byte key (mac2 is keyed with the cookie).
    package static func mac(key: Bytes16, _ input: UnsafeRawBufferPointer) -> Bytes16 {
        var state = key.withUnsafeBytes { BLAKE2s(outputByteCount: 16, key: $0) }
        state.update(input)
        return state.finalize16()
    }

    /// HMAC(key, input) with BLAKE2s-256 and a 64-byte block (RFC 2104), as the whitepaper uses in KDF.
    package static func hmac(key: Bytes32, _ input: UnsafeRawBufferPointer) -> Bytes32 {
        // The key is 32 bytes, shorter than the block: zero-padded and XORed with ipad/opad.
        var pad: (Bytes32, Bytes32) = (key, .zero)
        Swift.withUnsafeMutableBytes(of: &pad) { raw in
            for index in 0..<64 { raw[index] ^= 0x36 }
        }
        var inner = BLAKE2s()
        Swift.withUnsafeBytes(of: pad) { inner.update($0) }
        inner.update(input)
        let innerDigest = inner.finalize()
        Swift.withUnsafeMutableBytes(of: &pad) { raw in
            for index in 0..<64 { raw[index] ^= 0x36 ^ 0x5c }
        }
        var outer = BLAKE2s()
        Swift.withUnsafeBytes(of: pad) { outer.update($0) }
        outer.update(innerDigest)
        return outer.finalize()
    }

    /// HMAC(key, a || one byte) for the KDF chain.
    private static func hmac(key: Bytes32, _ a: Bytes32?, byte: UInt8) -> Bytes32 {
        var buffer: (Bytes32, UInt8) = (a ?? .zero, byte)
        return Swift.withUnsafeBytes(of: &buffer) { raw in
            a == nil
                ? hmac(key: key, UnsafeRawBufferPointer(rebasing: raw[32..<33]))
                : hmac(key: key, UnsafeRawBufferPointer(rebasing: raw[0..<33]))
        }
    }

    /// KDF1(key, input) = τ1.
    package static func kdf1(key: Bytes32, _ input: UnsafeRawBufferPointer) -> Bytes32 {
        let t0 = hmac(key: key, input)
        return hmac(key: t0, nil, byte: 1)
    }

    /// KDF2(key, input) = (τ1, τ2).
    package static func kdf2(key: Bytes32, _ input: UnsafeRawBufferPointer) -> (Bytes32, Bytes32) {
        let t0 = hmac(key: key, input)
        let t1 = hmac(key: t0, nil, byte: 1)
        let t2 = hmac(key: t0, t1, byte: 2)
        return (t1, t2)
    }

    /// KDF3(key, input) = (τ1, τ2, τ3).
    package static func kdf3(key: Bytes32, _ input: UnsafeRawBufferPointer) -> (Bytes32, Bytes32, Bytes32) {
        let t0 = hmac(key: key, input)
        let t1 = hmac(key: t0, nil, byte: 1)
        let t2 = hmac(key: t0, t1, byte: 2)
        let t3 = hmac(key: t0, t2, byte: 3)
        return (t1, t2, t3)
    }

    /// KDF1 of a 32-byte input.
    package static func kdf1(key: Bytes32, _ input: Bytes32) -> Bytes32 { input.withUnsafeBytes { kdf1(key: key, $0) } }
    /// KDF2 of a 32-byte input.
    package static func kdf2(key: Bytes32, _ input: Bytes32) -> (Bytes32, Bytes32) { input.withUnsafeBytes { kdf2(key: key, $0) } }
    /// KDF3 of a 32-byte input.
    package static func kdf3(key: Bytes32, _ input: Bytes32) -> (Bytes32, Bytes32, Bytes32) { input.withUnsafeBytes { kdf3(key: key, $0) } }
}
