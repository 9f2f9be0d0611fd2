/// The receive-side sliding window over transport counters (RFC 6479 style, as the whitepaper's §5.4.6 asks).
///
/// A ring of 128 blocks of 64 bits; the window is 127 blocks = 8128 counters behind the highest one seen.
/// Moving forward clears only the blocks skipped over, so each check is O(1) amortised and nothing allocates
/// after `init`. `check` is the cheap pre-test before decryption; `accept` records a counter after the packet
/// authenticated (a forged packet must never advance the window).
package struct ReplayFilter: Sendable {
    private static let blockBits = 64
    private static let ringBlocks = 128
    /// How far behind the newest counter a packet may arrive and still be accepted.
    package static let windowSize = UInt64((ringBlocks - 1) * blockBits)

    private var ring: [UInt64]
    private var last: UInt64 = 0

    /// An empty window (the only allocation, once per keypair).
    package init() { ring = [UInt64](repeating: 0, count: Self.ringBlocks) }

    /// Forgets every counter.
    package mutating func reset() {
        last = 0
        for index in ring.indices { ring[index] = 0 }
    }

    /// Whether `counter` could be accepted (below `limit`, inside the window, not yet seen). Does not record it.
    package func check(_ counter: UInt64, limit: UInt64 = SessionLimits.rejectAfterMessages) -> Bool {
        guard counter < limit else { return false }
        if counter > last { return true }
        guard last - counter <= Self.windowSize else { return false }
        let block = Int((counter >> 6) & UInt64(Self.ringBlocks - 1))
        return ring[block] & (1 << (counter & 63)) == 0
    }

    /// Records `counter`; false (and nothing recorded) when it is too old, too large or already seen.
    package mutating func accept(_ counter: UInt64, limit: UInt64 = SessionLimits.rejectAfterMessages) -> Bool {
        guard counter < limit else { return false }
        let index = counter >> 6
        if counter > last {
            // Clear the blocks between the old head and the new one (at most the whole ring).
            let current = last >> 6
            let distance = min(index - current, UInt64(Self.ringBlocks))
            var step: UInt64 = 1
            while step <= distance {
                ring[Int((current + step) & UInt64(Self.ringBlocks - 1))] = 0
                step += 1
            }
            last = counter
        } else if last - counter > Self.windowSize {
            return false
        }
        let block = Int(index & UInt64(Self.ringBlocks - 1))
        let bit: UInt64 = 1 << (counter & 63)
        guard ring[block] & bit == 0 else { return false }
        ring[block] |= bit
        return true
    }
}
