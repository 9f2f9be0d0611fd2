import Testing
@testable import WireGuard

/// The sliding replay window: order, duplicates, the window edge, big jumps, the message limit, and that
/// `check` never records.
@Suite struct ReplayFilterTests {
    @Test func acceptsEachCounterOnce() {
        var filter = ReplayFilter()
        for counter in 0..<3000 as Range<UInt64> { let accepted = filter.accept(counter); #expect(accepted) }
        for counter in 0..<3000 as Range<UInt64> { let accepted = filter.accept(counter); #expect(!accepted) }
    }

    @Test func outOfOrderInsideWindow() {
        var filter = ReplayFilter()
        do { let accepted = filter.accept(50000); #expect(accepted) }
        do { let accepted = filter.accept(49999); #expect(accepted) }
        do { let accepted = filter.accept(50000 - ReplayFilter.windowSize); #expect(accepted) }  // exactly at the edge
        do { let accepted = filter.accept(50000 - ReplayFilter.windowSize - 1); #expect(!accepted) }  // one past it
        do { let accepted = filter.accept(49999); #expect(!accepted) }
        do { let accepted = filter.accept(50001); #expect(accepted) }
    }

    @Test func tooOldRejected() {
        var filter = ReplayFilter()
        do { let accepted = filter.accept(20000); #expect(accepted) }
        do { let accepted = filter.accept(20000 - ReplayFilter.windowSize - 1); #expect(!accepted) }
        #expect(!filter.check(20000 - ReplayFilter.windowSize - 1))
        #expect(filter.check(20000 - ReplayFilter.windowSize))
    }

    @Test func bigJumpClearsRing() {
        var filter = ReplayFilter()
        for counter in 0..<200 as Range<UInt64> { _ = filter.accept(counter) }
        do { let accepted = filter.accept(1_000_000); #expect(accepted) }
        // Counters that share ring slots with the old ones are fresh again inside the new window.
        do { let accepted = filter.accept(1_000_000 - 64); #expect(accepted) }
        do { let accepted = filter.accept(1_000_000 - 8000); #expect(accepted) }
        do { let accepted = filter.accept(150); #expect(!accepted) }
    }

    @Test func checkDoesNotRecord() {
        var filter = ReplayFilter()
        #expect(filter.check(7))
        #expect(filter.check(7))
        do { let accepted = filter.accept(7); #expect(accepted) }
        #expect(!filter.check(7))
    }

    @Test func limitEnforced() {
        var filter = ReplayFilter()
        do { let accepted = filter.accept(SessionLimits.rejectAfterMessages); #expect(!accepted) }
        do { let accepted = filter.accept(SessionLimits.rejectAfterMessages - 1); #expect(accepted) }
        do { let accepted = filter.accept(UInt64.max); #expect(!accepted) }
    }

    /// Random arrival order with duplicates against a set-based model of the same window.
    @Test(arguments: [1, 2, 3] as [UInt64]) func matchesModel(seed: UInt64) {
        let random = SeededRandom(seed: seed)
        var filter = ReplayFilter()
        var seen = Set<UInt64>()
        var highest: UInt64 = 0
        var base: UInt64 = 0
        for _ in 0..<20000 {
            var word: UInt64 = 0
            withUnsafeMutableBytes(of: &word) { random.fill($0) }
            base += word % 3
            let counter = base &+ (word >> 8) % 300 &- min(base, (word >> 20) % 9000)
            let expected = !seen.contains(counter) && (counter > highest || highest - counter <= ReplayFilter.windowSize)
            let accepted = filter.accept(counter)
            #expect(accepted == expected, "counter \(counter) highest \(highest)")
            if accepted {
                seen.insert(counter)
                highest = max(highest, counter)
            }
        }
    }
}
