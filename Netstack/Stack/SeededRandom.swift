/// SplitMix64 (Steele, Lea, Flood 2014): the stack's only source of randomness — ephemeral ports,
/// IPv4 identifications, fragment ids. Seeded by the owner, so runs are reproducible in tests.
package struct SeededRandom: RandomNumberGenerator, Sendable {
    package var state: UInt64

    package init(seed: UInt64) { state = seed }

    @inlinable package mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
