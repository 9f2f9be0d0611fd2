// Back-pressure of our grpc client stream against Go sing-box 1.12.12 (vless inbound, grpc
// transport, h2c): Go relays to a local TCP destination that does not read (upload) or to a
// local reader of ours that does not read (download).
// - Upload: the destination's buffers fill, Go stops granting window, our stream turns unwritable
//   while at most the high-water mark plus one write waits in our process; once the destination
//   reads, everything arrives byte-exact.
// - Download: the destination sends 32 MiB; our stream's reader does not read, so at most one
//   stream window (4 MiB) waits in our process and Go is held back; once it reads, everything
//   arrives byte-exact.
// The Go process and the servers are stopped on every exit path.
import Adapter
import Config
import Foundation
import Net
import NIOCore
import NIOPosix
import Synchronization
import Testing
import TestSupport
@testable import Transport

let vlessUUID: [UInt8] = [0xb8, 0x31, 0x38, 0x1d, 0x63, 0x24, 0x4d, 0x53, 0xad, 0x4f, 0x8c, 0xda, 0x48, 0xb3, 0x08, 0x11]
let vlessUUIDText = "b831381d-6324-4d53-ad4f-8cda48b30811"
let chunkSize = 64 * 1024

/// The destination Go connects to: reads only once `resume()` is called; in download mode it
/// writes `downloadChunks` test chunks as its socket takes them. Loop-confined to its channel.
final class SlowDestination: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let downloadChunks: Int
    var received = StreamHash()
    var sent = StreamHash()
    var nextChunk = 0
    var context: ChannelHandlerContext?

    init(downloadChunks: Int) { self.downloadChunks = downloadChunks }

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        writeMore(context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received.add(unwrapInboundIn(data))
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        writeMore(context)
    }

    private func writeMore(_ context: ChannelHandlerContext) {
        while nextChunk < downloadChunks, context.channel.isWritable {
            let chunk = testChunk(nextChunk, size: chunkSize)
            sent.add(chunk)
            nextChunk += 1
            context.writeAndFlush(wrapOutboundOut(chunk), promise: nil)
        }
    }

    /// Starts reading.
    func resume() {
        guard let context else { return }
        _ = try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        context.read()
    }
}

/// Writes `chunks` test chunks on its channel while it is writable; notes the most `held()` (the
/// bytes our process holds for the channel) ever was; hashes what it reads (past `skip` bytes).
final class Uploader: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let chunks: Int
    let held: () -> Int
    var sent = StreamHash()
    var next = 0
    var mostHeld = 0
    var turnedUnwritable = 0
    var downloaded = StreamHash()
    var skip: Int

    init(chunks: Int, skip: Int = 2, held: @escaping () -> Int) {
        self.chunks = chunks
        self.skip = skip
        self.held = held
    }

    func writeMore(_ context: ChannelHandlerContext) {
        while next < chunks, context.channel.isWritable {
            let chunk = testChunk(next, size: chunkSize)
            sent.add(chunk)
            next += 1
            context.writeAndFlush(wrapOutboundOut(chunk), promise: nil)
            mostHeld = max(mostHeld, held())
        }
        if next < chunks { turnedUnwritable += 1 }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        writeMore(context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        let dropped = min(skip, bytes.readableBytes)
        bytes.moveReaderIndex(forwardBy: dropped)
        skip -= dropped
        downloaded.add(bytes)
    }
}

/// Go sing-box with a vless inbound (`inboundExtra`: its transport or multiplex) on a free port,
/// and a destination server that reads only when told.
final class BackPressurePeers: @unchecked Sendable {
    let group = MultiThreadedEventLoopGroup.singleton
    let directory: URL
    var process: ChildProcess?
    var listener: (any Channel)?
    let destinations = Mutex<[SlowDestination]>([])
    var goPort: UInt16 = 0
    var destinationPort: UInt16 = 0

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("backpressure-\(UInt32.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    func start(downloadChunks: Int, inboundExtra: String) async throws {
        let listener = try await ServerBootstrap(group: group)
            .childChannelOption(ChannelOptions.autoRead, value: false)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let destination = SlowDestination(downloadChunks: downloadChunks)
                    self.destinations.withLock { $0.append(destination) }
                    try channel.pipeline.syncOperations.addHandler(destination)
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        self.listener = listener
        destinationPort = UInt16(listener.localAddress?.port ?? 0)
        goPort = try #require(freeLoopbackPort())
        let config = """
            {"log":{"level":"warn","timestamp":false},
             "inbounds":[{"type":"vless","tag":"in","listen":"127.0.0.1","listen_port":\(goPort),
                          "users":[{"name":"u","uuid":"\(vlessUUIDText)"}]\(inboundExtra)}],
             "outbounds":[{"type":"direct"}]}
            """
        let path = directory.appendingPathComponent("go.json")
        try config.write(to: path, atomically: true, encoding: .utf8)
        let child = ChildProcess()
        child.executableURL = URL(fileURLWithPath: Self.goBinary())
        child.arguments = ["run", "-c", path.path]
        child.standardOutput = FileHandle.nullDevice
        child.standardError = FileHandle.nullDevice
        try child.run()
        process = child
        var up = false
        for _ in 0..<100 where !up {
            up = (try? await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: Int(goPort)).get())
                .map { $0.close(promise: nil); return true } ?? false
            if !up { try await Task.sleep(for: .milliseconds(100)) }
        }
        try #require(up, "Go sing-box did not listen")
    }

    func stop() {
        process?.terminate()
        process?.waitUntilExit()
        listener?.close(promise: nil)
        try? FileManager.default.removeItem(at: directory)
    }

    static func goBinary() -> String {
        if let path = ProcessInfo.processInfo.environment["SINGBOX_GO"], !path.isEmpty { return path }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".peers/bin/sing-box-go").path
    }

    /// Our grpc stream to Go, the vless request for the destination written (not flushed).
    func dialGRPC(on loop: any EventLoop) async throws -> V2RayHTTP2Stream {
        var grpc = V2RayGRPCOptions()
        grpc.serviceName = "bp"
        let server = Destination(ip: .v4(0x7F00_0001), port: goPort)
        let client = try V2RayTransportClient(options: .grpc(grpc), server: server, tlsServerName: nil)
        let connection = try await ClientBootstrap(group: loop).channelOption(ChannelOptions.autoRead, value: false)
            .connect(host: "127.0.0.1", port: Int(goPort)).get()
        let (channel, last) = try await client.upgrade(connection, after: nil)
        #expect(last == nil)
        let stream = try #require(channel as? V2RayHTTP2Stream)
        let port = destinationPort
        try await loop.submit {
            // The stream holds early bytes for the relay, which removes the holder; so do we.
            let holder = try stream.pipeline.syncOperations.handler(type: FlowBufferHandler.self)
            stream.pipeline.syncOperations.removeHandler(holder, promise: nil)
            // vless: version 0, the user's id, no addons, command 1 (TCP), port, IPv4 127.0.0.1.
            var request = ByteBuffer(bytes: [0] + vlessUUID + [0, 1])
            request.writeInteger(port)
            request.writeBytes([1, 127, 0, 0, 1])
            stream.write(request, promise: nil)
        }.get()
        return stream
    }

    /// The one destination connection Go opened.
    func destination() async throws -> SlowDestination {
        for _ in 0..<100 {
            if let first = destinations.withLock({ $0.first }) { return first }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ChannelError.connectTimeout(.seconds(10))
    }
}

/// Polls `probe` on `loop` every 100 ms until it is true (or `seconds` pass); returns its last value.
func waitUntil(_ loop: any EventLoop, seconds: Double, _ probe: @escaping @Sendable () -> Bool) async throws -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try await loop.submit(probe).get() { return true }
        try await Task.sleep(for: .milliseconds(100))
    }
    return try await loop.submit(probe).get()
}

@Suite(.serialized) struct V2RayHTTP2BackPressureInteropTests {
    static let grpc = #","transport":{"type":"grpc","service_name":"bp"}"#

    @Test func stalledDestinationMakesOurStreamUnwritable() async throws {
        let setup = try BackPressurePeers()
        defer { setup.stop() }
        try await setup.start(downloadChunks: 0, inboundExtra: Self.grpc)
        let loop = setup.group.next()
        let stream = try await setup.dialGRPC(on: loop)
        defer { stream.close(promise: nil) }
        let total = 512  // 32 MiB
        let uploader = Uploader(chunks: total) { stream.pendingBytes }
        try await loop.submit {
            try stream.pipeline.syncOperations.addHandler(uploader)
            stream.flush()
            uploader.writeMore(try stream.pipeline.syncOperations.context(handler: uploader))
        }.get()
        let destination = try await setup.destination()
        // Stalled: unwritable and no progress for a second.
        var last = -1
        var stalled = false
        for _ in 0..<30 where !stalled {
            try await Task.sleep(for: .seconds(1))
            let (next, writable) = try await loop.submit { (uploader.next, stream.isWritable) }.get()
            stalled = next == last && !writable
            last = next
        }
        let (next, mostHeld, held, writable) = try await loop.submit {
            (uploader.next, uploader.mostHeld, stream.pendingBytes, stream.isWritable)
        }.get()
        #expect(stalled && next < total, "never stalled: \(next) of \(total) chunks written")
        // One write past the mark may land before the stream reports unwritable (the gun header too).
        #expect(mostHeld <= V2RayHTTP2Stream.highWater + chunkSize + 16, "held \(mostHeld) bytes")
        // It went unwritable above the high mark and stays so until it drains to half of it (Go may
        // still take a window's worth after the stall was seen).
        #expect(mostHeld > V2RayHTTP2Stream.highWater, "most held \(mostHeld) bytes")
        #expect(writable || held > V2RayHTTP2Stream.highWater / 2, "held \(held) bytes while unwritable")
        // The destination reads: the rest goes through, byte-exact.
        try await destination.context!.eventLoop.submit { destination.resume() }.get()
        let done = try await waitUntil(destination.context!.eventLoop, seconds: 60) { destination.received.count >= total * chunkSize }
        let arrived = try await destination.context!.eventLoop.submit { destination.received }.get()
        let (sent, stalls) = try await loop.submit { (uploader.sent, uploader.turnedUnwritable) }.get()
        #expect(done && arrived == sent, "\(arrived.count) of \(sent.count) bytes arrived")
        #expect(stalls >= 1)
    }

    @Test func slowReaderHoldsGoBack() async throws {
        let setup = try BackPressurePeers()
        defer { setup.stop() }
        let total = 512  // 32 MiB
        try await setup.start(downloadChunks: total, inboundExtra: Self.grpc)
        let loop = setup.group.next()
        let stream = try await setup.dialGRPC(on: loop)
        defer { stream.close(promise: nil) }
        let reader = Uploader(chunks: 0) { stream.pendingBytes }
        try await loop.submit {
            try stream.pipeline.syncOperations.addHandler(reader)
            stream.flush()
        }.get()
        let destination = try await setup.destination()
        // Nobody reads the stream: it fills to one window and stays there.
        // (The window also counts each gun message's header, so the bytes queued are a little less.)
        let filled = try await waitUntil(loop, seconds: 20) { stream.queuedBytes >= V2RayTransportClient.streamWindow - chunkSize }
        try await Task.sleep(for: .seconds(1))
        let queued = try await loop.submit { stream.queuedBytes }.get()
        #expect(filled && queued <= V2RayTransportClient.streamWindow, "queued \(queued) bytes")
        let written = try await destination.context!.eventLoop.submit { destination.nextChunk }.get()
        #expect(written < total, "Go took all \(written) chunks without our reader")
        // The reader reads: everything arrives, byte-exact.
        try await loop.submit {
            try stream.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
            stream.read()
        }.get()
        let done = try await waitUntil(loop, seconds: 60) { reader.downloaded.count >= total * chunkSize }
        let sent = try await destination.context!.eventLoop.submit { destination.sent }.get()
        let downloaded = try await loop.submit { reader.downloaded }.get()
        #expect(done && downloaded == sent, "\(downloaded.count) of \(sent.count) bytes arrived")
    }
}
