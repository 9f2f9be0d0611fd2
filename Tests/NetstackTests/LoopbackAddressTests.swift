import Testing
import NetstackWire
import Netstack
import NetstackTesting

// sing-box's tun `loopback_address`: TCP to the address is turned around with its addresses swapped,
// so both directions of a connection to `address:port` pass through the stack unterminated.
@Suite struct LoopbackAddress {
    static let loopback4 = IPAddress("10.7.0.1")!
    static let loopback6 = IPAddress("fdfe:dcba:9876::7")!

    func harness() -> Harness {
        Harness(transparent: true) { $0.loopbackAddresses = [LoopbackAddress.loopback4, LoopbackAddress.loopback6] }
    }

    @Test(arguments: [(client4, loopback4), (client6, loopback6)])
    func bothDirectionsAreTurnedAroundWithValidChecksums(client: IPAddress, loopback: IPAddress) throws {
        let h = harness()
        // The client dials loopback:8080 ...
        let syn = PacketBuilder.tcp(from: endpoint(client, 51000), to: endpoint(loopback, 8080), sequence: 1000,
                                    flags: PacketBuilder.syn, options: [2, 4, 0x05, 0xb4])
        h.inject(syn)
        #expect(h.events().isEmpty)
        let turned = try #require(h.output().first)
        // ... and the SYN reaches its own port 8080, from loopback:51000, byte for byte otherwise.
        #expect(turned.source == loopback && turned.sourcePort == 51000)
        #expect(turned.destination == client && turned.destinationPort == 8080)
        #expect(turned.tcpFlags == PacketBuilder.syn && turned.sequence == 1000)
        #expect(turned.checksumsValid)
        #expect(turned.bytes.count == syn.count)
        // Its own server answers loopback:51000: that comes back as loopback:8080 → client:51000,
        // the reply the dialling socket waits for.
        h.inject(PacketBuilder.tcp(from: endpoint(client, 8080), to: endpoint(loopback, 51000), sequence: 9000,
                                   acknowledgment: 1001, flags: PacketBuilder.syn | PacketBuilder.ack, payload: Array("hi".utf8)))
        let reply = try #require(h.output().first)
        #expect(reply.source == loopback && reply.sourcePort == 8080)
        #expect(reply.destination == client && reply.destinationPort == 51000)
        #expect(reply.acknowledgment == 1001 && reply.payload == Array("hi".utf8))
        #expect(reply.checksumsValid)
        #expect(h.stack.statistics.tcpSegmentsReflected == 2)
        #expect(h.stack.numberOfFlows == 0)
    }

    @Test func offloadStateGoesBackOutButNotTheDataValidPromise() throws {
        let h = harness()
        let segment = PacketBuilder.tcp(from: endpoint(client4, 40000), to: endpoint(Self.loopback4, 22), sequence: 1,
                                        acknowledgment: 1, flags: PacketBuilder.ack, payload: [UInt8](repeating: 7, count: 3000))
        let offload = VirtioNetHeader(flags: VirtioNetHeader.flagNeedsChecksum | VirtioNetHeader.flagDataValid,
                                      gsoType: VirtioNetHeader.gsoTCPv4, headerLength: 40, gsoSize: 1448,
                                      checksumStart: 20, checksumOffset: 16)
        h.inject(segment, offload: offload)
        _ = h.output()
        let packet = try #require(h.batch.packets.first)
        #expect(packet.offload.flags == VirtioNetHeader.flagNeedsChecksum)
        #expect(packet.offload.gsoType == VirtioNetHeader.gsoTCPv4 && packet.offload.gsoSize == 1448)
        #expect(packet.offload.checksumStart == 20 && packet.offload.checksumOffset == 16)
        #expect(packet.bytes.readableBytes == segment.count)
    }

    @Test func otherDestinationsAndUDPAreFlowsAsBefore() throws {
        let h = harness()
        h.inject(PacketBuilder.tcp(from: endpoint(client4, 51000), to: endpoint(remote4, 443), sequence: 1, flags: PacketBuilder.syn))
        guard case .incoming(_, let key)? = h.events().first else { Issue.record("no incoming TCP flow"); return }
        #expect(key.local == endpoint(remote4, 443))
        // sing-tun turns TCP only: a datagram to the address is an ordinary flow.
        h.inject(PacketBuilder.udp(from: endpoint(client4, 5353), to: endpoint(Self.loopback4, 53), payload: [1, 2, 3]))
        guard case .incoming(_, let udp)? = h.events().first else { Issue.record("no incoming UDP flow"); return }
        #expect(udp.proto == .udp && udp.local == endpoint(Self.loopback4, 53))
        #expect(h.output().isEmpty)
        #expect(h.stack.statistics.tcpSegmentsReflected == 0)
    }

    /// Only valid segments are turned around: a bad checksum or a cut header is dropped and counted.
    @Test func brokenSegmentsAreDroppedNotReturned() {
        let h = harness()
        var corrupt = PacketBuilder.tcp(from: endpoint(client4, 40000), to: endpoint(Self.loopback4, 22), sequence: 1, flags: PacketBuilder.syn)
        corrupt[corrupt.count - 1] ^= 0xff
        h.inject(corrupt)
        let whole = PacketBuilder.tcp(from: endpoint(client4, 40000), to: endpoint(Self.loopback4, 22), sequence: 1, flags: PacketBuilder.syn,
                                      options: [2, 4, 5, 180])
        var cut = Array(whole.prefix(30))
        cut[3] = 30  // IPv4 total length: a TCP header cut after 10 bytes
        cut[10] = 0; cut[11] = 0
        let sum = Checksum.compute(cut.prefix(20).withUnsafeBytes { UnsafeRawBufferPointer($0) })
        cut[10] = UInt8(sum >> 8); cut[11] = UInt8(sum & 0xff)
        h.inject(cut)
        #expect(h.output().isEmpty && h.events().isEmpty)
        #expect(h.stack.statistics.tcpSegmentsReflected == 0)
        #expect(h.stack.statistics.badChecksum == 1 && h.stack.statistics.malformed == 1)
    }

    @Test func aSegmentFromTheAddressToItselfIsDropped() {
        let h = harness()
        h.inject(PacketBuilder.tcp(from: endpoint(Self.loopback4, 1), to: endpoint(Self.loopback4, 2), sequence: 1, flags: PacketBuilder.syn))
        #expect(h.output().isEmpty && h.events().isEmpty)
        #expect(h.stack.statistics.tcpSegmentsReflected == 0)
    }
}
