// The netstack fuzzer (issue #3, acceptance 3): random and mutated packets through every wire parser
// and a transparent Stack's whole input path, whose owner accepts, rejects, reads and closes at random.
// One engine serves both runs: the default test suite's short one (NetstackTests/StackFuzzTests,
// NetstackWireTests/FuzzTests) and `netstack-bench fuzz`'s long one, which adds timing and RSS.
// Sans-I/O like the stack: no clock, no randomness but the seeded generator.
package import Netstack
import NetstackWire

/// Drives one transparent `Stack` with fuzzed packets, one `step()` each, and keeps what a run checks:
/// every packet the stack sends must parse, and the flow table and buffered bytes must stay bounded.
package struct StackFuzzer {
    /// The configuration the stack runs with.
    package let configuration: StackConfiguration
    /// The stack under test.
    package let stack: Stack
    private var random: SeededRandom
    private let seeds: [[UInt8]]
    private var now = Instant.zero
    private var batch = PacketBatch(), output = PacketBatch()
    /// Packets fed so far.
    package private(set) var iterations = 0
    /// Packets the stack sent.
    package private(set) var sent = 0
    /// Sent packets that did not parse (must stay 0).
    package private(set) var unparsableOutput = 0
    /// The first iteration that sent an unparsable packet.
    package private(set) var firstUnparsable: Int?
    /// The largest flow table seen.
    package private(set) var peakFlows = 0
    /// The most bytes the stack buffered at once.
    package private(set) var peakBuffered = 0
    /// What the parsers touched (kept so nothing is optimised away).
    package private(set) var sink = 0

    /// A transparent stack that answers echo for any destination, with small limits so a run reaches them.
    package static var defaultConfiguration: StackConfiguration {
        var configuration = StackConfiguration()
        configuration.transparent = true
        configuration.answersEchoForAnyDestination = true
        configuration.ipv4Addresses = [IPv4Address(10, 0, 0, 1)]
        configuration.ipv6Addresses = [IPv6Address("2001:db8::1")!]
        configuration.loopbackAddresses = StackFuzzer.loopbackAddresses
        configuration.maximumFlows = 256
        configuration.synBacklog = 64
        configuration.reassemblyMemory = 256 << 10
        configuration.totalBufferBytes = 8 << 20
        return configuration
    }

    /// A fuzzer whose whole run follows from `seed`.
    package init(seed: UInt64, configuration: StackConfiguration = StackFuzzer.defaultConfiguration) {
        self.configuration = configuration
        stack = Stack(configuration: configuration, seed: seed)
        random = SeededRandom(seed: seed &+ 1)
        seeds = StackFuzzer.seedPackets()
    }

    /// Whether the flow table and the buffered bytes stayed within the configured limits.
    package var boundsHeld: Bool {
        peakFlows <= configuration.maximumFlows && peakBuffered <= configuration.totalBufferBytes + configuration.reassemblyMemory
    }

    /// Feeds one packet (random bytes every eighth time, else a mutated seed) through the parsers and
    /// the stack, plays the owner at random, advances time by up to 50 ms and checks what was sent.
    package mutating func step() {
        var bytes: [UInt8]
        if iterations % 8 == 0 {
            bytes = (0..<Int(random.next() % 200)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        } else {
            bytes = seeds[Int(random.next() % UInt64(seeds.count))]
            StackFuzzer.mutate(&bytes, &random)
        }
        sink &+= StackFuzzer.exerciseParsers(bytes)
        // A partial-checksum flag now and then, as a TUN with offloads sends, so mutated payloads get in.
        let offload = random.next() % 3 == 0
            ? VirtioNetHeader(flags: 1, gsoType: 0, headerLength: 0, gsoSize: 0, checksumStart: 20,
                              checksumOffset: UInt16(random.next() % 2 == 0 ? 6 : 16))
            : .none
        batch.append(Packet(bytes: PacketBuilder.buffer(bytes), offload: offload))
        stack.receive(&batch, now: now)
        while let event = stack.nextEvent() {
            switch event {
            case .incoming(let id, _):
                switch random.next() % 4 {
                case 0: try? stack.reject(id, .reset)
                case 1: try? stack.reject(id, .unreachable)
                default: try? stack.accept(id)
                }
            case .readable(let id):
                if random.next() % 4 != 0 {  // sometimes leave data unread: buffers must stay bounded anyway
                    while (try? stack.receiveDatagram(on: id)) ?? nil != nil {}
                    while (try? stack.read(on: id)) ?? nil != nil {}
                }
                if random.next() % 8 == 0 { try? stack.close(id, abort: random.next() % 2 == 0) }
            default: break
            }
        }
        now += .milliseconds(Int64(random.next() % 50))
        _ = stack.transmit(into: &output, now: now)
        for packet in output.packets where ParsedPacket(packet.bytes) == nil {
            unparsableOutput += 1
            if firstUnparsable == nil { firstUnparsable = iterations }
        }
        sent += output.count
        stack.recycle(&output)
        peakFlows = max(peakFlows, stack.numberOfFlows)
        peakBuffered = max(peakBuffered, stack.bufferedByteCount)
        iterations += 1
    }

    /// tun `loopback_address`es of the default configuration: TCP to them is turned around.
    static let loopbackAddresses: [IPAddress] = [.v4(IPv4Address(10, 7, 0, 1)), .v6(IPv6Address("fdfe:dcba:9876::7")!)]

    /// Valid packets of every kind to mutate: UDP, TCP SYN (with options), data and FIN, echo, fragments,
    /// TCP to the loopback addresses.
    package static func seedPackets() -> [[UInt8]] {
        let c4 = Endpoint(.v4(IPv4Address(192, 168, 1, 2)), 40000), r4 = Endpoint(.v4(IPv4Address(93, 184, 216, 34)), 443)
        let c6 = Endpoint(.v6(IPv6Address("2001:db8:1::2")!), 40000), r6 = Endpoint(.v6(IPv6Address("2001:db8:2::34")!), 443)
        let big = PacketBuilder.udp(from: c4, to: r4, payload: [UInt8](repeating: 1, count: 3000))
        let big6 = PacketBuilder.udp(from: c6, to: r6, payload: [UInt8](repeating: 1, count: 3000))
        let seeds = [
            PacketBuilder.udp(from: c4, to: r4, payload: [1, 2, 3]),
            PacketBuilder.udp(from: c6, to: r6, payload: [1, 2, 3]),
            PacketBuilder.tcp(from: c4, to: r4, sequence: 1, flags: PacketBuilder.syn, options: [2, 4, 5, 180, 1, 3, 3, 7, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0]),
            PacketBuilder.tcp(from: c6, to: r6, sequence: 1, flags: PacketBuilder.syn),
            PacketBuilder.tcp(from: c4, to: r4, sequence: 2, acknowledgment: 9, flags: PacketBuilder.ack, payload: [9, 9, 9]),
            PacketBuilder.tcp(from: c4, to: r4, sequence: 2, acknowledgment: 9, flags: PacketBuilder.ack | PacketBuilder.fin),
            PacketBuilder.tcp(from: c6, to: r6, sequence: 2, acknowledgment: 9, flags: PacketBuilder.ack, payload: [UInt8](repeating: 7, count: 1400)),
            PacketBuilder.echoRequest(from: c4.address, to: r4.address, identifier: 1, sequence: 1, payload: [1]),
            PacketBuilder.echoRequest(from: c6.address, to: r6.address, identifier: 1, sequence: 1, payload: [1]),
            PacketBuilder.tcp(from: c4, to: Endpoint(loopbackAddresses[0], 8080), sequence: 1, flags: PacketBuilder.syn),
            PacketBuilder.tcp(from: c6, to: Endpoint(loopbackAddresses[1], 8080), sequence: 5, acknowledgment: 9,
                              flags: PacketBuilder.ack, payload: [1, 2, 3]),
        ]
        return seeds + PacketBuilder.fragment(big, dataPerFragment: 1000) + PacketBuilder.fragment(big6, dataPerFragment: 1000)
    }

    /// Flips, overwrites, truncates or extends a few bytes; header fields (the first 60) most often.
    package static func mutate(_ bytes: inout [UInt8], _ random: inout SeededRandom) {
        for _ in 0..<Int(1 + random.next() % 4) {
            switch random.next() % 6 {
            case 0 where !bytes.isEmpty: bytes[Int(random.next() % UInt64(min(bytes.count, 60)))] ^= UInt8(truncatingIfNeeded: random.next() | 1)
            case 1 where !bytes.isEmpty: bytes[Int(random.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: random.next())
            case 2: bytes.removeLast(Int(random.next() % UInt64(bytes.count + 1)))
            case 3: for _ in 0..<Int(random.next() % 16) { bytes.append(UInt8(truncatingIfNeeded: random.next())) }
            case 4 where bytes.count > 40:
                // Random addresses and ports spread flows over the table (IPv4 offsets; harmless elsewhere).
                bytes[12 + Int(random.next() % 12)] = UInt8(truncatingIfNeeded: random.next())
            case 5 where bytes.count > 33 && bytes[0] >> 4 == 4:
                bytes[33] = UInt8(truncatingIfNeeded: random.next())  // TCP flags of an IPv4 packet without options
            default: break
            }
        }
    }

    /// Runs every header view, the vnet header, checksum completion and the GSO segmenter (all three
    /// GSO types, up to 4 segments) over `bytes`; the result is used so nothing is optimised away.
    package static func exerciseParsers(_ bytes: [UInt8]) -> Int {
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
        if let header = try? VirtioNetHeader(validating: bytes.span.bytes) { touched &+= Int(header.gsoSize) }
        let gsoSize = UInt16(1 + bytes.count % 97)
        for gso in [VirtioNetHeader.gsoTCPv4, VirtioNetHeader.gsoTCPv6, VirtioNetHeader.gsoUDPL4] {
            let offload = VirtioNetHeader(flags: 1, gsoType: gso, headerLength: 0, gsoSize: gsoSize, checksumStart: 20, checksumOffset: 16)
            bytes.withUnsafeBytes { raw in
                guard let segmenter = try? GSOSegmenter(packet: raw, offload: offload) else { return }
                withUnsafeTemporaryAllocation(byteCount: 65536 + 128, alignment: 8) { out in
                    for index in 0..<min(segmenter.count, 4) { touched &+= segmenter.segment(index, into: out) }
                }
            }
        }
        var partial = bytes
        let checksum = VirtioNetHeader(flags: 1, gsoType: 0, headerLength: 0, gsoSize: 0, checksumStart: 20, checksumOffset: 6)
        partial.withUnsafeMutableBytes { try? checksum.completeChecksum(in: $0) }
        return touched &+ Int(partial.first ?? 0)
    }
}
