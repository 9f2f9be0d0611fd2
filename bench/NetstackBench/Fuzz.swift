// The `fuzz` command (issue #3, acceptance 3): random and mutated packets through every wire parser
// and a transparent Stack's whole input path, whose owner accepts, rejects, reads and closes at random.
// Checks, besides not trapping: every packet the stack sends parses; the flow table and buffered bytes
// stay within the configured limits; RSS stops growing; no single packet takes long (a hang).
// The default test suite runs the same loops short (NetstackWireTests/FuzzTests, NetstackTests/StackFuzzTests).
import Glibc
import NIOCore
import Netstack
import NetstackTesting
import NetstackWire

/// Runs `count` packets; returns the exit status (1 if a bound broke).
func runFuzz(count: Int, seed: UInt64) -> Int32 {
    var configuration = StackConfiguration()
    configuration.transparent = true
    configuration.answersEchoForAnyDestination = true
    configuration.ipv4Addresses = [IPv4Address(10, 0, 0, 1)]
    configuration.maximumFlows = 256
    configuration.synBacklog = 64
    configuration.reassemblyMemory = 256 << 10
    configuration.totalBufferBytes = 8 << 20
    let stack = Stack(configuration: configuration, seed: seed)
    var rng = SeededRandom(seed: seed &+ 1)
    let seeds = fuzzSeeds()
    var now = Instant.zero
    var batch = PacketBatch(), output = PacketBatch()
    var failures = 0, sink = 0, sent = 0, slowest = 0.0
    var baselineRSS = 0, peakRSS = 0, peakFlows = 0, peakBuffered = 0
    let started = monotonicSeconds()
    for iteration in 0..<count {
        var bytes: [UInt8]
        if iteration % 8 == 0 {
            bytes = (0..<Int(rng.next() % 200)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        } else {
            bytes = seeds[Int(rng.next() % UInt64(seeds.count))]
            mutate(&bytes, &rng)
        }
        let before = monotonicSeconds()
        sink &+= exerciseParsers(bytes)
        // A partial-checksum flag now and then, as a TUN with offloads sends, so mutated payloads get in.
        let offload = rng.next() % 3 == 0
            ? VirtioNetHeader(flags: 1, gsoType: 0, headerLength: 0, gsoSize: 0, checksumStart: 20, checksumOffset: UInt16(rng.next() % 2 == 0 ? 6 : 16))
            : .none
        batch.append(Packet(bytes: PacketBuilder.buffer(bytes), offload: offload))
        stack.receive(&batch, now: now)
        while let event = stack.nextEvent() {
            switch event {
            case .incoming(let id, _):
                switch rng.next() % 4 {
                case 0: try? stack.reject(id, .reset)
                case 1: try? stack.reject(id, .unreachable)
                default: try? stack.accept(id)
                }
            case .readable(let id):
                if rng.next() % 4 != 0 {  // sometimes leave data unread: buffers must stay bounded anyway
                    while (try? stack.receiveDatagram(on: id)) ?? nil != nil {}
                    while (try? stack.read(on: id)) ?? nil != nil {}
                }
                if rng.next() % 8 == 0 { try? stack.close(id, abort: rng.next() % 2 == 0) }
            default: break
            }
        }
        now += .milliseconds(Int64(rng.next() % 50))
        _ = stack.transmit(into: &output, now: now)
        for packet in output.packets where ParsedPacket(packet.bytes) == nil {
            failures += 1
            if failures < 10 { print("iteration \(iteration): the stack sent a packet that does not parse") }
        }
        sent += output.count
        stack.recycle(&output)
        slowest = max(slowest, monotonicSeconds() - before)
        peakFlows = max(peakFlows, stack.numberOfFlows)
        peakBuffered = max(peakBuffered, stack.bufferedByteCount)
        if iteration % 100_000 == 99_999 {
            let rss = residentBytes()
            if iteration == 999_999 { baselineRSS = rss }
            peakRSS = max(peakRSS, rss)
            if iteration % 1_000_000 == 999_999 {
                let rate = Double(iteration + 1) / (monotonicSeconds() - started)
                print("\(iteration + 1) packets, \(Int(rate)) per second, flows \(stack.numberOfFlows), buffered \(stack.bufferedByteCount) B, RSS \(rss >> 20) MiB")
                fflush(nil)
            }
        }
    }
    let seconds = monotonicSeconds() - started
    let s = stack.statistics
    let timing = "fuzz: \(count) packets in \(oneDecimal(seconds)) s; stack sent \(sent)"
    let counters = "malformed \(s.malformed), bad checksum \(s.badChecksum), flows opened \(s.flowsOpened)"
    let peaks = "peak flows \(peakFlows)/\(configuration.maximumFlows), peak buffered \(peakBuffered) B"
    let slowestText = oneDecimal(slowest * 1000)
    let memory = "RSS after 1M \(baselineRSS >> 20) MiB, peak \(peakRSS >> 20) MiB"
    print("\(timing); \(counters); \(peaks), slowest packet \(slowestText) ms, \(memory) (sink \(sink & 1))")
    if peakFlows > configuration.maximumFlows { print("FAIL: flow table above its limit"); failures += 1 }
    if peakBuffered > configuration.totalBufferBytes + configuration.reassemblyMemory { print("FAIL: buffered bytes above the limits"); failures += 1 }
    if slowest > 1 { print("FAIL: one packet took more than a second"); failures += 1 }
    if baselineRSS > 0 && peakRSS > baselineRSS + (64 << 20) { print("FAIL: RSS grew by more than 64 MiB after the first million"); failures += 1 }
    if s.packetsReceived != count { print("FAIL: the stack counted \(s.packetsReceived) packets, not \(count)"); failures += 1 }
    return failures == 0 ? 0 : 1
}

/// Valid packets of every kind to mutate: UDP, TCP SYN/data/options, echo, fragments, IPv6 extension headers.
private func fuzzSeeds() -> [[UInt8]] {
    let c4 = Endpoint(.v4(IPv4Address(192, 168, 1, 2)), 40000), r4 = Endpoint(.v4(IPv4Address(93, 184, 216, 34)), 443)
    let c6 = Endpoint(.v6(IPv6Address("2001:db8:1::2")!), 40000), r6 = Endpoint(.v6(IPv6Address("2001:db8:2::34")!), 443)
    let big = PacketBuilder.udp(from: c4, to: r4, payload: [UInt8](repeating: 1, count: 3000))
    let big6 = PacketBuilder.udp(from: c6, to: r6, payload: [UInt8](repeating: 1, count: 3000))
    var seeds = [
        PacketBuilder.udp(from: c4, to: r4, payload: [1, 2, 3]),
        PacketBuilder.udp(from: c6, to: r6, payload: [1, 2, 3]),
        PacketBuilder.tcp(from: c4, to: r4, sequence: 1, flags: PacketBuilder.syn, options: [2, 4, 5, 180, 1, 3, 3, 7, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0]),
        PacketBuilder.tcp(from: c6, to: r6, sequence: 1, flags: PacketBuilder.syn),
        PacketBuilder.tcp(from: c4, to: r4, sequence: 2, acknowledgment: 9, flags: PacketBuilder.ack, payload: [9, 9, 9]),
        PacketBuilder.tcp(from: c4, to: r4, sequence: 2, acknowledgment: 9, flags: PacketBuilder.ack | PacketBuilder.fin),
        PacketBuilder.tcp(from: c6, to: r6, sequence: 2, acknowledgment: 9, flags: PacketBuilder.ack, payload: [UInt8](repeating: 7, count: 1400)),
        PacketBuilder.echoRequest(from: c4.address, to: r4.address, identifier: 1, sequence: 1, payload: [1]),
        PacketBuilder.echoRequest(from: c6.address, to: r6.address, identifier: 1, sequence: 1, payload: [1]),
    ]
    seeds += PacketBuilder.fragment(big, dataPerFragment: 1000) + PacketBuilder.fragment(big6, dataPerFragment: 1000)
    return seeds
}

/// Flips, overwrites, truncates or extends a few bytes; header fields (the first 60) most often.
private func mutate(_ bytes: inout [UInt8], _ rng: inout SeededRandom) {
    for _ in 0..<Int(1 + rng.next() % 4) {
        switch rng.next() % 6 {
        case 0 where !bytes.isEmpty: bytes[Int(rng.next() % UInt64(min(bytes.count, 60)))] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
        case 1 where !bytes.isEmpty: bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next())
        case 2: bytes.removeLast(Int(rng.next() % UInt64(bytes.count + 1)))
        case 3: for _ in 0..<Int(rng.next() % 16) { bytes.append(UInt8(truncatingIfNeeded: rng.next())) }
        case 4 where bytes.count > 40:
            // Random addresses and ports spread flows over the table (IPv4 offsets; harmless elsewhere).
            bytes[12 + Int(rng.next() % 12)] = UInt8(truncatingIfNeeded: rng.next())
        case 5 where bytes.count > 33 && bytes[0] >> 4 == 4:
            bytes[33] = UInt8(truncatingIfNeeded: rng.next())  // TCP flags of an IPv4 packet without options
        default: break
        }
    }
}

/// Runs every header view and the GSO segmenter over `bytes`; the result is used so nothing is skipped.
private func exerciseParsers(_ bytes: [UInt8]) -> Int {
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
    if let tcp = try? TCPHeaderView(validating: bytes.span.bytes) { touched &+= Int(tcp.sourcePort) }
    let gso = [VirtioNetHeader.gsoTCPv4, VirtioNetHeader.gsoTCPv6, VirtioNetHeader.gsoUDPL4][bytes.count % 3]
    let offload = VirtioNetHeader(flags: 1, gsoType: gso, headerLength: 0, gsoSize: UInt16(1 + bytes.count % 97), checksumStart: 20, checksumOffset: 16)
    bytes.withUnsafeBytes { raw in
        guard let segmenter = try? GSOSegmenter(packet: raw, offload: offload) else { return }
        withUnsafeTemporaryAllocation(byteCount: 65536 + 128, alignment: 8) { out in
            for i in 0..<min(segmenter.count, 4) { touched &+= segmenter.segment(i, into: out) }
        }
    }
    return touched
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
