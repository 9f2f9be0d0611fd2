// The `fuzz-parsers` command: `ParserFuzzer` (Tests/Fuzz) for `count` inputs, the long form of what
// the default test suite runs short (TransportTests/ParserFuzzTests). Checks, besides not trapping:
// a valid stream decodes the same in random reads as in one; no output is longer than its input;
// RSS stops growing; no single input takes long (a hang).
import Glibc
import ParserFuzzing

/// Runs `count` inputs; returns the exit status (1 if a check failed).
func runParserFuzz(count: Int, seed: UInt64, only: ParserFuzzer.Target? = nil) -> Int32 {
    var fuzzer = ParserFuzzer(seed: seed, only: only)
    var failures = 0, slowest = 0.0
    var slowestTarget = ""
    var baselineRSS = 0, peakRSS = 0
    let started = monotonicSeconds()
    for iteration in 0..<count {
        let before = monotonicSeconds()
        fuzzer.step()
        let took = monotonicSeconds() - before
        if took > slowest {
            slowest = took
            slowestTarget = "\(only ?? ParserFuzzer.Target(rawValue: iteration % ParserFuzzer.Target.allCases.count)!)"
        }
        if iteration % 10_000 == 9_999 {
            let rss = residentBytes()
            if iteration == 99_999 { baselineRSS = rss }
            peakRSS = max(peakRSS, rss)
            if iteration % 100_000 == 99_999 {
                let rate = Double(iteration + 1) / (monotonicSeconds() - started)
                print("\(iteration + 1) inputs, \(Int(rate)) per second, refused \(fuzzer.refused), split mismatches \(fuzzer.splitMismatches), RSS \(rss >> 20) MiB")
                fflush(nil)
            }
        }
    }
    let seconds = monotonicSeconds() - started
    let memory = "RSS after 100k \(baselineRSS >> 20) MiB, peak \(peakRSS >> 20) MiB"
    print("fuzz-parsers: \(count) inputs in \(oneDecimal(seconds)) s; refused \(fuzzer.refused), longest input \(fuzzer.longestInput) B, "
          + "slowest input \(oneDecimal(slowest * 1000)) ms (\(slowestTarget)), \(memory)")
    if let first = fuzzer.firstMismatch {
        print("FAIL: \(fuzzer.splitMismatches) valid streams decoded differently in pieces, the first (\(first.target)) at iteration \(first.iteration)")
        failures += 1
    }
    if let first = fuzzer.firstOverlong {
        print("FAIL: \(fuzzer.overlongOutputs) outputs longer than their input, the first (\(first.target)) at iteration \(first.iteration): \(first.output) B out of \(first.input) B")
        failures += 1
    }
    if slowest > 1 { print("FAIL: one input took more than a second"); failures += 1 }
    if baselineRSS > 0 && peakRSS > baselineRSS + (64 << 20) { print("FAIL: RSS grew by more than 64 MiB after the first 100k"); failures += 1 }
    return failures == 0 ? 0 : 1
}
