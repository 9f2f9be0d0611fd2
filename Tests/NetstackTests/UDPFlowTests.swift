import Testing
import NIOCore
import NetstackWire
import Netstack
import NetstackTesting

@Test(arguments: [(client4, remote4), (client6, remote6)])
func transparentUDPHandsOverOriginalDestinationBeforeAnswering(client: IPAddress, remote: IPAddress) throws {
    let h = Harness(transparent: true)
    h.inject(PacketBuilder.udp(from: endpoint(client, 40000), to: endpoint(remote, 53), payload: Array("query".utf8)))
    let events = h.events()
    guard case .incoming(let id, let key)? = events.first else { Issue.record("no incoming: \(events)"); return }
    #expect(key == FlowKey(proto: .udp, local: endpoint(remote, 53), remote: endpoint(client, 40000)))
    #expect(h.output().isEmpty)  // nothing answered before the decision
    #expect(throws: FlowError.invalidState) { _ = try h.stack.receiveDatagram(on: id) }
    #expect(h.stack.peekFirstDatagram(of: id)?.bytes == Array("query".utf8))  // sniffable before deciding

    try h.stack.accept(id)
    #expect(h.events() == [.readable(id)])
    #expect(try h.stack.receiveDatagram(on: id)?.bytes == Array("query".utf8))
    #expect(try h.stack.receiveDatagram(on: id) == nil)

    var answer = PacketBuffer(capacity: 64)
    answer.writeString("answer")
    try h.stack.sendDatagram(answer, on: id)
    let reply = try #require(h.output().first)
    #expect(reply.source == remote && reply.sourcePort == 53)
    #expect(reply.destination == client && reply.destinationPort == 40000)
    #expect(reply.payload == Array("answer".utf8) && reply.checksumsValid)

    // Later datagrams of the flow arrive without a new incoming event.
    h.inject(PacketBuilder.udp(from: endpoint(client, 40000), to: endpoint(remote, 53), payload: [1]))
    #expect(h.events() == [.readable(id)])
    #expect(h.stack.numberOfFlows == 1)
}

@Test func rejectionsAnswerAsSingBoxReject() throws {
    for (how, code) in [(FlowRejection.reset, ICMPv4Type.portUnreachable), (.unreachable, ICMPv4Type.administrativelyProhibited)] {
        let h = Harness(transparent: true)
        let packet = PacketBuilder.udp(from: endpoint(client4, 40000), to: endpoint(remote4, 443), payload: [9, 9])
        h.inject(packet)
        guard case .incoming(let id, _)? = h.events().first else { Issue.record("no incoming"); return }
        try h.stack.reject(id, how)
        let error = try #require(h.output().first)
        #expect(error.icmpType == ICMPv4Type.destinationUnreachable && error.icmpCode == code)
        #expect(error.source == remote4 && error.destination == client4)
        #expect(error.payload == packet)  // the whole small datagram is quoted
        #expect(error.checksumsValid)
        #expect(h.stack.numberOfFlows == 0)
        #expect(throws: FlowError.unknownFlow) { try h.stack.accept(id) }
    }
    let h = Harness(transparent: true)
    h.inject(PacketBuilder.udp(from: endpoint(client4, 1), to: endpoint(remote4, 2), payload: []))
    guard case .incoming(let id, _)? = h.events().first else { Issue.record("no incoming"); return }
    try h.stack.reject(id, .drop)
    #expect(h.output().isEmpty && h.stack.numberOfFlows == 0)
}

@Test func ordinaryModeListensAndRefusesClosedPorts() throws {
    let h = Harness()
    h.inject(PacketBuilder.udp(from: endpoint(client4, 5000), to: endpoint(own4, 9999), payload: [1]))
    let refused = try #require(h.output().first)
    #expect(refused.icmpType == 3 && refused.icmpCode == 3 && refused.source == own4)
    #expect(h.events().isEmpty)

    try h.stack.listen(.udp, port: 9999)
    #expect(throws: FlowError.addressInUse) { try h.stack.listen(.udp, port: 9999) }
    h.inject(PacketBuilder.udp(from: endpoint(client4, 5000), to: endpoint(own4, 9999), payload: [1]))
    guard case .incoming(_, let key)? = h.events().first else { Issue.record("no incoming"); return }
    #expect(key.local == endpoint(own4, 9999))
    // Not our address, not transparent: silently not for us.
    h.inject(PacketBuilder.udp(from: endpoint(client4, 5000), to: endpoint(remote4, 9999), payload: [1]))
    #expect(h.events().isEmpty && h.output().isEmpty)
    #expect(h.stack.statistics.notForUs == 1)
}

@Test func udpFlowsCloseWhenIdleAndTrafficKeepsThemOpen() throws {
    let h = Harness(transparent: true) { $0.udpIdleTimeout = .seconds(60) }
    let datagram = PacketBuilder.udp(from: endpoint(client4, 7), to: endpoint(remote4, 7), payload: [1])
    h.inject(datagram)
    guard case .incoming(let id, _)? = h.events().first else { Issue.record("no incoming"); return }
    try h.stack.accept(id)
    _ = h.events()
    _ = try h.stack.receiveDatagram(on: id)
    h.advance(.seconds(50)); h.inject(datagram); _ = h.output()
    h.advance(.seconds(50)); _ = h.output()
    #expect(h.events() == [.readable(id)])  // still open at 100 s: traffic at 50 s moved the deadline
    h.advance(.seconds(11)); _ = h.output()
    #expect(h.events() == [.closed(id, .idle)])
    #expect(h.stack.numberOfFlows == 0)
    #expect(throws: FlowError.unknownFlow) { try h.stack.sendDatagram(PacketBuffer(), on: id) }
}

@Test func undecidedFlowsExpire() {
    let h = Harness(transparent: true) { $0.pendingTimeout = .seconds(5) }
    h.inject(PacketBuilder.udp(from: endpoint(client4, 7), to: endpoint(remote4, 7), payload: [1]))
    _ = h.events()
    h.advance(.seconds(4)); _ = h.output()
    #expect(h.stack.numberOfFlows == 1)
    h.advance(.seconds(2)); _ = h.output()
    #expect(h.stack.numberOfFlows == 0)
    #expect(h.events().isEmpty)  // the owner never accepted it: no close event
}

@Test func boundsFlowsAndBufferedBytes() throws {
    let h = Harness(transparent: true) { $0.maximumFlows = 3; $0.udpReceiveBufferBytes = 100 }
    for port in UInt16(1)...5 {
        h.inject(PacketBuilder.udp(from: endpoint(client4, port), to: endpoint(remote4, 53), payload: [UInt8](repeating: 0, count: 60)))
    }
    let incoming = h.events()
    #expect(incoming.count == 3)
    #expect(h.stack.statistics.flowLimitDrops == 2)
    guard case .incoming(let id, _)? = incoming.first else { return }
    // 60 bytes queued; a second 60 would pass the 100-byte per-flow buffer.
    h.inject(PacketBuilder.udp(from: endpoint(client4, 1), to: endpoint(remote4, 53), payload: [UInt8](repeating: 0, count: 60)))
    #expect(h.stack.statistics.udpDatagramsDropped == 3)
    try h.stack.accept(id)
    #expect(try h.stack.receiveDatagram(on: id)?.readableBytes == 60)
    #expect(try h.stack.receiveDatagram(on: id) == nil)
}

@Test func dialsOutFromOwnAddressWithEphemeralPort() throws {
    let h = Harness()
    let id = try h.stack.openUDP(to: endpoint(remote4, 53))
    let key = try #require(h.stack.key(of: id))
    #expect(key.local.address == own4 && (32768...60999).contains(key.local.port))
    var query = PacketBuffer(); query.writeString("q")
    try h.stack.sendDatagram(query, on: id)
    let sent = try #require(h.output().first)
    #expect(sent.source == own4 && sent.sourcePort == key.local.port && sent.destinationPort == 53 && sent.checksumsValid)
    h.inject(PacketBuilder.udp(from: endpoint(remote4, 53), to: key.local, payload: [42]))
    #expect(h.events() == [.readable(id)])
    #expect(try h.stack.receiveDatagram(on: id)?.bytes == [42])
    #expect(throws: FlowError.noLocalAddress) {
        _ = try Stack(configuration: StackConfiguration(), seed: 1).openUDP(to: endpoint(remote6, 53))
    }
}

@Test func verifiesUDPChecksumsUnlessOffloaded() throws {
    let h = Harness(transparent: true)
    var packet = PacketBuilder.udp(from: endpoint(client4, 1000), to: endpoint(remote4, 53), payload: [1, 2, 3, 4])
    packet[packet.count - 1] ^= 0x55
    h.inject(packet)
    #expect(h.events().isEmpty && h.stack.statistics.badChecksum == 1)
    // The same bytes with NEEDS_CSUM: the kernel built it, the field is partial; trust it.
    let partial = VirtioNetHeader(flags: VirtioNetHeader.flagNeedsChecksum, gsoType: 0, headerLength: 0, gsoSize: 0,
                                  checksumStart: 20, checksumOffset: 6)
    h.inject(packet, offload: partial)
    #expect(h.events().count == 1)
}

@Test func splitsUSOSuperDatagrams() throws {
    let h = Harness(transparent: true)
    let payload = (0..<2500).map { UInt8(truncatingIfNeeded: $0) }
    let packet = PacketBuilder.udp(from: endpoint(client4, 1000), to: endpoint(remote4, 443), payload: payload)
    let uso = VirtioNetHeader(flags: 1, gsoType: VirtioNetHeader.gsoUDPL4, headerLength: 28, gsoSize: 1000,
                              checksumStart: 20, checksumOffset: 6)
    h.inject(packet, offload: uso)
    guard case .incoming(let id, _)? = h.events().first else { Issue.record("no incoming"); return }
    try h.stack.accept(id)
    var sizes: [Int] = []
    var joined: [UInt8] = []
    while let d = try h.stack.receiveDatagram(on: id) { sizes.append(d.readableBytes); joined += d.bytes }
    #expect(sizes == [1000, 1000, 500])
    #expect(joined == payload)
}

@Test(arguments: [(client4, remote4), (client6, remote6)])
func fragmentsLargeDatagramsAndTheOtherStackReassembles(client: IPAddress, remote: IPAddress) throws {
    // Stack A (transparent gateway) answers a flow with an 8000-byte datagram over a 1500-byte MTU;
    // stack B (the client's host) reassembles it.
    var ca = StackConfiguration(); ca.transparent = true
    var cb = StackConfiguration()
    if client.isIPv4 { cb.ipv4Addresses = [IPv4Address(client.description)!] } else { cb.ipv6Addresses = [IPv6Address(client.description)!] }
    let a = Stack(configuration: ca, seed: 1), b = Stack(configuration: cb, seed: 2)
    let link = SimulatedLink(a: a, b: b, impairments: .init(reordering: 0.3), seed: 3)
    let dial = try b.openUDP(to: endpoint(remote, 4242))
    var hello = PacketBuffer(); hello.writeString("hello")
    try b.sendDatagram(hello, on: dial)
    var answered = false
    var received: [UInt8] = []
    let big = (0..<8000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
    link.run(timeout: .seconds(5), until: { !received.isEmpty }) {
        while let e = a.nextEvent() {
            if case .incoming(let id, _) = e, !answered {
                try? a.accept(id)
                var out = PacketBuffer(); out.writeBytes(big)
                try? a.sendDatagram(out, on: id)
                answered = true
            }
        }
        while let e = b.nextEvent() {
            if case .readable(let id) = e, let d = try? b.receiveDatagram(on: id) { received = d.bytes }
        }
    }
    #expect(received == big)
    #expect(b.statistics.datagramsReassembled == 1)
    #expect(b.statistics.fragmentsReceived == 6)
}
