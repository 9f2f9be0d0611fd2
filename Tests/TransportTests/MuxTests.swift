// sing-mux: the session and stream headers against bytes written from sing-mux's protocol.go, the
// padding framing, and smux / yamux sessions on an EmbeddedChannel (frames in, streams out, and
// garbage refused). Go sing-box at the other end is in InteropTests/MuxInteropTests.swift.
import Adapter
import NIOCore
import NIOEmbedded
import Testing
@testable import Transport

@Suite struct MuxHeaderTests {
    // version 0, protocol 2 (h2mux)
    @Test func sessionRequestVersion0() throws {
        var out = ByteBuffer()
        MuxSessionRequest(streamProtocol: .h2mux, padding: false).write(to: &out)
        #expect(Array(out.readableBytesView) == [0, 2])
        #expect(try MuxSessionRequest.read(from: &out) == MuxSessionRequest(streamProtocol: .h2mux, padding: false))
        #expect(out.readableBytes == 0)
    }

    // version 1, protocol 0 (smux), padding 1, length u16, that many bytes, then the session's bytes
    @Test func sessionRequestWithPaddingSkipsIt() throws {
        var out = ByteBuffer()
        MuxSessionRequest(streamProtocol: .smux, padding: true).write(to: &out)
        let bytes = Array(out.readableBytesView)
        #expect(bytes[0...2] == [1, 0, 1])
        let length = Int(bytes[3]) << 8 | Int(bytes[4])
        #expect((256..<768).contains(length) && bytes.count == 5 + length)
        out.writeBytes([0xAA])
        #expect(try MuxSessionRequest.read(from: &out)?.padding == true)
        #expect(Array(out.readableBytesView) == [0xAA])
    }

    @Test func sessionRequestTruncatedAtEveryLength() throws {
        let whole: [UInt8] = [1, 1, 1, 0, 3, 9, 9, 9]
        for length in 0..<whole.count {
            var buffer = ByteBuffer(bytes: whole.prefix(length))
            #expect(try MuxSessionRequest.read(from: &buffer) == nil)
            #expect(buffer.readableBytes == length)
        }
        var buffer = ByteBuffer(bytes: whole)
        #expect(try MuxSessionRequest.read(from: &buffer)?.streamProtocol == .yamux)
    }

    @Test func sessionRequestRefusesBadVersionAndProtocol() {
        var version = ByteBuffer(bytes: [2, 0])
        #expect(throws: MuxError.unsupportedVersion(2)) { try MuxSessionRequest.read(from: &version) }
        var proto = ByteBuffer(bytes: [0, 3])
        #expect(throws: MuxError.unexpectedProtocol(3)) { try MuxSessionRequest.read(from: &proto) }
        #expect("\(MuxError.unexpectedProtocol(3))" == "unexpected protocol 3")
    }

    // flags 0 (TCP), ATYP 1, 1.2.3.4, port 80; flags 3 (UDP + packet addresses), ATYP 3 "a.io" port 53
    @Test func streamRequests() throws {
        var out = ByteBuffer()
        try MuxStreamRequest(isUDP: false, packetAddress: false, destination: Destination(ip: .v4(0x0102_0304), port: 80)).write(to: &out)
        #expect(Array(out.readableBytesView) == [0, 0, 1, 1, 2, 3, 4, 0, 80])
        out.clear()
        let udp = MuxStreamRequest(isUDP: true, packetAddress: true, destination: Destination(domain: "a.io", port: 53))
        try udp.write(to: &out)
        let bytes = Array(out.readableBytesView)
        #expect(bytes == [0, 3, 3, 4, 0x61, 0x2E, 0x69, 0x6F, 0, 53])
        for length in 0..<bytes.count {
            var cut = ByteBuffer(bytes: bytes.prefix(length))
            #expect(try MuxStreamRequest.read(from: &cut) == nil)
            #expect(cut.readableBytes == length)
        }
        #expect(try MuxStreamRequest.read(from: &out) == udp)
        // The address flag means nothing on TCP (Go reads it only for UDP).
        var tcp = ByteBuffer(bytes: [0, 2, 1, 1, 2, 3, 4, 0, 80])
        #expect(try MuxStreamRequest.read(from: &tcp)?.packetAddress == false)
        var bad = ByteBuffer(bytes: [0, 0, 9, 1, 2])
        #expect(throws: MuxError.badAddress(.badFamily(9))) { try MuxStreamRequest.read(from: &bad) }
    }

    // status 0; status 1, uvarint 5, "nope!"
    @Test func streamResponses() throws {
        var out = ByteBuffer()
        MuxStreamResponse.success.write(to: &out)
        MuxStreamResponse.failure("nope!").write(to: &out)
        #expect(Array(out.readableBytesView) == [0, 1, 5, 0x6E, 0x6F, 0x70, 0x65, 0x21])
        #expect(try MuxStreamResponse.read(from: &out) == .success)
        for length in 0..<7 {
            var cut = ByteBuffer(bytes: Array(out.readableBytesView.prefix(length)))
            #expect(try MuxStreamResponse.read(from: &cut) == nil)
        }
        #expect(try MuxStreamResponse.read(from: &out) == .failure("nope!"))
        var long = ByteBuffer()
        MuxStreamResponse.failure(String(repeating: "x", count: 300)).write(to: &long)
        #expect(Array(long.readableBytesView.prefix(3)) == [1, 0xAC, 0x02])  // uvarint 300
        #expect(try MuxStreamResponse.read(from: &long) == .failure(String(repeating: "x", count: 300)))
        var bad = ByteBuffer(bytes: [7])
        #expect(throws: MuxError.badStatus(7)) { try MuxStreamResponse.read(from: &bad) }
        #expect("\(MuxError.remote("nope!"))" == "remote error: nope!")
    }
}

@Suite struct MuxPaddingTests {
    /// 20 writes through one padding handler, the bytes fed to another in 7-byte pieces: the same
    /// 20 payloads come out; the first 16 were framed and padded, the rest plain.
    @Test func roundTripsAndStopsPaddingAfter16Frames() throws {
        let writer = EmbeddedChannel(handler: MuxPaddingHandler())
        let reader = EmbeddedChannel(handler: MuxPaddingHandler())
        var wire = ByteBuffer()
        var sent: [UInt8] = []
        for index in 0..<20 {
            let payload = [UInt8](repeating: UInt8(index), count: 10 + index)
            sent += payload
            try writer.writeOutbound(ByteBuffer(bytes: payload))
            var out = try #require(try writer.readOutbound(as: ByteBuffer.self))
            if index < 16 {
                #expect(out.getInteger(at: out.readerIndex, as: UInt16.self) == UInt16(payload.count))
                let padding = Int(out.getInteger(at: out.readerIndex + 2, as: UInt16.self) ?? 0)
                #expect((256..<768).contains(padding) && out.readableBytes == 4 + payload.count + padding)
            } else {
                #expect(Array(out.readableBytesView) == payload)
            }
            wire.writeBuffer(&out)
        }
        var received: [UInt8] = []
        while wire.readableBytes > 0 {
            let piece = wire.readSlice(length: min(7, wire.readableBytes))!
            try reader.writeInbound(piece)
            while let chunk = try reader.readInbound(as: ByteBuffer.self) { received += Array(chunk.readableBytesView) }
        }
        #expect(received == sent)
        _ = try writer.finish()
        _ = try reader.finish()
    }
}

/// A server session on an EmbeddedChannel with the streams it accepted.
final class SessionHarness {
    let channel: EmbeddedChannel
    var streams: [MuxStreamChannel] = []

    init(_ session: MuxFramedSession) throws {
        channel = EmbeddedChannel()
        session.onStream = { [unowned self] stream in self.streams.append(stream) }
        try channel.pipeline.syncOperations.addHandler(session)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    }

    func feed(_ bytes: [UInt8]) throws { try channel.writeInbound(ByteBuffer(bytes: bytes)) }

    func written() throws -> [UInt8] {
        var all: [UInt8] = []
        while let out = try channel.readOutbound(as: ByteBuffer.self) { all += Array(out.readableBytesView) }
        return all
    }
}

/// Collects what a stream channel's pipeline reads.
private final class Collector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    var bytes: [UInt8] = []
    var inputClosed = false
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { bytes += Array(unwrapInboundIn(data).readableBytesView) }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event as? ChannelEvent == .inputClosed { inputClosed = true }
    }
}

@Suite struct SmuxSessionTests {
    // SYN sid 3; PSH sid 3 "hi"; FIN sid 3   (version 1, cmd, length LE, sid LE)
    @Test func acceptsStreamDeliversDataAndFin() throws {
        let harness = try SessionHarness(SmuxSession(client: false))
        try harness.feed([1, 0, 0, 0, 3, 0, 0, 0])
        let stream = try #require(harness.streams.first)
        let collector = Collector()
        try stream.pipeline.syncOperations.addHandler(collector)
        try stream.syncOptions?.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
        try stream.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        try harness.feed([1, 2, 2, 0, 3, 0, 0, 0, 0x68, 0x69])
        #expect(collector.bytes == [0x68, 0x69])
        // A reply: one PSH frame for sid 3.
        stream.writeAndFlush(ByteBuffer(bytes: [0x6F, 0x6B]), promise: nil)
        #expect(try harness.written() == [1, 2, 2, 0, 3, 0, 0, 0, 0x6F, 0x6B])
        try harness.feed([1, 1, 0, 0, 3, 0, 0, 0])
        #expect(collector.inputClosed)
        stream.close(promise: nil)
        #expect(try harness.written() == [1, 1, 0, 0, 3, 0, 0, 0])
        _ = try? harness.channel.finish()
    }

    @Test func refusesBadVersionAndCommand() throws {
        for frame: [UInt8] in [[2, 0, 0, 0, 3, 0, 0, 0], [1, 4, 0, 0, 3, 0, 0, 0], [1, 0xFF, 0, 0, 0, 0, 0, 0]] {
            let harness = try SessionHarness(SmuxSession(client: false))
            #expect(throws: MuxError.self) { try harness.feed(frame) }
            #expect(!harness.channel.isActive)
        }
    }

    /// Every truncation of a valid SYN + PSH pair leaves the session waiting, without a stream's data.
    @Test func waitsOnTruncatedFrames() throws {
        let frames: [UInt8] = [1, 0, 0, 0, 5, 0, 0, 0, 1, 2, 3, 0, 5, 0, 0, 0, 7, 7, 7]
        for length in 0..<frames.count {
            let harness = try SessionHarness(SmuxSession(client: false))
            try harness.feed(Array(frames.prefix(length)))
            #expect(harness.channel.isActive)
            #expect(harness.streams.count == (length >= 8 ? 1 : 0))
        }
    }
}

@Suite struct YamuxSessionTests {
    /// yamux header: version 0, type, flags u16, stream ID u32, length u32 (big-endian).
    static func header(_ type: UInt8, flags: UInt16, id: UInt32, length: UInt32) -> [UInt8] {
        var out = ByteBuffer()
        out.writeInteger(UInt8(0)); out.writeInteger(type); out.writeInteger(flags); out.writeInteger(id); out.writeInteger(length)
        return Array(out.readableBytesView)
    }

    @Test func acceptsWithAckAnswersPingAndGrantsWindow() throws {
        let harness = try SessionHarness(YamuxSession(client: false))
        try harness.feed(Self.header(1, flags: 1, id: 1, length: 0))  // window update + SYN
        let stream = try #require(harness.streams.first)
        #expect(try harness.written() == Self.header(1, flags: 2, id: 1, length: 0))  // ACK
        try harness.feed(Self.header(2, flags: 1, id: 0, length: 77))  // ping
        #expect(try harness.written() == Self.header(2, flags: 2, id: 0, length: 77))
        let collector = Collector()
        try stream.pipeline.syncOperations.addHandler(collector)
        try stream.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        // 128 KiB read: half the window, so a window update of 128 KiB goes out.
        let chunk = [UInt8](repeating: 5, count: 64 * 1024)
        try harness.feed(Self.header(0, flags: 0, id: 1, length: UInt32(chunk.count)) + chunk)
        try harness.feed(Self.header(0, flags: 0, id: 1, length: UInt32(chunk.count)) + chunk)
        #expect(collector.bytes.count == 128 * 1024)
        #expect(try harness.written() == Self.header(1, flags: 0, id: 1, length: 128 * 1024))
        // Our writes are bounded by the peer's window (256 KiB).
        stream.writeAndFlush(ByteBuffer(bytes: [UInt8](repeating: 1, count: 300 * 1024)), promise: nil)
        let sent = try harness.written()
        #expect(sent.count == 256 * 1024 + 4 * 12)  // four 64 KiB data frames, then the window is used up
        try harness.feed(Self.header(1, flags: 0, id: 1, length: 100 * 1024))
        #expect(try harness.written().count == 44 * 1024 + 12)
        _ = try? harness.channel.finish()
    }

    /// A close right after a half-close (what the relay does) still sends what the window held
    /// back, then the FIN, before the channel goes.
    @Test func closeLingersForWindowHeldBytes() throws {
        let harness = try SessionHarness(YamuxSession(client: false))
        try harness.feed(Self.header(1, flags: 1, id: 1, length: 0))
        let stream = try #require(harness.streams.first)
        _ = try harness.written()
        stream.writeAndFlush(ByteBuffer(bytes: [UInt8](repeating: 1, count: 300 * 1024)), promise: nil)
        #expect(try harness.written().count == 256 * 1024 + 4 * 12)
        stream.close(mode: .output, promise: nil)
        stream.close(promise: nil)
        #expect(stream.isActive)
        try harness.feed(Self.header(1, flags: 0, id: 1, length: 100 * 1024))
        let rest = try harness.written()
        #expect(rest.count == 44 * 1024 + 12 + 12)
        #expect(Array(rest.suffix(12)) == Self.header(1, flags: 4, id: 1, length: 0))  // FIN
        #expect(!stream.isActive)
        _ = try? harness.channel.finish()
    }

    @Test func refusesGarbage() throws {
        let cases: [[UInt8]] = [
            [1] + Self.header(0, flags: 0, id: 1, length: 0).dropFirst(),  // version 1
            Self.header(9, flags: 0, id: 1, length: 0),                   // type 9
            Self.header(0, flags: 1, id: 1, length: 1 << 20),             // past the window
            Self.header(1, flags: 1, id: 2, length: 0),                   // a client-side (even) ID from the client
        ]
        // A whole frame past the window: 256 KiB, then 1 more byte on the same stream.
        let window = [UInt8](repeating: 0, count: 256 * 1024)
        let overrun = Self.header(0, flags: 1, id: 1, length: UInt32(window.count)) + window + Self.header(0, flags: 0, id: 1, length: 1) + [0]
        let harness = try SessionHarness(YamuxSession(client: false))
        #expect(throws: MuxError.badFrame("yamux: recv window exceeded")) { try harness.feed(overrun) }
        for frame in cases {
            let harness = try SessionHarness(YamuxSession(client: false))
            #expect(throws: MuxError.self) { try harness.feed(frame) }
            #expect(!harness.channel.isActive)
        }
    }
}

@Suite struct MuxRobustnessTests {
    /// A small seeded generator (xorshift64*), so a failure repeats.
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state ^= state >> 12; state ^= state << 25; state ^= state >> 27
            return state &* 2_685_821_657_736_338_717
        }
    }

    /// Valid frames with random bytes flipped, and plain random bytes, fed in random pieces to
    /// smux and yamux servers and to the padding reader: each either keeps waiting or refuses with
    /// a `MuxError`; nothing traps.
    @Test(arguments: 0..<3)
    func mutatedFramesNeverTrap(kind: Int) throws {
        var random = Seeded(state: 0x9E37_79B9_7F4A_7C15 &+ UInt64(kind))
        let valid: [UInt8]
        switch kind {
        case 0: valid = [1, 0, 0, 0, 3, 0, 0, 0] + [1, 2, 4, 0, 3, 0, 0, 0, 0, 0, 1, 1] + [1, 1, 0, 0, 3, 0, 0, 0]
        case 1: valid = YamuxSessionTests.header(1, flags: 1, id: 1, length: 0) + YamuxSessionTests.header(0, flags: 4, id: 1, length: 3) + [1, 2, 3]
        default: valid = [0, 3, 1, 0, 9, 9, 9, 9, 9, 9, 9, 9, 9, 0, 0, 0, 0]
        }
        for round in 0..<300 {
            var bytes = valid
            if round % 3 == 2 {
                bytes = (0..<Int.random(in: 0..<64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            } else {
                for _ in 0..<Int.random(in: 1...3, using: &random) {
                    bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                }
            }
            // The harness keeps the accepted streams (held until the round ends).
            let harness: SessionHarness? = kind == 0 ? try SessionHarness(SmuxSession(client: false))
                : kind == 1 ? try SessionHarness(YamuxSession(client: false)) : nil
            let channel = harness?.channel ?? EmbeddedChannel(handler: MuxPaddingHandler())
            var rest = bytes[...]
            while !rest.isEmpty && channel.isActive {
                let count = Int.random(in: 1...rest.count, using: &random)
                do {
                    try channel.writeInbound(ByteBuffer(bytes: rest.prefix(count)))
                } catch {
                    #expect(error is MuxError, "round \(round): \(error)")
                    break
                }
                rest = rest.dropFirst(count)
            }
            _ = try? channel.finish()
            withExtendedLifetime(harness) {}
        }
    }
}
