// Mutation fuzzing of the message parser: 100k mutated messages in the default suite, more with
// DNS_FUZZ_ITERATIONS=N. A parse either throws DNSWireError or yields a message that re-encodes and
// re-parses to itself; nothing may trap.
import Foundation
import Testing
import TestSupport
import Adapter
@testable import DNS
#if canImport(Glibc)
import Glibc
#endif

/// The value of an environment variable.
func environment(_ name: String) -> String? {
    guard let value = getenv(name) else { return nil }
    return String(validatingCString: value)
}

/// SplitMix64 (TestSupport), seeded so random tests reproduce.
typealias SeededGenerator = SplitMix

func fuzzSeeds() throws -> [[UInt8]] {
    var response = DNSMessage(id: 9, isResponse: true, recursionDesired: true, recursionAvailable: true,
                              questions: [DNSQuestion(name: try DNSName("a.example.org"), type: .aaaa)])
    response.answers = [
        DNSResourceRecord(name: try DNSName("a.example.org"), type: .cname, ttl: 5, data: .name(try DNSName("b.example.org"))),
        .address(try DNSName("b.example.org"), ip("2001:db8::1"), ttl: 5),
    ]
    response.authorities = [DNSResourceRecord(name: try DNSName("example.org"), type: .soa, ttl: 5, data: .soa(DNSSOA(
        mname: try DNSName("ns.example.org"), rname: try DNSName("h.example.org"), serial: 1, refresh: 2, retry: 3, expire: 4, minimum: 5)))]
    return [try kitchenSinkMessage().encoded(), try response.encoded(),
            try DNSMessage.query(id: 1, name: try DNSName("example.com"), type: .https).encoded()]
}

/// One mutation of `input`: flips, interesting octets, cuts, inserts, duplicated or spliced ranges.
func mutate(_ input: [UInt8], _ rng: inout SeededGenerator) -> [UInt8] {
    var bytes = input
    let interesting: [UInt8] = [0, 1, 0x3f, 0x40, 0x7f, 0x80, 0xbf, 0xc0, 0xc0, 0xff, 12, 63, 64]
    for _ in 0..<Int.random(in: 1...4, using: &rng) {
        guard !bytes.isEmpty else { bytes = [UInt8.random(in: 0...255, using: &rng)]; continue }
        let at = Int.random(in: 0..<bytes.count, using: &rng)
        switch Int.random(in: 0..<7, using: &rng) {
        case 0: bytes[at] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
        case 1: bytes[at] = interesting.randomElement(using: &rng) ?? 0
        case 2: bytes[at] = UInt8.random(in: 0...255, using: &rng)
        case 3: bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...16, using: &rng)))
        case 4: bytes.insert(contentsOf: (0..<Int.random(in: 1...8, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }, at: at)
        case 5:
            let end = min(bytes.count, at + Int.random(in: 1...32, using: &rng))
            bytes.insert(contentsOf: bytes[at..<end], at: Int.random(in: 0...bytes.count, using: &rng))
        default:
            // A compression pointer to a random earlier offset.
            if at + 1 < bytes.count {
                let target = Int.random(in: 0...at, using: &rng)
                bytes[at] = 0xc0 | UInt8(target >> 8 & 0x3f)
                bytes[at + 1] = UInt8(target & 0xff)
            }
        }
    }
    return bytes
}

@Test func fuzzParserNeverTrapsAndRoundTrips() async throws {
    let iterations = environment("DNS_FUZZ_ITERATIONS").flatMap { Int($0) } ?? 100_000
    let seed = environment("DNS_FUZZ_SEED").flatMap { UInt64($0) } ?? 20261125
    let seeds = try fuzzSeeds()
    // CPU-bound for seconds: run it on its own thread so the two-thread cooperative pool stays free
    // for the time-sensitive transport tests running beside it. Expectations are checked back here.
    let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<FuzzOutcome, Never>) in
        let thread = Thread { continuation.resume(returning: fuzzParser(seeds: seeds, iterations: iterations, seed: seed)) }
        thread.stackSize = 8 << 20
        thread.start()
    }
    #expect(outcome.failure == nil, "\(outcome.failure ?? "")")
    // Both outcomes must occur, or the mutator is not exercising the parser.
    #expect(outcome.parsed > iterations / 50)
    #expect(outcome.rejected > iterations / 50)
}

struct FuzzOutcome: Sendable {
    var parsed = 0
    var rejected = 0
    var failure: String?
}

/// Parses `iterations` mutations of `seeds`; a parse either throws or re-encodes and re-parses to itself.
func fuzzParser(seeds: [[UInt8]], iterations: Int, seed: UInt64) -> FuzzOutcome {
    var rng = SeededGenerator(seed: seed)
    var outcome = FuzzOutcome()
    for iteration in 0..<iterations {
        let input = mutate(seeds[iteration % seeds.count], &rng)
        let message: DNSMessage
        do {
            message = try DNSMessage(parsing: input)
        } catch {
            outcome.rejected += 1
            continue
        }
        outcome.parsed += 1
        // What parsed must write and read back identically (a parsed message never overflows a field).
        do {
            let again = try DNSMessage(parsing: try message.encoded())
            if again != message {
                outcome.failure = "round trip differs for seed \(seed) iteration \(iteration): \(input)"
                return outcome
            }
        } catch {
            outcome.failure = "re-encoding failed (\(error)) for seed \(seed) iteration \(iteration): \(input)"
            return outcome
        }
    }
    return outcome
}
