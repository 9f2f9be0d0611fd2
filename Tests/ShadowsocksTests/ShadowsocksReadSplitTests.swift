// Shadowsocks TCP sessions under arbitrary read splits (TestSupport/ReadSplits): the client's
// request (salt, SIP022 header blocks or the AEAD address chunk) and chunks of 1…16,383 bytes
// through the server's parser, and the server's reply through the client's, for one method of each
// family; one byte per read, every cut near each header, every pair of cuts over the salt and
// header, seeded random cuts. Then the buffer a long transfer in misaligned reads leaves behind.
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

    /// One method of each family: none, AEAD (AES-GCM and ChaCha20), 2022.
    static let cases = ["none", "aes-128-gcm", "chacha20-ietf-poly1305", "2022-blake3-aes-128-gcm"]

    @Test(arguments: cases)
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
        let schedules = ReadSplits.schedules(length: wire.count, boundaries: boundaries, radius: 10, pairRegion: 0..<20, randomRuns: 6)
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

    @Test(arguments: cases)
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
        let schedules = ReadSplits.schedules(length: wire.count, boundaries: boundaries, radius: 10, pairRegion: 0..<20, randomRuns: 6)
        let failures = ReadSplits.mismatches(wire, schedules: schedules, expected: ByteBuffer(bytes: sent)) { reads in
            var client = requestSent
            var delivered: [ByteBuffer] = []
            for read in reads { try client.receive(buffer(Array(read)), into: &delivered) }
            return Self.joinedBuffer(delivered)
        }
        #expect(failures.isEmpty, "\(failures)")
    }
}

@Suite struct ShadowsocksBufferGrowthTests {
    /// A long download whose reads never end on a chunk boundary (5,000-byte reads, 16,417-byte
    /// chunks): the partial chunk held between reads must not drag along every byte read before it.
    @Test(arguments: ["aes-128-gcm", "2022-blake3-aes-128-gcm", "chacha20-ietf-poly1305"])
    func misalignedReadsKeepTheBufferSmall(name: String) throws {
        let (clientMethod, serverMethod) = try methods(name)
        var client = ShadowsocksClientSession(method: clientMethod, destination: ShadowsocksReadSplitTests.destination)
        var server = ShadowsocksServerSession(method: serverMethod, saltFilter: nil)
        var wire = client.request(payload: buffer([1]))
        let data = patterned(1 << 20, seed: 5)
        wire.writeImmutableBuffer(client.seal(buffer(data)))
        var upload = 0
        var largestUpload = 0
        while wire.readableBytes > 0, let read = wire.readSlice(length: min(5000, wire.readableBytes)) {
            var payloads: [ByteBuffer] = []
            try server.receive(read, into: &payloads)
            for payload in payloads { upload += payload.readableBytes }
            largestUpload = max(largestUpload, server.pending.capacity)
        }
        #expect(upload == data.count + 1)
        #expect(largestUpload < 1 << 18, "the server held \(largestUpload) bytes of storage")

        var reply = server.seal(buffer(data))
        var download = 0
        var largestDownload = 0
        while reply.readableBytes > 0, let read = reply.readSlice(length: min(5000, reply.readableBytes)) {
            var payloads: [ByteBuffer] = []
            try client.receive(read, into: &payloads)
            for payload in payloads { download += payload.readableBytes }
            largestDownload = max(largestDownload, client.pending.capacity)
        }
        #expect(download == data.count)
        #expect(largestDownload < 1 << 18, "the client held \(largestDownload) bytes of storage")
    }
}
