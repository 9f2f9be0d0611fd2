import Testing
import NIOCore
import NetstackWire
import Netstack
import NetstackTesting

@Test(arguments: [(client4, own4), (client6, own6)])
func answersEchoForOwnAddress(client: IPAddress, own: IPAddress) throws {
    let h = Harness()
    h.inject(PacketBuilder.echoRequest(from: client, to: own, identifier: 0x77, sequence: 3, payload: Array("ping".utf8)))
    let out = h.output()
    #expect(out.count == 1)
    let reply = try #require(out.first)
    #expect(reply.source == own && reply.destination == client)
    #expect(reply.icmpType == (client.isIPv4 ? ICMPv4Type.echoReply : ICMPv6Type.echoReply))
    #expect(reply.icmpRest == 0x0077_0003)
    #expect(reply.payload == Array("ping".utf8))
    #expect(reply.checksumsValid)
    #expect(h.stack.statistics.echoRequestsAnswered == 1)
}

@Test func ignoresEchoForOtherAddresses() {
    let h = Harness()
    h.inject(PacketBuilder.echoRequest(from: client4, to: remote4, identifier: 1, sequence: 1, payload: []))
    #expect(h.output().isEmpty)
    #expect(h.stack.statistics.notForUs == 1)
    // Transparent mode accepts the packet but only answers echo for any address when asked to.
    let t = Harness(transparent: true)
    t.inject(PacketBuilder.echoRequest(from: client4, to: remote4, identifier: 1, sequence: 1, payload: []))
    #expect(t.output().isEmpty)
    let any = Harness(transparent: true) { $0.answersEchoForAnyDestination = true }
    any.inject(PacketBuilder.echoRequest(from: client4, to: remote4, identifier: 1, sequence: 1, payload: []))
    #expect(any.output().first?.source == remote4)
}

@Test func dropsEchoWithBadChecksum() {
    let h = Harness()
    var packet = PacketBuilder.echoRequest(from: client4, to: own4, identifier: 1, sequence: 1, payload: [1, 2, 3])
    packet[packet.count - 1] ^= 0xff
    h.inject(packet)
    #expect(h.output().isEmpty)
    #expect(h.stack.statistics.badChecksum == 1)
}

@Test func unknownProtocolToOwnAddressGetsProtocolUnreachable() throws {
    let h = Harness()
    h.inject(PacketBuilder.ip(source: client4, destination: own4, proto: 47, transport: [0, 0, 0x08, 0x00]))
    let error = try #require(h.output().first)
    #expect(error.icmpType == ICMPv4Type.destinationUnreachable && error.icmpCode == ICMPv4Type.protocolUnreachable)
    #expect(error.checksumsValid)
}

@Test func rateLimitsICMPErrors() {
    let h = Harness { $0.icmpErrorBurst = 3; $0.icmpErrorsPerSecond = 10 }
    let probe = PacketBuilder.udp(from: endpoint(client4, 5000), to: endpoint(own4, 9), payload: [1])
    for _ in 0..<5 { h.inject(probe) }
    #expect(h.output().count == 3)
    #expect(h.stack.statistics.icmpErrorsRateLimited == 2)
    h.advance(.milliseconds(100))  // one token back at 10/s
    h.inject(probe); h.inject(probe)
    #expect(h.output().count == 1)
}

@Test func neverSendsErrorsAboutErrors() {
    let h = Harness()
    // An ICMP port-unreachable from the client, carried to an unknown protocol... here: sent to
    // an own address with a protocol we do not speak would draw protocol-unreachable, but an ICMP
    // error about an ICMP error must not be sent. Build an ICMP error and send it to a closed UDP port:
    // the stack must stay silent for the error itself.
    var icmp = [UInt8](repeating: 0, count: 8 + 28)
    icmp.withUnsafeMutableBytes { ICMPHeader(type: 3, code: 3).write(to: $0, pseudoHeaderSum: 0) }
    h.inject(PacketBuilder.ip(source: client4, destination: own4, proto: IPProtocol.icmp, transport: icmp))
    #expect(h.output().isEmpty)
    // A datagram to a broadcast destination never draws an error either.
    h.inject(PacketBuilder.udp(from: endpoint(client4, 1), to: endpoint(IPAddress("255.255.255.255")!, 9), payload: []))
    #expect(h.output().isEmpty)
}

@Test(arguments: [client4, client6])
func sendsPacketTooBigQuotingTheOriginal(client: IPAddress) throws {
    let h = Harness(transparent: true)
    let remote = client.isIPv4 ? remote4 : remote6
    let original = PacketBuilder.udp(from: endpoint(client, 4000), to: endpoint(remote, 53), payload: [UInt8](repeating: 7, count: 2000))
    h.stack.sendICMPError(.packetTooBig(mtu: 1280), about: PacketBuilder.buffer(original), now: h.now)
    let error = try #require(h.output().first)
    #expect(error.destination == client)
    // Router-originated errors come from our own address.
    #expect(error.source == (client.isIPv4 ? own4 : own6))
    if client.isIPv4 {
        #expect(error.icmpType == 3 && error.icmpCode == 4 && error.icmpRest == 1280)
        #expect(error.bytes.count == 576)
    } else {
        #expect(error.icmpType == 2 && error.icmpCode == 0 && error.icmpRest == 1280)
        #expect(error.bytes.count == 1280)
    }
    #expect(Array(error.payload.prefix(20)) == Array(original.prefix(20)))
    #expect(error.checksumsValid)
}

@Test(arguments: [(client4, remote4), (client6, remote6)])
func unreachableErrorsEndDialledFlows(client: IPAddress, remote: IPAddress) throws {
    // A client host (B) dials through a gateway (A) that refuses: UDP gets port unreachable, TCP a
    // SYN answered with ICMP administratively prohibited. B's flows end with `.unreachable`.
    var ca = StackConfiguration(); ca.transparent = true
    var cb = StackConfiguration()
    switch client {
    case .v4(let c): cb.ipv4Addresses = [c]
    case .v6(let c): cb.ipv6Addresses = [c]
    }
    let a = Stack(configuration: ca, seed: 1), b = Stack(configuration: cb, seed: 2)
    let link = SimulatedLink(a: a, b: b, seed: 3)
    let udp = try b.openUDP(to: Endpoint(remote, 53))
    try b.sendDatagram(PacketBuffer(string: "q"), on: udp)
    let tcp = try b.connectTCP(to: Endpoint(remote, 443))
    var closed: [FlowID: FlowCloseReason] = [:]
    link.run(timeout: .seconds(5), until: { closed.count == 2 }) {
        while let e = a.nextEvent() {
            if case .incoming(let id, let key) = e { try? a.reject(id, key.proto == .udp ? .reset : .unreachable) }
        }
        while let e = b.nextEvent() {
            if case .closed(let id, let reason) = e { closed[id] = reason }
        }
    }
    #expect(closed[udp] == .unreachable)
    #expect(closed[tcp] == .unreachable)
    #expect(b.numberOfFlows == 0)
}

@Test(arguments: [(own4, remote4), (own6, remote6)])
func packetTooBigLowersTheMSSOfADialledFlow(own: IPAddress, remote: IPAddress) throws {
    // Our stack dials out and sends full 1460-byte segments; a router on the path answers one with
    // "fragmentation needed" / "packet too big" for MTU 1280. Everything unacknowledged is resent in
    // segments that fit 1280, and later data keeps that size. A quote outside SND.UNA..<SND.NXT (a blind
    // attacker's guess) changes nothing.
    let h = Harness()
    var routerConfiguration = StackConfiguration()
    routerConfiguration.ipv4Addresses = [IPv4Address("10.9.9.9")!]
    routerConfiguration.ipv6Addresses = [IPv6Address("2001:db8:9::9")!]
    let router = Stack(configuration: routerConfiguration, seed: 3)
    func tooBig(about packet: ParsedPacket, mtu: Int) -> [UInt8] {
        router.sendICMPError(.packetTooBig(mtu: mtu), about: PacketBuilder.buffer(packet.bytes), now: h.now)
        var batch = PacketBatch()
        _ = router.transmit(into: &batch, now: h.now)
        return batch.packets.first.map { Array($0.bytes.readableBytesView) } ?? []
    }
    let id = try h.stack.connectTCP(to: Endpoint(remote, 80))
    let syn = try #require(h.output().first)
    let mss: [UInt8] = [2, 4, 0x05, 0xb4]  // 1460
    h.inject(PacketBuilder.tcp(from: Endpoint(remote, 80), to: Endpoint(own, syn.sourcePort), sequence: 5000,
                               acknowledgment: syn.sequence &+ 1, flags: PacketBuilder.syn | PacketBuilder.ack, options: mss))
    _ = h.output()
    var data = PacketBuffer(repeating: 0x5a, count: 8 * 1460)
    _ = try h.stack.send(&data, on: id)
    let sent = h.output().filter { !$0.payload.isEmpty }
    let first = try #require(sent.first)
    let limit = 1280 - (own.isIPv4 ? 20 : 40) - 20
    #expect(sent.count >= 2 && first.payload.count > limit)

    // Forged: the quoted sequence number is far outside what is in flight.
    var forged = first
    forged.bytes[(own.isIPv4 ? 20 : 40) + 4] &+= 0x40
    h.inject(tooBig(about: forged, mtu: 1280))
    #expect(h.stack.statistics.pathMTUReductions == 0)

    h.inject(tooBig(about: first, mtu: 1280))
    #expect(h.stack.statistics.pathMTUReductions == 1)
    let resent = h.output().filter { !$0.payload.isEmpty }
    #expect(!resent.isEmpty)
    #expect(resent.first?.sequence == first.sequence)
    #expect(resent.allSatisfy { $0.payload.count <= limit && $0.bytes.count <= 1280 })
    #expect(resent.allSatisfy { $0.checksumsValid })
}
