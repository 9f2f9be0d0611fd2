// The vless inbound under arbitrary read splits (TestSupport/ReadSplits): a TCP request with its
// payload, and a UDP request with length-prefixed datagrams of 0, 1, 1400 and 65,535 bytes; one byte
// per read, every cut and pair of cuts over the request, cuts around each datagram header, seeded
// random cuts: the same flow and the same bytes each time.
import Adapter
import NIOCore
import NIOEmbedded
import Net
import Synchronization
import Testing
import TestSupport
import VLESS
import VMess

@Suite struct VLESSReadSplitTests {
    struct Output: Equatable {
        var destination: Destination?
        var user: String?
        var bytes = ByteBuffer()
        var packets: [[UInt8]] = []
    }

    static func run(_ reads: [ArraySlice<UInt8>]) throws -> Output {
        let (channel, recorder) = try VLESSServerHandlerTests.channel()
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
        }
        _ = try? channel.finish()
        return output
    }

    @Test func tcpUnderEverySplit() throws {
        let destination = Destination(domain: "example.com", port: 443)
        let request = try VLESSServerHandlerTests.request(to: destination)
        let data = (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 11) }
        let bytes = request + data
        let schedules = ReadSplits.schedules(length: bytes.count, boundaries: [request.count], pairRegion: 0..<request.count + 2)
        let expected = Output(destination: destination, user: "alice", bytes: ByteBuffer(bytes: data))
        let failures = ReadSplits.mismatches(bytes, schedules: schedules, expected: expected) { try Self.run($0) }
        #expect(failures.isEmpty, "\(failures)")
    }

    @Test func udpUnderEverySplit() throws {
        let destination = Destination(ip: .v4(0x0808_0808), port: 53)
        var bytes = try VLESSServerHandlerTests.request(command: VLESSModule.commandUDP, to: destination)
        var boundaries = [bytes.count]
        var expected = Output(destination: destination, user: "alice")
        for (index, size) in [0, 1, 1400, 65_535, 5].enumerated() {
            let data = (0..<size).map { UInt8(truncatingIfNeeded: $0 &+ 3 &* index) }
            boundaries.append(bytes.count)
            bytes += [UInt8(size >> 8), UInt8(size & 0xFF)] + data
            expected.packets.append(data)
        }
        let schedules = ReadSplits.schedules(length: bytes.count, boundaries: boundaries, pairRegion: boundaries[0] - 8..<boundaries[0] + 4)
        let failures = ReadSplits.mismatches(bytes, schedules: schedules, expected: expected) { try Self.run($0) }
        #expect(failures.isEmpty, "\(failures)")
    }
}
