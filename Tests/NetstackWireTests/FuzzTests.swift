import Testing
import Glibc
import NetstackWire

// Parsers of untrusted bytes must never trap. Short deterministic runs here; set NETSTACK_FUZZ to an
// iteration count for a long run (e.g. NETSTACK_FUZZ=5000000).

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

/// Runs every view and the GSO segmenter over `bytes`; results are read so nothing is optimised away.
func exercise(_ bytes: [UInt8]) -> Int {
    var touched = 0
    if let ip = try? IPv4HeaderView(validating: bytes.span.bytes) {
        touched &+= ip.payloadRange.count &+ (ip.isChecksumValid ? 1 : 0) &+ ip.optionsRange.count
    }
    if let ip = try? IPv6HeaderView(validating: bytes.span.bytes) {
        touched &+= ip.payloadRange.count &+ Int(ip.upperLayerProtocol) &+ (ip.fragment?.offset ?? 0)
    }
    if let udp = try? UDPHeaderView(validating: bytes.span.bytes) {
        touched &+= udp.payloadRange.count &+ (udp.isChecksumValid(pseudoHeaderSum: 0, zeroAllowed: true) ? 1 : 0)
    }
    if let icmp = try? ICMPHeaderView(validating: bytes.span.bytes) {
        touched &+= icmp.bodyRange.count &+ Int(icmp.restOfHeader & 0xff)
    }
    if let h = try? VirtioNetHeader(validating: bytes.span.bytes) { touched &+= Int(h.gsoSize) }
    for gso in [VirtioNetHeader.gsoTCPv4, VirtioNetHeader.gsoTCPv6, VirtioNetHeader.gsoUDPL4] {
        let offload = VirtioNetHeader(flags: 1, gsoType: gso, headerLength: 0, gsoSize: 37, checksumStart: 20, checksumOffset: 16)
        bytes.withUnsafeBytes { raw in
            guard let segmenter = try? GSOSegmenter(packet: raw, offload: offload) else { return }
            var out = [UInt8](repeating: 0, count: 65536 + 128)
            for i in 0..<min(segmenter.count, 8) {
                touched &+= out.withUnsafeMutableBytes { segmenter.segment(i, into: $0) }
            }
        }
    }
    var partial = bytes
    let h = VirtioNetHeader(flags: 1, gsoType: 0, headerLength: 0, gsoSize: 0, checksumStart: 20, checksumOffset: 6)
    partial.withUnsafeMutableBytes { try? h.completeChecksum(in: $0) }
    return touched
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
        sink &+= exercise(bytes)
    }
    #expect(sink != 0)
}
