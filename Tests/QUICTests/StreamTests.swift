// Streams on simulated time: several concurrent bidirectional streams echoed byte-exact, a
// unidirectional stream, RESET_STREAM/STOP_SENDING, flow control with small windows, and the
// same transfers under 1–10 % loss, reordering and duplication.
import NIOCore
import NetstackWire
@testable import QUIC
import Testing
import TestSupport

/// Deterministic payload bytes for stream `index`.
func payload(_ index: Int, count: Int) -> [UInt8] {
    var generator = TestRandom(seed: UInt64(index) &* 7919 &+ 1)
    return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
}

extension SimulatedPair {
    /// The server echoes every stream it reads (FIN included); returns what the client got back per stream.
    func runEcho(streams: [UInt64: [UInt8]], limit: Duration = .seconds(120)) -> [UInt64: [UInt8]] {
        var received: [UInt64: [UInt8]] = [:]
        var finished: Set<UInt64> = []
        var serverFinished: Set<UInt64> = []
        let end = now + limit
        while now < end, finished.count < streams.count {
            let before = now
            run(for: .milliseconds(50)) { false }
            if now == before { now += .milliseconds(1) }
            guard let server = serverConnection else { continue }
            for id in server.streams.keys.sorted() where !serverFinished.contains(id) {
                while let data = server.readStream(id) { try? server.writeStream(id, data) }
                if server.isStreamFinished(id) {
                    serverFinished.insert(id)
                    try? server.writeStream(id, ByteBuffer(), fin: true)
                }
            }
            for id in streams.keys where !finished.contains(id) {
                while let data = client.readStream(id) { received[id, default: []] += data.bytes }
                if client.isStreamFinished(id), received[id, default: []].count == streams[id]!.count { finished.insert(id) }
            }
        }
        return received
    }
}

@Suite struct QUICStreamTests {
    @Test func echoesConcurrentStreams() throws {
        let pair = try SimulatedPair()
        pair.run { pair.client.handshakeConfirmed }
        var sent: [UInt64: [UInt8]] = [:]
        for index in 0..<4 {
            let id = try #require(pair.client.openStream(bidirectional: true))
            let bytes = payload(index, count: 300_000 + index * 1000)
            try pair.client.writeStream(id, ByteBuffer(bytes: bytes), fin: true)
            sent[id] = bytes
        }
        let received = pair.runEcho(streams: sent)
        for (id, bytes) in sent { let same = received[id] == bytes; #expect(same, "stream \(id): \(received[id]?.count ?? 0) of \(bytes.count)") }
    }

    /// 3 × 700 KB each way (4.2 MB in all) under loss, reordering and duplication.
    @Test(arguments: [(UInt64(11), 0.01), (12, 0.05), (13, 0.10), (14, 0.10)])
    func echoesUnderLossReorderingDuplication(seed: UInt64, loss: Double) throws {
        let pair = try SimulatedPair(seed: seed, loss: loss, duplicate: loss, reorder: loss)
        pair.run(for: .seconds(60)) { pair.client.handshakeConfirmed && pair.serverConnection?.isEstablished == true }
        try #require(pair.client.handshakeConfirmed)
        var sent: [UInt64: [UInt8]] = [:]
        for index in 0..<3 {
            let id = try #require(pair.client.openStream(bidirectional: true))
            let bytes = payload(index + 10, count: 700_000)
            try pair.client.writeStream(id, ByteBuffer(bytes: bytes), fin: true)
            sent[id] = bytes
        }
        let received = pair.runEcho(streams: sent, limit: .seconds(600))
        for (id, bytes) in sent { let same = received[id] == bytes; #expect(same, "stream \(id): \(received[id]?.count ?? 0) of \(bytes.count)") }
        let closes = (pair.clientEvents + pair.serverEvents).filter { if case .closed = $0 { true } else { false } }
        func dump(_ c: QUICConnection?) -> String {
            guard let c else { return "nil" }
            let streams = c.streams.values.map { "id=\($0.id) next=\($0.sendNext) base=\($0.sendBase) buf=\($0.sendBuffer.readableBytes) rtx=\($0.sendRetransmit) fin=\($0.finQueued)/\($0.finSent)/\($0.finAcked) rcv=\($0.receiveOffset) hi=\($0.receiveHighest) final=\(String(describing: $0.finalSize)) pend=\($0.receivePending.keys.sorted())" }
            return "sent=\(c.spaces[2].sent.count) inflight=\(c.congestion.bytesInFlight) cwnd=\(c.congestion.window) pto=\(c.ptoCount) flow=\(c.connectionFlow) streams=\(streams)"
        }
        #expect(pair.client.isEstablished && pair.serverConnection?.isEstablished == true, "\(closes)\nclient: \(dump(pair.client))\nserver: \(dump(pair.serverConnection))")
    }

    @Test func smallFlowControlWindowsStillTransferEverything() throws {
        var client = clientConfiguration(), server = serverConfiguration()
        client.initialMaxData = 20_000; client.initialMaxStreamData = 8_000
        server.initialMaxData = 20_000; server.initialMaxStreamData = 8_000
        server.initialMaxStreamsBidi = 2
        let pair = try SimulatedPair(client: client, server: server)
        pair.run { pair.client.handshakeConfirmed }
        var sent: [UInt64: [UInt8]] = [:]
        for index in 0..<2 {
            let id = try #require(pair.client.openStream(bidirectional: true))
            let bytes = payload(index + 20, count: 100_000)
            try pair.client.writeStream(id, ByteBuffer(bytes: bytes), fin: true)
            sent[id] = bytes
        }
        // MAX_STREAMS 2: a third stream must wait for the peer to raise the limit.
        #expect(pair.client.openStream(bidirectional: true) == nil)
        let received = pair.runEcho(streams: sent)
        for (id, bytes) in sent { let same = received[id] == bytes; #expect(same, "stream \(id): \(received[id]?.count ?? 0) of \(bytes.count)") }
        // Both finished streams are gone on the server, which raised MAX_STREAMS (§4.6).
        pair.run(for: .seconds(1)) { false }
        #expect(pair.client.openStream(bidirectional: true) != nil)
    }

    @Test func unidirectionalStreamAndReset() throws {
        let pair = try SimulatedPair()
        pair.run { pair.client.handshakeConfirmed }
        let server = try #require(pair.serverConnection)
        let uni = try #require(pair.client.openStream(bidirectional: false))
        #expect(uni == 2)
        try pair.client.writeStream(uni, ByteBuffer(string: "one way"), fin: true)
        pair.run(for: .seconds(1)) { pair.serverEvents.contains(.streamReadable(uni)) }
        #expect(pair.serverEvents.contains(.streamOpened(uni)))
        #expect(server.readStream(uni).map { String(buffer: $0) } == "one way")
        #expect(server.isStreamFinished(uni))
        // The server cannot write on the client's unidirectional stream.
        #expect(throws: QUICStreamError.self) { try server.writeStream(uni, ByteBuffer(string: "no")) }

        // RESET_STREAM: the client abandons a stream; the server sees the code.
        let bidi = try #require(pair.client.openStream(bidirectional: true))
        try pair.client.writeStream(bidi, ByteBuffer(string: "partial"))
        pair.run(for: .milliseconds(200)) { false }
        pair.client.resetStream(bidi, errorCode: 9)
        pair.run(for: .seconds(1)) { pair.serverEvents.contains(.streamReset(bidi, errorCode: 9)) }
        #expect(pair.serverEvents.contains(.streamReset(bidi, errorCode: 9)))

        // STOP_SENDING: the server asks the client to stop; the client resets with the same code.
        let third = try #require(pair.client.openStream(bidirectional: true))
        try pair.client.writeStream(third, ByteBuffer(string: "more"))
        pair.run(for: .milliseconds(200)) { false }
        server.stopSending(third, errorCode: 5)
        pair.run(for: .seconds(1)) { pair.clientEvents.contains(.streamStopSending(third, errorCode: 5)) }
        #expect(pair.clientEvents.contains(.streamStopSending(third, errorCode: 5)))
        pair.run(for: .seconds(1)) { pair.serverEvents.contains(.streamReset(third, errorCode: 5)) }
        #expect(pair.serverEvents.contains(.streamReset(third, errorCode: 5)))
        #expect(pair.client.isEstablished && server.isEstablished)
    }

    @Test func peerExceedingStreamLimitIsClosed() throws {
        var server = serverConfiguration()
        server.initialMaxStreamsBidi = 1
        let pair = try SimulatedPair(server: server)
        pair.run { pair.client.handshakeConfirmed }
        // Cheat past our own limit check: claim the peer allows more.
        pair.client.streamLimits.peerMaxBidi = 5
        _ = pair.client.openStream(bidirectional: true)
        let second = try #require(pair.client.openStream(bidirectional: true))
        try pair.client.writeStream(second, ByteBuffer(string: "x"))
        pair.run(for: .seconds(5)) { pair.client.isClosed }
        let closed = pair.clientEvents.compactMap { if case .closed(let reason) = $0 { reason } else { nil } }
        #expect(closed.first?.errorCode == QUICTransportError.streamLimitError.rawValue)
        #expect(closed.first?.byPeer == true)
    }
}
