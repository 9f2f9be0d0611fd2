import Testing
import NIOCore
import NetstackWire
import Netstack
import NetstackTesting

/// Feeds fragments of a UDP datagram in `order` to a transparent stack; returns the harness.
func reassemble(client: IPAddress, remote: IPAddress, payload: [UInt8], step: Int, order: (Int) -> [Int]) -> (Harness, [UInt8]) {
    let h = Harness(transparent: true)
    let packet = PacketBuilder.udp(from: endpoint(client, 3000), to: endpoint(remote, 53), payload: payload)
    let fragments = PacketBuilder.fragment(packet, dataPerFragment: step)
    for i in order(fragments.count) { h.inject(fragments[i]) }
    return (h, packet)
}

@Test(arguments: [(client4, remote4), (client6, remote6)])
func reassemblesOutOfOrderFragments(client: IPAddress, remote: IPAddress) throws {
    let payload = (0..<3000).map { UInt8(truncatingIfNeeded: $0 * 31) }
    let (h, _) = reassemble(client: client, remote: remote, payload: payload, step: 800) { Array((0..<$0).reversed()) }
    guard case .incoming(let id, let key)? = h.events().first else { Issue.record("no incoming"); return }
    #expect(key.local == endpoint(remote, 53))
    try h.stack.accept(id)
    #expect(try h.stack.receiveDatagram(on: id)?.bytes == payload)
    #expect(h.stack.statistics.datagramsReassembled == 1)
}

@Test func ignoresDuplicatesAndDiscardsOverlaps() throws {
    let payload = [UInt8](repeating: 0xab, count: 2000)
    // Duplicate of fragment 0: ignored, the datagram still completes.
    let (dup, _) = reassemble(client: client4, remote: remote4, payload: payload, step: 800) { _ in [0, 0, 1, 2] }
    #expect(dup.events().count == 1)
    // An overlapping fragment (same start, different length) discards the datagram (RFC 5722 / Linux).
    let h = Harness(transparent: true)
    let packet = PacketBuilder.udp(from: endpoint(client4, 3000), to: endpoint(remote4, 53), payload: payload)
    let small = PacketBuilder.fragment(packet, dataPerFragment: 400)
    let large = PacketBuilder.fragment(packet, dataPerFragment: 800)
    h.inject(small[0]); h.inject(large[0])
    for f in large.dropFirst() { h.inject(f) }
    #expect(h.events().isEmpty)
    #expect(h.stack.statistics.fragmentsDropped >= 1)
}

@Test(arguments: [(client4, remote4), (client6, remote6)])
func timesOutIncompleteDatagramsWithTimeExceeded(client: IPAddress, remote: IPAddress) throws {
    let payload = [UInt8](repeating: 1, count: 2000)
    let (h, _) = reassemble(client: client, remote: remote, payload: payload, step: 800) { _ in [0, 2] }
    #expect(h.events().isEmpty)
    h.advance(.seconds(29)); #expect(h.output().isEmpty)
    h.advance(.seconds(2))
    let error = try #require(h.output().first)
    #expect(error.destination == client)
    #expect(error.icmpType == (client.isIPv4 ? 11 : 3) && error.icmpCode == 1)
    #expect(error.checksumsValid)
    #expect(h.stack.statistics.reassemblyTimeouts == 1)
    // Without the first fragment no error is sent (RFC 792, RFC 8200 §4.5).
    let (late, _) = reassemble(client: client, remote: remote, payload: payload, step: 800) { _ in [1, 2] }
    late.advance(.seconds(31))
    #expect(late.output().isEmpty)
}

@Test func reassemblyMemoryIsBounded() {
    // 4 KiB of reassembly memory: the oldest incomplete datagrams are evicted for new ones.
    let h = Harness(transparent: true) { $0.reassemblyMemory = 4096 }
    for id in UInt32(0)..<10 {
        let packet = PacketBuilder.udp(from: endpoint(client4, UInt16(1000 + id)), to: endpoint(remote4, 53),
                                       payload: [UInt8](repeating: 2, count: 3000))
        let fragments = PacketBuilder.fragment(packet, dataPerFragment: 1000, identification: id)
        h.inject(fragments[0])
        h.advance(.milliseconds(10))
    }
    #expect(h.stack.statistics.fragmentsDropped == 0)
    // The last datagram completes; the evicted first one cannot.
    let last = PacketBuilder.fragment(PacketBuilder.udp(from: endpoint(client4, 1009), to: endpoint(remote4, 53),
                                                        payload: [UInt8](repeating: 2, count: 3000)), dataPerFragment: 1000, identification: 9)
    for f in last.dropFirst() { h.inject(f) }
    let first = PacketBuilder.fragment(PacketBuilder.udp(from: endpoint(client4, 1000), to: endpoint(remote4, 53),
                                                         payload: [UInt8](repeating: 2, count: 3000)), dataPerFragment: 1000, identification: 0)
    for f in first.dropFirst() { h.inject(f) }
    let events = h.events()
    #expect(events.count == 1)
    if case .incoming(_, let key)? = events.first { #expect(key.remote.port == 1009) }
}

@Test(arguments: 0..<40)
func truncatedPacketsAreDroppedAndCounted(length: Int) {
    let h = Harness(transparent: true)
    let packet = PacketBuilder.udp(from: endpoint(client4, 1), to: endpoint(remote4, 2), payload: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
    h.inject(Array(packet.prefix(length)))
    #expect(h.events().isEmpty && h.output().isEmpty)
    #expect(h.stack.statistics.malformed == 1)
}
