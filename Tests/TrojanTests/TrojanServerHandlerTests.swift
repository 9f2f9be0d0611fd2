// The trojan inbound's request reader in an EmbeddedChannel: a connect request split at every
// byte, UDP associate with a frame in the same read, every truncation of a request ended by EOF,
// an unknown command, a wrong key with and without fallback — never a trap, never a flow that
// should not exist.
import Adapter
import NIOCore
import NIOEmbedded
import Net
import Synchronization
import Testing
import Trojan

/// A router stand-in that records what the handler hands it.
final class Recorder: FlowHandler, @unchecked Sendable {
    let tcp = Mutex<[FlowMetadata]>([])
    let udp = Mutex<[(any PacketConnection, FlowMetadata)]>([])
    func handleTCP(_ channel: any Channel, metadata: FlowMetadata, responder: (any HandshakeResponder)?) {
        tcp.withLock { $0.append(metadata) }
    }
    func handleUDP(_ connection: any PacketConnection, metadata: FlowMetadata) {
        udp.withLock { $0.append((connection, metadata)) }
    }
}

/// Collects datagrams a packet connection hands on.
final class PacketSink: PacketReceiver, @unchecked Sendable {
    var packets: [([UInt8], Destination)] = []
    var closed = false
    func packetReceived(_ payload: ByteBuffer, from source: Destination) { packets.append((Array(payload.readableBytesView), source)) }
    func packetConnectionClosed() { closed = true }
}

@Suite struct TrojanServerHandlerTests {
    static let fileServer = Destination(ip: .v4(0x7f00_0001), port: 8080)

    static func context(fallback: Destination? = nil) -> TrojanServerContext {
        TrojanServerContext(tag: "in", users: [TrojanModule.key(password: "pw"): 0, TrojanModule.key(password: "anon"): 1],
                            userNames: ["alice", ""], fallback: fallback, fallbackForALPN: [:], listenOptions: nil,
                            logger: ContextLogger(core: .disabled, name: ""))
    }

    static func request(password: String = "pw", command: UInt8 = TrojanModule.commandConnect, to destination: Destination = fileServer) throws -> [UInt8] {
        var buffer = ByteBuffer()
        try TrojanCodec.writeRequest(key: TrojanModule.key(password: password), command: command, destination: destination, to: &buffer)
        return Array(buffer.readableBytesView)
    }

    /// A channel running the handler, active, and the recorder behind it.
    static func channel(fallback: Destination? = nil) throws -> (EmbeddedChannel, Recorder) {
        let recorder = Recorder()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(TrojanServerHandler(context: context(fallback: fallback), flowID: FlowID(), flowHandler: recorder))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40000)).wait()
        return (channel, recorder)
    }

    /// The key goes in one read (as Go reads it); the rest of the request is split at `split`;
    /// the payload after it reaches the buffer handler that replaces ours.
    @Test(arguments: 0..<12) func connectAcrossReads(split: Int) throws {
        let (channel, recorder) = try Self.channel()
        let bytes = try Self.request() + Array("hello".utf8)
        let cut = TrojanModule.keyLength + split
        try channel.writeInbound(channel.allocator.buffer(bytes: bytes[..<cut]))
        #expect(recorder.tcp.withLock { $0.isEmpty })
        try channel.writeInbound(channel.allocator.buffer(bytes: bytes[cut...]))
        let flows = recorder.tcp.withLock { $0 }
        #expect(flows.count == 1)
        #expect(flows.first?.destination == Self.fileServer)
        #expect(flows.first?.user == "alice")
        #expect(flows.first?.inboundType == "trojan")
        // Our handler left; the payload waits in Net's buffer handler for the relay.
        let pipeline = channel.pipeline.syncOperations
        #expect((try? pipeline.handler(type: TrojanServerHandler.self)) == nil)
        let holder = try pipeline.handler(type: FlowBufferHandler.self)
        pipeline.removeHandler(holder, promise: nil)
        let payload = try channel.readInbound(as: ByteBuffer.self)
        #expect(payload.map { String(buffer: $0) } == "hello")
        _ = try? channel.finish()
    }

    /// A nameless user's flow carries no user (Go logs its index instead).
    @Test func namelessUserSetsNoUser() throws {
        let (channel, recorder) = try Self.channel()
        try channel.writeInbound(channel.allocator.buffer(bytes: try Self.request(password: "anon")))
        #expect(recorder.tcp.withLock { $0.first?.user } == nil)
        #expect(recorder.tcp.withLock { $0.count } == 1)
        _ = try? channel.finish()
    }

    /// UDP associate with the first frame in the same read: the frame waits until the router's
    /// receiver is installed; a reply goes out as a frame from its source.
    @Test func udpAssociateCarriesFramesBothWays() throws {
        let (channel, recorder) = try Self.channel()
        let dns = Destination(ip: .v4(0x7f00_0001), port: 53)
        var frame = ByteBuffer()
        try TrojanCodec.writePacket(ByteBuffer(bytes: [1, 2, 3]), to: dns, into: &frame)
        try channel.writeInbound(channel.allocator.buffer(bytes: try Self.request(command: TrojanModule.commandUDPAssociate, to: dns) + Array(frame.readableBytesView)))
        let flows = recorder.udp.withLock { $0 }
        #expect(flows.count == 1)
        #expect(flows.first?.1.destination == dns)
        #expect(flows.first?.1.network == .udp)
        let sink = PacketSink()
        flows.first?.0.setReceiver(sink)
        #expect(sink.packets.count == 1)
        #expect(sink.packets.first?.0 == [1, 2, 3])
        #expect(sink.packets.first?.1 == dns)
        flows.first?.0.writePacket(ByteBuffer(bytes: [9, 9]), to: dns)
        flows.first?.0.flush()
        let reply = try channel.readOutbound(as: ByteBuffer.self)
        // 01 127.0.0.1 port 53, length 2, CRLF, payload
        #expect(reply.map { Array($0.readableBytesView) } == [1, 127, 0, 0, 1, 0, 53, 0, 2, 0x0d, 0x0a, 9, 9])
        _ = try? channel.finish()
        #expect(sink.closed)
    }

    /// Every truncation of a request, then EOF: closed, no flow.
    @Test(arguments: 1..<68) func truncatedRequestIsClosed(length: Int) throws {
        let (channel, recorder) = try Self.channel()
        let bytes = try Self.request(to: Destination(host: .domain("example.com"), port: 443))
        guard length < bytes.count else { return }
        try channel.writeInbound(channel.allocator.buffer(bytes: bytes[..<length]))
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(recorder.tcp.withLock { $0.isEmpty })
        #expect(!channel.isActive)
        _ = try? channel.finish()
    }

    @Test(arguments: [UInt8(0), 2, 4, 0x7f, 0xff]) func otherCommandsAreRefused(command: UInt8) throws {
        let (channel, recorder) = try Self.channel()
        try channel.writeInbound(channel.allocator.buffer(bytes: try Self.request(command: command)))
        #expect(recorder.tcp.withLock { $0.isEmpty } && recorder.udp.withLock { $0.isEmpty })
        #expect(!channel.isActive)
        _ = try? channel.finish()
    }

    /// A wrong key: closed without fallback; with one, the stream goes to the fallback from its
    /// first byte.
    @Test func wrongKeyClosesOrFallsBack() throws {
        let (closed, nobody) = try Self.channel()
        try closed.writeInbound(closed.allocator.buffer(bytes: try Self.request(password: "wrong")))
        #expect(!closed.isActive)
        #expect(nobody.tcp.withLock { $0.isEmpty })
        _ = try? closed.finish()

        let web = Destination(ip: .v4(0x7f00_0001), port: 80)
        let (channel, recorder) = try Self.channel(fallback: web)
        let http = Array("GET / HTTP/1.1\r\n\r\n".utf8)  // shorter than a key: `bad request size`
        try channel.writeInbound(channel.allocator.buffer(bytes: http))
        #expect(recorder.tcp.withLock { $0.first?.destination } == web)
        let holder = try channel.pipeline.syncOperations.handler(type: FlowBufferHandler.self)
        channel.pipeline.syncOperations.removeHandler(holder, promise: nil)
        let replayed = try channel.readInbound(as: ByteBuffer.self)
        #expect(replayed.map { Array($0.readableBytesView) } == http)
        _ = try? channel.finish()
    }
}
