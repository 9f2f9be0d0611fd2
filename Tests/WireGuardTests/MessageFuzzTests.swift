import NIOCore
import NIOPosix
import NetstackWire
import Testing
@testable import WireGuard

/// Mutation fuzzing of the four message parsers through the device: real messages (initiation, response, cookie
/// reply, transport) with flipped bytes, truncated or extended, fed to a device with a live session. Nothing traps,
/// nothing forged gets out, every datagram is counted, and the real session still carries data afterwards.
@Suite struct MessageFuzzTests {
    private let payload: [UInt8] = Array(repeating: 0x5a, count: 64)

    /// Captures one real message of each type from a handshake (a cookie reply too, under forced load).
    private func corpus() throws -> [[UInt8]] {
        var pair = DevicePair(seed: 77)
        pair.b.forceUnderLoad = true
        pair.a.initiateHandshake(peer: 0, now: pair.now, into: &pair.outA)
        let initiation = try #require(pair.outA.datagrams.first?.buffer)
        pair.outA.removeAll()
        pair.b.receive(datagram: initiation, from: pair.endpointA, now: pair.now, into: &pair.outB)
        let cookieReply = try #require(pair.outB.datagrams.first?.buffer)
        pair.outB.removeAll()
        pair.b.forceUnderLoad = false
        pair.b.receive(datagram: initiation, from: pair.endpointA, now: pair.now, into: &pair.outB)
        let response = try #require(pair.outB.datagrams.first?.buffer)
        _ = pair.exchange()
        pair.a.send(packet: ipv4Packet(from: [10, 0, 0, 1], to: [10, 0, 0, 2], payload: payload), now: pair.now, into: &pair.outA)
        let transport = try #require(pair.outA.datagrams.first?.buffer)
        return [initiation, response, cookieReply, transport].map { Array($0.readableBytesView) }
    }

    @Test func mutatedMessagesAreCountedAndHarmless() throws {
        let seeds = try corpus()
        var pair = DevicePair()
        pair.a.send(packet: ipv4Packet(from: [10, 0, 0, 1], to: [10, 0, 0, 2], payload: payload), now: pair.now, into: &pair.outA)
        #expect(pair.exchange().atB.count == 1)
        let before = pair.b.counters
        let random = SeededRandom(seed: 99)
        func next() -> UInt64 {
            var value: UInt64 = 0
            withUnsafeMutableBytes(of: &value) { random.fill($0) }
            return value
        }
        let rounds = 4000
        for round in 0..<rounds {
            var bytes = seeds[round % seeds.count]
            switch next() % 4 {
            case 0:  // flip 1-4 bytes (keep the type byte sometimes)
                for _ in 0...(next() % 4) { bytes[Int(next() % UInt64(bytes.count))] ^= UInt8(truncatingIfNeeded: next() | 1) }
            case 1:  // truncate
                bytes = Array(bytes.prefix(Int(next() % UInt64(bytes.count))))
            case 2:  // extend with junk
                bytes += (0..<(1 + next() % 64)).map { _ in UInt8(truncatingIfNeeded: next()) }
            default:  // aim a transport message at the live session with a forged body
                if let keypair = pair.b.peers[0].keypairs.current, bytes.count >= 32, bytes[0] == 4 {
                    withUnsafeBytes(of: keypair.localIndex.littleEndian) { bytes.replaceSubrange(4..<8, with: $0) }
                    bytes[bytes.count - 1] ^= 0x80
                } else {
                    bytes[0] = UInt8(truncatingIfNeeded: next())
                }
            }
            var buffer = ByteBufferAllocator().buffer(capacity: bytes.count + 32)
            buffer.writeBytes(bytes)
            pair.b.receive(datagram: buffer, from: pair.endpointA, now: pair.now, into: &pair.outB)
        }
        // Nothing forged came out as a packet. (A mutated copy of a genuine but stale initiation cannot pass mac1;
        // the untouched transport seed is a replay.)
        #expect(pair.outB.packets.isEmpty)
        let after = pair.b.counters
        let drops = (after.malformed - before.malformed) + (after.badMAC - before.badMAC)
            + (after.unknownIndex - before.unknownIndex) + (after.decryptionFailed - before.decryptionFailed)
            + (after.replayed - before.replayed) + (after.handshakeFailures - before.handshakeFailures)
            + (after.badCookieReplies - before.badCookieReplies)
        #expect(drops == UInt64(rounds), "every mutated datagram is counted once: \(after)")
        // The real session is unaffected.
        pair.outB.removeAll()
        pair.a.send(packet: ipv4Packet(from: [10, 0, 0, 1], to: [10, 0, 0, 2], payload: payload), now: pair.now, into: &pair.outA)
        #expect(pair.exchange().atB.count == 1)
    }
}

/// The endpoint tunnel's demultiplexer: decrypted packets go to the netstack shard that owns their destination port.
@Suite struct TunnelShardTests {
    private func packet(proto: UInt8, destinationPort: UInt16, ipv6: Bool = false, fragmentOffset: UInt16 = 0) -> ByteBuffer {
        var bytes: [UInt8]
        if ipv6 {
            bytes = [0x60, 0, 0, 0, 0, 8, proto, 64] + Array(repeating: 0, count: 32)
        } else {
            bytes = [0x45, 0, 0, 28, 0, 0, UInt8(fragmentOffset >> 8), UInt8(fragmentOffset & 0xff), 64, proto, 0, 0,
                     10, 0, 0, 2, 10, 0, 0, 1]
        }
        bytes += [0x1f, 0x90, UInt8(destinationPort >> 8), UInt8(destinationPort & 0xff), 0, 8, 0, 0]
        var buffer = ByteBufferAllocator().buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        return buffer
    }

    @Test func demuxesByPortSlice() throws {
        let loops = MultiThreadedEventLoopGroup.singleton
        let device = WireGuardDevice(configuration: .init(privateKey: SeededRandom(seed: 5).key()))
        let tunnel = WireGuardTunnel(device: device, loop: loops.next(), shardCount: 2, ephemeralPorts: 32768...60999)
        tunnel.attach([WireGuardShardDevice(index: 0, loop: loops.next(), tunnel: tunnel),
                       WireGuardShardDevice(index: 1, loop: loops.next(), tunnel: tunnel)])
        #expect(tunnel.ephemeralPorts(ofShard: 0) == 32768...46883)
        #expect(tunnel.ephemeralPorts(ofShard: 1) == 46884...60999)
        #expect(tunnel.shardIndex(for: packet(proto: 6, destinationPort: 40000)) == 0)
        #expect(tunnel.shardIndex(for: packet(proto: 6, destinationPort: 50000)) == 1)
        #expect(tunnel.shardIndex(for: packet(proto: 17, destinationPort: 60999)) == 1)
        #expect(tunnel.shardIndex(for: packet(proto: 17, destinationPort: 50000, ipv6: true)) == 1)
        // A listened port below the range, ICMP, and later fragments (no ports) go to shard 0.
        #expect(tunnel.shardIndex(for: packet(proto: 6, destinationPort: 9090)) == 0)
        #expect(tunnel.shardIndex(for: packet(proto: 1, destinationPort: 50000)) == 0)
        #expect(tunnel.shardIndex(for: packet(proto: 17, destinationPort: 50000, fragmentOffset: 0x20b9)) == 0)
        // Truncated input never traps.
        for length in 0..<28 {
            let whole = packet(proto: 6, destinationPort: 50000)
            #expect(tunnel.shardIndex(for: whole.getSlice(at: 0, length: length)!) == 0 || length >= 24)
        }
    }
}
