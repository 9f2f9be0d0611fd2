// Back-pressure of our sing-mux client streams against Go sing-box 1.12.12: a session of each
// multiplexer (smux, yamux, h2mux) through Go's vless inbound with `multiplex` enabled, one stream
// to a local destination that stops reading. Go's stream (or, for smux v1 without windows, its
// session) stops taking bytes; our stream turns unwritable while a bounded number of bytes waits in
// our process (the stream's queue plus the session connection's socket buffer; for h2mux NIOHTTP2's
// held bytes are bounded in MuxBackPressureTests); once the destination reads, everything arrives
// byte-exact.
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
}
