/// BLAKE2s (RFC 7693): WireGuard's HASH (32-byte digest) and MAC (keyed, 16-byte digest).
///
/// Our own implementation: libsodium has only BLAKE2b, swift-crypto none, and OpenSSL's EVP BLAKE2S-256 costs
/// about 2.8 µs per call on small inputs (shared/SWIFT-LINUX.md §5), while the handshake hashes dozens of
/// 32–148-byte inputs. A value type with no heap storage: the state, the 64-byte block buffer and the counters.
/// Tested against the RFC 7693 Appendix E self-test and OpenSSL's BLAKE2S-256 / BLAKE2SMAC.
package struct BLAKE2s {
    /// The initialisation vector, the SHA-256 IV (RFC 7693 §2.6).
    private static let iv: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) = (
        0x6A09_E667, 0xBB67_AE85, 0x3C6E_F372, 0xA54F_F53A, 0x510E_527F, 0x9B05_688C, 0x1F83_D9AB, 0x5BE0_CD19
    )

    private var h0: UInt32, h1: UInt32, h2: UInt32, h3: UInt32, h4: UInt32, h5: UInt32, h6: UInt32, h7: UInt32
    /// Bytes hashed so far (the 64-bit counter t of RFC 7693, split to stay cheap).
    private var counter: UInt64 = 0
    /// Pending input, at most one block; the last block is compressed only at finalisation.
    private var buffer: (Bytes32, Bytes32) = (.zero, .zero)
    private var bufferCount = 0
    private let outputByteCount: Int

    /// Starts a hash of `outputByteCount` bytes (1...32), keyed when `key` is not empty (at most 32 bytes).
    package init(outputByteCount: Int = 32, key: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)) {
        precondition((1...32).contains(outputByteCount) && key.count <= 32, "BLAKE2s parameters")
        self.outputByteCount = outputByteCount
        let iv = Self.iv
        // Parameter block word 0: digest length, key length, fanout 1, depth 1 (RFC 7693 §2.5).
        h0 = iv.0 ^ 0x0101_0000 ^ (UInt32(key.count) << 8) ^ UInt32(outputByteCount)
        h1 = iv.1; h2 = iv.2; h3 = iv.3; h4 = iv.4; h5 = iv.5; h6 = iv.6; h7 = iv.7
        if key.count > 0 {
            // The key, zero-padded to a full block, is the first block.
            var block: (Bytes32, Bytes32) = (.zero, .zero)
            Swift.withUnsafeMutableBytes(of: &block) { $0.copyMemory(from: key) }
            buffer = block
            bufferCount = 64
        }
    }

    /// Absorbs `input`.
    package mutating func update(_ input: UnsafeRawBufferPointer) {
        var offset = 0
        let count = input.count
        guard count > 0 else { return }
        // Fill the buffer; compress it only when more input follows (the final block is special).
        if bufferCount > 0 {
            let take = min(64 - bufferCount, count)
            let start = bufferCount
            Swift.withUnsafeMutableBytes(of: &buffer) { raw in
                UnsafeMutableRawBufferPointer(rebasing: raw[start..<start + take])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: input[0..<take]))
            }
            bufferCount += take
            offset = take
            if offset == count { return }
            counter &+= 64
            let block = buffer
            Swift.withUnsafeBytes(of: block) { compress($0, isLast: false) }
            bufferCount = 0
        }
        // Whole blocks straight from the input, keeping the last (possibly full) block buffered.
        while count - offset > 64 {
            counter &+= 64
            compress(UnsafeRawBufferPointer(rebasing: input[offset..<offset + 64]), isLast: false)
            offset += 64
        }
        let rest = count - offset
        Swift.withUnsafeMutableBytes(of: &buffer) { raw in
            UnsafeMutableRawBufferPointer(rebasing: raw[0..<rest])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: input[offset..<count]))
        }
        bufferCount = rest
    }

    /// Absorbs the bytes of a fixed-size value.
    package mutating func update(_ value: Bytes32) { value.withUnsafeBytes { update($0) } }

    /// Absorbs a byte array (tests and control plane).
    package mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// Finishes the hash and writes `outputByteCount` bytes to `output`.
    package mutating func finalize(into output: UnsafeMutableRawBufferPointer) {
        precondition(output.count >= outputByteCount)
        counter &+= UInt64(bufferCount)
        let used = bufferCount
        Swift.withUnsafeMutableBytes(of: &buffer) { raw in
            if used < 64 { UnsafeMutableRawBufferPointer(rebasing: raw[used...]).initializeMemory(as: UInt8.self, repeating: 0) }
        }
        let block = buffer
        Swift.withUnsafeBytes(of: block) { compress($0, isLast: true) }
        var words = (h0.littleEndian, h1.littleEndian, h2.littleEndian, h3.littleEndian,
                     h4.littleEndian, h5.littleEndian, h6.littleEndian, h7.littleEndian)
        Swift.withUnsafeBytes(of: &words) { raw in
            output.baseAddress!.copyMemory(from: raw.baseAddress!, byteCount: outputByteCount)
        }
    }

    /// Finishes a 32-byte hash.
    package mutating func finalize() -> Bytes32 {
        var digest = Bytes32.zero
        digest.withUnsafeMutableBytes { finalize(into: $0) }
        return digest
    }

    /// Finishes a 16-byte hash (the MAC size).
    package mutating func finalize16() -> Bytes16 {
        var digest = Bytes16.zero
        digest.withUnsafeMutableBytes { finalize(into: $0) }
        return digest
    }

    /// The compression function F (RFC 7693 §3.2) over one 64-byte block.
    private mutating func compress(_ block: UnsafeRawBufferPointer, isLast: Bool) {
        // The 16 message words, little-endian, loaded once into locals the optimiser keeps in registers.
        @inline(__always) func load(_ index: Int) -> UInt32 {
            UInt32(littleEndian: block.loadUnaligned(fromByteOffset: index &* 4, as: UInt32.self))
        }
        let m0 = load(0), m1 = load(1), m2 = load(2), m3 = load(3), m4 = load(4), m5 = load(5), m6 = load(6), m7 = load(7)
        let m8 = load(8), m9 = load(9), m10 = load(10), m11 = load(11), m12 = load(12), m13 = load(13), m14 = load(14), m15 = load(15)
        let iv = Self.iv
        var v0 = h0, v1 = h1, v2 = h2, v3 = h3, v4 = h4, v5 = h5, v6 = h6, v7 = h7
        var v8 = iv.0, v9 = iv.1, v10 = iv.2, v11 = iv.3
        var v12 = iv.4 ^ UInt32(truncatingIfNeeded: counter)
        var v13 = iv.5 ^ UInt32(truncatingIfNeeded: counter >> 32)
        var v14 = isLast ? ~iv.6 : iv.6
        var v15 = iv.7

        @inline(__always) func mix(_ a: inout UInt32, _ b: inout UInt32, _ c: inout UInt32, _ d: inout UInt32,
                                   _ x: UInt32, _ y: UInt32) {
            a = a &+ b &+ x; d = (d ^ a).rotateRight(16)
            c = c &+ d; b = (b ^ c).rotateRight(12)
            a = a &+ b &+ y; d = (d ^ a).rotateRight(8)
            c = c &+ d; b = (b ^ c).rotateRight(7)
        }
        // The ten rounds unrolled with the message schedule of RFC 7693 §2.7 written out, so every word
        // index is a constant (generated from the σ table; checked by the RFC self-test and OpenSSL tests).
        // Round 0: σ0 = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
        mix(&v0, &v4, &v8, &v12, m0, m1)
        mix(&v1, &v5, &v9, &v13, m2, m3)
        mix(&v2, &v6, &v10, &v14, m4, m5)
        mix(&v3, &v7, &v11, &v15, m6, m7)
        mix(&v0, &v5, &v10, &v15, m8, m9)
        mix(&v1, &v6, &v11, &v12, m10, m11)
        mix(&v2, &v7, &v8, &v13, m12, m13)
        mix(&v3, &v4, &v9, &v14, m14, m15)
        // Round 1: σ1 = [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3]
        mix(&v0, &v4, &v8, &v12, m14, m10)
        mix(&v1, &v5, &v9, &v13, m4, m8)
        mix(&v2, &v6, &v10, &v14, m9, m15)
        mix(&v3, &v7, &v11, &v15, m13, m6)
        mix(&v0, &v5, &v10, &v15, m1, m12)
        mix(&v1, &v6, &v11, &v12, m0, m2)
        mix(&v2, &v7, &v8, &v13, m11, m7)
        mix(&v3, &v4, &v9, &v14, m5, m3)
        // Round 2: σ2 = [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4]
        mix(&v0, &v4, &v8, &v12, m11, m8)
        mix(&v1, &v5, &v9, &v13, m12, m0)
        mix(&v2, &v6, &v10, &v14, m5, m2)
        mix(&v3, &v7, &v11, &v15, m15, m13)
        mix(&v0, &v5, &v10, &v15, m10, m14)
        mix(&v1, &v6, &v11, &v12, m3, m6)
        mix(&v2, &v7, &v8, &v13, m7, m1)
        mix(&v3, &v4, &v9, &v14, m9, m4)
        // Round 3: σ3 = [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8]
        mix(&v0, &v4, &v8, &v12, m7, m9)
        mix(&v1, &v5, &v9, &v13, m3, m1)
        mix(&v2, &v6, &v10, &v14, m13, m12)
        mix(&v3, &v7, &v11, &v15, m11, m14)
        mix(&v0, &v5, &v10, &v15, m2, m6)
        mix(&v1, &v6, &v11, &v12, m5, m10)
        mix(&v2, &v7, &v8, &v13, m4, m0)
        mix(&v3, &v4, &v9, &v14, m15, m8)
        // Round 4: σ4 = [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13]
        mix(&v0, &v4, &v8, &v12, m9, m0)
        mix(&v1, &v5, &v9, &v13, m5, m7)
        mix(&v2, &v6, &v10, &v14, m2, m4)
        mix(&v3, &v7, &v11, &v15, m10, m15)
        mix(&v0, &v5, &v10, &v15, m14, m1)
        mix(&v1, &v6, &v11, &v12, m11, m12)
        mix(&v2, &v7, &v8, &v13, m6, m8)
        mix(&v3, &v4, &v9, &v14, m3, m13)
        // Round 5: σ5 = [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9]
        mix(&v0, &v4, &v8, &v12, m2, m12)
        mix(&v1, &v5, &v9, &v13, m6, m10)
        mix(&v2, &v6, &v10, &v14, m0, m11)
        mix(&v3, &v7, &v11, &v15, m8, m3)
        mix(&v0, &v5, &v10, &v15, m4, m13)
        mix(&v1, &v6, &v11, &v12, m7, m5)
        mix(&v2, &v7, &v8, &v13, m15, m14)
        mix(&v3, &v4, &v9, &v14, m1, m9)
        // Round 6: σ6 = [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11]
        mix(&v0, &v4, &v8, &v12, m12, m5)
        mix(&v1, &v5, &v9, &v13, m1, m15)
        mix(&v2, &v6, &v10, &v14, m14, m13)
        mix(&v3, &v7, &v11, &v15, m4, m10)
        mix(&v0, &v5, &v10, &v15, m0, m7)
        mix(&v1, &v6, &v11, &v12, m6, m3)
        mix(&v2, &v7, &v8, &v13, m9, m2)
        mix(&v3, &v4, &v9, &v14, m8, m11)
        // Round 7: σ7 = [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10]
        mix(&v0, &v4, &v8, &v12, m13, m11)
        mix(&v1, &v5, &v9, &v13, m7, m14)
        mix(&v2, &v6, &v10, &v14, m12, m1)
        mix(&v3, &v7, &v11, &v15, m3, m9)
        mix(&v0, &v5, &v10, &v15, m5, m0)
        mix(&v1, &v6, &v11, &v12, m15, m4)
        mix(&v2, &v7, &v8, &v13, m8, m6)
        mix(&v3, &v4, &v9, &v14, m2, m10)
        // Round 8: σ8 = [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5]
        mix(&v0, &v4, &v8, &v12, m6, m15)
        mix(&v1, &v5, &v9, &v13, m14, m9)
        mix(&v2, &v6, &v10, &v14, m11, m3)
        mix(&v3, &v7, &v11, &v15, m0, m8)
        mix(&v0, &v5, &v10, &v15, m12, m2)
        mix(&v1, &v6, &v11, &v12, m13, m7)
        mix(&v2, &v7, &v8, &v13, m1, m4)
        mix(&v3, &v4, &v9, &v14, m10, m5)
        // Round 9: σ9 = [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0]
        mix(&v0, &v4, &v8, &v12, m10, m2)
        mix(&v1, &v5, &v9, &v13, m8, m4)
        mix(&v2, &v6, &v10, &v14, m7, m6)
        mix(&v3, &v7, &v11, &v15, m1, m5)
        mix(&v0, &v5, &v10, &v15, m15, m11)
        mix(&v1, &v6, &v11, &v12, m9, m14)
        mix(&v2, &v7, &v8, &v13, m3, m12)
        mix(&v3, &v4, &v9, &v14, m13, m0)
        h0 ^= v0 ^ v8; h1 ^= v1 ^ v9; h2 ^= v2 ^ v10; h3 ^= v3 ^ v11
        h4 ^= v4 ^ v12; h5 ^= v5 ^ v13; h6 ^= v6 ^ v14; h7 ^= v7 ^ v15
    }
}

extension UInt32 {
    @inline(__always) fileprivate func rotateRight(_ count: UInt32) -> UInt32 { (self >> count) | (self << (32 - count)) }
}
