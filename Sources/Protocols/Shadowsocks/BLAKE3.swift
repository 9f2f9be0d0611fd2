// BLAKE3 (https://github.com/BLAKE3-team/BLAKE3-specs): the hash, keyed hash and derive_key modes
// with extendable output. SIP022 derives every session subkey with `derive_key`; OpenSSL 3 has no
// BLAKE3, so this is a portable implementation written from the specification. It runs once per
// TCP session or UDP session (never per chunk), so clarity wins over SIMD here.

/// A BLAKE3 hasher. Feed input with `update`, read any number of output bytes with `finalize`.
/// A value type: copying it forks the state.
package struct BLAKE3 {
    /// The output length of the default hash, in bytes.
    package static let outputByteCount = 32
    /// The key length of keyed mode.
    package static let keyByteCount = 32

    /// Spec §2.2: the IV is SHA-256's.
    static let iv: [UInt32] = [0x6A09_E667, 0xBB67_AE85, 0x3C6E_F372, 0xA54F_F53A,
                               0x510E_527F, 0x9B05_688C, 0x1F83_D9AB, 0x5BE0_CD19]
    /// Spec Table 2: the message word permutation applied between rounds.
    static let permutation: [Int] = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8]
    static let blockLength = 64
    static let chunkLength = 1024

    /// Spec Table 3: domain separation flags.
    struct Flags: OptionSet {
        let rawValue: UInt32
        static let chunkStart = Flags(rawValue: 1 << 0)
        static let chunkEnd = Flags(rawValue: 1 << 1)
        static let parent = Flags(rawValue: 1 << 2)
        static let root = Flags(rawValue: 1 << 3)
        static let keyedHash = Flags(rawValue: 1 << 4)
        static let deriveKeyContext = Flags(rawValue: 1 << 5)
        static let deriveKeyMaterial = Flags(rawValue: 1 << 6)
    }

    private let key: [UInt32]
    private let flags: Flags
    private var chunk: ChunkState
    /// Chaining values of completed subtrees, oldest (largest) first (spec §5.1.2).
    private var stack: [[UInt32]] = []

    /// The plain hash.
    package init() { self.init(key: Self.iv, flags: []) }

    /// Keyed mode: `key` must be 32 bytes (our callers pass fixed-size keys; a wrong size is our bug).
    package init(key: some Collection<UInt8>) {
        precondition(key.count == Self.keyByteCount, "BLAKE3 key must be 32 bytes")
        self.init(key: Self.words(Array(key)), flags: .keyedHash)
    }

    /// derive_key mode (spec §2.3): the context string is hashed first; its output keys the material.
    package init(deriveKeyContext context: String) {
        var contextHasher = BLAKE3(key: Self.iv, flags: .deriveKeyContext)
        contextHasher.update(Array(context.utf8))
        let contextKey = contextHasher.finalize(byteCount: 32)
        self.init(key: Self.words(contextKey), flags: .deriveKeyMaterial)
    }

    private init(key: [UInt32], flags: Flags) {
        self.key = key
        self.flags = flags
        self.chunk = ChunkState(key: key, counter: 0, flags: flags)
    }

    /// Absorbs `input`.
    package mutating func update(_ input: some Collection<UInt8>) {
        var bytes = Array(input)[...]
        while !bytes.isEmpty {
            if chunk.length == Self.chunkLength {
                // A full chunk is only closed once more input proves it is not the last (root) one.
                let chaining = chunk.output().chainingValue()
                let total = chunk.counter + 1
                pushChunk(chaining, totalChunks: total)
                chunk = ChunkState(key: key, counter: total, flags: flags)
            }
            let take = min(Self.chunkLength - chunk.length, bytes.count)
            chunk.update(bytes.prefix(take))
            bytes = bytes.dropFirst(take)
        }
    }

    /// Merges completed subtrees: after chunk `totalChunks` there is one subtree per 1 bit of the count.
    private mutating func pushChunk(_ chaining: [UInt32], totalChunks: UInt64) {
        var cv = chaining
        var total = totalChunks
        while total & 1 == 0 {
            let left = stack.removeLast()
            cv = Self.parentOutput(left: left, right: cv, key: key, flags: flags).chainingValue()
            total >>= 1
        }
        stack.append(cv)
    }

    /// Returns `byteCount` output bytes (the XOF); does not change the state.
    package func finalize(byteCount: Int) -> [UInt8] {
        var output = chunk.output()
        for left in stack.reversed() {
            output = Self.parentOutput(left: left, right: output.chainingValue(), key: key, flags: flags)
        }
        return output.rootBytes(byteCount)
    }

    /// One-shot hash.
    package static func hash(_ input: some Collection<UInt8>, byteCount: Int = outputByteCount) -> [UInt8] {
        var hasher = BLAKE3()
        hasher.update(input)
        return hasher.finalize(byteCount: byteCount)
    }

    /// One-shot derive_key: `byteCount` bytes of key derived from `material` under `context`.
    package static func deriveKey(context: String, material: some Collection<UInt8>, byteCount: Int) -> [UInt8] {
        var hasher = BLAKE3(deriveKeyContext: context)
        hasher.update(material)
        return hasher.finalize(byteCount: byteCount)
    }

    // MARK: Internals

    static func words(_ bytes: [UInt8]) -> [UInt32] {
        (0..<bytes.count / 4).map { i in
            UInt32(bytes[4 * i]) | UInt32(bytes[4 * i + 1]) << 8 | UInt32(bytes[4 * i + 2]) << 16 | UInt32(bytes[4 * i + 3]) << 24
        }
    }

    static func parentOutput(left: [UInt32], right: [UInt32], key: [UInt32], flags: Flags) -> Output {
        Output(inputChainingValue: key, block: left + right, counter: 0, blockLength: UInt32(blockLength), flags: flags.union(.parent))
    }

    /// The quarter-round mixing function G (spec §2.2).
    @inline(__always)
    static func g(_ v: inout [UInt32], _ a: Int, _ b: Int, _ c: Int, _ d: Int, _ x: UInt32, _ y: UInt32) {
        v[a] = v[a] &+ v[b] &+ x
        v[d] = (v[d] ^ v[a]).rotatedRight(16)
        v[c] = v[c] &+ v[d]
        v[b] = (v[b] ^ v[c]).rotatedRight(12)
        v[a] = v[a] &+ v[b] &+ y
        v[d] = (v[d] ^ v[a]).rotatedRight(8)
        v[c] = v[c] &+ v[d]
        v[b] = (v[b] ^ v[c]).rotatedRight(7)
    }

    /// The compression function: 7 rounds over a 16-word state; returns all 16 output words
    /// (the first 8 are the chaining value, all 16 feed the XOF).
    static func compress(chainingValue: [UInt32], block: [UInt32], counter: UInt64, blockLength: UInt32, flags: Flags) -> [UInt32] {
        var v = chainingValue + Array(iv[0..<4])
            + [UInt32(truncatingIfNeeded: counter), UInt32(truncatingIfNeeded: counter >> 32), blockLength, flags.rawValue]
        var m = block
        for round in 0..<7 {
            g(&v, 0, 4, 8, 12, m[0], m[1])
            g(&v, 1, 5, 9, 13, m[2], m[3])
            g(&v, 2, 6, 10, 14, m[4], m[5])
            g(&v, 3, 7, 11, 15, m[6], m[7])
            g(&v, 0, 5, 10, 15, m[8], m[9])
            g(&v, 1, 6, 11, 12, m[10], m[11])
            g(&v, 2, 7, 8, 13, m[12], m[13])
            g(&v, 3, 4, 9, 14, m[14], m[15])
            if round < 6 { m = permutation.map { m[$0] } }
        }
        for i in 0..<8 {
            v[i] ^= v[i + 8]
            v[i + 8] ^= chainingValue[i]
        }
        return v
    }

    /// A node ready to produce a chaining value or, as the root, output bytes.
    struct Output {
        let inputChainingValue: [UInt32]
        let block: [UInt32]
        let counter: UInt64
        let blockLength: UInt32
        let flags: Flags

        func chainingValue() -> [UInt32] {
            Array(BLAKE3.compress(chainingValue: inputChainingValue, block: block, counter: counter,
                                  blockLength: blockLength, flags: flags)[0..<8])
        }

        /// Spec §2.6: the root is compressed again with an output block counter for each 64 bytes.
        func rootBytes(_ count: Int) -> [UInt8] {
            var out: [UInt8] = []
            out.reserveCapacity(count)
            var blockCounter: UInt64 = 0
            while out.count < count {
                let words = BLAKE3.compress(chainingValue: inputChainingValue, block: block, counter: blockCounter,
                                            blockLength: blockLength, flags: flags.union(.root))
                for word in words where out.count < count {
                    for shift in stride(from: 0, to: 32, by: 8) where out.count < count {
                        out.append(UInt8(truncatingIfNeeded: word >> UInt32(shift)))
                    }
                }
                blockCounter += 1
            }
            return out
        }
    }

    /// Up to 1024 bytes of input: whole blocks are compressed as they fill, the last one waits.
    struct ChunkState {
        var chainingValue: [UInt32]
        let counter: UInt64
        let flags: Flags
        var block = [UInt8](repeating: 0, count: BLAKE3.blockLength)
        var blockLength = 0
        var blocksCompressed = 0

        init(key: [UInt32], counter: UInt64, flags: Flags) {
            self.chainingValue = key
            self.counter = counter
            self.flags = flags
        }

        var length: Int { BLAKE3.blockLength * blocksCompressed + blockLength }
        var startFlag: Flags { blocksCompressed == 0 ? .chunkStart : [] }

        mutating func update(_ input: ArraySlice<UInt8>) {
            var bytes = input
            while !bytes.isEmpty {
                if blockLength == BLAKE3.blockLength {
                    chainingValue = Array(BLAKE3.compress(chainingValue: chainingValue, block: BLAKE3.words(block), counter: counter,
                                                          blockLength: UInt32(BLAKE3.blockLength), flags: flags.union(startFlag))[0..<8])
                    blocksCompressed += 1
                    block = [UInt8](repeating: 0, count: BLAKE3.blockLength)
                    blockLength = 0
                }
                let take = min(BLAKE3.blockLength - blockLength, bytes.count)
                for (offset, byte) in bytes.prefix(take).enumerated() { block[blockLength + offset] = byte }
                blockLength += take
                bytes = bytes.dropFirst(take)
            }
        }

        func output() -> Output {
            Output(inputChainingValue: chainingValue, block: BLAKE3.words(block), counter: counter,
                   blockLength: UInt32(blockLength), flags: flags.union(startFlag).union(.chunkEnd))
        }
    }
}

extension UInt32 {
    @inline(__always) fileprivate func rotatedRight(_ count: UInt32) -> UInt32 {
        (self >> count) | (self << (32 - count))
    }
}
