// SystemDialer: happy eyeballs across families, serial fallback, Go-worded errors, resolver use.
import Adapter
import Net
import NIOCore
import NIOPosix
import Testing

@Suite struct DialerTests {
    @Test func fallsBackToTheOtherFamilyWhenTheFirstIsRefused() async throws {
        // Only IPv4 listens: the IPv6 attempt is refused and IPv4 must win without waiting.
        let server = try await startServer { _ in EchoHandler() }
        let dialer = SystemDialer(parameters: DialParameters(fallbackDelay: .seconds(5)))
        let started = NIODeadline.now()
        let channel = try await dialer.dialTCP(addresses: [IPAddress("::1")!, IPAddress("127.0.0.1")!],
                                               port: UInt16(server.boundPort), on: testGroup.next())
        #expect(NIODeadline.now() - started < .seconds(2), "a refused primary starts the fallback at once")
        #expect(channel.remoteAddress?.ipAddress == "127.0.0.1")
        try await channel.close()
        try await server.close()
    }

    @Test func triesAddressesOfOneFamilyInOrder() async throws {
        let server = try await startServer { _ in EchoHandler() }
        let closed = try await freePort()
        _ = closed
        // 127.0.0.2 refuses on this port (nothing bound there), 127.0.0.1 accepts.
        let dialer = SystemDialer()
        let channel = try await dialer.dialTCP(addresses: [IPAddress("127.0.0.2")!, IPAddress("127.0.0.1")!],
                                               port: UInt16(server.boundPort), on: testGroup.next())
        #expect(channel.remoteAddress?.ipAddress == "127.0.0.1")
        try await channel.close()
        try await server.close()
    }

    @Test func resolvesDomainsThroughItsResolver() async throws {
        let server = try await startServer { _ in EchoHandler() }
        let dialer = SystemDialer(resolver: TableResolver(table: ["svc.internal": [IPAddress("127.0.0.1")!]]))
        let channel = try await dialer.dialTCP(to: Destination(domain: "svc.internal", port: UInt16(server.boundPort)),
                                               on: testGroup.next())
        #expect(channel.remoteAddress?.port == server.boundPort)
        try await channel.close()
        await #expect(throws: AdapterError.self) {
            _ = try await dialer.dialTCP(to: Destination(domain: "missing.internal", port: 1), on: testGroup.next())
        }
        try await server.close()
    }

    @Test func refusedDialIsWordedLikeGo() async throws {
        let port = try await freePort()
        do {
            _ = try await SystemDialer().dialTCP(to: Destination(ip: IPAddress("127.0.0.1")!, port: UInt16(port)), on: testGroup.next())
            Issue.record("dial should fail")
        } catch {
            #expect("\(error)" == "dial tcp 127.0.0.1:\(port): connect: connection refused")
        }
    }

    @Test func systemResolverAppliesTheStrategy() async throws {
        let both = try await SystemResolver().lookup("localhost", options: DNSLookupOptions(strategy: .ipv4Only))
        #expect(both.allSatisfy { $0.isIPv4 })
        #expect(both.contains(IPAddress("127.0.0.1")!))
    }

    @Test func datagramConnectionSendsToDomainsAndIPs() async throws {
        let echo = try await DatagramBootstrap(group: testGroup)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(UDPEchoHandler()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let echoPort = UInt16(echo.localAddress!.port!)
        let dialer = SystemDialer(resolver: TableResolver(table: ["echo.internal": [IPAddress("127.0.0.1")!]]))
        let loop = testGroup.next()
        let connection = try await dialer.listenPacket(on: loop)
        let receiver = PacketCollector()
        try await loop.submit { connection.setReceiver(receiver) }.get()
        try await loop.submit {
            connection.writePacket(ByteBuffer(bytes: [1, 2, 3]), to: Destination(ip: IPAddress("127.0.0.1")!, port: echoPort))
            connection.writePacket(ByteBuffer(bytes: [4, 5]), to: Destination(domain: "echo.internal", port: echoPort))
            connection.flush()
        }.get()
        let got = try await receiver.wait(count: 2)
        let payloads = Set(got.map(\.0))
        #expect(payloads == [[1, 2, 3], [4, 5]])
        let expectedSource = Destination(ip: IPAddress("127.0.0.1")!, port: echoPort)
        let sources = got.map(\.1)
        #expect(sources.allSatisfy { $0 == expectedSource }, "sources are unmapped IPv4")
        try await loop.submit { connection.close() }.get()
        try await connection.closeFuture.get()
        let closed = receiver.closed.withLockedValue { $0 }
        #expect(closed)
        try await echo.close()
    }
}

import NIOConcurrencyHelpers

final class PacketCollector: PacketReceiver, @unchecked Sendable {
    let packets = NIOLockedValueBox<[([UInt8], Destination)]>([])
    let closed = NIOLockedValueBox(false)
    func packetReceived(_ payload: ByteBuffer, from source: Destination) {
        packets.withLockedValue { $0.append((Array(payload.readableBytesView), source)) }
    }
    func packetConnectionClosed() { closed.withLockedValue { $0 = true } }
    func wait(count: Int) async throws -> [([UInt8], Destination)] {
        for _ in 0..<500 {
            let now = packets.withLockedValue { $0 }
            if now.count >= count { return now }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw TestTimeout()
    }
}
