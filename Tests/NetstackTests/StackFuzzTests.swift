import Testing
import Glibc
import NIOCore
import NetstackWire
import Netstack
import NetstackTesting

// Whatever a peer sends, the stack must not trap and must keep its bounds. Mutated valid packets of
// every kind go into a transparent stack whose owner accepts, rejects and reads at random.

private func seedPackets() -> [[UInt8]] {
    let c4 = Endpoint(client4, 40000), r4 = Endpoint(remote4, 443)
    let c6 = Endpoint(client6, 40000), r6 = Endpoint(remote6, 443)
    let big = PacketBuilder.udp(from: c4, to: r4, payload: [UInt8](repeating: 1, count: 3000))
    let big6 = PacketBuilder.udp(from: c6, to: r6, payload: [UInt8](repeating: 1, count: 3000))
    return [
        PacketBuilder.udp(from: c4, to: r4, payload: [1, 2, 3]),
        PacketBuilder.udp(from: c6, to: r6, payload: [1, 2, 3]),
        PacketBuilder.tcp(from: c4, to: r4, sequence: 1, flags: PacketBuilder.syn, options: [2, 4, 5, 180]),
        PacketBuilder.tcp(from: c6, to: r6, sequence: 1, flags: PacketBuilder.syn),
        PacketBuilder.tcp(from: c4, to: r4, sequence: 2, acknowledgment: 9, flags: PacketBuilder.ack, payload: [9, 9, 9]),
        PacketBuilder.echoRequest(from: client4, to: remote4, identifier: 1, sequence: 1, payload: [1]),
        PacketBuilder.echoRequest(from: client6, to: own6, identifier: 1, sequence: 1, payload: [1]),
    ] + PacketBuilder.fragment(big, dataPerFragment: 1000) + PacketBuilder.fragment(big6, dataPerFragment: 1000)
}

@Test func stackSurvivesMutatedTraffic() {
    var configuration = StackConfiguration()
    configuration.transparent = true
    configuration.answersEchoForAnyDestination = true
    configuration.ipv4Addresses = [IPv4Address(10, 0, 0, 1)]
    configuration.ipv6Addresses = [IPv6Address("2001:db8::1")!]
    configuration.maximumFlows = 64
    configuration.synBacklog = 16
    configuration.reassemblyMemory = 64 << 10
    let stack = Stack(configuration: configuration, seed: 77)
    var rng = SeededRandom(seed: 78)
    let seeds = seedPackets()
    var now = Instant.zero
    var batch = PacketBatch(), output = PacketBatch()
    // NETSTACK_FUZZ raises the count for a long run.
    let iterations = getenv("NETSTACK_FUZZ").flatMap { Int(String(cString: $0)) } ?? 20_000
    for _ in 0..<iterations {
        var bytes = seeds[Int(rng.next() % UInt64(seeds.count))]
        for _ in 0..<Int(rng.next() % 4) {
            switch rng.next() % 4 {
            case 0 where !bytes.isEmpty: bytes[Int(rng.next() % UInt64(min(bytes.count, 60)))] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
            case 1: bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count + 1))))
            case 3 where bytes.count > 33 && bytes[9] == 6:
                // TCP flags at random: SYN|FIN, RST|ACK, URG, nothing.
                bytes[33] = UInt8(truncatingIfNeeded: rng.next())
            case 2 where bytes.count > 28:
                // Random ports/addresses in the flow key spread flows over the table.
                bytes[Int(rng.next() % 8) + 12] = UInt8(truncatingIfNeeded: rng.next())
            default: break
            }
        }
        // A partial-checksum flag now and then, as TUN would send, so mutated payloads get through.
        let offload = rng.next() % 3 == 0
            ? VirtioNetHeader(flags: 1, gsoType: 0, headerLength: 0, gsoSize: 0, checksumStart: 20, checksumOffset: 6) : .none
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
                while (try? stack.receiveDatagram(on: id)) ?? nil != nil {}
                while (try? stack.read(on: id)) ?? nil != nil {}
                if rng.next() % 8 == 0 { try? stack.close(id, abort: rng.next() % 2 == 0) }
            default: break
            }
        }
        now += .milliseconds(Int64(rng.next() % 50))
        _ = stack.transmit(into: &output, now: now)
        for packet in output.packets { #expect(ParsedPacket(packet.bytes) != nil) }
        stack.recycle(&output)
        #expect(stack.numberOfFlows <= 64)
    }
    #expect(stack.statistics.packetsReceived == iterations)
    #expect(stack.statistics.malformed > 0 && stack.statistics.flowsOpened > 0)
}
