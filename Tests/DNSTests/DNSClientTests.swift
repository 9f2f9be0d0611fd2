import Synchronization
import Testing
import Adapter
@testable import DNS

@Suite struct DNSClientTests {
    let name = try! DNSName("www.example.test")

    @Test func cachesAndRestoresTheAskersID() async throws {
        let transport = FakeTransport(respond: addressResponder(ttl: 120))
        let client = DNSClient()
        let first = try await client.exchange(.query(id: 11, name: name, type: .a), transport: transport)
        let second = try await client.exchange(.query(id: 22, name: try DNSName("WWW.example.TEST"), type: .a), transport: transport)
        #expect(transport.count == 1)
        #expect(first.id == 11 && second.id == 22)
        #expect(second.question?.name == (try DNSName("WWW.example.TEST")))
        #expect(second.addresses == [(ip("10.0.0.1"))])
    }

    @Test func ttlIsTheSmallestAndCanBeRewritten() async throws {
        let transport = FakeTransport { query in
            answer(query, [.address(query.question!.name, ip("1.1.1.1"), ttl: 300),
                           .address(query.question!.name, ip("1.1.1.2"), ttl: 40)])
        }
        let client = DNSClient(options: DNSClientOptions(disableCache: true))
        let response = try await client.exchange(.query(name: name, type: .a), transport: transport)
        #expect(response.answers.map(\.ttl) == [40, 40])
        let rewritten = try await client.exchange(.query(name: name, type: .a), transport: transport, options: DNSQueryOptions(rewriteTTL: 7))
        #expect(rewritten.answers.map(\.ttl) == [7, 7])
    }

    @Test func negativeCachingUsesSOAMinimum() async throws {
        let clock = TestClock()
        let soa = try soaRecord(ttl: 3600, minimum: 30)
        let transport = FakeTransport { query in answer(query, [], rcode: .nameError, authorities: [soa]) }
        let client = DNSClient(now: clock.now)
        let response = try await client.exchange(.query(name: name, type: .a), transport: transport)
        #expect(response.rcode == .nameError)
        #expect(response.authorities[0].ttl == 30)
        clock.advance(.seconds(29))
        _ = try await client.exchange(.query(name: name, type: .a), transport: transport)
        #expect(transport.count == 1)
        clock.advance(.seconds(2))
        _ = try await client.exchange(.query(name: name, type: .a), transport: transport)
        #expect(transport.count == 2)
    }

    @Test(arguments: [DNSRcode.nameError, .serverFailure, .refused])
    func failuresWithoutSOAAreNotCached(rcode: DNSRcode) async throws {
        let transport = FakeTransport { query in answer(query, [], rcode: rcode) }
        let client = DNSClient()
        _ = try await client.exchange(.query(name: name, type: .a), transport: transport)
        _ = try await client.exchange(.query(name: name, type: .a), transport: transport)
        #expect(transport.count == 2)
    }

    @Test func serverFailureIsNotCachedEvenWithSOA() async throws {
        let soa = try soaRecord(ttl: 60, minimum: 60)
        let transport = FakeTransport { query in answer(query, [], rcode: .serverFailure, authorities: [soa]) }
        let client = DNSClient()
        _ = try await client.exchange(.query(name: name, type: .a), transport: transport)
        _ = try await client.exchange(.query(name: name, type: .a), transport: transport)
        #expect(transport.count == 2)
    }

    @Test func strategyRejectsTheOtherFamilyWithoutAsking() async throws {
        let transport = FakeTransport(respond: addressResponder())
        let client = DNSClient()
        let response = try await client.exchange(.query(id: 5, name: name, type: .aaaa), transport: transport, options: DNSQueryOptions(strategy: .ipv4Only))
        #expect(transport.count == 0)
        #expect(response.rcode == .noError && response.answers.isEmpty && response.id == 5)
        let noQuestion = try await client.exchange(DNSMessage(id: 9), transport: transport)
        #expect(noQuestion.rcode == .formatError)
    }

    @Test(arguments: [
        (DomainStrategy.asIs, ["10.0.0.1", "fd00::1"]), (.preferIPv4, ["10.0.0.1", "fd00::1"]),
        (.preferIPv6, ["fd00::1", "10.0.0.1"]), (.ipv4Only, ["10.0.0.1"]), (.ipv6Only, ["fd00::1"]),
    ])
    func lookupOrdersByStrategy(strategy: DomainStrategy, expected: [String]) async throws {
        let transport = FakeTransport(respond: addressResponder())
        let client = DNSClient()
        let addresses = try await client.lookup("www.example.test.", transport: transport, options: DNSQueryOptions(strategy: strategy))
        #expect(addresses.map(\.description) == expected)
        #expect(client.lookupCache("www.example.test", strategy: strategy)?.map(\.description) == expected)
    }

    @Test func lookupErrorsUseSingBoxWording() async throws {
        let nx = FakeTransport { query in answer(query, [], rcode: .nameError) }
        let client = DNSClient()
        await #expect { try await client.lookup("gone.test", transport: nx) } throws: { error in
            String(describing: error) == "lookup gone.test: NXDOMAIN"
        }
        let empty = FakeTransport { query in answer(query, []) }
        await #expect { try await client.lookup("empty.test", transport: empty) } throws: { error in
            String(describing: error) == "lookup empty.test: empty result"
        }
        // One family answering is enough.
        let v4only = FakeTransport { query in
            query.question?.type == .a ? answer(query, [.address(query.question!.name, ip("9.9.9.9"), ttl: 5)]) : answer(query, [], rcode: .serverFailure)
        }
        #expect(try await client.lookup("half.test", transport: v4only).map(\.description) == ["9.9.9.9"])
    }

    @Test func independentCacheKeysByTransport() async throws {
        let one = FakeTransport(tag: "one", respond: addressResponder())
        let two = FakeTransport(tag: "two", respond: addressResponder())
        let shared = DNSClient()
        _ = try await shared.exchange(.query(name: name, type: .a), transport: one)
        _ = try await shared.exchange(.query(name: name, type: .a), transport: two)
        #expect(one.count == 1 && two.count == 0)
        #expect(shared.exchangeCache(.query(name: name, type: .a)) != nil)

        let independent = DNSClient(options: DNSClientOptions(independentCache: true))
        _ = try await independent.exchange(.query(name: name, type: .a), transport: one)
        _ = try await independent.exchange(.query(name: name, type: .a), transport: two)
        _ = try await independent.exchange(.query(name: name, type: .a), transport: two)
        #expect(one.count == 2 && two.count == 1)
        #expect(independent.exchangeCache(.query(name: name, type: .a)) == nil)
    }

    @Test func countsHitsMissesAndSize() async throws {
        let transport = FakeTransport(respond: addressResponder(ttl: 120))
        let client = DNSClient()
        let cache = try #require(client.cache)
        for _ in 0..<3 { _ = try await client.exchange(.query(name: name, type: .a), transport: transport) }
        _ = try await client.lookup("www.example.test", transport: transport, options: DNSQueryOptions(strategy: .ipv4Only))
        _ = client.exchangeCache(.query(name: try DNSName("other.example.test"), type: .a))
        // Uncacheable queries (per-query disable_cache) count neither way.
        _ = try await client.exchange(.query(name: name, type: .aaaa), transport: transport, options: DNSQueryOptions(disableCache: true))
        #expect(cache.statistics == DNSCache.Statistics(size: 1, hits: 3, misses: 1))
        cache.resetStatistics()
        #expect(cache.statistics == DNSCache.Statistics(size: 1, hits: 0, misses: 0))
        client.clearCache()
        _ = try await client.exchange(.query(name: name, type: .a), transport: transport)
        #expect(cache.statistics == DNSCache.Statistics(size: 1, hits: 0, misses: 1))
        #expect(transport.count == 3)
    }

    @Test func disableCacheAsksEveryTime() async throws {
        let transport = FakeTransport(respond: addressResponder())
        let client = DNSClient(options: DNSClientOptions(disableCache: true))
        for _ in 0..<3 { _ = try await client.exchange(.query(name: name, type: .a), transport: transport) }
        #expect(transport.count == 3)
        let perQuery = DNSClient()
        for _ in 0..<3 { _ = try await perQuery.exchange(.query(name: name, type: .a), transport: transport, options: DNSQueryOptions(disableCache: true)) }
        #expect(transport.count == 6)
    }

    @Test func coalescesConcurrentIdenticalQueries() async throws {
        let transport = FakeTransport(hold: true, respond: addressResponder())
        let client = DNSClient()
        let name = self.name
        try await withThrowingTaskGroup(of: DNSMessage.self) { group in
            for id in 0..<20 {
                group.addTask { try await client.exchange(.query(id: UInt16(id), name: name, type: .a), transport: transport) }
            }
            while transport.count == 0 { try await Task.sleep(for: .milliseconds(1)) }
            try await Task.sleep(for: .milliseconds(20))
            transport.release()
            var ids: Set<UInt16> = []
            for try await response in group {
                #expect(response.addresses == [(ip("10.0.0.1"))])
                ids.insert(response.id)
            }
            #expect(ids.count == 20)
        }
        #expect(transport.count == 1)
    }

    @Test func clientSubnetIsSentAndKeysTheCache() async throws {
        let transport = FakeTransport(respond: addressResponder())
        let client = DNSClient(options: DNSClientOptions(clientSubnet: IPPrefix("198.51.100.7/24")))
        _ = try await client.exchange(.query(name: name, type: .a), transport: transport)
        #expect(transport.queries[0].clientSubnet?.prefix == IPPrefix("198.51.100.0/24"))
        _ = try await client.exchange(.query(name: name, type: .a), transport: transport)
        #expect(transport.count == 1)
        _ = try await client.exchange(.query(name: name, type: .a), transport: transport, options: DNSQueryOptions(clientSubnet: IPPrefix("203.0.113.0/24")))
        #expect(transport.count == 2)
        #expect(transport.queries[1].clientSubnet?.prefix == IPPrefix("203.0.113.0/24"))
    }

    @Test func timesOut() async throws {
        let transport = FakeTransport(hold: true, respond: addressResponder())
        let client = DNSClient(options: DNSClientOptions(timeout: .milliseconds(100)))
        let start = ContinuousClock.now
        await #expect(throws: DNSError.timeout) { try await client.exchange(.query(name: name, type: .a), transport: transport) }
        // Generous: parallel suites share two cores; the point is that it ends, not how fast.
        #expect(ContinuousClock.now - start < .seconds(30))
        #expect(DNSError.timeout.description == "context deadline exceeded")
    }

    @Test func refusesLoopback() async throws {
        let client = DNSClient(options: DNSClientOptions(disableCache: true))
        final class Looping: DNSTransport {
            let tag = "loop"
            var type: String { "fake" }
            let client: DNSClient
            init(client: DNSClient) { self.client = client }
            func exchange(_ message: DNSMessage) async throws -> DNSMessage {
                try await client.exchange(message, transport: self)
            }
        }
        await #expect(throws: DNSError.loopback(transport: "loop")) {
            try await client.exchange(.query(name: try DNSName("x.test"), type: .a), transport: Looping(client: client))
        }
        #expect(DNSError.loopback(transport: "loop").description == "DNS query loopback in transport[loop]")
    }

    @Test func responseCheckerRejects() async throws {
        let transport = FakeTransport(respond: addressResponder())
        let client = DNSClient()
        await #expect(throws: DNSError.responseRejected) {
            try await client.exchange(.query(name: name, type: .a), transport: transport) { addresses in
                !addresses.contains((ip("10.0.0.1")))
            }
        }
        let ok = try await client.exchange(.query(name: name, type: .aaaa), transport: transport) { _ in true }
        #expect(ok.answers.count == 1)
    }

    @Test func httpsHintsFollowTheStrategy() async throws {
        let transport = FakeTransport { query in
            answer(query, [DNSResourceRecord(name: query.question!.name, type: .https, ttl: 60, data: .svcb(DNSSVCB(priority: 1, target: .root, parameters: [
                DNSSVCParameter(key: DNSSVCParameter.ipv4hint, value: [1, 2, 3, 4]),
                DNSSVCParameter(key: DNSSVCParameter.ipv6hint, value: ip("fd00::2").bytes),
            ])))])
        }
        let client = DNSClient(options: DNSClientOptions(disableCache: true))
        let both = try await client.exchange(.query(name: name, type: .https), transport: transport)
        #expect(both.addresses.count == 2)
        let v4 = try await client.exchange(.query(name: name, type: .https), transport: transport, options: DNSQueryOptions(strategy: .ipv4Only))
        #expect(v4.addresses == [(ip("1.2.3.4"))])
    }

    @Test func ednsIsFixedForTheAsker() async throws {
        let transport = FakeTransport { query in
            var response = answer(query, [.address(query.question!.name, ip("1.1.1.1"), ttl: 60)])
            response.edns = DNSEDNS(udpPayloadSize: 1232, version: 0, flags: 0x8000, options: [DNSEDNSOption(code: 10, data: [1])])
            return response
        }
        let client = DNSClient(options: DNSClientOptions(disableCache: true))
        let plain = try await client.exchange(.query(name: name, type: .a), transport: transport)
        #expect(plain.edns == nil)
        var query = DNSMessage.query(name: name, type: .a)
        query.edns = DNSEDNS(udpPayloadSize: 4096)
        let withEDNS = try await client.exchange(query, transport: transport)
        #expect(withEDNS.edns?.udpPayloadSize == 1232)
        #expect(withEDNS.edns?.flags == 0x8000)
    }

    @Test func rcodeErrorFromTransportBecomesAResponse() async throws {
        let transport = FakeTransport { _ in throw DNSError.rcode(.refused) }
        let client = DNSClient()
        let response = try await client.exchange(.query(id: 3, name: name, type: .a), transport: transport)
        #expect(response.rcode == .refused && response.id == 3 && response.isResponse)
    }
}

@Suite struct DNSTransportResolverTests {
    @Test func routesByServerTagAndStrategy() async throws {
        let first = FakeTransport(tag: "first", respond: addressResponder())
        let second = FakeTransport(tag: "second") { query in
            answer(query, query.question!.type == .a ? [.address(query.question!.name, ip("10.9.9.9"), ttl: 60)] : [])
        }
        let resolver = try #require(DNSTransportResolver(client: DNSClient(options: DNSClientOptions(disableCache: true)),
                                                         transports: [first, second], defaultStrategy: .preferIPv6))
        #expect(try await resolver.lookup("a.test", options: DNSLookupOptions()).map(\.description) == ["fd00::1", "10.0.0.1"])
        #expect(try await resolver.lookup("a.test", options: DNSLookupOptions(strategy: .ipv4Only)).map(\.description) == ["10.0.0.1"])
        #expect(try await resolver.lookup("a.test", options: DNSLookupOptions(server: "second")).map(\.description) == ["10.9.9.9"])
        await #expect { try await resolver.lookup("a.test", options: DNSLookupOptions(server: "third")) } throws: { error in
            String(describing: error) == "lookup a.test: DNS server not found: third"
        }
        #expect(DNSTransportResolver(client: DNSClient(), transports: [first], defaultTag: "missing") == nil)
    }
}

/// Collects log lines.
final class CapturingSink: LogSink {
    private let stored = Mutex<[String]>([])
    var lines: [String] { stored.withLock { $0 } }
    func write(line: String) { stored.withLock { $0.append(line) } }
}

@Test func clientLogsLikeSingBox() async throws {
    let sink = CapturingSink()
    let client = DNSClient(logger: ContextLogger(core: LogCore(level: .debug, sink: sink), name: "dns"))
    let transport = FakeTransport(respond: addressResponder(ttl: 60))
    _ = try await client.exchange(.query(name: try DNSName("x.test"), type: .a), transport: transport)
    _ = try await client.exchange(.query(name: try DNSName("x.test"), type: .a), transport: transport)
    let lines = sink.lines
    #expect(lines.contains { $0.contains("exchanged x.test NOERROR 60") })
    #expect(lines.contains { $0.contains("exchanged A x.test. 60 IN A 10.0.0.1") })
    #expect(lines.contains { $0.contains("cached x.test NOERROR") })
    #expect(lines.contains { $0.contains("cached A x.test.") })
}
