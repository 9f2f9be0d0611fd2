// Back-pressure of our sing-mux client streams against Go sing-box 1.12.12: a session of each
// multiplexer (smux, yamux, h2mux) through Go's vless inbound with `multiplex` enabled, one stream
// to a local destination that stops reading. Go's stream (or, for smux v1 without windows, its
// session) stops taking bytes; our stream turns unwritable while a bounded number of bytes waits in
// our process (the stream's queue plus the session connection's socket buffer; for h2mux NIOHTTP2's
// held bytes are bounded in MuxBackPressureTests); once the destination reads, everything arrives
// byte-exact.
// The other way (`unreadStreamHoldsGoBack`): the destination sends 32 MiB down a stream our side
// does not read, or reads a few frames now and then. Go may run ahead of the reader by one stream
// window (h2mux: 1 MiB, as we advertise; yamux: 256 KiB) and no further, so that is about all our
// process holds; once the stream is read, all 32 MiB arrive byte-exact.
// And Go's client → our h2mux server (`goClientUploadToUnreadServerStream`): Go's mixed inbound
// carries a 32 MiB upload over shadowsocks (method none) with h2mux to our sing-mux server in this
// process, whose stream is not read at first: the same one-window bound, then byte-exact.
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

/// Drops the vless response header (version, addons length) in front of the session's bytes.
private final class VLESSResponseSkipper: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    private var skip = 2
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        let dropped = min(skip, bytes.readableBytes)
        bytes.moveReaderIndex(forwardBy: dropped)
        skip -= dropped
        if bytes.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(bytes)) }
    }
}

/// The session connection our dialer made (for its buffered byte count).
private final class ConnectionBox: @unchecked Sendable {
    var connection: (any Channel)?
}

/// Counts the bytes read off the session's socket (the first handler of its pipeline).
private final class ReceivedCounter: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    var count = 0
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        count += unwrapInboundIn(data).readableBytes
        context.fireChannelRead(data)
    }
}

@Suite(.serialized) struct MuxBackPressureInteropTests {
    @Test(arguments: ["smux", "yamux", "h2mux"])
    func stalledDestinationMakesOurStreamUnwritable(protocol name: String) async throws {
        let peers = try BackPressurePeers()
        defer { peers.stop() }
        try await peers.start(downloadChunks: 0, inboundExtra: #","multiplex":{"enabled":true}"#)
        let loop = peers.group.next()
        var options = OutboundMultiplexOptions()
        options.enabled = true
        options.protocol = name
        let client = try MuxClient(options: options)
        defer { client.close() }
        let box = ConnectionBox()
        let goPort = peers.goPort
        let metadata = FlowMetadata(inbound: "test", inboundType: "mixed", network: .tcp, source: nil,
                                    destination: Destination(ip: .v4(0x7F00_0001), port: peers.destinationPort))
        let channel = try await client.dialTCP(metadata, logger: ContextLogger(core: .disabled, name: ""), on: loop) { loop in
            // What the vless outbound does for the session: a TCP stream to the magic destination.
            let connection = try await ClientBootstrap(group: loop).channelOption(ChannelOptions.autoRead, value: false)
                .connect(host: "127.0.0.1", port: Int(goPort)).get()
            try await loop.submit {
                try connection.pipeline.syncOperations.addHandlers([VLESSResponseSkipper(), FlowBufferHandler()])
                var request = ByteBuffer(bytes: [0] + vlessUUID + [0, 1])
                request.writeInteger(Mux.magicPort)
                request.writeInteger(UInt8(2))
                request.writeInteger(UInt8(Mux.magicDomain.utf8.count))
                request.writeString(Mux.magicDomain)
                connection.write(request, promise: nil)
                box.connection = connection
            }.get()
            return connection
        }
        let stream = try #require(channel as? MuxStreamChannel)
        defer { stream.close(promise: nil) }
        let total = 512  // 32 MiB
        let uploader = Uploader(chunks: total, skip: 0) {
            let buffered = (try? box.connection?.syncOptions?.getOption(ChannelOptions.bufferedWritableBytes)) ?? 0
            return stream.pendingBytes + buffered
        }
        try await loop.submit {
            let sync = stream.pipeline.syncOperations
            sync.removeHandler(try sync.handler(type: FlowBufferHandler.self), promise: nil)
            try sync.addHandler(uploader)
            uploader.writeMore(try sync.context(handler: uploader))
        }.get()
        let destination = try await peers.destination()
        // Stalled: unwritable and no progress for a second.
        var last = -1
        var stalled = false
        for _ in 0..<30 where !stalled {
            try await Task.sleep(for: .seconds(1))
            let (next, writable) = try await loop.submit { (uploader.next, stream.isWritable) }.get()
            stalled = next == last && !writable
            last = next
        }
        let (next, mostHeld) = try await loop.submit { (uploader.next, uploader.mostHeld) }.get()
        #expect(stalled && next < total, "\(name): never stalled: \(next) of \(total) chunks written")
        // The stream's mark (64 KiB) and the connection's (64 KiB), each plus one write and headers.
        #expect(mostHeld > 0 && mostHeld <= 4 * chunkSize + 16 * 1024, "\(name): held \(mostHeld) bytes")
        let readerLoop = try #require(destination.context?.eventLoop)
        try await readerLoop.submit { destination.resume() }.get()
        _ = try await waitUntil(readerLoop, seconds: 60) { destination.received.count >= total * chunkSize }
        let arrived = try await readerLoop.submit { destination.received }.get()
        let sent = try await loop.submit { uploader.sent }.get()
        #expect(arrived == sent, "\(name): \(arrived.count) of \(sent.count) bytes arrived")
    }

    /// A stream our side does not read while Go's destination sends 32 MiB down it: what our
    /// process takes off the socket stays within the stream's window (plus framing), then all of it
    /// arrives once the stream is read.
    @Test(arguments: [("h2mux", H2MuxSession.window), ("yamux", 256 * 1024)])
    func unreadStreamHoldsGoBack(protocol name: String, window: Int) async throws {
        let peers = try BackPressurePeers()
        defer { peers.stop() }
        let total = 512  // 32 MiB
        try await peers.start(downloadChunks: total, inboundExtra: #","multiplex":{"enabled":true}"#)
        let loop = peers.group.next()
        var options = OutboundMultiplexOptions()
        options.enabled = true
        options.protocol = name
        let client = try MuxClient(options: options)
        defer { client.close() }
        let counter = ReceivedCounter()
        let goPort = peers.goPort
        let metadata = FlowMetadata(inbound: "test", inboundType: "mixed", network: .tcp, source: nil,
                                    destination: Destination(ip: .v4(0x7F00_0001), port: peers.destinationPort))
        let channel = try await client.dialTCP(metadata, logger: ContextLogger(core: .disabled, name: ""), on: loop) { loop in
            let connection = try await ClientBootstrap(group: loop).channelOption(ChannelOptions.autoRead, value: false)
                .connect(host: "127.0.0.1", port: Int(goPort)).get()
            try await loop.submit {
                try connection.pipeline.syncOperations.addHandlers([counter, VLESSResponseSkipper(), FlowBufferHandler()])
                var request = ByteBuffer(bytes: [0] + vlessUUID + [0, 1])
                request.writeInteger(Mux.magicPort)
                request.writeInteger(UInt8(2))
                request.writeInteger(UInt8(Mux.magicDomain.utf8.count))
                request.writeString(Mux.magicDomain)
                connection.write(request, promise: nil)
            }.get()
            return connection
        }
        let stream = try #require(channel as? MuxStreamChannel)
        defer { stream.close(promise: nil) }
        let reader = Uploader(chunks: 0, skip: 0) { 0 }
        try await loop.submit {
            let sync = stream.pipeline.syncOperations
            sync.removeHandler(try sync.handler(type: FlowBufferHandler.self), promise: nil)
            try sync.addHandler(reader)
            stream.flush()
        }.get()
        let destination = try await peers.destination()
        // Nobody reads the stream: what arrives stops growing once Go has spent the window. Then
        // the reader takes one read's worth (a few frames) at a time, three times: each read lets
        // Go send that much more and no more. (NIOHTTP2 used to return a whole window the moment
        // the bridge took buffered frames, so such a read let 2 MiB in.)
        // What our process holds: what came off the socket minus what the reader took (one window
        // of payload, its frame headers, the handshake and the session's control frames).
        let bound = window + window / 16 + 4096
        for round in 0..<4 {
            if round > 0 { try await loop.submit { stream.read() }.get() }
            var last = -1
            var settled = false
            for _ in 0..<30 where !settled {
                try await Task.sleep(for: .milliseconds(700))
                let now = try await loop.submit { counter.count }.get()
                settled = now == last && now > 0
                last = now
            }
            let (received, unread, downloaded) = try await loop.submit { (counter.count, stream.unreadByteCount, reader.downloaded.count) }.get()
            #expect(settled, "\(name): still receiving: \(received) bytes")
            #expect(received - downloaded <= bound, "\(name), round \(round): our process holds \(received - downloaded) bytes of an unread stream")
            #expect(unread >= window / 2, "\(name), round \(round): \(unread) unread, \(downloaded) read")
        }
        let written = try await destination.context!.eventLoop.submit { destination.nextChunk }.get()
        #expect(written < total, "\(name): Go took all \(written) chunks without our reader")
        // The stream is read: everything arrives, byte-exact.
        try await loop.submit {
            try stream.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
            stream.read()
        }.get()
        let done = try await waitUntil(loop, seconds: 60) { reader.downloaded.count >= total * chunkSize }
        let sent = try await destination.context!.eventLoop.submit { destination.sent }.get()
        let arrived = try await loop.submit { reader.downloaded }.get()
        #expect(done && arrived == sent, "\(name): \(arrived.count) of \(sent.count) bytes arrived")
    }

    /// Go's client → our h2mux server: Go's mixed inbound takes an upload of 32 MiB and carries it
    /// over its shadowsocks (method none) outbound with h2mux to our sing-mux server in this process,
    /// whose stream nobody reads at first. Go's stream may run one window (1 MiB) ahead of our
    /// reader and no further; once we read, all 32 MiB arrive byte-exact.
    @Test func goClientUploadToUnreadServerStream() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let streams = StreamCatcher()
        var options = InboundMultiplexOptions()
        options.enabled = true
        let mux = try MuxFlowHandler(next: streams, logger: ContextLogger(core: .disabled, name: ""), options: options)
        let counter = ReceivedCounter()
        let listener = try await ServerBootstrap(group: group)
            .childChannelOption(ChannelOptions.autoRead, value: false)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([counter, SocksAddressStripper(mux: mux)])
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { listener.close(promise: nil) }
        let ourPort = try #require(listener.localAddress?.port)
        let goPort = try #require(freeLoopbackPort())
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("h2mux-up-\(UInt32.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = """
            {"log":{"level":"warn","timestamp":false},
             "inbounds":[{"type":"mixed","tag":"in","listen":"127.0.0.1","listen_port":\(goPort)}],
             "outbounds":[{"type":"shadowsocks","tag":"ss","server":"127.0.0.1","server_port":\(ourPort),"method":"none",
                           "multiplex":{"enabled":true,"protocol":"h2mux","max_connections":1}}]}
            """
        let path = directory.appendingPathComponent("go.json")
        try config.write(to: path, atomically: true, encoding: .utf8)
        let child = ChildProcess()
        child.executableURL = URL(fileURLWithPath: BackPressurePeers.goBinary())
        child.arguments = ["run", "-c", path.path]
        child.standardOutput = FileHandle.nullDevice
        child.standardError = FileHandle.nullDevice
        try child.run()
        defer {
            child.terminate()
            child.waitUntilExit()
        }
        var client: (any Channel)?
        for _ in 0..<100 where client == nil {
            client = try? await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: Int(goPort)).get()
            if client == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        let connection = try #require(client, "Go sing-box did not listen")
        defer { connection.close(promise: nil) }
        let total = 512  // 32 MiB
        let uploader = Uploader(chunks: total, skip: 0) { 0 }
        try await connection.eventLoop.submit {
            try connection.pipeline.syncOperations.addHandler(uploader)
            // An HTTP CONNECT through Go's mixed inbound; the upload follows at once.
            connection.write(ByteBuffer(string: "CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n"), promise: nil)
            uploader.writeMore(try connection.pipeline.syncOperations.context(handler: uploader))
        }.get()
        let stream = try await streams.first()
        let loop = stream.eventLoop
        let reader = HashReader()
        try await loop.submit {
            // The router's relay takes the early-bytes holder away (its bytes go on to what follows
            // it); so do we, once our reader is behind it.
            let sync = stream.pipeline.syncOperations
            try sync.addHandler(reader)
            if let holder = try? sync.handler(type: FlowBufferHandler.self) { sync.removeHandler(holder, promise: nil) }
        }.get()
        // Nobody reads the stream: what our process takes off the socket stops growing at about one
        // window past what the reader took (a first read before the reader came counts as taken).
        var last = -1
        var settled = false
        for _ in 0..<30 where !settled {
            try await Task.sleep(for: .milliseconds(700))
            let now = try await loop.submit { counter.count }.get()
            settled = now == last && now > 0
            last = now
        }
        let (received, unread) = try await loop.submit { (counter.count, stream.unreadByteCount) }.get()
        let taken = try await loop.submit { reader.hash.count }.get()
        let written = try await connection.eventLoop.submit { uploader.next }.get()
        #expect(settled, "still receiving: \(received) bytes")
        #expect(written < total, "the client wrote all \(written) chunks with nobody reading")
        #expect(received - taken <= H2MuxSession.window + H2MuxSession.window / 16 + 4096, "our process holds \(received - taken) bytes")
        #expect(unread >= H2MuxSession.window / 2, "\(unread) unread")
        // We read: everything arrives, byte-exact.
        try await loop.submit {
            try stream.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
            stream.read()
        }.get()
        let done = try await waitUntil(loop, seconds: 60) { reader.hash.count >= total * chunkSize }
        let sent = try await connection.eventLoop.submit { uploader.sent }.get()
        let arrived = try await loop.submit { reader.hash }.get()
        #expect(done && arrived == sent, "\(arrived.count) of \(sent.count) bytes arrived")
    }
}

/// Takes each TCP flow our mux server routes: answers it (the stream's status byte) and keeps it.
private final class StreamCatcher: FlowHandler, @unchecked Sendable {
    private let streams = Mutex<[MuxStreamChannel]>([])
    func handleTCP(_ channel: any Channel, metadata: FlowMetadata, responder: (any HandshakeResponder)?) {
        if let stream = channel as? MuxStreamChannel { streams.withLock { $0.append(stream) } }
        _ = responder?.succeed(channel)
    }
    func handleUDP(_ connection: any PacketConnection, metadata: FlowMetadata) {}

    func first() async throws -> MuxStreamChannel {
        for _ in 0..<100 {
            if let first = streams.withLock({ $0.first }) { return first }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ChannelError.connectTimeout(.seconds(10))
    }
}

/// Hashes what a stream's pipeline reads.
private final class HashReader: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    var hash = StreamHash()
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { hash.add(unwrapInboundIn(data)) }
}

/// The shadowsocks "none" server side: strips the SOCKS address in front of the session (Go's
/// mux client dials `sp.mux.sing-box.arpa:444`), then hands the connection to the mux server and
/// passes every later byte through.
private final class SocksAddressStripper: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    private let mux: MuxFlowHandler
    private var buffered = ByteBuffer()
    private var parsed = false
    private var passing = false

    init(mux: MuxFlowHandler) { self.mux = mux }

    func channelActive(context: ChannelHandlerContext) {
        context.read()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !passing else { return context.fireChannelRead(data) }
        var bytes = unwrapInboundIn(data)
        buffered.writeBuffer(&bytes)
        // Until the mux server's handlers are in (a later turn), bytes wait here, in order.
        guard !parsed else { return }
        // ATYP 3 (domain), its length, the domain, the port.
        guard buffered.readableBytes >= 2, let length = buffered.getInteger(at: buffered.readerIndex + 1, as: UInt8.self),
              buffered.readableBytes >= 2 + Int(length) + 2 else { return context.read() }
        let domain = buffered.getString(at: buffered.readerIndex + 2, length: Int(length)) ?? ""
        buffered.moveReaderIndex(forwardBy: 2 + Int(length) + 2)
        parsed = true
        let metadata = FlowMetadata(inbound: "ss", inboundType: "shadowsocks", network: .tcp, source: nil,
                                    destination: Destination(domain: domain, port: Mux.magicPort))
        mux.handleTCP(context.channel, metadata: metadata, responder: nil)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let (stripper, context) = bound.value
            stripper.passing = true
            let rest = stripper.buffered
            stripper.buffered = ByteBuffer()
            if rest.readableBytes > 0 { context.fireChannelRead(NIOAny(rest)) }
        }
    }
}
