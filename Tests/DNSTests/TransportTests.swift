import Testing
import NIOCore
import NIOPosix
import Adapter
import Net
@testable import DNS

@Suite(.serialized) struct UDPAndTCPTransportTests {
    let dialer = SystemDialer()

    func udp(_ server: Destination, attempts: Int = 2, retry: Duration = .milliseconds(300)) -> UDPTransport {
        UDPTransport(tag: "udp", server: server, dialer: dialer, eventLoop: testGroup.next(), attempts: attempts, retryInterval: retry)
    }

    @Test func udpAgainstDnsmasq() async throws {
        let dnsmasq = try await Dnsmasq()
        defer { dnsmasq.stop() }
        let transport = udp(dnsmasq.destination)
        defer { Task { await transport.close() } }
        let response = try await transport.exchange(.query(id: 0x4242, name: try DNSName("x.test"), type: .a))
        #expect(response.id == 0x4242)
        #expect(response.addresses == [ip("10.1.2.3")])
        let multi = try await transport.exchange(.query(name: try DNSName("MULTI.test"), type: .a))
        #expect(Set(multi.addresses) == [ip("10.0.0.1"), ip("10.0.0.2")])
        let v6 = try await transport.exchange(.query(name: try DNSName("v6.test"), type: .aaaa))
        #expect(v6.addresses == [ip("fd00::6")])
        let gone = try await transport.exchange(.query(name: try DNSName("gone.test"), type: .a))
        #expect(gone.rcode == .nameError)
        // Concurrent queries share the socket and each gets its own answer.
        let names = ["x.test", "multi.test", "gone.test", "x.test", "multi.test"]
        try await withThrowingTaskGroup(of: (String, DNSMessage).self) { group in
            for name in names {
                group.addTask { (name, try await transport.exchange(.query(name: try DNSName(name), type: .a))) }
            }
            for try await (name, response) in group {
                #expect(response.question?.name == (try DNSName(name)))
            }
        }
        await transport.close()
    }

    @Test func truncatedUDPFallsBackToTCP() async throws {
        let dnsmasq = try await Dnsmasq()
        defer { dnsmasq.stop() }
        let transport = udp(dnsmasq.destination)
        let response = try await transport.exchange(.query(name: try DNSName("big.test"), type: .txt))
        #expect(!response.isTruncated)
        #expect(response.answers.count == 4)
        #expect(try response.encoded().count > 512)
        if case .txt(let strings) = response.answers[0].data {
            #expect(strings == [Array(Dnsmasq.bigString.utf8), Array(Dnsmasq.bigString.utf8)])
        }
        #expect(await transport.tcp.connectionsOpened == 1)
        await transport.close()
    }

    @Test func tcpReusesOneConnectionAndPipelines() async throws {
        let dnsmasq = try await Dnsmasq()
        defer { dnsmasq.stop() }
        let transport = TCPTransport(tag: "tcp", server: dnsmasq.destination, dialer: dialer, eventLoop: testGroup.next())
        for _ in 0..<3 {
            let response = try await transport.exchange(.query(name: try DNSName("x.test"), type: .a))
            #expect(response.addresses == [ip("10.1.2.3")])
        }
        try await withThrowingTaskGroup(of: DNSMessage.self) { group in
            for index in 0..<8 {
                group.addTask { try await transport.exchange(.query(id: UInt16(index), name: try DNSName(index % 2 == 0 ? "x.test" : "big.test"), type: index % 2 == 0 ? .a : .txt)) }
            }
            var count = 0
            for try await response in group {
                #expect(response.rcode == .noError && !response.answers.isEmpty)
                count += 1
            }
            #expect(count == 8)
        }
        #expect(await transport.connectionsOpened == 1)
        await transport.close()
    }

    @Test func tcpReconnectsAfterTheServerCloses() async throws {
        let server = try await OneShotTCPServer()
        let transport = TCPTransport(tag: "tcp", server: server.destination, dialer: dialer, eventLoop: testGroup.next(), timeout: .seconds(2))
        for id in 0..<3 {
            let response = try await transport.exchange(.query(id: UInt16(id), name: try DNSName("x.test"), type: .a))
            #expect(response.addresses == [ip("192.0.2.54")] && response.id == UInt16(id))
            // Let the close arrive before the next query (a close racing a query is retried once).
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(server.connections == 3)
        await server.stop()
        await transport.close()
        await #expect(throws: DNSError.closed) { try await transport.exchange(.query(name: try DNSName("x.test"), type: .a)) }
    }

    @Test(arguments: [OneShotTCPServer.Mode.shortFrame, .garbageFrames, .stalledFrame])
    func hostileTCPServerFailsTheQueryOnly(mode: OneShotTCPServer.Mode) async throws {
        let server = try await OneShotTCPServer(mode: mode)
        let transport = TCPTransport(tag: "tcp", server: server.destination, dialer: dialer, eventLoop: testGroup.next(), timeout: .milliseconds(300))
        let start = ContinuousClock.now
        await #expect(throws: DNSError.self) { try await transport.exchange(.query(name: try DNSName("x.test"), type: .a)) }
        #expect(ContinuousClock.now - start < .seconds(30))
        await transport.close()
        await server.stop()
    }

    @Test func tcpConnectionRefused() async throws {
        let server = try await OneShotTCPServer()
        let destination = server.destination
        await server.stop()
        let transport = TCPTransport(tag: "tcp", server: destination, dialer: dialer, eventLoop: testGroup.next(), timeout: .seconds(2))
        await #expect(throws: (any Error).self) { try await transport.exchange(.query(name: try DNSName("x.test"), type: .a)) }
        await transport.close()
    }

    @Test func clientOverUDPWithDnsmasq() async throws {
        let dnsmasq = try await Dnsmasq()
        defer { dnsmasq.stop() }
        let transport = udp(dnsmasq.destination)
        let client = DNSClient()
        #expect(try await client.lookup("multi.test", transport: transport, options: DNSQueryOptions(strategy: .ipv4Only)).count == 2)
        await #expect { try await client.lookup("gone.test", transport: transport) } throws: { error in
            String(describing: error) == "lookup gone.test: NXDOMAIN"
        }
        await transport.close()
    }

    @Test(arguments: [HostileMode.garbage, .wrongID, .wrongQuestion, .silent, .notAResponse])
    func hostileUpstreamTimesOutWithoutHarm(mode: HostileMode) async throws {
        let server = try await HostileServer(mode: mode)
        let transport = udp(server.destination, attempts: 2, retry: .milliseconds(150))
        let start = ContinuousClock.now
        await #expect(throws: DNSError.timeout) {
            try await transport.exchange(.query(name: try DNSName("victim.test"), type: .a))
        }
        #expect(ContinuousClock.now - start < .seconds(30))
        #expect(server.queries == 2)  // the retransmission arrived
        if mode != .silent { #expect(await transport.droppedCount >= 2) }
        await transport.close()
        await server.stop()
    }

    @Test func noiseBeforeTheAnswerIsIgnored() async throws {
        let server = try await HostileServer(mode: .noiseThenAnswer)
        let transport = udp(server.destination)
        for _ in 0..<20 {
            let response = try await transport.exchange(.query(name: try DNSName("victim.test"), type: .a))
            #expect(response.addresses == [ip("192.0.2.53")])
        }
        #expect(await transport.droppedCount == 60)
        #expect(await transport.pendingCount == 0)
        await transport.close()
        await server.stop()
    }

    @Test func garbageFloodKeepsMemoryBounded() async throws {
        let server = try await HostileServer(mode: .garbage)
        let transport = udp(server.destination, attempts: 1, retry: .milliseconds(50))
        // Many concurrent queries all timing out: the pending table must drain back to empty.
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<200 {
                group.addTask { _ = try? await transport.exchange(.query(name: try DNSName("flood.test"), type: .a)) }
            }
        }
        // Loopback may drop some of a 200-datagram burst; each one that arrived was answered with garbage.
        #expect(server.queries > 0)
        let dropped = await transport.droppedCount
        #expect(dropped > 0 && dropped <= server.queries)
        #expect(await transport.pendingCount == 0)
        await transport.close()
        await server.stop()
    }

    @Test func clientTimeoutCancelsAQueryToASilentServer() async throws {
        let server = try await HostileServer(mode: .silent)
        let transport = udp(server.destination, attempts: 5, retry: .seconds(5))
        let client = DNSClient(options: DNSClientOptions(timeout: .milliseconds(200)))
        let start = ContinuousClock.now
        await #expect(throws: DNSError.timeout) { try await client.exchange(.query(name: try DNSName("slow.test"), type: .a), transport: transport) }
        #expect(ContinuousClock.now - start < .seconds(30))
        await transport.close()
        await server.stop()
    }

    @Test func closedPortFailsOrTimesOut() async throws {
        // Nothing listens: ICMP port unreachable may close the socket or be ignored; either way no hang.
        let server = try await HostileServer(mode: .silent)
        let destination = server.destination
        await server.stop()
        let transport = udp(destination, attempts: 2, retry: .milliseconds(100))
        await #expect(throws: (any Error).self) { try await transport.exchange(.query(name: try DNSName("x.test"), type: .a)) }
        await transport.close()
    }
}
