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

    /// Message word permutations, rounds 0–9 (RFC 7693 §2.7), packed 4 bits per index.
    private static let sigma: [UInt64] = [
        0xFEDC_BA98_7654_3210, 0x357B_20C1_6DF9_84AE, 0x491763EADF250C8B, 0x8F04A562EBCD1397,
        0xD386CB1EFA427509, 0x91EF57D438B0A6C2, 0xB8293670A4DEF15C, 0xA2684F05931CE7BD,
        0x5A417D2C803B9EF6, 0x0DC3E9BF5167482A,
    ]

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
        var m = (UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0),
                 UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0))
        Swift.withUnsafeMutableBytes(of: &m) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: block.prefix(64))) }
        #if _endian(big)
        m = (m.0.byteSwapped, m.1.byteSwapped, m.2.byteSwapped, m.3.byteSwapped, m.4.byteSwapped, m.5.byteSwapped,
             m.6.byteSwapped, m.7.byteSwapped, m.8.byteSwapped, m.9.byteSwapped, m.10.byteSwapped, m.11.byteSwapped,
             m.12.byteSwapped, m.13.byteSwapped, m.14.byteSwapped, m.15.byteSwapped)
        #endif
        let iv = Self.iv
        var v0 = h0, v1 = h1, v2 = h2, v3 = h3, v4 = h4, v5 = h5, v6 = h6, v7 = h7
        var v8 = iv.0, v9 = iv.1, v10 = iv.2, v11 = iv.3
        var v12 = iv.4 ^ UInt32(truncatingIfNeeded: counter)
        var v13 = iv.5 ^ UInt32(truncatingIfNeeded: counter >> 32)
        var v14 = isLast ? ~iv.6 : iv.6
        var v15 = iv.7

        @inline(__always) func word(_ index: UInt64) -> UInt32 {
            withUnsafeBytes(of: m) { $0.load(fromByteOffset: Int(index) &* 4, as: UInt32.self) }
        }
        @inline(__always) func mix(_ a: inout UInt32, _ b: inout UInt32, _ c: inout UInt32, _ d: inout UInt32,
                                   _ x: UInt32, _ y: UInt32) {
            a = a &+ b &+ x; d = (d ^ a).rotateRight(16)
            c = c &+ d; b = (b ^ c).rotateRight(12)
            a = a &+ b &+ y; d = (d ^ a).rotateRight(8)
            c = c &+ d; b = (b ^ c).rotateRight(7)
        }
        for round in 0..<10 {
            let s = Self.sigma[round]
            mix(&v0, &v4, &v8, &v12, word(s & 15), word((s >> 4) & 15))
            mix(&v1, &v5, &v9, &v13, word((s >> 8) & 15), word((s >> 12) & 15))
            mix(&v2, &v6, &v10, &v14, word((s >> 16) & 15), word((s >> 20) & 15))
            mix(&v3, &v7, &v11, &v15, word((s >> 24) & 15), word((s >> 28) & 15))
            mix(&v0, &v5, &v10, &v15, word((s >> 32) & 15), word((s >> 36) & 15))
            mix(&v1, &v6, &v11, &v12, word((s >> 40) & 15), word((s >> 44) & 15))
            mix(&v2, &v7, &v8, &v13, word((s >> 48) & 15), word((s >> 52) & 15))
            mix(&v3, &v4, &v9, &v14, word((s >> 56) & 15), word((s >> 60) & 15))
        }
        h0 ^= v0 ^ v8; h1 ^= v1 ^ v9; h2 ^= v2 ^ v10; h3 ^= v3 ^ v11
        h4 ^= v4 ^ v12; h5 ^= v5 ^ v13; h6 ^= v6 ^ v14; h7 ^= v7 ^ v15
    }
}

extension UInt32 {
    @inline(__always) fileprivate func rotateRight(_ count: UInt32) -> UInt32 { (self >> count) | (self << (32 - count)) }
}
