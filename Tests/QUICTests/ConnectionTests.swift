// Our client ⇄ our server on simulated time: handshake, ALPN, HANDSHAKE_DONE, connection IDs,
// DATAGRAM, CONNECTION_CLOSE both ways, idle timeout, loss; and garbage never traps.
import NIOCore
import NetstackWire
@testable import QUIC
import Testing
import TestSupport

@Suite struct QUICConnectionTests {
    @Test func handshakeCompletesBothWays() throws {
        let pair = try SimulatedPair()
        pair.run { pair.client.isEstablished && pair.serverConnection?.isEstablished == true && pair.client.handshakeConfirmed }
        #expect(pair.clientEvents.contains(.handshakeCompleted(alpn: "test")))
        #expect(pair.serverEvents.contains(.handshakeCompleted(alpn: "test")))
        #expect(pair.client.handshakeConfirmed)
        // Both sides dropped Initial and Handshake keys once confirmed (RFC 9001 §4.9).
        #expect(pair.client.spaces[0].isDiscarded && pair.client.spaces[1].isDiscarded)
        let server = try #require(pair.serverConnection)
        #expect(server.spaces[0].isDiscarded && server.spaces[1].isDiscarded)
        // NEW_CONNECTION_ID: each side learns extra IDs of the other (our limit is 4).
        pair.run(for: .seconds(1)) { false }
        #expect(pair.client.peerIDs.count >= 2)
        #expect(server.peerIDs.count >= 2)
        #expect(pair.client.droppedPackets == 0 && server.droppedPackets == 0)
    }

    @Test func datagramsFlowBothWays() throws {
        let pair = try SimulatedPair()
        pair.run { pair.client.handshakeConfirmed }
        let server = try #require(pair.serverConnection)
        #expect(pair.client.sendDatagram(ByteBuffer(string: "ping")))
        #expect(server.sendDatagram(ByteBuffer(string: "pong")))
        pair.run(for: .seconds(1)) { pair.serverEvents.contains(.datagram(ByteBuffer(string: "ping"))) && pair.clientEvents.contains(.datagram(ByteBuffer(string: "pong"))) }
        #expect(pair.serverEvents.contains(.datagram(ByteBuffer(string: "ping"))))
        #expect(pair.clientEvents.contains(.datagram(ByteBuffer(string: "pong"))))
    }

    @Test func applicationCloseReachesPeer() throws {
        let pair = try SimulatedPair()
        pair.run { pair.client.handshakeConfirmed }
        pair.client.close(errorCode: 0x42, reason: "bye", now: pair.now)
        pair.run(for: .seconds(10)) { pair.client.isClosed && pair.serverConnection?.isClosed == true }
        #expect(pair.serverEvents.contains(.closed(QUICCloseReason(errorCode: 0x42, isApplication: true, reason: "bye", byPeer: true))))
        #expect(pair.clientEvents.contains(.closed(QUICCloseReason(errorCode: 0x42, isApplication: true, reason: "bye", byPeer: false))))
    }

    @Test func serverCloseReachesClient() throws {
        let pair = try SimulatedPair()
        pair.run { pair.client.handshakeConfirmed }
        pair.serverConnection?.close(errorCode: 7, now: pair.now)
        pair.run(for: .seconds(10)) { pair.client.isClosed }
        #expect(pair.clientEvents.contains(.closed(QUICCloseReason(errorCode: 7, isApplication: true, reason: "", byPeer: true))))
    }

    @Test func alpnMismatchClosesWithNoApplicationProtocol() throws {
        let pair = try SimulatedPair(client: clientConfiguration(alpn: ["h3"]), server: serverConfiguration(alpn: ["test"]))
        pair.run(for: .seconds(10)) { pair.client.isClosed }
        // RFC 9001 §8.1: no_application_protocol (120) → CRYPTO_ERROR 0x178.
        let closed = pair.clientEvents.compactMap { if case .closed(let reason) = $0 { reason } else { nil } }
        #expect(closed.first?.errorCode == 0x178)
        #expect(closed.first?.byPeer == true)
    }

    @Test func untrustedCertificateFailsTheHandshake() throws {
        var client = clientConfiguration()
        client.tls.trustedRootsPEM = nil  // verify, with no roots
        let pair = try SimulatedPair(client: client)
        pair.run(for: .seconds(10)) { pair.client.isClosed }
        let closed = pair.clientEvents.compactMap { if case .closed(let reason) = $0 { reason } else { nil } }
        // A TLS alert as CRYPTO_ERROR (0x100 + alert), raised by us.
        #expect(closed.first.map { (0x100...0x1FF).contains($0.errorCode) && !$0.byPeer } == true)
        #expect(!pair.serverEvents.contains(.handshakeCompleted(alpn: "test")))
    }

    @Test func idleTimeoutClosesSilently() throws {
        var client = clientConfiguration()
        client.idleTimeout = .seconds(2)
        let pair = try SimulatedPair(client: client)
        pair.run { pair.client.handshakeConfirmed }
        let start = pair.now
        pair.run(for: .seconds(20)) { pair.client.isClosed && pair.serverConnection?.isClosed == true }
        var expected = QUICCloseReason(errorCode: 0, isApplication: false, reason: "", byPeer: false)
        expected.idleTimeout = true
        #expect(pair.clientEvents.contains(.closed(expected)))
        #expect(pair.serverEvents.contains(.closed(expected)))  // the peer's 2 s wins over the server's 30 s
        #expect(pair.now - start < .seconds(4))
    }

    @Test(arguments: [(UInt64(1), 0.01), (2, 0.05), (3, 0.10), (4, 0.10), (5, 0.20)])
    func handshakeSurvivesLossReorderingDuplication(seed: UInt64, loss: Double) throws {
        let pair = try SimulatedPair(seed: seed, loss: loss, duplicate: loss, reorder: loss)
        pair.run(for: .seconds(60)) { pair.client.handshakeConfirmed && pair.serverConnection?.isEstablished == true }
        #expect(pair.client.handshakeConfirmed)
        #expect(pair.serverConnection?.isEstablished == true)
        // Datagrams still get through afterwards.
        pair.client.sendDatagram(ByteBuffer(string: "after"))
        pair.run(for: .seconds(5)) { pair.serverEvents.contains(.datagram(ByteBuffer(string: "after"))) || loss > 0 }
    }
}

/// Seeded mutations of real handshake datagrams, truncations and random bytes, fed to a fresh
/// server endpoint and to both ends of a live connection: nothing traps, nothing closes the live
/// connection (AEAD rejects every forged packet, RFC 9001 §5.5), garbage is counted as dropped.
@Test func mutatedAndRandomDatagramsNeverTrap() throws {
    let pair = try SimulatedPair()
    pair.run { pair.client.handshakeConfirmed }
    let server = try #require(pair.serverConnection)
    let recorded = pair.log
    #expect(recorded.count > 4)
    var generator = TestRandom(seed: 99)
    let fresh = QUICServerEndpoint(configuration: serverConfiguration())
    for round in 0..<3000 {
        var bytes: [UInt8]
        if round % 10 == 0 {
            bytes = (0..<Int.random(in: 0..<1400, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        } else {
            let source = recorded[Int.random(in: 0..<recorded.count, using: &generator)].datagram
            bytes = source.bytes
            switch Int.random(in: 0..<3, using: &generator) {
            case 0: bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &generator)))
            case 1:
                for _ in 0..<Int.random(in: 1...4, using: &generator) where !bytes.isEmpty {
                    bytes[Int.random(in: 0..<bytes.count, using: &generator)] ^= UInt8.random(in: 1...255, using: &generator)
                }
            default: bytes += (0..<Int.random(in: 1...64, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            }
        }
        let datagram = ByteBuffer(bytes: bytes)
        if let (connection, _) = fresh.route(datagram, now: pair.now) {
            connection.receive(datagram: datagram, now: pair.now)
            _ = connection.transmit(now: pair.now)
        }
        pair.client.receive(datagram: datagram, now: pair.now)
        server.receive(datagram: datagram, now: pair.now)
    }
    #expect(pair.client.isEstablished && !pair.client.isClosed)
    #expect(server.isEstablished && !server.isClosed)
    #expect(pair.client.droppedPackets > 0 && server.droppedPackets > 0)
    // And the connection still works.
    pair.client.sendDatagram(ByteBuffer(string: "still alive"))
    pair.run(for: .seconds(2)) { pair.serverEvents.contains(.datagram(ByteBuffer(string: "still alive"))) }
    #expect(pair.serverEvents.contains(.datagram(ByteBuffer(string: "still alive"))))
}

/// RFC 9001 §6: the server moves to the next key phase (as quic-go does after 100 packets); the
/// client follows, answers in the new phase, and data keeps flowing both ways with nothing dropped.
@Test func followsPeerKeyUpdate() throws {
    let pair = try SimulatedPair()
    pair.run { pair.client.handshakeConfirmed }
    let server = try #require(pair.serverConnection)
    // What an initiating peer does: new write keys, phase bit flipped, ready to read both phases.
    let read = try #require(server.spaces[2].readKey)
    server.keyUpdate.previousReadKey = read
    server.spaces[2].readKey = read.nextPhase()
    server.spaces[2].writeKey = server.spaces[2].writeKey?.nextPhase()
    server.keyUpdate.phase = true
    #expect(server.sendDatagram(ByteBuffer(string: "new phase")))
    pair.run(for: .seconds(1)) { pair.clientEvents.contains(.datagram(ByteBuffer(string: "new phase"))) }
    #expect(pair.clientEvents.contains(.datagram(ByteBuffer(string: "new phase"))))
    #expect(pair.client.keyUpdate.updates == 1 && pair.client.keyUpdate.phase)
    #expect(pair.client.sendDatagram(ByteBuffer(string: "answer")))
    pair.run(for: .seconds(1)) { pair.serverEvents.contains(.datagram(ByteBuffer(string: "answer"))) }
    #expect(pair.serverEvents.contains(.datagram(ByteBuffer(string: "answer"))))
    #expect(pair.client.droppedPackets == 0 && server.droppedPackets == 0)
}

/// RFC 9000 §17.2.5: a client takes one Retry with a valid integrity tag and ignores forged ones.
@Test func clientAcceptsOnlyAuthenticRetry() throws {
    let client = try QUICConnection(client: clientConfiguration(), now: Instant(nanoseconds: 1))
    _ = client.transmit(now: Instant(nanoseconds: 1))
    func retry(tagFor odcid: QUICConnectionID) -> ByteBuffer {
        // Retry: 0xf0, version 1, DCID = the client's SCID, SCID 0a0b0c0d, token "tok", tag.
        let body = [0xf0, 0, 0, 0, 1, UInt8(client.sourceID.count)] + client.sourceID.bytes + [4, 0x0a, 0x0b, 0x0c, 0x0d] + Array("tok".utf8)
        return ByteBuffer(bytes: body + quicRetryIntegrityTag(retryWithoutTag: body, originalDestinationID: odcid))
    }
    client.receive(datagram: retry(tagFor: QUICConnectionID([1, 2, 3, 4, 5, 6, 7, 8])), now: Instant(nanoseconds: 2))
    #expect(client.retrySourceID == nil && client.droppedPackets == 1)
    client.receive(datagram: retry(tagFor: client.originalDestinationID), now: Instant(nanoseconds: 3))
    #expect(client.retrySourceID == QUICConnectionID([0x0a, 0x0b, 0x0c, 0x0d]))
    #expect(client.destinationID == QUICConnectionID([0x0a, 0x0b, 0x0c, 0x0d]))
    // The new Initial carries the token and a fresh copy of the ClientHello from offset 0.
    let datagrams = client.transmit(now: Instant(nanoseconds: 4))
    let first = try #require(datagrams.first)
    let header = try QUICPacketHeader.parse(datagram: first, at: 0, shortConnectionIDLength: 8)
    #expect(header.type == .initial && header.token == Array("tok".utf8) && first.readableBytes >= 1200)
    // A second Retry is ignored.
    client.receive(datagram: retry(tagFor: client.originalDestinationID), now: Instant(nanoseconds: 5))
    #expect(client.droppedPackets == 2)
}

/// RFC 9000 §6: an Initial of an unknown version gets Version Negotiation listing v1, with the IDs
/// swapped; a client whose version list lacks v1 gives up; short datagrams get nothing.
@Test func serverAnswersUnknownVersionWithNegotiation() throws {
    let endpoint = QUICServerEndpoint(configuration: serverConfiguration())
    // Long header, version 0x1a2a3a4a, DCID 0102030405060708, SCID aabb, then padding.
    let probe: [UInt8] = [0xc0, 0x1a, 0x2a, 0x3a, 0x4a, 8, 1, 2, 3, 4, 5, 6, 7, 8, 2, 0xaa, 0xbb]
    let datagram = ByteBuffer(bytes: probe + [UInt8](repeating: 0, count: 1200 - probe.count))
    let routed = endpoint.route(datagram, now: .zero)
    #expect(routed == nil)
    let answer = try #require(endpoint.versionNegotiation(for: datagram))
    let header = try QUICPacketHeader.parse(datagram: answer, at: 0, shortConnectionIDLength: 8)
    #expect(header.type == .versionNegotiation && header.version == 0 && header.supportedVersions == [quicVersion1])
    #expect(header.destinationID.bytes == [0xaa, 0xbb] && header.sourceID.bytes == [1, 2, 3, 4, 5, 6, 7, 8])
    #expect(endpoint.versionNegotiation(for: ByteBuffer(bytes: probe)) == nil)  // < 1200 bytes
    #expect(endpoint.versionNegotiation(for: answer) == nil)  // never answer VN
    #expect(endpoint.versionNegotiation(for: ByteBuffer(bytes: rfcClientProtected)) == nil)  // v1 is not negotiated

    // Our client, told that only a version it lacks exists, closes.
    let client = try QUICConnection(client: clientConfiguration(), now: .zero)
    var negotiation = ByteBuffer(bytes: [0xc0, 0, 0, 0, 0, UInt8(client.sourceID.count)] + client.sourceID.bytes + [0])
    negotiation.writeInteger(UInt32(0x1a2a_3a4a))
    client.receive(datagram: negotiation, now: .zero)
    #expect(client.isClosed)
}
