import NetstackWire

/// SplitMix64: a seeded generator so every "random" test is the same on every run.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

/// The slow, obvious RFC 1071 sum: big-endian 16-bit words, a lone last byte padded with zero.
func referenceSum(_ bytes: [UInt8]) -> UInt16 {
    var sum: UInt32 = 0
    var i = 0
    while i < bytes.count {
        let high = UInt32(bytes[i]) << 8
        let low = i + 1 < bytes.count ? UInt32(bytes[i + 1]) : 0
        sum += high | low
        sum = (sum & 0xffff) + (sum >> 16)
        i += 2
    }
    return UInt16(sum)
}

func randomBytes(_ count: Int, _ rng: inout SeededGenerator) -> [UInt8] {
    (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
}

extension Array where Element == UInt8 {
    /// Reads a big-endian UInt16 at `offset`.
    func be16(_ offset: Int) -> UInt16 { UInt16(self[offset]) << 8 | UInt16(self[offset + 1]) }
    func be32(_ offset: Int) -> UInt32 { UInt32(be16(offset)) << 16 | UInt32(be16(offset + 2)) }
    mutating func setBE16(_ value: UInt16, at offset: Int) { self[offset] = UInt8(value >> 8); self[offset + 1] = UInt8(value & 0xff) }
}

/// Sum over `bytes` through the fast accumulator.
func fastSum(_ bytes: [UInt8]) -> UInt16 {
    bytes.withUnsafeBytes { raw in
        var c = Checksum()
        c.add(bytes: raw)
        return c.sum
    }
}
