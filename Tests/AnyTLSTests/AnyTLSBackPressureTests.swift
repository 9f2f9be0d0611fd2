// Back-pressure of anytls streams on the send side (the receive side: `unreadStreamHoldsTheConnection`):
// anytls has no per-stream window, so a stream queues nothing of its own — each write becomes
// frames on the connection at once — and it is writable exactly while the connection is, so a
// relay stops reading into every stream while the TLS connection's socket is full.
import Adapter
import AnyTLS
import NIOCore
import NIOEmbedded
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
