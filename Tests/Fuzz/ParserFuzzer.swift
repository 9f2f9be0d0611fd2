// The stream-parser fuzzer: random, mutated and valid byte streams, cut into random reads, through
// the frame parsers of sing-mux (smux and yamux sessions, padding, session and stream requests),
// anytls, gun (grpc), simple-obfs (http and tls), mux.cool, WebSocket and tuic (a Connect header,
// then unidirectional-stream commands back to back). One engine serves both
// runs: the default suite's short one (TransportTests/ParserFuzzTests) and `netstack-bench
// fuzz-parsers`' long one, which adds timing and RSS (bench/NetstackBench/Fuzz.swift).
//
// Each `step()` takes the next target in turn and one input:
// 1. an encoded stream of several frames of random sizes (an oracle input), or that stream mutated
//    (bits flipped, bytes overwritten, cut, extended, a span repeated), or random bytes;
// 2. cuts it into reads of random lengths (often one byte, sometimes thousands);
// 3. feeds it to a fresh parser, which may refuse it with an error but never trap;
// 4. for an unmutated stream, also feeds it in one read: both outputs must be the same
//    (`splitMismatches` counts the ones that are not: a split bug).
// The caller checks that no single step is slow (a hang) and that memory stays flat.
import AnyTLS
import Adapter
import NIOCore
import NIOEmbedded
import TUIC
import Transport

/// One fuzz engine; the whole run follows from its seed.
package struct ParserFuzzer {
    /// The parsers it drives, in turn.
    package enum Target: Int, CaseIterable, Sendable, CustomStringConvertible {
        case smux, yamux, padding, muxRequests, anyTLS, gun, simpleObfsHTTP, simpleObfsTLS, muxCool, webSocket, tuic

        package var description: String {
            switch self {
            case .smux: "smux"
            case .yamux: "yamux"
            case .padding: "mux padding"
            case .muxRequests: "mux requests"
            case .anyTLS: "anytls"
            case .gun: "gun"
            case .simpleObfsHTTP: "simple-obfs http"
            case .simpleObfsTLS: "simple-obfs tls"
            case .muxCool: "mux.cool"
            case .webSocket: "websocket"
            case .tuic: "tuic"
            }
        }
    }

    private var random: Random
    /// The largest payload of one frame in a generated stream (frame limits permitting).
    private let maximumPayload: Int
    /// The one target every input goes to, or nil for all in turn.
    private let only: Target?
    /// Inputs fed so far.
    package private(set) var iterations = 0
    /// Inputs a parser refused with an error (expected for garbage).
    package private(set) var refused = 0
    /// Valid streams whose output under random reads differed from their output in one read.
    package private(set) var splitMismatches = 0
    /// The first such stream's target and iteration.
    package private(set) var firstMismatch: (target: Target, iteration: Int)?
    /// The longest input fed.
    package private(set) var longestInput = 0
    /// Inputs whose output was longer than the input could carry (must stay 0: nothing is invented).
    package private(set) var overlongOutputs = 0
    /// FNV-1a over every input and output so far: equal for equal seeds, unless an input or a
    /// parser draws on randomness of its own (then a failure could not be replayed from its seed).
    package private(set) var digest: UInt64 = 0xCBF2_9CE4_8422_2325
    /// The first overlong output: its target, iteration, and input and output sizes.
    package private(set) var firstOverlong: (target: Target, iteration: Int, input: Int, output: Int)?

    /// A fuzzer whose whole run follows from `seed`; frames carry at most `maximumPayload` bytes
    /// (the short run in the default suite keeps them small); `only` feeds every input to one target
    /// (to find which parser a failure belongs to).
    package init(seed: UInt64, maximumPayload: Int = 70_000, only: Target? = nil) {
        random = Random(state: seed)
        self.maximumPayload = maximumPayload
        self.only = only
    }

    /// One input through the next target.
    package mutating func step() {
        let target = only ?? Target(rawValue: iterations % Target.allCases.count)!
        iterations += 1
        var input = Self.validStream(target, &random, maximumPayload: maximumPayload)
        let kind = random.next() % 8
        if kind == 0 {
            input = (0..<Int(random.next() % 300)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        } else if kind < 5 {
            Self.mutate(&input, &random)
        }
        longestInput = max(longestInput, input.count)
        let reads = Self.randomReads(input, &random)
        let (output, failed) = Self.run(target, reads)
        if failed { refused += 1 }
        mixIntoDigest(input)
        mixIntoDigest([0xA5])
        mixIntoDigest(output)
        mixIntoDigest([failed ? 1 : 0])
        if output.count > input.count + 64 {
            overlongOutputs += 1
            if firstOverlong == nil { firstOverlong = (target, iterations - 1, input.count, output.count) }
        }
        if kind >= 5 {
            // A valid stream: the same output in one read, and no refusal.
            let (whole, wholeFailed) = Self.run(target, [input[...]])
            if whole != output || wholeFailed != failed || failed {
                splitMismatches += 1
                if firstMismatch == nil { firstMismatch = (target, iterations - 1) }
            }
        }
    }

    /// Folds `bytes` into `digest` (FNV-1a), without joining them to the rest first.
    private mutating func mixIntoDigest(_ bytes: [UInt8]) {
        for byte in bytes { digest = (digest ^ UInt64(byte)) &* 0x100_0000_01B3 }
    }

    /// Whether every output stayed within what its input could carry.
    package var boundsHeld: Bool { overlongOutputs == 0 }

    // MARK: Inputs

    /// A valid stream of 1–6 frames with payloads of random sizes (mostly small, some up to 70 KB).
    static func validStream(_ target: Target, _ random: inout Random, maximumPayload: Int) -> [UInt8] {
        var out: [UInt8] = []
        let frames = 1 + Int(random.next() % 6)
        func size(_ frameLimit: Int) -> Int {
            let limit = min(frameLimit, maximumPayload)
            return switch random.next() % 8 {
            case 0: 0
            case 1: Int(random.next() % UInt64(limit + 1))
            default: Int(random.next() % 64)
            }
        }
        func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) } }
        switch target {
        case .smux:
            for index in 0..<frames {
                let id = UInt32(1 + 2 * (index % 2))
                if index < 2 { out += smux(0, id: id) }
                out += smux(2, id: id, bytes(size(32_768)))
            }
            out += smux(3, id: 0) + smux(1, id: 1)
        case .yamux:
            for index in 0..<frames {
                let id = UInt32(1 + 2 * (index % 2))
                let data = bytes(size(65_536))
                out += yamux(0, flags: index < 2 ? 1 : 0, id: id, length: UInt32(data.count)) + data
            }
            out += yamux(2, flags: 1, id: 0, length: 7) + yamux(1, flags: 4, id: 1, length: 0)
        case .padding:
            for _ in 0..<frames {
                let data = bytes(size(2000)), padding = Int(random.next() % 768)
                out += [UInt8(data.count >> 8), UInt8(data.count & 0xFF), UInt8(padding >> 8), UInt8(padding & 0xFF)] + data
                out += [UInt8](repeating: 0, count: padding)
            }
        case .muxRequests:
            var buffer = ByteBuffer()
            MuxSessionRequest(streamProtocol: .smux, padding: random.next() % 2 == 0)
                .write(to: &buffer, paddingLength: 256 + Int(random.next() % 512))
            let destinations = [Destination(domain: "example.com", port: 443), Destination(ip: .v4(0x0A00_0001), port: 53)]
            try? MuxStreamRequest(isUDP: random.next() % 2 == 0, packetAddress: true,
                                  destination: destinations[Int(random.next() % 2)]).write(to: &buffer)
            MuxStreamResponse.failure(String(repeating: "x", count: size(300))).write(to: &buffer)
            out = Array(buffer.readableBytesView)
        case .anyTLS:
            var buffer = ByteBuffer()
            for index in 0..<frames {
                let command: AnyTLSCommand = [.push, .waste, .syn, .fin, .heartRequest, .synAck][index % 6]
                AnyTLSFrame.write(command, stream: UInt32(index), data: ByteBuffer(bytes: bytes(command.carriesData ? size(65_535) : 0)), to: &buffer)
            }
            out = Array(buffer.readableBytesView)
        case .gun:
            for _ in 0..<frames { out += GunFraming.encode(ByteBuffer(bytes: bytes(size(70_000))), allocator: ByteBufferAllocator()).readableBytesView }
        case .simpleObfsHTTP:
            out = Array("HTTP/1.1 101 Switching Protocols\r\nServer: nginx\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n".utf8)
            out += bytes(size(20_000))
        case .simpleObfsTLS:
            let first = bytes(size(16_384))
            out = [22, 3, 3, 0, 91] + [UInt8](repeating: 7, count: 91) + [20, 3, 3, 0, 1, 1]
            out += [22, 3, 3, UInt8(first.count >> 8), UInt8(first.count & 0xFF)] + first
            for _ in 1..<frames {
                let data = bytes(size(16_384))
                out += [23, 3, 3, UInt8(data.count >> 8), UInt8(data.count & 0xFF)] + data
            }
        case .muxCool:
            for index in 0..<frames {
                let data = bytes(size(65_535))
                let extra = index == 1 ? [UInt8](repeating: 1, count: Int(random.next() % 20)) : []
                out += [0, UInt8(4 + extra.count), 0, 0, index == 2 ? 4 : 2, 1] + extra + [UInt8(data.count >> 8), UInt8(data.count & 0xFF)] + data
            }
            out += [0, 4, 0, 0, 3, 0]
        case .tuic:
            // Connect, then Packets and Authenticates, a Dissociate last (Go refuses bytes after one).
            var buffer = (try? TUICCodec.connect(Destination(domain: "example.com", port: 443))) ?? ByteBuffer()
            for index in 0..<frames {
                if index % 3 == 2 {
                    buffer.writeImmutableBuffer(TUICCodec.authenticate(uuid: bytes(16), token: bytes(32)))
                    continue
                }
                let header = TUICPacketHeader(associationID: UInt16(index), packetID: UInt16(index), fragmentTotal: 1, fragmentID: 0,
                                              size: 0, destination: index == 1 ? nil : Destination(ip: .v4(0x0A00_0001), port: 53))
                if let packet = try? TUICCodec.packet(header, payload: ByteBuffer(bytes: bytes(size(65_535))))  { buffer.writeImmutableBuffer(packet) }
            }
            buffer.writeImmutableBuffer(TUICCodec.dissociate(7))
            out = Array(buffer.readableBytesView)
        case .webSocket:
            for index in 0..<frames {
                let frame = WebSocketFrameReader.frame(opcode: index == 3 ? 9 : 2, payload: ByteBuffer(bytes: bytes(size(70_000))),
                                                       masked: random.next() % 2 == 0, allocator: ByteBufferAllocator(),
                                                       maskingKey: UInt32(truncatingIfNeeded: random.next()))
                out += frame.readableBytesView
            }
        }
        return out
    }

    static func smux(_ command: UInt8, id: UInt32, _ data: [UInt8] = []) -> [UInt8] {
        [1, command, UInt8(data.count & 0xFF), UInt8(data.count >> 8), UInt8(id & 0xFF), UInt8(id >> 8 & 0xFF), UInt8(id >> 16 & 0xFF), UInt8(id >> 24)] + data
    }

    static func yamux(_ type: UInt8, flags: UInt16, id: UInt32, length: UInt32) -> [UInt8] {
        [0, type, UInt8(flags >> 8), UInt8(flags & 0xFF), UInt8(id >> 24), UInt8(id >> 16 & 0xFF), UInt8(id >> 8 & 0xFF), UInt8(id & 0xFF),
         UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
    }

    /// Flips, overwrites, cuts, extends or repeats a few bytes; the first 16 (headers) most often.
    static func mutate(_ bytes: inout [UInt8], _ random: inout Random) {
        for _ in 0..<Int(1 + random.next() % 4) {
            switch random.next() % 6 {
            case 0 where !bytes.isEmpty: bytes[Int(random.next() % UInt64(min(bytes.count, 16)))] ^= UInt8(truncatingIfNeeded: random.next() | 1)
            case 1 where !bytes.isEmpty: bytes[Int(random.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: random.next())
            case 2: bytes.removeLast(Int(random.next() % UInt64(bytes.count + 1)))
            case 3: for _ in 0..<Int(random.next() % 16) { bytes.append(UInt8(truncatingIfNeeded: random.next())) }
            case 4 where !bytes.isEmpty:
                let start = Int(random.next() % UInt64(bytes.count))
                let span = bytes[start..<min(bytes.count, start + 1 + Int(random.next() % 32))]
                bytes.insert(contentsOf: span, at: Int(random.next() % UInt64(bytes.count + 1)))
            case 5 where !bytes.isEmpty: bytes[Int(random.next() % UInt64(bytes.count))] = [0, 0xFF, 0x7F, 0x80][Int(random.next() % 4)]
            default: break
            }
        }
    }

    /// `input` cut into reads: one byte at a time, small pieces, or larger ones.
    static func randomReads(_ input: [UInt8], _ random: inout Random) -> [ArraySlice<UInt8>] {
        let limit = [1, 7, 64, 4096][Int(random.next() % 4)]
        var reads: [ArraySlice<UInt8>] = []
        var start = 0
        while start < input.count {
            let end = min(input.count, start + 1 + Int(random.next() % UInt64(limit)))
            reads.append(input[start..<end])
            start = end
        }
        return reads
    }

    // MARK: Parsers

    /// Feeds `reads` to a fresh parser of `target`; its whole output (bytes, with markers for ends
    /// and stream boundaries) and whether it refused the input.
    static func run(_ target: Target, _ reads: [ArraySlice<UInt8>]) -> ([UInt8], Bool) {
        switch target {
        case .smux, .yamux:
            return runSession(target == .smux ? SmuxSession(client: false) : YamuxSession(client: false), reads)
        case .padding:
            return runHandler(MuxPaddingHandler(), reads)
        case .simpleObfsHTTP:
            return runHandler(SimpleObfsHTTPClientHandler(host: "a.io", port: 80), reads, firstWrite: true)
        case .simpleObfsTLS:
            return runHandler(SimpleObfsTLSClientHandler(host: "a.io"), reads, firstWrite: true)
        case .muxCool:
            return runHandler(MuxCoolClientHandler(), reads, firstWrite: true)
        case .muxRequests:
            var buffer = ByteBuffer()
            var output: [UInt8] = []
            var stage = 0
            do {
                nextRead: for read in reads {
                    buffer.writeBytes(read)
                    while stage < 3 {
                        switch stage {
                        case 0:
                            guard let request = try MuxSessionRequest.read(from: &buffer) else { continue nextRead }
                            output += [request.version, request.streamProtocol.rawValue, request.padding ? 1 : 0]
                        case 1:
                            let start = buffer.readerIndex
                            guard let request = try MuxStreamRequest.read(from: &buffer) else { continue nextRead }
                            output += described(request.destination, within: buffer.readerIndex - start) + [request.isUDP ? 1 : 0]
                        default:
                            guard let response = try MuxStreamResponse.read(from: &buffer) else { continue nextRead }
                            if case .failure(let message) = response { output += Array(message.utf8) }
                        }
                        stage += 1
                    }
                }
            } catch {
                return (output, true)
            }
            return (output + [UInt8(stage)], false)
        case .anyTLS:
            var decoder = AnyTLSFrameDecoder()
            var buffer = ByteBuffer()
            var output: [UInt8] = []
            for read in reads {
                buffer.writeBytes(read)
                while let frame = decoder.next(from: &buffer) {
                    output += [frame.command, UInt8(truncatingIfNeeded: frame.stream)] + frame.data.readableBytesView
                }
                if buffer.readerIndex > 1 << 16 { buffer.discardReadBytes() }
            }
            return (output, false)
        case .gun:
            var decoder = GunFrameDecoder()
            var output: [UInt8] = []
            do {
                for read in reads {
                    var buffer = ByteBuffer(bytes: read)
                    while let piece = try decoder.next(from: &buffer) { output += piece.readableBytesView }
                }
            } catch {
                return (output, true)
            }
            return (output, false)
        case .tuic:
            var buffer = ByteBuffer()
            var output: [UInt8] = []
            var connected = false
            do {
                for read in reads {
                    buffer.writeBytes(read)
                    if !connected {
                        let start = buffer.readerIndex
                        guard let destination = try TUICCodec.readConnect(from: &buffer) else { continue }
                        connected = true
                        output += described(destination, within: buffer.readerIndex - start)
                    }
                    while let message = try TUICCodec.readUni(from: &buffer, finished: false, server: true) {
                        switch message {
                        case .authenticate(let uuid, _): output += uuid.prefix(2)
                        case .packet(let header, let payload): output += [UInt8(truncatingIfNeeded: header.associationID)] + payload.readableBytesView
                        case .dissociate(let id): output += [UInt8(truncatingIfNeeded: id), 0xdd]
                        }
                    }
                    buffer.discardReadBytes()
                }
            } catch {
                return (output, true)
            }
            return (output, false)
        case .webSocket:
            var reader = WebSocketFrameReader()
            var buffer = ByteBuffer()
            var output: [UInt8] = []
            do {
                for read in reads {
                    buffer.writeBytes(read)
                    while let frame = try reader.next(from: &buffer) { output += [frame.opcode] + frame.payload.readableBytesView }
                    buffer.discardReadBytes()
                }
            } catch {
                return (output, true)
            }
            return (output, false)
        }
    }

    /// A destination's text, cut to the `length` bytes its header took: a domain of invalid UTF-8
    /// reads as U+FFFD per byte (3 bytes of text each), which is the description's size, not bytes a
    /// parser invented.
    static func described(_ destination: Destination, within length: Int) -> [UInt8] {
        Array("\(destination)".utf8.prefix(length))
    }

    /// A handler on an EmbeddedChannel with a recorder behind it (after one write when the handler
    /// answers only once it sent something).
    static func runHandler(_ handler: any ChannelHandler, _ reads: [ArraySlice<UInt8>], firstWrite: Bool = false) -> ([UInt8], Bool) {
        let channel = EmbeddedChannel()
        let recorder = Recorder()
        // A parser that refuses input closes the channel; plain `finish()` then throws before it
        // runs the loop's pending tasks, which keep the channel alive (RSS grew ~4 KB per input).
        defer { _ = try? channel.finish(acceptAlreadyClosed: true) }
        do {
            try channel.pipeline.syncOperations.addHandlers([handler, recorder])
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            if firstWrite { try channel.writeOutbound(ByteBuffer(bytes: [1, 2, 3])) }
        } catch {
            return ([], true)
        }
        var failed = false
        for read in reads where channel.isActive {
            do {
                try channel.writeInbound(ByteBuffer(bytes: read))
            } catch {
                failed = true
                break
            }
        }
        return (recorder.bytes + (recorder.inputClosed ? [0xEE] : []), failed || recorder.failed || !channel.isActive)
    }

    /// A server session on an EmbeddedChannel; each accepted stream's bytes, in order of opening.
    static func runSession(_ session: MuxFramedSession, _ reads: [ArraySlice<UInt8>]) -> ([UInt8], Bool) {
        let channel = EmbeddedChannel()
        var recorders: [Recorder] = []
        var streams: [any Channel] = []
        session.acceptStreams { stream in
            let recorder = Recorder()
            recorders.append(recorder)
            streams.append(stream)
            try? stream.pipeline.syncOperations.addHandler(recorder)
            try? stream.syncOptions?.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            try? stream.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        }
        defer { _ = try? channel.finish(acceptAlreadyClosed: true) }
        do {
            try channel.pipeline.syncOperations.addHandler(session)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        } catch {
            return ([], true)
        }
        var failed = false
        for read in reads where channel.isActive {
            do {
                try channel.writeInbound(ByteBuffer(bytes: read))
            } catch {
                failed = true
                break
            }
        }
        // What the session wrote (acks, window updates, pongs) is drained so it cannot pile up.
        while (try? channel.readOutbound(as: ByteBuffer.self)) != nil {}
        var output: [UInt8] = []
        for recorder in recorders { output += [0xFF] + recorder.bytes + (recorder.inputClosed ? [0xEE] : []) }
        return (output, failed || !channel.isActive)
    }
}

/// Collects what reaches the end of a pipeline.
private final class Recorder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    var received = ByteBuffer()
    var bytes: [UInt8] { Array(received.readableBytesView) }
    var inputClosed = false
    var failed = false
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        received.writeBuffer(&bytes)
    }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event as? ChannelEvent == .inputClosed { inputClosed = true }
    }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { failed = true }
}

/// SplitMix64, seeded.
struct Random {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
