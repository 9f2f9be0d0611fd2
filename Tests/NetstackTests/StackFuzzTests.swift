import Testing
import Glibc
import Netstack
import NetstackTesting

// Whatever a peer sends, the stack must not trap and must keep its bounds: the short form of
// `netstack-bench fuzz` (the same `StackFuzzer`), with mutated valid packets of every kind going into
// a transparent stack whose owner accepts, rejects, reads and closes at random.

@Test(arguments: [UInt64(77), 78])
func stackSurvivesMutatedTraffic(seed: UInt64) {
    // NETSTACK_FUZZ raises the count for a long run (`netstack-bench fuzz` is faster: a release build).
    let iterations = getenv("NETSTACK_FUZZ").flatMap { Int(String(cString: $0)) } ?? 15_000
    var fuzzer = StackFuzzer(seed: seed)
    for _ in 0..<iterations { fuzzer.step() }
    #expect(fuzzer.unparsableOutput == 0, "first at iteration \(fuzzer.firstUnparsable ?? -1)")
    #expect(fuzzer.boundsHeld, "peak flows \(fuzzer.peakFlows), peak buffered \(fuzzer.peakBuffered) B")
    let statistics = fuzzer.stack.statistics
    #expect(statistics.packetsReceived == iterations)
    #expect(statistics.malformed > 0 && statistics.badChecksum > 0 && statistics.flowsOpened > 0)
    #expect(fuzzer.sent > 0 && fuzzer.sink != 0)
}
