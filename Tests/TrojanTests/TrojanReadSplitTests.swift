// The trojan inbound under arbitrary read splits (TestSupport/ReadSplits): a connect request with
// its payload, and a UDP associate with frames of 0, 1, 1400 and 65,535 bytes. Go reads the key
// with one Read, so the first read holds the key (56 bytes) and every cut lies after it: one byte
// per read after the key, every cut and pair of cuts over the request, seeded random cuts.
import Adapter
import NIOCore
import NIOEmbedded
import Net
import Synchronization
import Testing
import TestSupport
import Trojan

@Suite struct TrojanReadSplitTests {
    /// What the handler handed on: the flow's destination and user, and the bytes or datagrams after it.
    struct Output: Equatable {
        var destination: Destination?
        var user: String?
        var bytes = ByteBuffer()
        var packets: [[UInt8]] = []
        var sources: [Destination] = []
    }

    /// `schedules` with the key kept whole in the first read.
    static func afterKey(_ schedules: [ReadSchedule]) -> [ReadSchedule] {
        schedules.map { ReadSchedule(name: $0.name, cuts: $0.cuts.filter { $0 > TrojanModule.keyLength }) }
    }

    static func run(_ reads: [ArraySlice<UInt8>]) throws -> Output {
        let (channel, recorder) = try TrojanServerHandlerTests.channel()
        for read in reads { try channel.writeInbound(channel.allocator.buffer(bytes: read)) }
        var output = Output()
        if let flow = recorder.tcp.withLock({ $0.first }) {
            output.destination = flow.destination
            output.user = flow.user
            let pipeline = channel.pipeline.syncOperations
            if let holder = try? pipeline.handler(type: FlowBufferHandler.self) { pipeline.removeHandler(holder, promise: nil) }
            while var piece = try channel.readInbound(as: ByteBuffer.self) { output.bytes.writeBuffer(&piece) }
        }
        if let (connection, flow) = recorder.udp.withLock({ $0.first }) {
            output.destination = flow.destination
            output.user = flow.user
            let sink = PacketSink()
            connection.setReceiver(sink)
            output.packets = sink.packets.map(\.0)
            output.sources = sink.packets.map(\.1)
        }
        _ = try? channel.finish()
        return output
    }

    @Test func connectUnderEverySplit() throws {
        let request = try TrojanServerHandlerTests.request(to: Destination(domain: "example.com", port: 443))
        let data = (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        let bytes = request + data
        let schedules = Self.afterKey(ReadSplits.schedules(length: bytes.count, boundaries: [request.count],
                                                           pairRegion: TrojanModule.keyLength..<request.count + 2))
        let expected = Output(destination: Destination(domain: "example.com", port: 443), user: "alice", bytes: ByteBuffer(bytes: data))
        let failures = ReadSplits.mismatches(bytes, schedules: schedules, expected: expected) { try Self.run($0) }
        #expect(failures.isEmpty, "\(failures)")
    }

    @Test func udpAssociateUnderEverySplit() throws {
        let dns = Destination(ip: .v4(0x7F00_0001), port: 53)
        let targets = [dns, Destination(ip: IPAddress("2001:db8::3")!, port: 443), Destination(domain: "a.example", port: 123)]
        var bytes = try TrojanServerHandlerTests.request(command: TrojanModule.commandUDPAssociate, to: dns)
        var boundaries = [bytes.count]
        var expected = Output(destination: dns, user: "alice")
        for (index, size) in [0, 1, 1400, 65_535, 9].enumerated() {
            let data = (0..<size).map { UInt8(truncatingIfNeeded: $0 &+ index) }
            var frame = ByteBuffer()
            try TrojanCodec.writePacket(ByteBuffer(bytes: data), to: targets[index % 3], into: &frame)
            boundaries.append(bytes.count)
            bytes += frame.readableBytesView
            expected.packets.append(data)
            expected.sources.append(targets[index % 3])
        }
        let schedules = Self.afterKey(ReadSplits.schedules(length: bytes.count, boundaries: boundaries,
                                                           pairRegion: boundaries[0] - 8..<boundaries[0] + 4))
        let failures = ReadSplits.mismatches(bytes, schedules: schedules, expected: expected) { try Self.run($0) }
        #expect(failures.isEmpty, "\(failures)")
    }
}
