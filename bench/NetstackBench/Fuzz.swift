// The `fuzz` command (issue #3, acceptance 3): `StackFuzzer` (NetstackTesting) for `count` packets,
// the long form of what the default test suite runs short (NetstackTests/StackFuzzTests). Checks,
// besides not trapping: every packet the stack sends parses; the flow table and buffered bytes stay
// within the configured limits; RSS stops growing; no single packet takes long (a hang).
import Glibc
import Netstack
import NetstackTesting

/// Runs `count` packets; returns the exit status (1 if a bound broke).
func runFuzz(count: Int, seed: UInt64) -> Int32 {
    var fuzzer = StackFuzzer(seed: seed)
    let configuration = fuzzer.configuration
    var failures = 0, slowest = 0.0
    var baselineRSS = 0, peakRSS = 0
    let started = monotonicSeconds()
    for iteration in 0..<count {
        let before = monotonicSeconds()
        fuzzer.step()
        slowest = max(slowest, monotonicSeconds() - before)
        if iteration % 100_000 == 99_999 {
            let rss = residentBytes()
            if iteration == 999_999 { baselineRSS = rss }
            peakRSS = max(peakRSS, rss)
            if iteration % 1_000_000 == 999_999 {
                let rate = Double(iteration + 1) / (monotonicSeconds() - started)
                print("\(iteration + 1) packets, \(Int(rate)) per second, flows \(fuzzer.stack.numberOfFlows), buffered \(fuzzer.stack.bufferedByteCount) B, RSS \(rss >> 20) MiB")
                fflush(nil)
            }
        }
    }
    let seconds = monotonicSeconds() - started
    let s = fuzzer.stack.statistics
    let timing = "fuzz: \(count) packets in \(oneDecimal(seconds)) s; stack sent \(fuzzer.sent)"
    let counters = "malformed \(s.malformed), bad checksum \(s.badChecksum), flows opened \(s.flowsOpened)"
    let peaks = "peak flows \(fuzzer.peakFlows)/\(configuration.maximumFlows), peak buffered \(fuzzer.peakBuffered) B"
    let slowestText = oneDecimal(slowest * 1000)
    let memory = "RSS after 1M \(baselineRSS >> 20) MiB, peak \(peakRSS >> 20) MiB"
    print("\(timing); \(counters); \(peaks), slowest packet \(slowestText) ms, \(memory) (sink \(fuzzer.sink & 1))")
    if let first = fuzzer.firstUnparsable {
        print("FAIL: the stack sent \(fuzzer.unparsableOutput) packets that do not parse, the first at iteration \(first)")
        failures += 1
    }
    if !fuzzer.boundsHeld { print("FAIL: the flow table or the buffered bytes went above their limits"); failures += 1 }
    if slowest > 1 { print("FAIL: one packet took more than a second"); failures += 1 }
    if baselineRSS > 0 && peakRSS > baselineRSS + (64 << 20) { print("FAIL: RSS grew by more than 64 MiB after the first million"); failures += 1 }
    if s.packetsReceived != count { print("FAIL: the stack counted \(s.packetsReceived) packets, not \(count)"); failures += 1 }
    return failures == 0 ? 0 : 1
}

/// Seconds on the monotonic clock.
func monotonicSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

/// This process's resident set size in bytes (/proc/self/statm, second field, in pages).
func residentBytes() -> Int {
    let fd = open("/proc/self/statm", O_RDONLY)
    guard fd >= 0 else { return 0 }
    defer { close(fd) }
    var text = [UInt8](repeating: 0, count: 128)
    let count = read(fd, &text, text.count)
    let fields = String(decoding: text.prefix(max(count, 0)), as: UTF8.self).split(separator: " ")
    guard fields.count >= 2, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// `x` with one decimal (no Foundation here).
func oneDecimal(_ x: Double) -> String {
    let tenths = Int((x * 10).rounded())
    return "\(tenths / 10).\(abs(tenths % 10))"
}
