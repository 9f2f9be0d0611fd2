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

@Test func segmentationOffloadEmitsGSOSuperSegmentsWithPartialChecksum() throws {
    let h = Harness(transparent: true) { $0.tcpSegmentationOffload = true }
    let client = endpoint(client4, 40000), server = endpoint(remote4, 443)
    // SYN with MSS 1460 and window scale 7, so the window is not the limit.
    h.inject(PacketBuilder.tcp(from: client, to: server, sequence: 1000, flags: PacketBuilder.syn,
                               options: [2, 4, 0x05, 0xb4, 1, 3, 3, 7]))
    guard case .incoming(let id, _)? = h.events().first else { Issue.record("no incoming"); return }
    try h.stack.accept(id)
    let synAck = try #require(h.output().first)
    h.inject(PacketBuilder.tcp(from: client, to: server, sequence: 1001, acknowledgment: synAck.sequence &+ 1,
                               flags: PacketBuilder.ack, window: 4096))
    var data = PacketBuffer(repeating: 0x61, count: 20_000)
    _ = try h.stack.send(&data, on: id)
    h.batch.removeAll()
    _ = h.stack.transmit(into: &h.batch, now: h.now)
    let gso = try #require(h.batch.packets.first { $0.offload.isGSO })
    #expect(gso.offload.gsoKind == VirtioNetHeader.gsoTCPv4 && gso.offload.needsChecksum)
    #expect(gso.offload.checksumStart == 20 && gso.offload.checksumOffset == 16)
    let mss = Int(gso.offload.gsoSize)
    #expect(mss > 1000 && mss <= 1460)
    // The field holds the pseudo-header sum over the whole TCP length, not complemented (SWIFT-LINUX §2).
    let bytes = Array(gso.bytes.readableBytesView)
    let tcpLength = bytes.count - 20
    let field = UInt16(bytes[36]) << 8 | UInt16(bytes[37])
    #expect(field == Checksum.pseudoHeaderSum(source: remote4, destination: client4, protocol: 6, length: tcpLength))
    // Cut as the kernel would: every piece is a valid segment and the payload is intact.
    var payload: [UInt8] = []
    try bytes.withUnsafeBytes { raw in
        let segmenter = try GSOSegmenter(packet: raw, offload: gso.offload)
        #expect(segmenter.count > 1)
        for i in 0..<segmenter.count {
            var out = [UInt8](repeating: 0, count: segmenter.length(ofSegment: i))
            _ = out.withUnsafeMutableBytes { segmenter.segment(i, into: $0) }
            let piece = try #require(ParsedPacket(out))
            #expect(piece.checksumsValid && piece.payload.count <= mss)
            payload += piece.payload
        }
    }
    #expect(payload.allSatisfy { $0 == 0x61 } && payload.count == bytes.count - 20 - Int(bytes[32] >> 4) * 4)
}

@Test func newConnectionsWaitWhileBuffersAreFull() throws {
    // 32 KiB for everything: one connection whose unread data fills it stops new SYNs being taken.
    let h = Harness(transparent: true) { $0.totalBufferBytes = 32 << 10 }
    let client = endpoint(client4, 40000), server = endpoint(remote4, 443)
    h.inject(PacketBuilder.tcp(from: client, to: server, sequence: 1000, flags: PacketBuilder.syn, options: [2, 4, 0x05, 0xb4]))
    guard case .incoming(let id, _)? = h.events().first else { Issue.record("no incoming"); return }
    try h.stack.accept(id)
    let synAck = try #require(h.output().first)
    var sequence: UInt32 = 1001
    h.inject(PacketBuilder.tcp(from: client, to: server, sequence: sequence, acknowledgment: synAck.sequence &+ 1, flags: PacketBuilder.ack))
    for _ in 0..<50 {
        h.inject(PacketBuilder.tcp(from: client, to: server, sequence: sequence, acknowledgment: synAck.sequence &+ 1,
                                   flags: PacketBuilder.ack, payload: [UInt8](repeating: 1, count: 1400)))
        sequence &+= 1400
        _ = h.output()
    }
    #expect(h.stack.bufferedByteCount >= 32 << 10)
    h.inject(PacketBuilder.tcp(from: endpoint(client4, 40001), to: server, sequence: 5, flags: PacketBuilder.syn))
    #expect(h.events().allSatisfy { if case .incoming = $0 { false } else { true } })
    #expect(h.stack.statistics.memoryPressureDrops == 1)
    // Reading the data frees the buffers; the retransmitted SYN is taken.
    while try h.stack.read(on: id) != nil {}
    #expect(h.stack.bufferedByteCount == 0)
    h.inject(PacketBuilder.tcp(from: endpoint(client4, 40001), to: server, sequence: 5, flags: PacketBuilder.syn))
    #expect(h.events().contains { if case .incoming = $0 { true } else { false } })
}

@Test func newSYNReplacesTimeWaitConnection() throws {
    // The gateway closes first and sits in TIME-WAIT; the client reuses its port with a higher
    // sequence number and gets a new incoming flow at once (RFC 6191), not after a SYN retry.
    let h = Harness(transparent: true)
    let client = endpoint(client4, 40000), server = endpoint(remote4, 443)
    h.inject(PacketBuilder.tcp(from: client, to: server, sequence: 1000, flags: PacketBuilder.syn))
    guard case .incoming(let id, _)? = h.events().first else { Issue.record("no incoming"); return }
    try h.stack.accept(id)
    let synAck = try #require(h.output().first)
    let serverSequence = synAck.sequence &+ 1
    h.inject(PacketBuilder.tcp(from: client, to: server, sequence: 1001, acknowledgment: serverSequence, flags: PacketBuilder.ack))
    try h.stack.shutdownWrite(id)
    let fin = try #require(h.output().first { $0.tcpFlags & PacketBuilder.fin != 0 })
    h.inject(PacketBuilder.tcp(from: client, to: server, sequence: 1001, acknowledgment: fin.sequence &+ 1,
                               flags: PacketBuilder.ack | PacketBuilder.fin))
    _ = h.output()
    #expect(h.stack.tcpState(of: id).map { "\($0)" } == "TIME-WAIT")
    _ = h.events()
    h.inject(PacketBuilder.tcp(from: client, to: server, sequence: 900_000, flags: PacketBuilder.syn))
    let events = h.events()
    #expect(events.contains { if case .incoming(let new, _) = $0 { new != id } else { false } })
    #expect(h.stack.tcpState(of: id) == nil)
}

@Test func closedFlowsWhosePeerNeverFinishesAreResetAfterTheOrphanTimeout() throws {
    let h = Harness(transparent: true) { $0.orphanTimeout = .seconds(60) }
    let client = endpoint(client4, 40000), server = endpoint(remote4, 443)
    h.inject(PacketBuilder.tcp(from: client, to: server, sequence: 1000, flags: PacketBuilder.syn))
    guard case .incoming(let id, _)? = h.events().first else { Issue.record("no incoming"); return }
    try h.stack.accept(id)
    let synAck = try #require(h.output().first)
    h.inject(PacketBuilder.tcp(from: client, to: server, sequence: 1001, acknowledgment: synAck.sequence &+ 1, flags: PacketBuilder.ack))
    try h.stack.close(id)
    let fin = try #require(h.output().first { $0.tcpFlags & PacketBuilder.fin != 0 })
    // The client ACKs our FIN but never sends its own: FIN-WAIT-2.
    h.inject(PacketBuilder.tcp(from: client, to: server, sequence: 1001, acknowledgment: fin.sequence &+ 1, flags: PacketBuilder.ack))
    _ = h.output()
    #expect(h.stack.numberOfFlows == 1)
    h.advance(.seconds(59)); _ = h.output()
    #expect(h.stack.numberOfFlows == 1)
    h.advance(.seconds(2))
    let out = h.output()
    #expect(h.stack.numberOfFlows == 0)
    #expect(h.stack.statistics.orphansReset == 1)
    #expect(out.contains { $0.tcpFlags & PacketBuilder.rst != 0 })
}
