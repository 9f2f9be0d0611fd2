import CSodium

/// Curve25519 Diffie-Hellman (RFC 7748) through libsodium: DH and DH_PUBKEY of the whitepaper.
package enum X25519 {
    /// The public key of `privateKey` (libsodium clamps the scalar itself).
    package static func publicKey(of privateKey: Bytes32) -> Bytes32 {
        var result = Bytes32.zero
        result.withUnsafeMutableBytes { out in
            privateKey.withUnsafeBytes { scalar in
                _ = crypto_scalarmult_curve25519_base(out.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                                      scalar.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        return result
    }

    /// DH(private, public); `nil` when the result is all zeros (a low-order public key), which WireGuard rejects.
    package static func sharedSecret(_ privateKey: Bytes32, _ publicKey: Bytes32) -> Bytes32? {
        var result = Bytes32.zero
        let status = result.withUnsafeMutableBytes { out in
            privateKey.withUnsafeBytes { scalar in
                publicKey.withUnsafeBytes { point in
                    crypto_scalarmult_curve25519(out.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                                 scalar.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                                 point.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
        }
        // libsodium returns -1 for an all-zero output; check too in case a build does not.
        guard status == 0, !result.isZero else { return nil }
        return result
    }

    /// A fresh clamped private key from `random`.
    package static func generatePrivateKey(_ random: (UnsafeMutableRawBufferPointer) -> Void) -> Bytes32 {
        var key = Bytes32.zero
        key.withUnsafeMutableBytes { raw in
            random(raw)
            raw[0] &= 248
            raw[31] = (raw[31] & 127) | 64
        }
        return key
    }
}

/// The system's cryptographic randomness (libsodium's randombytes_buf over getrandom(2)).
package func systemRandom(_ buffer: UnsafeMutableRawBufferPointer) {
    guard buffer.count > 0 else { return }
    randombytes_buf(buffer.baseAddress!, buffer.count)
}

/// Makes sure libsodium is initialised once before first use (idempotent, thread-safe inside libsodium).
package let sodiumReady: Bool = sodium_init() >= 0
