import Testing
import NIOCore
import NIOPosix
import Adapter
import Net
@testable import DNS

@Suite struct DNSHijackHandlerTests {
    func metadata(_ network: NetworkKind) -> FlowMetadata {
        FlowMetadata(inbound: "tun-in", inboundType: "tun", network: network, source: nil,
                     destination: Destination(ip: ip("10.0.0.53"), port: 53))
    }

    /// Answers through a DNSClient and a fake upstream, as the box would without DNS rules.
    func makeHandler() -> (DNSHijackHandler, FakeTransport) {
        let upstream = FakeTransport(respond: addressResponder(ttl: 60))
        return (DNSHijackHandler(client: DNSClient(), transport: upstream), upstream)
    }

    @Test func answersHijackedUDP() async throws {
        let (handler, upstream) = makeHandler()
        let loop = testGroup.next()
        let server = try await DatagramPacketConnection.open(on: loop, parameters: DialParameters(inet4BindAddress: ip("127.0.0.1")),
                                                             resolver: SystemResolver()).get()
        let flow = metadata(.udp)
        try await loop.submit { handler.hijackUDP(server, metadata: flow) }.get()
        let port = UInt16(try #require(server.channel.localAddress?.port))
        let client = UDPTransport(tag: "c", server: Destination(ip: ip("127.0.0.1"), port: port), dialer: SystemDialer(),
                                  eventLoop: testGroup.next(), attempts: 5, retryInterval: .seconds(1))  // generous: CI runs suites in parallel
        let response = try await client.exchange(.query(id: 77, name: try DNSName("hijacked.test"), type: .a))
        #expect(response.id == 77 && response.addresses == [ip("10.0.0.1")])
        let v6 = try await client.exchange(.query(name: try DNSName("hijacked.test"), type: .aaaa))
        #expect(v6.addresses == [ip("fd00::1")])
        #expect(upstream.count == 2)
        await client.close()
        server.close()
    }

    @Test func answersHijackedTCPAndClosesOnGarbage() async throws {
        let (handler, _) = makeHandler()
        let flow = metadata(.tcp)
        let listener = try await ServerBootstrap(group: testGroup)
            .childChannelOption(ChannelOptions.autoRead, value: false)
            .childChannelInitializer { channel in
                // The router hands over active flows: do the same.
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(HandOver { handler.hijackTCP($0, metadata: flow) })
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let destination = Destination(ip: ip("127.0.0.1"), port: UInt16(try #require(listener.localAddress?.port)))
        let client = TCPTransport(tag: "c", server: destination, dialer: SystemDialer(), eventLoop: testGroup.next(), timeout: .seconds(5))
        for index in 0..<3 {
            let response = try await client.exchange(.query(id: UInt16(index), name: try DNSName("s\(index).test"), type: .a))
            #expect(response.addresses == [ip("10.0.0.1")] && response.id == UInt16(index))
        }
        try await withThrowingTaskGroup(of: DNSMessage.self) { group in
            for index in 0..<10 {
                group.addTask { try await client.exchange(.query(name: try DNSName("p\(index).test"), type: .aaaa)) }
            }
            for try await response in group { #expect(response.addresses == [ip("fd00::1")]) }
        }
        #expect(await client.connectionsOpened == 1)
        await client.close()

        // A frame that is not DNS closes the flow.
        let raw = try await ClientBootstrap(group: testGroup).connect(host: "127.0.0.1", port: Int(destination.port)).get()
        var frame = ByteBuffer()
        frame.writeInteger(UInt16(3))
        frame.writeBytes([1, 2, 3])
        try await raw.writeAndFlush(frame)
        try await withDNSTimeout(.seconds(5)) { try await raw.closeFuture.get() }
        try await listener.close()
    }

    @Test func failedExchangeSendsNothingOverUDP() async throws {
        let handler = DNSHijackHandler { _, _ in throw DNSError.timeout }
        let loop = testGroup.next()
        let server = try await DatagramPacketConnection.open(on: loop, parameters: DialParameters(inet4BindAddress: ip("127.0.0.1")),
                                                             resolver: SystemResolver()).get()
        try await loop.submit { handler.hijackUDP(server, metadata: metadata(.udp)) }.get()
        let port = UInt16(try #require(server.channel.localAddress?.port))
        let client = UDPTransport(tag: "c", server: Destination(ip: ip("127.0.0.1"), port: port), dialer: SystemDialer(),
                                  eventLoop: testGroup.next(), attempts: 1, retryInterval: .milliseconds(200))
        await #expect(throws: DNSError.timeout) { try await client.exchange(.query(name: try DNSName("x.test"), type: .a)) }
        await client.close()
        server.close()
    }
}

/// Calls `body` with the channel once it is active, then gets out of the way.
final class HandOver: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let body: (any Channel) -> Void
    init(_ body: @escaping (any Channel) -> Void) { self.body = body }
    func channelActive(context: ChannelHandlerContext) {
        context.pipeline.syncOperations.removeHandler(self, promise: nil)
        body(context.channel)
        context.fireChannelActive()
    }
}
