// Read schedules for stream parsers: the same bytes cut into reads at unlucky points. A parser of a
// byte stream must give the same output whatever the cuts (the gun decoder once dropped a header
// cut between two HTTP/2 DATA frames). `ReadSplits.schedules` lists, for one encoded stream:
// 1. one byte per read;
// 2. one cut at every offset near each frame boundary (where headers are), and every pair of cuts
//    over the opening region (the request or first headers);
// 3. seeded random cuts (a failure names its seed);
// 4. the whole stream in one read.
// Tests feed each schedule to the parser and compare its output with the whole-stream output.

/// How a test cuts a byte stream into reads.
package struct ReadSchedule: CustomStringConvertible, Sendable {
    /// What the schedule is, for a failure message (`pair 3,17`, `random seed 5`).
    package var name: String
    /// The offsets where a new read starts, ascending, each in `1..<length`.
    package var cuts: [Int]

    package init(name: String, cuts: [Int]) {
        self.name = name
        self.cuts = cuts
    }

    package var description: String { name }

    /// `bytes` cut at `cuts`: every read, in order (none empty).
    package func reads(of bytes: [UInt8]) -> [ArraySlice<UInt8>] {
        var out: [ArraySlice<UInt8>] = []
        out.reserveCapacity(cuts.count + 1)
        var start = 0
        for cut in cuts where cut > start && cut < bytes.count {
            out.append(bytes[start..<cut])
            start = cut
        }
        if start < bytes.count { out.append(bytes[start...]) }
        return out
    }
}

/// Builds read schedules; see the file comment.
package enum ReadSplits {
    /// The schedules for a stream of `length` bytes whose frames start at `boundaries`: single cuts
    /// within `radius` of each boundary, pairs of cuts over `pairRegion` (clamped to the stream),
    /// `randomRuns` seeded random schedules with reads of 1…`maximumRandomRead` bytes, one byte per
    /// read (above `oneByteLimit` bytes only over the opening and the headers), and one read.
    package static func schedules(length: Int, boundaries: [Int], radius: Int = 6, pairRegion: Range<Int> = 0..<12,
                                  randomRuns: Int = 8, maximumRandomRead: Int = 4096, oneByteLimit: Int = 1 << 15,
                                  seed: UInt64 = 1) -> [ReadSchedule] {
        var out = [ReadSchedule(name: "one read", cuts: [])]
        if length <= oneByteLimit {
            out.append(ReadSchedule(name: "one byte per read", cuts: Array(1..<max(1, length))))
        } else {
            // A long stream: one byte per read over the opening and over every header (within
            // 2 × radius of each boundary), the payloads between in a few large reads.
            var cuts = Set(1..<min(length, 512))
            for boundary in boundaries {
                for cut in (boundary - 2 * radius)...(boundary + 2 * radius) where cut > 0 && cut < length { cuts.insert(cut) }
            }
            out.append(ReadSchedule(name: "one byte per read over the headers", cuts: cuts.sorted()))
        }
        var singles = Set<Int>()
        for boundary in boundaries + [0] {
            for cut in (boundary - radius)...(boundary + radius) where cut > 0 && cut < length { singles.insert(cut) }
        }
        for cut in singles.sorted() { out.append(ReadSchedule(name: "cut \(cut)", cuts: [cut])) }
        let region = max(1, pairRegion.lowerBound)..<min(length, pairRegion.upperBound)
        for first in region {
            for second in region where second > first {
                out.append(ReadSchedule(name: "cuts \(first),\(second)", cuts: [first, second]))
            }
        }
        for run in 0..<randomRuns {
            var random = SplitMix(seed: seed &* 1_000_003 &+ UInt64(run))
            // Small reads most of the time (header splits), larger ones now and then.
            let limit = run % 3 == 0 ? maximumRandomRead : 16
            var cuts: [Int] = []
            var at = 0
            while true {
                at += 1 + Int(random.next() % UInt64(limit))
                guard at < length else { break }
                cuts.append(at)
            }
            out.append(ReadSchedule(name: "random seed \(seed) run \(run)", cuts: cuts))
        }
        return out
    }

    /// Runs `decode` over every schedule and returns the names of those whose output differs from
    /// the one-read output (or threw), with the first difference; empty when all agree. `decode`
    /// gets the reads in order and returns the parser's whole output.
    package static func mismatches<Output: Equatable>(_ bytes: [UInt8], schedules: [ReadSchedule], expected: Output? = nil,
                                                      decode: ([ArraySlice<UInt8>]) throws -> Output) -> [String] {
        let reference: Output
        do {
            reference = try expected ?? decode([bytes[...]])
        } catch {
            return ["one read threw \(error)"]
        }
        var failures: [String] = []
        for schedule in schedules {
            do {
                let output = try decode(schedule.reads(of: bytes))
                if output != reference {
                    let got = String(String(describing: output).prefix(300)), want = String(String(describing: reference).prefix(300))
                    failures.append(failures.isEmpty ? "\(schedule): got \(got), expected \(want)" : "\(schedule): output differs")
                }
            } catch {
                failures.append("\(schedule): threw \(error)")
            }
            if failures.count >= 5 { break }
        }
        return failures
    }
}

/// SplitMix64: a seeded generator, so a schedule repeats.
package struct SplitMix: RandomNumberGenerator, Sendable {
    private var state: UInt64

    package init(seed: UInt64) { state = seed }

    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
