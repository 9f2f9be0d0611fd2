// The vless inbound's request reader and handler: the outbound's encoder read back (TCP, UDP, mux,
// with a flow), every truncation (waits, then Go's EOF wording once the client ends), garbage
// (unknown version, protobuf header, address family, random bytes: an error, never a trap), and
// the handler in an EmbeddedChannel: a request split at every byte, the response header in front
// of the first write only, plain UDP and packetaddr both ways, a wrong UUID and a flow mismatch refused.
import Adapter
import Config
import NIOCore
import NIOEmbedded
import Net
import Synchronization
import Testing
import VLESS
import VMess

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

@Suite struct VLESSServerHandlerTests {
    static let uuidText = "d1f7a3b2-5c4e-4a8f-9b6d-2e1c0f3a4b5c"
    static let uuid = VMessModule.userID(uuidText)
    static let fileServer = Destination(ip: .v4(0x7f00_0001), port: 8080)

    static func request(uuid: [UInt8] = uuid, command: UInt8 = VLESSModule.commandTCP, to destination: Destination? = fileServer,
                        flow: String = "") throws -> [UInt8] {
        Array(try VLESSModule.request(uuid: uuid, command: command, destination: destination, flow: flow).readableBytesView)
    }

    static func context(flows: [String] = ["", ""]) -> VLESSServerContext {
        var alice = VLESSUser()
        alice.name = "alice"
        alice.uuid = uuidText
        alice.flow = flows[0]
        var nameless = VLESSUser()
        nameless.uuid = "nameless"
        nameless.flow = flows[1]
        return VLESSServerContext(tag: "in", users: [alice, nameless], listenOptions: nil, logger: ContextLogger(core: .disabled, name: ""))
    }

    static func channel(flows: [String] = ["", ""]) throws -> (EmbeddedChannel, Recorder) {
        let recorder = Recorder()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([
            VLESSServerHandler(context: context(flows: flows), flowID: FlowID(), flowHandler: recorder), FlowBufferHandler(),
        ])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40000)).wait()
        return (channel, recorder)
    }

    // MARK: the request codec

    static let destinations: [Destination] = [
        fileServer, Destination(host: .domain("example.com"), port: 443),
        Destination(ip: IPAddress("2001:db8::1")!, port: 53),
    ]

    @Test(arguments: destinations) func readsWhatTheOutboundWrites(destination: Destination) throws {
        for (command, flow) in [(VLESSModule.commandTCP, ""), (VLESSModule.commandUDP, ""), (VLESSModule.commandTCP, "xtls-rprx-vision")] {
            let bytes = try Self.request(command: command, to: destination, flow: flow) + [0xAA, 0xBB]
            let read = try VLESSModule.readRequest(ByteBuffer(bytes: bytes), ended: false)
            #expect(read?.request == VLESSRequest(uuid: Self.uuid, flow: flow, command: command, destination: destination))
            #expect(read?.length == bytes.count - 2)
        }
        // Mux carries no address: version, UUID, no addons, command 3.
        let mux = try Self.request(command: VLESSModule.commandMux, to: destination)
        #expect(mux.count == 19)
        let read = try VLESSModule.readRequest(ByteBuffer(bytes: mux), ended: true)
        #expect(read?.request == VLESSRequest(uuid: Self.uuid, flow: "", command: VLESSModule.commandMux, destination: nil))
    }

    /// Every strict prefix waits for more; ended there, it is Go's EOF error for the field cut.
    @Test func everyTruncationWaitsThenFailsAsGo() throws {
        let bytes = try Self.request(to: Destination(host: .domain("example.com"), port: 443), flow: "xtls-rprx-vision")
        for length in 0..<bytes.count {
            let prefix = ByteBuffer(bytes: bytes[..<length])
            #expect(try VLESSModule.readRequest(prefix, ended: false) == nil, "\(length)")
            #expect(throws: VLESSRequestError.self, "\(length)") { _ = try VLESSModule.readRequest(prefix, ended: true) }
        }
        func failure(_ length: Int) -> String {
            do { _ = try VLESSModule.readRequest(ByteBuffer(bytes: bytes[..<length]), ended: true) } catch { return "\(error)" }
            return "no error"
        }
        // 00 | uuid(16) | 12 | 0a 10 "xtls-rprx-vision" | 01 | 01bb | 02 | 0b "example.com"  (offsets 0, 1, 17, 18, 36, 37, 39, 40)
        #expect(failure(0) == "EOF")
        #expect(failure(1) == "EOF")
        #expect(failure(5) == "unexpected EOF")
        #expect(failure(18) == "EOF")
        #expect(failure(30) == "unexpected EOF")
        #expect(failure(36) == "EOF")
        #expect(failure(37) == "read port: EOF")
        #expect(failure(38) == "read port: unexpected EOF")
        #expect(failure(39) == "EOF")
        #expect(failure(40) == "read fqdn: EOF")
        #expect(failure(43) == "read fqdn: unexpected EOF")
    }

    @Test func garbageIsAnErrorInGoWords() throws {
        func failure(_ bytes: [UInt8]) -> String {
            do { _ = try VLESSModule.readRequest(ByteBuffer(bytes: bytes), ended: false) } catch { return "\(error)" }
            return "no error"
        }
        #expect(failure([5] + Self.uuid) == "unknown version: 5")
        #expect(failure([0] + Self.uuid + [2, 0x12, 0]) == "unknown protobuf message header: 18")
        // A flow length longer than the addons block: the block is whole, so this is final.
        #expect(failure([0] + Self.uuid + [2, 0x0A, 9]) == "EOF")
        #expect(failure([0] + Self.uuid + [3, 0x0A, 9, 0x41]) == "unexpected EOF")
        #expect(failure([0] + Self.uuid + [11, 0x0A] + [UInt8](repeating: 0xFF, count: 10)) == "binary: varint overflows a 64-bit integer")
        #expect(failure([0] + Self.uuid + [0, 1, 0, 80, 4]) == "unknown address family: 4")
        #expect(failure([0] + Self.uuid + [0, 1, 0, 80, 0]) == "unknown address family: 0")
        // Random bytes: an answer (nil, a request or an error), never a trap.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let count = Int.random(in: 0..<80, using: &generator)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if !bytes.isEmpty && Bool.random(using: &generator) { bytes[0] = 0 }
            _ = try? VLESSModule.readRequest(ByteBuffer(bytes: bytes), ended: Bool.random(using: &generator))
        }
    }

    @Test func uuidPrintsAsGofrs() {
        #expect(VLESSModule.uuidString(Self.uuid) == Self.uuidText)
    }

    // MARK: the handler

    /// The request split at every byte; the payload after it reaches the buffer handler; the first
    /// write gets the response header (00 00), the second goes as it is.
    @Test func connectAcrossReads() throws {
        let bytes = try Self.request() + Array("hello".utf8)
        for split in 1..<(bytes.count - 5) {
            let (channel, recorder) = try Self.channel()
            try channel.writeInbound(channel.allocator.buffer(bytes: bytes[..<split]))
            #expect(recorder.tcp.withLock { $0.isEmpty })
            try channel.writeInbound(channel.allocator.buffer(bytes: bytes[split...]))
            let flows = recorder.tcp.withLock { $0 }
            #expect(flows.count == 1)
            #expect(flows.first?.destination == Self.fileServer)
            #expect(flows.first?.user == "alice")
            #expect(flows.first?.inboundType == "vless")
            let pipeline = channel.pipeline.syncOperations
            pipeline.removeHandler(try pipeline.handler(type: FlowBufferHandler.self), promise: nil)
            #expect(try channel.readInbound(as: ByteBuffer.self).map { String(buffer: $0) } == "hello")
            try channel.writeOutbound(ByteBuffer(string: "hi"))
            try channel.writeOutbound(ByteBuffer(string: "there"))
            #expect(try channel.readOutbound(as: ByteBuffer.self).map { Array($0.readableBytesView) } == [0, 0] + Array("hi".utf8))
            #expect(try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) } == "there")
            // Later reads pass straight on.
            try channel.writeInbound(ByteBuffer(string: "more"))
            #expect(try channel.readInbound(as: ByteBuffer.self).map { String(buffer: $0) } == "more")
            _ = try? channel.finish()
        }
    }

    @Test func namelessUserSetsNoUser() throws {
        let (channel, recorder) = try Self.channel()
        try channel.writeInbound(channel.allocator.buffer(bytes: try Self.request(uuid: VMessModule.userID("nameless"))))
        #expect(recorder.tcp.withLock { $0.count } == 1)
        #expect(recorder.tcp.withLock { $0.first?.user } == nil)
        _ = try? channel.finish()
    }

    /// Command 2 with a datagram in the same read: it waits for the receiver; a reply goes out as
    /// response header, length, payload; the next reply without the header.
    @Test func plainUDPBothWays() throws {
        let (channel, recorder) = try Self.channel()
        let dns = Destination(ip: .v4(0x7f00_0001), port: 53)
        try channel.writeInbound(channel.allocator.buffer(bytes: try Self.request(command: VLESSModule.commandUDP, to: dns) + [0, 3, 1, 2, 3]))
        let flows = recorder.udp.withLock { $0 }
        #expect(flows.count == 1)
        #expect(flows.first?.1.destination == dns)
        #expect(flows.first?.1.network == .udp)
        let sink = PacketSink()
        flows.first?.0.setReceiver(sink)
        #expect(sink.packets.map(\.0) == [[1, 2, 3]])
        #expect(sink.packets.first?.1 == dns)
        flows.first?.0.writePacket(ByteBuffer(bytes: [9, 9]), to: dns)
        flows.first?.0.writePacket(ByteBuffer(bytes: [8]), to: dns)
        flows.first?.0.flush()
        #expect(try channel.readOutbound(as: ByteBuffer.self).map { Array($0.readableBytesView) } == [0, 0, 0, 2, 9, 9])
        #expect(try channel.readOutbound(as: ByteBuffer.self).map { Array($0.readableBytesView) } == [0, 1, 8])
        _ = try? channel.finish()
        #expect(sink.closed)
    }

    /// packetaddr (command 2 to the magic name): each datagram carries its address both ways; the
    /// flow has no destination.
    @Test func packetAddressBothWays() throws {
        let (channel, recorder) = try Self.channel()
        let magic = Destination(host: .domain(VMessPacketAddress.magicAddress), port: 443)
        // length 9: 01 127.0.0.1 port 53, payload 07 08
        let datagram: [UInt8] = [0, 9, 1, 127, 0, 0, 1, 0, 53, 7, 8]
        try channel.writeInbound(channel.allocator.buffer(bytes: try Self.request(command: VLESSModule.commandUDP, to: magic) + datagram))
        let flows = recorder.udp.withLock { $0 }
        #expect(flows.count == 1)
        #expect(flows.first?.1.destination == Destination(ip: .v4(0), port: 0))
        let sink = PacketSink()
        flows.first?.0.setReceiver(sink)
        let dns = Destination(ip: .v4(0x7f00_0001), port: 53)
        #expect(sink.packets.map(\.0) == [[7, 8]])
        #expect(sink.packets.first?.1 == dns)
        flows.first?.0.writePacket(ByteBuffer(bytes: [9]), to: dns)
        flows.first?.0.writePacket(ByteBuffer(bytes: [9]), to: Destination(host: .domain("example.com"), port: 53))  // dropped
        flows.first?.0.flush()
        #expect(try channel.readOutbound(as: ByteBuffer.self).map { Array($0.readableBytesView) } == [0, 0, 0, 8, 1, 127, 0, 0, 1, 0, 53, 9])
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        _ = try? channel.finish()
        #expect(sink.closed)
    }

    /// Refused before any flow: a wrong UUID, a flow the user does not have, vision over UDP, an
    /// unknown command, a cut request.
    @Test func refusedRequestsCloseWithoutAFlow() throws {
        let cases: [[UInt8]] = [
            try Self.request(uuid: VMessModule.userID("stranger")),
            try Self.request(flow: "xtls-rprx-vision"),
            try Self.request(command: VLESSModule.commandUDP, flow: "xtls-rprx-vision"),
            try Self.request(command: 7),
            [0] + Self.uuid + [0, 1, 0],
        ]
        for (index, bytes) in cases.enumerated() {
            let (channel, recorder) = try Self.channel()
            try channel.writeInbound(channel.allocator.buffer(bytes: bytes))
            if index == cases.count - 1 { channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
            #expect(recorder.tcp.withLock { $0.isEmpty } && recorder.udp.withLock { $0.isEmpty }, "\(index)")
            #expect(!channel.isActive, "\(index)")
            #expect(try channel.readOutbound(as: ByteBuffer.self) == nil, "\(index)")
            _ = try? channel.finish()
        }
    }
}
