import Testing
import NIOCore
import NetstackWire
import Netstack
import NetstackTesting

@Test(arguments: [(client4, remote4), (client6, remote6)])
func synForAnyDestinationIsHandedOverBeforeAnswering(client: IPAddress, remote: IPAddress) throws {
    let h = Harness(transparent: true)
    h.inject(PacketBuilder.tcp(from: endpoint(client, 51000), to: endpoint(remote, 443), sequence: 1000, flags: PacketBuilder.syn))
    let events = h.events()
    guard case .incoming(let id, let key)? = events.first else { Issue.record("no incoming: \(events)"); return }
    #expect(key == FlowKey(proto: .tcp, local: endpoint(remote, 443), remote: endpoint(client, 51000)))
    #expect(h.output().isEmpty)
    // A retransmitted SYN while the owner decides is absorbed.
    h.inject(PacketBuilder.tcp(from: endpoint(client, 51000), to: endpoint(remote, 443), sequence: 1000, flags: PacketBuilder.syn))
    #expect(h.events().isEmpty && h.output().isEmpty)

    try h.stack.reject(id, .reset)
    let rst = try #require(h.output().first)
    #expect(rst.tcpFlags == PacketBuilder.rst | PacketBuilder.ack)
    #expect(rst.sequence == 0 && rst.acknowledgment == 1001)
    #expect(rst.source == remote && rst.sourcePort == 443 && rst.destination == client && rst.destinationPort == 51000)
    #expect(rst.checksumsValid)
    #expect(h.stack.numberOfFlows == 0)
}

@Test func rejectWithUnreachableAndDrop() throws {
    let h = Harness(transparent: true)
    let syn = PacketBuilder.tcp(from: endpoint(client4, 51000), to: endpoint(remote4, 80), sequence: 5, flags: PacketBuilder.syn)
    h.inject(syn)
    guard case .incoming(let id, _)? = h.events().first else { Issue.record("no incoming"); return }
    try h.stack.reject(id, .unreachable)
    let icmp = try #require(h.output().first)
    #expect(icmp.icmpType == 3 && icmp.icmpCode == 13 && icmp.payload == syn)
    h.inject(syn)
    guard case .incoming(let again, _)? = h.events().first else { Issue.record("no incoming"); return }
    try h.stack.reject(again, .drop)
    #expect(h.output().isEmpty)
}

@Test func segmentsWithoutConnectionGetRFC9293Resets() throws {
    let h = Harness(transparent: true)
    // ACK segment: <SEQ=SEG.ACK><CTL=RST>.
    h.inject(PacketBuilder.tcp(from: endpoint(client4, 1), to: endpoint(remote4, 2), sequence: 10, acknowledgment: 777,
                               flags: PacketBuilder.ack, payload: [1, 2, 3]))
    let r1 = try #require(h.output().first)
    #expect(r1.tcpFlags == PacketBuilder.rst && r1.sequence == 777)
    // No ACK (a FIN with data): <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>; FIN counts one.
    h.inject(PacketBuilder.tcp(from: endpoint(client4, 1), to: endpoint(remote4, 2), sequence: 10, flags: PacketBuilder.fin, payload: [1, 2, 3]))
    let r2 = try #require(h.output().first)
    #expect(r2.tcpFlags == PacketBuilder.rst | PacketBuilder.ack && r2.sequence == 0 && r2.acknowledgment == 14)
    // A RST is never answered.
    h.inject(PacketBuilder.tcp(from: endpoint(client4, 1), to: endpoint(remote4, 2), sequence: 10, flags: PacketBuilder.rst))
    #expect(h.output().isEmpty)
    #expect(h.stack.statistics.tcpResetsSent == 2)
}

@Test func ordinaryModeResetsClosedPortsAndIgnoresForeignAddresses() throws {
    let h = Harness()
    h.inject(PacketBuilder.tcp(from: endpoint(client4, 1), to: endpoint(own4, 8080), sequence: 1, flags: PacketBuilder.syn))
    #expect(h.output().first?.tcpFlags == PacketBuilder.rst | PacketBuilder.ack)
    h.inject(PacketBuilder.tcp(from: endpoint(client4, 1), to: endpoint(remote4, 8080), sequence: 1, flags: PacketBuilder.syn))
    #expect(h.output().isEmpty)
    try h.stack.listen(.tcp, port: 8080)
    h.inject(PacketBuilder.tcp(from: endpoint(client4, 1), to: endpoint(own4, 8080), sequence: 1, flags: PacketBuilder.syn))
    guard case .incoming? = h.events().first else { Issue.record("no incoming"); return }
}

@Test func synBacklogIsBounded() {
    let h = Harness(transparent: true) { $0.synBacklog = 4 }
    for port in UInt16(1)...6 {
        h.inject(PacketBuilder.tcp(from: endpoint(client4, port), to: endpoint(remote4, 443), sequence: 1, flags: PacketBuilder.syn))
    }
    #expect(h.events().count == 4)
    #expect(h.stack.statistics.synBacklogDrops == 2)
    #expect(h.output().isEmpty)  // dropped SYNs are not answered; the client retries
}

@Test func clientResetWithdrawsPendingSYN() {
    let h = Harness(transparent: true)
    h.inject(PacketBuilder.tcp(from: endpoint(client4, 9), to: endpoint(remote4, 443), sequence: 1, flags: PacketBuilder.syn))
    #expect(h.stack.numberOfFlows == 1)
    h.inject(PacketBuilder.tcp(from: endpoint(client4, 9), to: endpoint(remote4, 443), sequence: 2, flags: PacketBuilder.rst))
    #expect(h.stack.numberOfFlows == 0)
}
