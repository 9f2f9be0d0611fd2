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
import Adapter
import Config
import Foundation
import Net
import NIOCore
import NIOPosix
import Testing
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
}
