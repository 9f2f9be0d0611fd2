// Back-pressure of anytls streams on the send side (the receive side: `unreadStreamHoldsTheConnection`):
// anytls has no per-stream window, so a stream queues nothing of its own — each write becomes
// frames on the connection at once — and it is writable exactly while the connection is, so a
// relay stops reading into every stream while the TLS connection's socket is full.
// Against Go sing-box 1.12.12's anytls inbound (→ direct → a destination here that stops reading):
// our stream turns unwritable with at most the connection's high-water mark plus one write held in
// our process, and once the destination reads, everything arrives byte-exact.
import Adapter
import AnyTLS
import Foundation
import NIOCore
import NIOEmbedded
import NIOPosix
import Synchronization
import TestSupport
import Testing

@Suite struct AnyTLSBackPressureTests {
    @Test func streamsFollowTheConnectionsWritability() throws {
        let channel = EmbeddedChannel()
        var opened: [AnyTLSStreamChannel] = []
        let session = AnyTLSSession(role: .server(.default, onStream: { stream in
            stream.activate()
            opened.append(stream)
        }), eventLoop: channel.eventLoop, logger: ContextLogger(core: .disabled, name: ""))
        try channel.pipeline.syncOperations.addHandler(session)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        var hello = ByteBuffer()
        AnyTLSFrame.write(.settings, stream: 0, bytes: Array("v=2\npadding-md5=\(AnyTLSPaddingScheme.default.md5)".utf8), to: &hello)
        AnyTLSFrame.write(.syn, stream: 1, to: &hello)
        AnyTLSFrame.write(.syn, stream: 3, to: &hello)
        try channel.writeInbound(hello)
        #expect(opened.count == 2)
        #expect(opened.allSatisfy { $0.isWritable })
        let changes = WritabilityRecorder()
        try opened[0].pipeline.syncOperations.addHandler(changes)
        // The connection's socket is full: every stream turns unwritable, and hears so.
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        #expect(opened.allSatisfy { !$0.isWritable })
        #expect(changes.seen == [false])
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        #expect(opened.allSatisfy { $0.isWritable })
        #expect(changes.seen == [false, true])
        // A write goes to the connection at once: 100 kB in two data frames, nothing held back.
        while try channel.readOutbound(as: ByteBuffer.self) != nil {}
        opened[0].writeAndFlush(ByteBuffer(repeating: 9, count: 100_000), promise: nil)
        var written = 0
        while let out = try channel.readOutbound(as: ByteBuffer.self) { written += out.readableBytes }
        #expect(written == 100_000 + 2 * AnyTLSFrame.headerSize)
        _ = try? channel.finish()
    }
}

/// Records each writability change the stream's pipeline hears.
private final class WritabilityRecorder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    var seen: [Bool] = []
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        seen.append(context.channel.isWritable)
    }
}

/// A 64-bit FNV-style hash over a byte stream fed in pieces of any size (8-byte words).
private struct StreamHash: Equatable {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    private(set) var count = 0
    private var carry: UInt64 = 0
    private var carried = 0

    mutating func add(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { raw in
            var offset = 0
            while carried > 0, offset < raw.count {
                carry |= UInt64(raw[offset]) << (8 * carried)
                carried += 1
                offset += 1
                if carried == 8 {
                    mix(carry)
                    carry = 0
                    carried = 0
                }
            }
            while offset + 8 <= raw.count {
                mix(raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
                offset += 8
            }
            while offset < raw.count {
                carry |= UInt64(raw[offset]) << (8 * carried)
                carried += 1
                offset += 1
            }
        }
        count += buffer.readableBytes
    }

    private mutating func mix(_ word: UInt64) {
        value = (value ^ word) &* 0x0000_0100_0000_01b3
    }
}

/// The `index`-th 64 KiB chunk of a deterministic stream.
private func chunk(_ index: Int) -> ByteBuffer {
    var state = UInt64(index &+ 1) &* 0x9E37_79B9_7F4A_7C15
    var buffer = ByteBuffer()
    buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 1 << 16) { raw in
        for offset in stride(from: 0, to: 1 << 16, by: 8) {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            raw.storeBytes(of: state, toByteOffset: offset, as: UInt64.self)
        }
        return 1 << 16
    }
    return buffer
}

/// The destination: reads only after `resume()`. Loop-confined.
private final class StalledReader: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    var received = StreamHash()
    var context: ChannelHandlerContext?
    func channelActive(context: ChannelHandlerContext) { self.context = context }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { received.add(unwrapInboundIn(data)) }
    func resume() {
        guard let context else { return }
        _ = try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        context.read()
    }
}

/// Writes `chunks` chunks on the stream while it is writable; notes the most the connection held.
private final class StreamWriter: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let chunks: Int
    let connection: any Channel
    var sent = StreamHash()
    var next = 0
    var mostHeld = 0
    init(chunks: Int, connection: any Channel) {
        self.chunks = chunks
        self.connection = connection
    }
    var held: Int { (try? connection.syncOptions?.getOption(ChannelOptions.bufferedWritableBytes)) ?? -1 }
    func writeMore(_ context: ChannelHandlerContext) {
        while next < chunks, context.channel.isWritable {
            let bytes = chunk(next)
            sent.add(bytes)
            next += 1
            context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
            mostHeld = max(mostHeld, held)
        }
    }
    func channelWritabilityChanged(context: ChannelHandlerContext) { writeMore(context) }
}

@Suite(.serialized) struct AnyTLSBackPressureInteropTests {
    @Test func stalledDestinationMakesOurStreamUnwritable() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let readers = Mutex<[StalledReader]>([])
        let destination = try await ServerBootstrap(group: group)
            .childChannelOption(ChannelOptions.autoRead, value: false)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let reader = StalledReader()
                    readers.withLock { $0.append(reader) }
                    try channel.pipeline.syncOperations.addHandler(reader)
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { destination.close(promise: nil) }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("anytls-backpressure-\(UInt32.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var process: ChildProcess?
        defer {
            process?.terminate()
            process?.waitUntilExit()
            try? FileManager.default.removeItem(at: directory)
        }
        let port = try #require(freeLoopbackPort())
        let config = """
            {"log":{"level":"warn","timestamp":false},
             "inbounds":[{"type":"anytls","tag":"in","listen":"127.0.0.1","listen_port":\(port),"users":[{"name":"u","password":"pw"}]}],
             "outbounds":[{"type":"direct"}]}
            """
        let path = directory.appendingPathComponent("go.json")
        try config.write(to: path, atomically: true, encoding: .utf8)
        let child = ChildProcess()
        child.executableURL = URL(fileURLWithPath: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".peers/bin/sing-box-go").path)
        child.arguments = ["run", "-c", path.path]
        child.standardOutput = FileHandle.nullDevice
        child.standardError = FileHandle.nullDevice
        try child.run()
        process = child
        var up = false
        for _ in 0..<100 where !up {
            up = (try? await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: Int(port)).get())
                .map { $0.close(promise: nil); return true } ?? false
            if !up { try await Task.sleep(for: .milliseconds(100)) }
        }
        try #require(up, "Go sing-box did not listen")

        let loop = group.next()
        let connection = try await ClientBootstrap(group: loop).connect(host: "127.0.0.1", port: Int(port)).get()
        defer { connection.close(promise: nil) }
        let total = 512  // 32 MiB
        let destinationPort = UInt16(destination.localAddress?.port ?? 0)
        let writer = StreamWriter(chunks: total, connection: connection)
        try await loop.submit {
            let session = AnyTLSSession(role: .client(AnyTLSPaddingState()), eventLoop: loop, logger: ContextLogger(core: .disabled, name: ""))
            try connection.pipeline.syncOperations.addHandler(session)
            session.writeAuthentication(passwordHash: AnyTLSModule.passwordHash("pw"), padding: .default)
            let stream = try session.openStream(to: Destination(ip: .v4(0x7F00_0001), port: destinationPort))
            try stream.pipeline.syncOperations.addHandler(writer)
            stream.activate()
            writer.writeMore(try stream.pipeline.syncOperations.context(handler: writer))
        }.get()
        // Stalled: no progress for a second, and the stream unwritable.
        var last = -1
        var stalled = false
        for _ in 0..<30 where !stalled {
            try await Task.sleep(for: .seconds(1))
            let (next, writable) = try await loop.submit { (writer.next, connection.isWritable) }.get()
            stalled = next == last && !writable
            last = next
        }
        let (next, mostHeld) = try await loop.submit { (writer.next, writer.mostHeld) }.get()
        #expect(stalled && next < total, "never stalled: \(next) of \(total) chunks written")
        // The connection's high-water mark (NIO's 64 KiB) plus one write and its frame headers (and
        // the padding of the first packets).
        #expect(mostHeld > 0 && mostHeld <= 64 * 1024 + 64 * 1024 + 4096, "held \(mostHeld) bytes")
        let reader = try #require(readers.withLock { $0.first })
        let readerLoop = try #require(reader.context?.eventLoop)
        try await readerLoop.submit { reader.resume() }.get()
        var received = StreamHash()
        for _ in 0..<600 {
            received = try await readerLoop.submit { reader.received }.get()
            if received.count >= total << 16 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let sent = try await loop.submit { writer.sent }.get()
        #expect(received == sent, "\(received.count) of \(sent.count) bytes arrived")
    }
}
