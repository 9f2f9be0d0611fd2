// Shadowsocks TCP sessions under arbitrary read splits (TestSupport/ReadSplits): the client's
// request (salt, SIP022 header blocks or the AEAD address chunk) and chunks of 0…70,000 bytes
// through the server's parser, and the server's reply through the client's; one byte per read,
// every cut near each header, every pair of cuts over the salt and header, seeded random cuts.
import Adapter
import NIOCore
import Testing
import TestSupport
@testable import Shadowsocks

@Suite struct ShadowsocksReadSplitTests {
    static let destination = Destination(domain: "example.com", port: 443)
    static let sizes = [100, 1, 16_383, 3000, 2]

    struct Output: Equatable {
        var destination: Destination?
        var bytes: ByteBuffer
    }

    /// The payloads joined (ByteBuffer: cheap to append and compare in debug builds).
    static func joinedBuffer(_ pieces: [ByteBuffer]) -> ByteBuffer {
        var out = ByteBuffer()
        for var piece in pieces { out.writeBuffer(&piece) }
        return out
    }

    @Test(arguments: methodNames)
    func serverUnderEverySplit(name: String) throws {
        let (clientMethod, serverMethod) = try methods(name)
        var client = ShadowsocksClientSession(method: clientMethod, destination: Self.destination)
        var wire: [UInt8] = Array(client.request(payload: buffer(patterned(Self.sizes[0]))).readableBytesView)
        var boundaries = [0, wire.count]
        var sent = patterned(Self.sizes[0])
        for (index, size) in Self.sizes.dropFirst().enumerated() {
            let data = patterned(size, seed: index + 1)
            sent += data
            boundaries.append(wire.count)
            wire += client.seal(buffer(data)).readableBytesView
        }
        let schedules = ReadSplits.schedules(length: wire.count, boundaries: boundaries, radius: 12, pairRegion: 0..<24, randomRuns: 8)
        let expected = Output(destination: Self.destination, bytes: ByteBuffer(bytes: sent))
        let failures = ReadSplits.mismatches(wire, schedules: schedules, expected: expected) { reads in
            // Each run is a new connection; the salt filter would refuse the replay.
            var server = ShadowsocksServerSession(method: serverMethod, saltFilter: nil)
            var received: [ByteBuffer] = []
            for read in reads { try server.receive(buffer(Array(read)), into: &received) }
            return Output(destination: server.destination, bytes: Self.joinedBuffer(received))
        }
        #expect(failures.isEmpty, "\(failures)")
    }

    @Test(arguments: methodNames)
    func clientUnderEverySplit(name: String) throws {
        let (clientMethod, serverMethod) = try methods(name)
        var client = ShadowsocksClientSession(method: clientMethod, destination: Self.destination)
        var server = ShadowsocksServerSession(method: serverMethod, saltFilter: nil)
        var ignored: [ByteBuffer] = []
        try server.receive(client.request(payload: buffer([1])), into: &ignored)
        var wire: [UInt8] = []
        var boundaries: [Int] = []
        var sent: [UInt8] = []
        for (index, size) in Self.sizes.enumerated() {
            let data = patterned(size, seed: index + 7)
            sent += data
            boundaries.append(wire.count)
            wire += server.seal(buffer(data)).readableBytesView
        }
        let requestSent = client
        let schedules = ReadSplits.schedules(length: wire.count, boundaries: boundaries, radius: 12, pairRegion: 0..<24, randomRuns: 8)
        let failures = ReadSplits.mismatches(wire, schedules: schedules, expected: ByteBuffer(bytes: sent)) { reads in
            var client = requestSent
            var delivered: [ByteBuffer] = []
            for read in reads { try client.receive(buffer(Array(read)), into: &delivered) }
            return Self.joinedBuffer(delivered)
        }
        #expect(failures.isEmpty, "\(failures)")
    }
}
