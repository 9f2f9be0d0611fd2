import NIOCore
import NetstackWire
import Testing
@testable import WireGuard

/// Two devices in one process on simulated time: handshake both ways, data, rejection of replayed, forged and
/// malformed input, cookies under load, roaming, reserved bytes.
@Suite struct WireGuardDeviceTests {
    let payload = Array("hello through the tunnel".utf8)

    @Test func handshakeThenDataBothWays() throws {
        var pair = DevicePair()
        pair.a.send(packet: ipv4Packet(from: [10, 0, 0, 1], to: [10, 0, 0, 2], payload: payload), now: pair.now, into: &pair.outA)
        // No session yet: the packet is staged and an initiation goes out.
        #expect(pair.outA.datagrams.count == 1)
        #expect(pair.outA.datagrams[0].buffer.readableBytes == 148)
        #expect(pair.outA.datagrams[0].buffer.getInteger(at: 0, as: UInt8.self) == 1)
        #expect(pair.a.peers[0].stagedCount == 1)
        let (atA, atB) = pair.exchange()
        #expect(atA.isEmpty)
        #expect(atB.count == 1)
        let received = try #require(atB.first)
        #expect(received.getBytes(at: received.readerIndex + 28, length: payload.count) == payload)
        #expect(received.readableBytes == 28 + payload.count)  // padding trimmed
        #expect(pair.a.counters.responsesReceived == 1 && pair.b.counters.responsesSent == 1)
        #expect(pair.b.peers[0].endpoint == pair.endpointA)  // learned by roaming
        // B confirmed the session with A's first data packet, so B may now send.
        #expect(pair.b.peers[0].keypairs.current != nil && pair.b.peers[0].keypairs.next == nil)
        pair.b.send(packet: ipv4Packet(from: [10, 0, 0, 2], to: [10, 0, 0, 1], payload: payload), now: pair.now, into: &pair.outB)
        #expect(pair.outB.datagrams.count == 1 && pair.outB.datagrams[0].buffer.getInteger(at: 0, as: UInt8.self) == 4)
        let back = pair.exchange()
        #expect(back.atA.count == 1)
        #expect(pair.a.counters.packetsReceived == 1 && pair.b.counters.packetsReceived == 1)
    }

    /// One device, two peers: packets route by allowed IPs, and each peer gets its own session.
    @Test func routesBetweenTwoPeers() throws {
        let random = SeededRandom(seed: 11)
        let hub = WireGuardDevice(configuration: .init(privateKey: random.key()), random: random.fill)
        let left = WireGuardDevice(configuration: .init(privateKey: random.key()), random: random.fill)
        let right = WireGuardDevice(configuration: .init(privateKey: random.key()), random: random.fill)
        let hubEndpoint = WireGuardEndpoint(ipv4: (192, 0, 2, 10), port: 1)
        let leftEndpoint = WireGuardEndpoint(ipv4: (192, 0, 2, 11), port: 1)
        let rightEndpoint = WireGuardEndpoint(ipv4: (192, 0, 2, 12), port: 1)
        hub.addPeer(.init(publicKey: left.identity.publicKey, endpoint: leftEndpoint, allowedIPs: [([10, 1, 0, 0], 16)]))
        hub.addPeer(.init(publicKey: right.identity.publicKey, endpoint: rightEndpoint, allowedIPs: [([10, 2, 0, 0], 16)]))
        left.addPeer(.init(publicKey: hub.identity.publicKey, allowedIPs: [([10, 0, 0, 0], 8)]))
        right.addPeer(.init(publicKey: hub.identity.publicKey, allowedIPs: [([10, 0, 0, 0], 8)]))
        var outHub = WireGuardOutput(), outLeft = WireGuardOutput(), outRight = WireGuardOutput()
        let now = Instant(nanoseconds: 1)
        hub.send(packet: ipv4Packet(from: [10, 0, 0, 1], to: [10, 1, 0, 5], payload: payload), now: now, into: &outHub)
        hub.send(packet: ipv4Packet(from: [10, 0, 0, 1], to: [10, 2, 0, 5], payload: payload), now: now, into: &outHub)
        for _ in 0..<4 {
            for datagram in outHub.datagrams {
                if datagram.endpoint == leftEndpoint { left.receive(datagram: datagram.buffer, from: hubEndpoint, now: now, into: &outLeft) }
                if datagram.endpoint == rightEndpoint { right.receive(datagram: datagram.buffer, from: hubEndpoint, now: now, into: &outRight) }
            }
            outHub.datagrams.removeAll()
            for datagram in outLeft.datagrams { hub.receive(datagram: datagram.buffer, from: leftEndpoint, now: now, into: &outHub) }
            for datagram in outRight.datagrams { hub.receive(datagram: datagram.buffer, from: rightEndpoint, now: now, into: &outHub) }
            outLeft.datagrams.removeAll()
            outRight.datagrams.removeAll()
        }
        #expect(outLeft.packets.count == 1 && outRight.packets.count == 1)
        #expect(outLeft.packets.first?.buffer.getBytes(at: outLeft.packets[0].buffer.readerIndex + 16, length: 4) == [10, 1, 0, 5])
        #expect(outRight.packets.first?.buffer.getBytes(at: outRight.packets[0].buffer.readerIndex + 16, length: 4) == [10, 2, 0, 5])
        #expect(hub.peers[0].keypairs.current !== hub.peers[1].keypairs.current)
        #expect(hub.counters.responsesReceived == 2)
    }

    @Test func presharedKeyMismatchFails() {
        let random = SeededRandom(seed: 7)
        let keyA = random.key(), keyB = random.key()
        let a = WireGuardDevice(configuration: .init(privateKey: keyA), random: random.fill)
        let b = WireGuardDevice(configuration: .init(privateKey: keyB), random: random.fill)
        let endpoint = WireGuardEndpoint(ipv4: (192, 0, 2, 9), port: 9)
        a.addPeer(.init(publicKey: b.identity.publicKey, presharedKey: random.key(), endpoint: endpoint))
        b.addPeer(.init(publicKey: a.identity.publicKey, presharedKey: random.key()))
        var outA = WireGuardOutput(), outB = WireGuardOutput()
        let now = Instant(nanoseconds: 1)
        a.initiateHandshake(peer: 0, now: now, into: &outA)
        for datagram in outA.datagrams { b.receive(datagram: datagram.buffer, from: endpoint, now: now, into: &outB) }
        #expect(outB.datagrams.count == 1)  // B cannot tell: the PSK only enters the response
        for datagram in outB.datagrams { a.receive(datagram: datagram.buffer, from: endpoint, now: now, into: &outA) }
        #expect(a.counters.handshakeFailures == 1)
        #expect(a.peers[0].keypairs.current == nil)
    }

    @Test func replayedForgedAndUnknownTransportRejected() throws {
        var pair = DevicePair()
        pair.a.send(packet: ipv4Packet(from: [10, 0, 0, 1], to: [10, 0, 0, 2], payload: payload), now: pair.now, into: &pair.outA)
        _ = pair.exchange()
        pair.a.send(packet: ipv4Packet(from: [10, 0, 0, 1], to: [10, 0, 0, 2], payload: payload), now: pair.now, into: &pair.outA)
        let datagram = try #require(pair.outA.datagrams.first?.buffer)
        pair.outA.removeAll()
        pair.b.receive(datagram: datagram, from: pair.endpointA, now: pair.now, into: &pair.outB)
        #expect(pair.outB.packets.count == 1)
        // The same datagram again: replay.
        pair.b.receive(datagram: datagram, from: pair.endpointA, now: pair.now, into: &pair.outB)
        #expect(pair.b.counters.replayed == 1)
        #expect(pair.outB.packets.count == 1)
        // A flipped ciphertext bit under a fresh counter: authentication fails.
        pair.a.send(packet: ipv4Packet(from: [10, 0, 0, 1], to: [10, 0, 0, 2], payload: payload), now: pair.now, into: &pair.outA)
        var forged = try #require(pair.outA.datagrams.first?.buffer)
        pair.outA.removeAll()
        forged.setInteger(forged.getInteger(at: 20, as: UInt8.self)! ^ 1, at: 20)
        pair.b.receive(datagram: forged, from: pair.endpointA, now: pair.now, into: &pair.outB)
        #expect(pair.b.counters.decryptionFailed == 1)
        // A forged packet must not advance the replay window: the genuine one still gets in.
        forged.setInteger(forged.getInteger(at: 20, as: UInt8.self)! ^ 1, at: 20)
        pair.b.receive(datagram: forged, from: pair.endpointA, now: pair.now, into: &pair.outB)
        #expect(pair.outB.packets.count == 2)
        // An unknown receiver index.
        var unknown = forged
        unknown.setInteger(UInt32(0xdead_beef), at: 4, endianness: .little)
        pair.b.receive(datagram: unknown, from: pair.endpointA, now: pair.now, into: &pair.outB)
        #expect(pair.b.counters.unknownIndex == 1)
        // Roaming: an authenticated packet from a new address moves the endpoint; a forged one would not.
        pair.a.send(packet: ipv4Packet(from: [10, 0, 0, 1], to: [10, 0, 0, 2], payload: payload), now: pair.now, into: &pair.outA)
        let moved = WireGuardEndpoint(ipv4: (198, 51, 100, 7), port: 4000)
        pair.b.receive(datagram: pair.outA.datagrams[0].buffer, from: moved, now: pair.now, into: &pair.outB)
        #expect(pair.b.peers[0].endpoint == moved)
    }

    @Test func disallowedSourceDropped() {
        var pair = DevicePair()
        pair.a.send(packet: ipv4Packet(from: [10, 0, 0, 1], to: [10, 0, 0, 2], payload: payload), now: pair.now, into: &pair.outA)
        _ = pair.exchange()
        // A source outside what B allows for A: authenticated but refused.
        pair.a.send(packet: ipv4Packet(from: [10, 9, 9, 9], to: [10, 0, 0, 2], payload: payload), now: pair.now, into: &pair.outA)
        // A source inside B's 172.16.0.0/12 for A: accepted.
        pair.a.send(packet: ipv4Packet(from: [172, 20, 1, 1], to: [10, 0, 0, 2], payload: payload), now: pair.now, into: &pair.outA)
        let (_, atB) = pair.exchange()
        #expect(atB.count == 1)
        #expect(pair.b.counters.disallowedSource == 1)
        // No route for a destination nobody owns.
        pair.a.send(packet: ipv4Packet(from: [10, 0, 0, 1], to: [8, 8, 8, 8], payload: payload), now: pair.now, into: &pair.outA)
        #expect(pair.a.counters.noRoute == 1 && pair.outA.datagrams.isEmpty)
    }

    @Test(arguments: [1, 2, 3, 4]) func malformedMessagesCounted(type: UInt8) {
        var pair = DevicePair()
        let sizes: [UInt8: Int] = [1: 148, 2: 92, 3: 64, 4: 32]
        let size = sizes[type]!
        // Every truncation of a well-sized message, plus one byte too many for the fixed-size ones.
        var lengths = Array(1..<size)
        if type != 4 { lengths.append(size + 1) }
        for length in lengths {
            var buffer = ByteBufferAllocator().buffer(capacity: length)
            buffer.writeInteger(type)
            buffer.writeRepeatingByte(0x5a, count: length - 1)
            pair.b.receive(datagram: buffer, from: pair.endpointA, now: pair.now, into: &pair.outB)
        }
        #expect(pair.b.counters.malformed == UInt64(lengths.count))
        #expect(pair.outB.datagrams.isEmpty && pair.outB.packets.isEmpty)
        // Right size but garbage: mac1 (handshakes), the index (transport, cookie) catch it.
        var garbage = ByteBufferAllocator().buffer(capacity: size)
        garbage.writeInteger(type)
        garbage.writeRepeatingByte(0x5a, count: size - 1)
        pair.b.receive(datagram: garbage, from: pair.endpointA, now: pair.now, into: &pair.outB)
        let c = pair.b.counters
        #expect(c.badMAC + c.unknownIndex == 1)
        // Unknown types.
        var unknown = ByteBufferAllocator().buffer(capacity: 8)
        unknown.writeBytes([9, 0, 0, 0, 1, 2, 3, 4])
        pair.b.receive(datagram: unknown, from: pair.endpointA, now: pair.now, into: &pair.outB)
        #expect(pair.b.counters.malformed == UInt64(lengths.count) + 1)
    }

    /// Random datagrams of every type and many sizes into an established device: nothing traps, nothing gets out,
    /// every one is counted as a drop.
    @Test func randomDatagramsNeverPass() {
        var pair = DevicePair()
        pair.a.send(packet: ipv4Packet(from: [10, 0, 0, 1], to: [10, 0, 0, 2], payload: payload), now: pair.now, into: &pair.outA)
        _ = pair.exchange()
        let before = pair.b.counters
        let random = SeededRandom(seed: 1234)
        let count = 3000
        for round in 0..<count {
            var header: UInt64 = 0
            withUnsafeMutableBytes(of: &header) { random.fill($0) }
            let sizes = [148, 92, 64, 32, 33, 48, 100, 1500]
            let size = round % 3 == 0 ? Int(header >> 40) % 1600 : sizes[Int(header >> 8) % sizes.count]
            var buffer = ByteBufferAllocator().buffer(capacity: max(size, 1))
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: max(size, 1)) { raw in
                random.fill(UnsafeMutableRawBufferPointer(rebasing: raw[0..<size]))
                if size > 0 { raw[0] = UInt8(1 + header % 4) }
                return size
            }
            // Sometimes aim at the live session's receiver index to reach the AEAD.
            if size >= 32 && buffer.getInteger(at: 0, as: UInt8.self) == 4 && round % 2 == 0,
               let keypair = pair.b.peers[0].keypairs.current {
                buffer.setInteger(keypair.localIndex, at: 4, endianness: .little)
            }
            pair.b.receive(datagram: buffer, from: pair.endpointA, now: pair.now, into: &pair.outB)
        }
        #expect(pair.outB.packets.isEmpty && pair.outB.datagrams.isEmpty)
        let after = pair.b.counters
        let drops = (after.malformed - before.malformed) + (after.badMAC - before.badMAC) + (after.unknownIndex - before.unknownIndex)
            + (after.decryptionFailed - before.decryptionFailed) + (after.replayed - before.replayed)
        #expect(drops == UInt64(count))
        #expect(after.decryptionFailed > before.decryptionFailed)
    }

    @Test func replayedInitiationRejected() throws {
        var pair = DevicePair()
        pair.a.initiateHandshake(peer: 0, now: pair.now, into: &pair.outA)
        let initiation = try #require(pair.outA.datagrams.first?.buffer)
        _ = pair.exchange()
        #expect(pair.b.counters.initiationsReceived == 1)
        pair.advance(.seconds(1))
        pair.b.receive(datagram: initiation, from: pair.endpointA, now: pair.now, into: &pair.outB)
        #expect(pair.b.counters.handshakeFailures == 1)  // its timestamp is not newer
        #expect(pair.outB.datagrams.isEmpty)
    }

    @Test func initiationFloodLimited() throws {
        var pair = DevicePair()
        pair.a.initiateHandshake(peer: 0, now: pair.now, into: &pair.outA)
        let first = try #require(pair.outA.datagrams.first?.buffer)
        pair.outA.removeAll()
        // A second initiation a moment later (a new timestamp, but within 20 ms of the first at B).
        pair.advance(.seconds(6))
        pair.a.initiateHandshake(peer: 0, now: pair.now, into: &pair.outA)
        let second = try #require(pair.outA.datagrams.first?.buffer)
        pair.outA.removeAll()
        pair.b.receive(datagram: first, from: pair.endpointA, now: pair.now, into: &pair.outB)
        pair.b.receive(datagram: second, from: pair.endpointA, now: pair.now + .milliseconds(5), into: &pair.outB)
        #expect(pair.b.counters.initiationsReceived == 1 && pair.b.counters.handshakeFailures == 1)
    }

    @Test func cookieUnderLoad() throws {
        var pair = DevicePair()
        pair.b.forceUnderLoad = true
        pair.a.send(packet: ipv4Packet(from: [10, 0, 0, 1], to: [10, 0, 0, 2], payload: payload), now: pair.now, into: &pair.outA)
        _ = pair.exchange()
        #expect(pair.b.counters.cookieRepliesSent == 1)
        #expect(pair.a.counters.cookieRepliesReceived == 1)
        #expect(pair.a.peers[0].cookies.hasCookie(now: pair.now))
        #expect(pair.b.counters.initiationsReceived == 0)
        // The retransmission carries mac2 and is let through.
        pair.advance(.seconds(6))
        pair.pollBoth()
        let (_, atB) = pair.exchange()
        #expect(pair.a.counters.initiationRetransmissions == 1)
        #expect(pair.b.counters.initiationsReceived == 1)
        #expect(atB.count == 1)
        // A cookie reply that answers nothing is refused.
        let bogus = CookieReplyMessage(receiver: pair.a.peers[0].keypairs.current!.localIndex, nonce: Bytes24(),
                                       encryptedCookie: (.zero, .zero))
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        buffer.writeBytes(bogus.bytes)
        pair.a.receive(datagram: buffer, from: pair.endpointB, now: pair.now, into: &pair.outA)
        #expect(pair.a.counters.badCookieReplies == 1)
    }

    @Test func rateLimitPerSourceUnderLoad() {
        var limiter = HandshakeRateLimiter()
        let source = WireGuardEndpoint(ipv4: (198, 51, 100, 1), port: 1)
        let other = WireGuardEndpoint(ipv4: (198, 51, 100, 2), port: 1)
        let t0 = Instant(nanoseconds: 10_000_000_000)
        // A burst of 5, then one per 50 ms.
        var allowed = 0
        for _ in 0..<20 where limiter.allow(source, now: t0) { allowed += 1 }
        #expect(allowed == 5)
        let otherAllowed = limiter.allow(other, now: t0)
        #expect(otherAllowed)  // another address has its own bucket
        let early = limiter.allow(source, now: t0 + .milliseconds(40))
        #expect(!early)
        let later = limiter.allow(source, now: t0 + .milliseconds(90))
        #expect(later)
        // Idle entries are collected.
        _ = limiter.allow(other, now: t0 + .seconds(3))
        #expect(limiter.trackedCount == 1)
    }

    @Test func removeAndReroutePeers() throws {
        var pair = DevicePair()
        pair.a.send(packet: ipv4Packet(from: [10, 0, 0, 1], to: [10, 0, 0, 2], payload: payload), now: pair.now, into: &pair.outA)
        _ = pair.exchange()
        // A second peer on A takes 10.0.0.2 over; then the first peer goes away.
        let third = SeededRandom(seed: 77).key()
        let index = pair.a.addPeer(.init(publicKey: X25519.publicKey(of: third), endpoint: pair.endpointB, allowedIPs: []))
        pair.a.setAllowedIPs([([10, 0, 0, 2], 32)], peer: index)
        #expect(pair.a.allowedIPs.lookup([10, 0, 0, 2]) == index)
        pair.a.removePeer(0)
        #expect(pair.a.peers.count == 1)
        #expect(pair.a.allowedIPs.lookup([10, 0, 0, 2]) == 0)
        #expect(pair.a.peerIndex(publicKey: X25519.publicKey(of: third)) == 0)
        // B's packets under the removed peer's session no longer decrypt at A: unknown index.
        pair.b.send(packet: ipv4Packet(from: [10, 0, 0, 2], to: [10, 0, 0, 1], payload: payload), now: pair.now, into: &pair.outB)
        for datagram in pair.outB.datagrams { pair.a.receive(datagram: datagram.buffer, from: pair.endpointB, now: pair.now, into: &pair.outA) }
        #expect(pair.a.counters.unknownIndex == 1 && pair.outA.packets.isEmpty)
    }

    @Test func keyText() throws {
        let key = try #require(Bytes32(base64: "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="))
        #expect(key.base64 == "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=")
        #expect(Bytes32(base64: "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk") == nil)  // unpadded
        #expect(Bytes32(base64: "AAAA") == nil)  // wrong length
        #expect(Bytes32(base64: "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBm!=") == nil)
    }

    @Test func loadDetectionByRate() throws {
        var pair = DevicePair()
        pair.a.initiateHandshake(peer: 0, now: pair.now, into: &pair.outA)
        let initiation = try #require(pair.outA.datagrams.first?.buffer)
        // Replays of a valid-mac1 initiation past the threshold (512/s): B starts answering with cookies.
        for step in 0..<600 {
            pair.b.receive(datagram: initiation, from: pair.endpointA, now: pair.now + .microseconds(step), into: &pair.outB)
        }
        #expect(pair.b.counters.cookieRepliesSent > 0)
        #expect(pair.b.counters.cookieRepliesSent < 600)
    }

    @Test func reservedBytesWrittenAndIgnored() throws {
        var pair = DevicePair(reservedAToB: (0xa1, 0xb2, 0xc3))
        pair.a.send(packet: ipv4Packet(from: [10, 0, 0, 1], to: [10, 0, 0, 2], payload: payload), now: pair.now, into: &pair.outA)
        let initiation = try #require(pair.outA.datagrams.first?.buffer)
        #expect(initiation.getBytes(at: 0, length: 4) == [1, 0xa1, 0xb2, 0xc3])
        let (_, atB) = pair.exchange()
        #expect(atB.count == 1)
        pair.a.send(packet: ipv4Packet(from: [10, 0, 0, 1], to: [10, 0, 0, 2], payload: payload), now: pair.now, into: &pair.outA)
        #expect(pair.outA.datagrams.first?.buffer.getBytes(at: 0, length: 4) == [4, 0xa1, 0xb2, 0xc3])
    }

    @Test func dataPathUsesHeadroomInPlace() throws {
        var pair = DevicePair()
        pair.a.send(packet: ipv4Packet(from: [10, 0, 0, 1], to: [10, 0, 0, 2], payload: payload), now: pair.now, into: &pair.outA)
        _ = pair.exchange()
        let packet = ipv4Packet(from: [10, 0, 0, 1], to: [10, 0, 0, 2], payload: Array(repeating: 7, count: 1000))
        let storage = packet.storagePointerIntegerValue()
        pair.a.send(packet: consume packet, now: pair.now, into: &pair.outA)
        let datagram = try #require(pair.outA.datagrams.first?.buffer)
        #expect(pair.a.counters.copiedForHeadroom == 0)
        // Header in the headroom, padding and tag in the tailroom: the datagram is the packet's own storage,
        // starting 16 bytes earlier. Nothing was copied.
        #expect(datagram.storagePointerIntegerValue() == storage - 16)
        #expect(datagram.readableBytes == 16 + 1040 + 16)  // 1028 padded to 1040
        // Without headroom the device copies once and counts it.
        let tight = ipv4Packet(from: [10, 0, 0, 1], to: [10, 0, 0, 2], payload: payload, headroom: 0)
        pair.a.send(packet: tight, now: pair.now, into: &pair.outA)
        #expect(pair.a.counters.copiedForHeadroom == 1)
        let (_, atB) = pair.exchange()
        #expect(atB.count == 2)
    }

    @Test func receivePathDecryptsInPlace() throws {
        var pair = DevicePair()
        pair.a.send(packet: ipv4Packet(from: [10, 0, 0, 1], to: [10, 0, 0, 2], payload: payload), now: pair.now, into: &pair.outA)
        _ = pair.exchange()
        pair.a.send(packet: ipv4Packet(from: [10, 0, 0, 1], to: [10, 0, 0, 2], payload: payload), now: pair.now, into: &pair.outA)
        var datagrams = pair.outA.datagrams
        pair.outA.removeAll()
        let datagram = datagrams.removeFirst().buffer
        let storage = datagram.storagePointerIntegerValue()
        pair.b.receive(datagram: consume datagram, from: pair.endpointA, now: pair.now, into: &pair.outB)
        let packet = try #require(pair.outB.packets.first?.buffer)
        // The plaintext is a slice of the datagram's own storage, right after the 16-byte header.
        #expect(packet.storagePointerIntegerValue() == storage + 16)
        #expect(packet.getBytes(at: packet.readerIndex + 28, length: payload.count) == payload)
    }

    @Test func ipv6InnerPackets() throws {
        let random = SeededRandom(seed: 5)
        let a = WireGuardDevice(configuration: .init(privateKey: random.key()), random: random.fill)
        let b = WireGuardDevice(configuration: .init(privateKey: random.key()), random: random.fill)
        let endpointA = try #require(WireGuardEndpoint(parsing: "[2001:db8::a]:51820"))
        let endpointB = try #require(WireGuardEndpoint(parsing: "[2001:db8::b]:51820"))
        let prefixA = try #require(AllowedIPs.parsePrefix("fd00::1/128"))
        let prefixB = try #require(AllowedIPs.parsePrefix("fd00::/120"))
        a.addPeer(.init(publicKey: b.identity.publicKey, endpoint: endpointB, allowedIPs: [prefixB]))
        b.addPeer(.init(publicKey: a.identity.publicKey, allowedIPs: [prefixA]))
        // IPv6 + UDP: payload length 8 + 4, next header 17, hop limit 64, fd00::1 → fd00::42.
        var bytes: [UInt8] = [0x60, 0, 0, 0, 0, 12, 17, 64] + prefixA.address
        bytes += try #require(IPAddressText.parseIPv6("fd00::42"))
        bytes += [0x30, 0x39, 0x00, 0x35, 0, 12, 0, 0, 1, 2, 3, 4]
        var packet = ByteBufferAllocator().buffer(capacity: 100)
        packet.moveWriterIndex(forwardBy: 16)
        packet.moveReaderIndex(forwardBy: 16)
        packet.writeBytes(bytes)
        var outA = WireGuardOutput(), outB = WireGuardOutput()
        let now = Instant(nanoseconds: 5)
        a.send(packet: packet, now: now, into: &outA)
        for _ in 0..<4 {
            for d in outA.datagrams { b.receive(datagram: d.buffer, from: endpointA, now: now, into: &outB) }
            outA.datagrams.removeAll()
            for d in outB.datagrams { a.receive(datagram: d.buffer, from: endpointB, now: now, into: &outA) }
            outB.datagrams.removeAll()
        }
        #expect(outB.packets.count == 1)
        #expect(outB.packets.first.map { $0.buffer.getBytes(at: $0.buffer.readerIndex, length: $0.buffer.readableBytes) } == bytes)
        #expect(b.peers[0].endpoint == endpointA)
    }

    @Test func paddingRules() {
        #expect(WireGuardDevice.paddingSize(0, mtu: 1420) == 0)
        #expect(WireGuardDevice.paddingSize(1, mtu: 1420) == 15)
        #expect(WireGuardDevice.paddingSize(16, mtu: 1420) == 0)
        #expect(WireGuardDevice.paddingSize(1419, mtu: 1420) == 1)
        #expect(WireGuardDevice.paddingSize(1410, mtu: 1412) == 2)  // capped at the MTU, not 1424
    }
}

extension ByteBuffer {
    func storagePointerIntegerValue() -> UInt {
        withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
    }
}
