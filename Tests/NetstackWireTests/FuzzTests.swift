import Testing
import Glibc
import NetstackWire
import NetstackTesting

// Parsers of untrusted bytes must never trap. Short deterministic runs here, with wire-level seeds
// (IPv6 extension headers, TSO super-packets, partial checksums) through the parsers `StackFuzzer`
// exercises; set NETSTACK_FUZZ to an iteration count for a long run (e.g. NETSTACK_FUZZ=5000000).

let fuzzIterations: Int = {
    if let text = getenvString("NETSTACK_FUZZ"), let n = Int(text) { return n }
    return 20_000
}()

/// An environment variable (tests may use libc; the netstack targets may not).
func getenvString(_ name: String) -> String? {
    getenv(name).map { String(cString: $0) }
}

/// Valid packets of every kind, as seeds for mutation.
func seedPackets() -> [[UInt8]] {
    var seeds: [[UInt8]] = [ipv4Packet, ipv6UDP, echoRequest]
    let frag: [UInt8] = [0, 0, 0x05, 0xa9, 0xde, 0xad, 0xbe, 0xef]
    let opt: [UInt8] = [0, 0, 1, 4, 0, 0, 0, 0]
    seeds.append(ipv6(extensions: [(0, opt), (60, opt), (44, frag)], upper: 17, payload: [1, 2, 3, 4, 5, 6, 7, 8]))
    seeds.append(tcpSuperPacket(ipv6: false, payload: [UInt8](repeating: 1, count: 100), flags: 0x18))
    seeds.append(tcpSuperPacket(ipv6: true, payload: [UInt8](repeating: 1, count: 100), flags: 0x18))
    seeds.append(partialUDPv4(payload: [UInt8](repeating: 3, count: 64)))
    return seeds
}

@Test func parsersSurviveMutatedAndRandomInput() {
    var rng = SeededGenerator(seed: 0xf022)
    let seeds = seedPackets()
    var sink = 0
    for iteration in 0..<fuzzIterations {
        var bytes: [UInt8]
        if iteration % 4 == 0 {
            bytes = randomBytes(Int.random(in: 0...200, using: &rng), &rng)
        } else {
            bytes = seeds[iteration % seeds.count]
            // Flip, overwrite, truncate or extend a few bytes; header fields are the interesting ones.
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                switch Int.random(in: 0..<4, using: &rng) {
                case 0 where !bytes.isEmpty: bytes[Int.random(in: 0..<min(bytes.count, 64), using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                case 1 where !bytes.isEmpty: bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                case 2: bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &rng)))
                default: bytes += randomBytes(Int.random(in: 0...16, using: &rng), &rng)
                }
            }
        }
        sink &+= StackFuzzer.exerciseParsers(bytes)
    }
    #expect(sink != 0)
}
