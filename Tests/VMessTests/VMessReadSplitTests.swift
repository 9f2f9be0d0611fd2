// The vmess inbound under arbitrary read splits (TestSupport/ReadSplits): the AEAD request header
// and a body of chunks of 1, 100, 16,384 and 3 bytes, with AES-128-GCM (masked, padded) and none on
// the server, every security kind on the body opener alone. Without header protection (Go with a
// transport) the header may come in any pieces; with it, the first read holds the first 100 bytes
// (auth ID, sealed length, nonce and more: sing-vmess reads them once) and every later cut is tried.
import Adapter
import NIOCore
import NIOEmbedded
import Net
import Testing
import TestSupport
@testable import VMess

/// A router stand-in that records the TCP flows it is handed.
private final class FlowRecorder: FlowHandler, @unchecked Sendable {
    var tcp: [FlowMetadata] = []
    func handleTCP(_ channel: any Channel, metadata: FlowMetadata, responder: (any HandshakeResponder)?) { tcp.append(metadata) }
    func handleUDP(_ connection: any PacketConnection, metadata: FlowMetadata) {}
}

@Suite struct VMessReadSplitTests {
    static let sizes = [1, 100, 16_384, 3]

    /// A client's stream: the sealed header, then the body's chunks; where each chunk starts.
    static func clientStream(security: UInt8, option: UInt8) throws -> (bytes: [UInt8], boundaries: [Int], body: [UInt8], header: Int) {
        let request = VMessCodecTests.request(security: security, option: option)
        var bytes = try VMessHeader.sealRequest(request, commandKey: VMessCodecTests.commandKey, time: vmessSystemClock())
        let header = bytes.count
        var boundaries = [header]
        var sealer = try VMessChunkSealer(.request(request))
        var body: [UInt8] = []
        for size in sizes {
            let data = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 5 &+ size) }
            body += data
            var out = ByteBuffer()
            _ = sealer.seal(ByteBuffer(bytes: data), into: &out)
            boundaries.append(bytes.count)
            bytes += out.readableBytesView
        }
        return (bytes, boundaries, body, header)
    }

    struct Output: Equatable {
        var destination: Destination?
        var bytes = ByteBuffer()
    }

    static func run(_ reads: [ArraySlice<UInt8>], headerProtection: Bool) throws -> Output {
        var context = VMessServerContext(tag: "in", users: [VMessServerUser(name: "alice", index: 0, uuid: VMessCodecTests.uuid)],
                                         listenOptions: nil, logger: ContextLogger(core: .disabled, name: ""))
        context.headerProtection = headerProtection
        let flows = FlowRecorder()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([
            VMessServerHandler(context: context, flowID: FlowID(), streams: flows, packets: flows), FlowBufferHandler(),
        ])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40000)).wait()
        for read in reads where channel.isActive { try channel.writeInbound(ByteBuffer(bytes: read)) }
        var output = Output(destination: flows.tcp.first?.destination)
        let pipeline = channel.pipeline.syncOperations
        if let holder = try? pipeline.handler(type: FlowBufferHandler.self) { pipeline.removeHandler(holder, promise: nil) }
        while var piece = try channel.readInbound(as: ByteBuffer.self) { output.bytes.writeBuffer(&piece) }
        _ = try? channel.finish()
        return output
    }

    static let serverCases: [(UInt8, UInt8)] = [(VMessModule.securityAES128GCM, 1 | 4 | 8 | 16), (VMessModule.securityNone, 1)]

    @Test(arguments: 0..<serverCases.count)
    func serverUnderEverySplit(index: Int) throws {
        let (security, option) = Self.serverCases[index]
        let stream = try Self.clientStream(security: security, option: option)
        let expected = Output(destination: Destination(domain: "example.com", port: 443), bytes: ByteBuffer(bytes: stream.body))
        // Without header protection: any cut at all.
        let open = ReadSplits.schedules(length: stream.bytes.count, boundaries: stream.boundaries, radius: 8, pairRegion: 0..<12)
        var failures = ReadSplits.mismatches(stream.bytes, schedules: open, expected: expected) { try Self.run($0, headerProtection: false) }
        #expect(failures.isEmpty, "no header protection: \(failures)")
        // With it: the first read holds at least 100 bytes, as sing-vmess demands.
        let prefix = VMessModule.aeadMinimumHeaderLength
        let guarded = ReadSplits.schedules(length: stream.bytes.count, boundaries: stream.boundaries, radius: 8,
                                           pairRegion: prefix..<prefix + 12).map {
            ReadSchedule(name: $0.name, cuts: $0.cuts.filter { $0 >= prefix })
        }
        failures = ReadSplits.mismatches(stream.bytes, schedules: guarded, expected: expected) { try Self.run($0, headerProtection: true) }
        #expect(failures.isEmpty, "header protection: \(failures)")
    }

    /// The body opener alone, both directions: AEAD with masking and padding, ChaCha20, none with
    /// chunk stream, legacy (AES-128-CFB with FNV checksums).
    @Test(arguments: [3, 5, 7, 10])
    func bodyUnderEverySplit(index: Int) throws {
        let (security, option) = VMessCodecTests.bodyCases[index]
        let request = VMessCodecTests.request(security: security, option: option)
        for direction in [VMessBodyParameters.request(request), .response(request)] {
            var sealer = try VMessChunkSealer(direction)
            var wire: [UInt8] = []
            var boundaries: [Int] = []
            var sent: [UInt8] = []
            for size in Self.sizes {
                let data = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 3 &+ size) }
                sent += data
                var out = ByteBuffer()
                _ = sealer.seal(ByteBuffer(bytes: data), into: &out)
                boundaries.append(wire.count)
                wire += out.readableBytesView
            }
            let schedules = ReadSplits.schedules(length: wire.count, boundaries: boundaries, radius: 8, pairRegion: 0..<12, randomRuns: 6)
            let failures = ReadSplits.mismatches(wire, schedules: schedules, expected: ByteBuffer(bytes: sent)) { reads in
                var opener = try VMessChunkOpener(direction)
                var pending = ByteBuffer()
                var received = ByteBuffer()
                for read in reads {
                    pending.writeBytes(read)
                    var payloads: [ByteBuffer] = []
                    try opener.open(&pending, into: &payloads)
                    for var payload in payloads { received.writeBuffer(&payload) }
                    pending.discardReadBytes()
                }
                return received
            }
            #expect(failures.isEmpty, "security \(security) option \(option): \(failures)")
        }
    }
}
