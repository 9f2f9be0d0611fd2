import Adapter
import NIOCore
import NIOEmbedded
import Synchronization
import TProxy
import Testing

/// The tproxy UDP table over a fake `TransparentSockets`: flows per client, replies from the
/// address that answered (the original destination's socket kept, others opened per datagram, as
/// Go's tproxyPacketWriter), everything closed with the flow.
@Suite struct TProxyUDPTableTests {
    final class FakeSender: TransparentPacketSender, @unchecked Sendable {
        let source: SocketAddress
        var sent: [(String, SocketAddress)] = []
        var isClosed = false
        init(source: SocketAddress) { self.source = source }
        func send(_ payload: ByteBuffer, to destination: SocketAddress) throws {
            sent.append((String(buffer: payload), destination))
        }
        func close() { isClosed = true }
    }

    final class FakeSockets: TransparentSockets, @unchecked Sendable {
        var senders: [FakeSender] = []
        func originalDestination(of channel: any Channel) -> EventLoopFuture<Destination> {
            channel.eventLoop.makeFailedFuture(AdapterError(.other, "unused"))
        }
        func setTransparent(_ channel: any Channel, ipv6: Bool) -> EventLoopFuture<Void> { channel.eventLoop.makeSucceededVoidFuture() }
        func listenUDP(at address: SocketAddress, routingMark: UInt32?,
                       receive: @escaping @Sendable ([TransparentDatagram]) -> Void) throws -> any TransparentPacketListener {
            throw AdapterError(.other, "unused")
        }
        func openReplySocket(from source: SocketAddress, routingMark: UInt32?) throws -> any TransparentPacketSender {
            let sender = FakeSender(source: source)
            senders.append(sender)
            return sender
        }
    }

    final class Collector: PacketReceiver {
        var received: [(String, Destination)] = []
        var closed = false
        func packetReceived(_ payload: ByteBuffer, from source: Destination) { received.append((String(buffer: payload), source)) }
        func packetConnectionClosed() { closed = true }
    }

    @Test func groupsByClientAndRepliesFromTheAnsweringAddress() throws {
        let loop = EmbeddedEventLoop()
        let sockets = FakeSockets()
        var flows: [TProxyPacketConnection] = []
        let table = TProxyUDPTable(eventLoop: loop, sockets: sockets, routingMark: nil,
                                   logger: ContextLogger(core: .disabled, name: "test")) { flows.append($0) }
        let client = try SocketAddress(ipAddress: "10.77.1.2", port: 40000)
        let server = try SocketAddress(ipAddress: "10.77.2.2", port: 9000)
        let other = try SocketAddress(ipAddress: "10.77.2.3", port: 53)
        table.receive(ByteBuffer(string: "one"), from: client, destination: server)
        table.receive(ByteBuffer(string: "two"), from: client, destination: other)
        #expect(flows.count == 1 && table.count == 1)
        let flow = try #require(flows.first)
        #expect(flow.destination.description == "10.77.2.2:9000")
        #expect(flow.source.description == "10.77.1.2:40000")

        // Queued until the router installs its receiver; then delivered in order with their targets.
        #expect(flow.queuedPayloads().map { String(buffer: $0) } == ["one", "two"])
        let collector = Collector()
        flow.setReceiver(collector)
        #expect(collector.received.map(\.0) == ["one", "two"])
        #expect(collector.received.map(\.1.description) == ["10.77.2.2:9000", "10.77.2.3:53"])

        // Replies: from the original destination through one kept socket, from elsewhere one-off.
        flow.writePacket(ByteBuffer(string: "r1"), to: Destination(server)!)
        flow.writePacket(ByteBuffer(string: "r2"), to: Destination(server)!)
        flow.writePacket(ByteBuffer(string: "r3"), to: Destination(other)!)
        #expect(sockets.senders.count == 2)
        #expect(sockets.senders[0].source == server && sockets.senders[0].sent.map(\.0) == ["r1", "r2"])
        #expect(sockets.senders[0].sent.allSatisfy { $0.1 == client })
        #expect(sockets.senders[1].source == other && sockets.senders[1].isClosed)
        #expect(!sockets.senders[0].isClosed)

        flow.close()
        #expect(collector.closed && sockets.senders[0].isClosed && table.count == 0)
        // A new datagram after close starts a new flow.
        table.receive(ByteBuffer(string: "three"), from: client, destination: server)
        #expect(flows.count == 2)
        table.closeAll()
        #expect(table.count == 0)
    }

    /// Go's udpnat2 bound: at most 1024 clients; the 1025th closes the least recently used one (a client
    /// that keeps sending stays).
    @Test func floodOfClientsIsBoundedByClosingTheLeastRecentlyUsed() throws {
        let loop = EmbeddedEventLoop()
        var flows: [TProxyPacketConnection] = []
        let table = TProxyUDPTable(eventLoop: loop, sockets: FakeSockets(), routingMark: nil,
                                   logger: ContextLogger(core: .disabled, name: "test")) { flows.append($0) }
        let server = try SocketAddress(ipAddress: "10.77.2.2", port: 9000)
        let first = try SocketAddress(ipAddress: "10.77.1.2", port: 1)
        for port in 1...1024 { table.receive(ByteBuffer(string: "x"), from: try SocketAddress(ipAddress: "10.77.1.2", port: port), destination: server) }
        #expect(table.count == 1024)
        table.receive(ByteBuffer(string: "again"), from: first, destination: server)  // port 1 is now the freshest
        for port in 2000..<2100 { table.receive(ByteBuffer(string: "x"), from: try SocketAddress(ipAddress: "10.77.1.2", port: port), destination: server) }
        #expect(table.count == 1024)
        #expect(flows.count == 1124)
        #expect(!flows[0].isClosed, "the client that kept sending was evicted")
        #expect(flows[1...100].allSatisfy { $0.isClosed } && !flows[101].isClosed)
        table.closeAll()
    }
}
