import Testing
import NIOCore
import Adapter
@testable import DNS

/// The wire fast path for cached UDP answers (DNSRouter.cachedWireAnswer) against the message path it
/// short-cuts (cachedAnswer, then encodedForUDP): where it answers, the octets must be the same.
@Suite struct DNSCachedWireTests {
    /// A router over a fake upstream: A/AAAA answers (TTL 300); `big.test` gets 40 A records (over 512
    /// octets); `nx.test` NXDOMAIN with an SOA (negative TTL 60); `opt.test` an answer carrying an OPT.
    func makeRouter(clock: TestClock, disableExpire: Bool = false, independentCache: Bool = false,
                    reverseMapping: Bool = false) -> DNSRouter {
        let upstream = FakeTransport { query in
            guard let question = query.question else { throw DNSError.noQuestion }
            switch question.name.lowercased().domain {
            case "big.test":
                let records = (0..<40).map { DNSResourceRecord.address(question.name, ip("10.0.1.\($0)"), ttl: 300) }
                return answer(query, records)
            case "nx.test":
                return answer(query, [], rcode: .nameError, authorities: [try soaRecord(ttl: 60, minimum: 120)])
            case "opt.test":
                var response = answer(query, [.address(question.name, ip("10.0.0.9"), ttl: 300)])
                response.edns = DNSEDNS(udpPayloadSize: 1232, flags: 0x8000)
                return response
            default:
                return try addressResponder(ttl: 300)(query)
            }
        }
        let client = DNSClient(options: DNSClientOptions(disableExpire: disableExpire, independentCache: independentCache), now: clock.now)
        return DNSRouter(client: client, transports: [upstream], defaultTransport: upstream, rules: [], reverseMapping: reverseMapping)
    }

    /// Both paths' answers to `query` sent as `wire` (its encoding unless given).
    func answers(_ router: DNSRouter, _ query: DNSMessage, wire: [UInt8]? = nil) throws -> (fast: [UInt8]?, slow: [UInt8]?) {
        let bytes = try wire ?? query.encoded()
        let fast = router.cachedWireAnswer(to: ByteBuffer(bytes: bytes)).map { Array($0.readableBytesView) }
        let parsed = try DNSMessage(parsing: bytes)
        let slow = try router.cachedAnswer(to: parsed).map { try $0.encodedForUDP(replyingTo: parsed) }
        return (fast, slow)
    }

    func query(_ name: String, _ type: DNSType = .a, id: UInt16 = 0x4242, edns: DNSEDNS? = nil) throws -> DNSMessage {
        var message = DNSMessage.query(id: id, name: try DNSName(name), type: type)
        message.edns = edns
        return message
    }

    @Test(arguments: [
        ("a.test", DNSType.a, nil as UInt16?), ("a.test", .aaaa, nil), ("a.test", .a, 1232), ("nx.test", .a, nil),
        ("opt.test", .a, 4096), ("big.test", .a, 4096),
    ])
    func cachedAnswersAreTheMessagePathsOctets(name: String, type: DNSType, payloadSize: UInt16?) async throws {
        let clock = TestClock()
        let router = makeRouter(clock: clock)
        // DNSClient stores answers to option-less queries only; later askers may carry options (a cookie).
        let first = try query(name, type, id: 1, edns: payloadSize.map { DNSEDNS(udpPayloadSize: $0) })
        let edns = payloadSize.map { DNSEDNS(udpPayloadSize: $0, options: [DNSEDNSOption(code: 10, data: [1, 2, 3, 4, 5, 6, 7, 8])]) }
        // Nothing cached yet: neither path answers.
        let empty = try answers(router, first)
        #expect(empty.fast == nil && empty.slow == nil)
        _ = try await router.exchange(first, metadata: nil)
        let stored: UInt32 = name == "nx.test" ? 60 : 300
        var elapsed: UInt32 = 0
        for (id, age) in [(UInt16(2), UInt32(0)), (0xbeef, 7), (0xffff, 45)] {
            clock.advance(.seconds(age))
            elapsed += age
            let (fast, slow) = try answers(router, try query(name, type, id: id, edns: edns))
            let served = try #require(fast)
            #expect(served == slow)
            let message = try DNSMessage(parsing: served)
            #expect(message.id == id)
            // The simulated clock stands still between asks: exactly the seconds left.
            for record in message.allRecords where record.type != .opt { #expect(record.ttl == stored - elapsed) }
        }
        // Expired: gone from both paths.
        clock.advance(.seconds(400))
        let expired = try answers(router, try query(name, type, id: 3, edns: edns))
        #expect(expired.fast == nil && expired.slow == nil)
    }

    @Test func anotherSpellingOrAnOversizedAnswerTakesTheMessagePath() async throws {
        let router = makeRouter(clock: TestClock())
        _ = try await router.exchange(try query("Mixed.Test"), metadata: nil)
        _ = try await router.exchange(try query("big.test"), metadata: nil)
        // The question is echoed as asked: another case is left to the message path.
        let other = try answers(router, try query("mixed.test"))
        #expect(other.fast == nil)
        #expect(try DNSMessage(parsing: try #require(other.slow)).question?.name == (try DNSName("mixed.test")))
        #expect(try answers(router, try query("Mixed.Test")).fast != nil)
        // 40 records do not fit 512 octets: the message path cuts them and sets TC.
        let big = try answers(router, try query("big.test"))
        #expect(big.fast == nil)
        #expect(try DNSMessage(parsing: try #require(big.slow)).isTruncated)
        let roomy = try answers(router, try query("big.test", edns: DNSEDNS(udpPayloadSize: 4096)))
        #expect(roomy.fast != nil && roomy.fast == roomy.slow)
    }

    @Test func disableExpireServesStoredTTLs() async throws {
        let clock = TestClock()
        let router = makeRouter(clock: clock, disableExpire: true)
        _ = try await router.exchange(try query("a.test"), metadata: nil)
        clock.advance(.seconds(1000))
        let (fast, slow) = try answers(router, try query("a.test", id: 9))
        #expect(fast != nil && fast == slow)
        #expect(try DNSMessage(parsing: try #require(fast)).answers.first?.ttl == 300)
    }

    @Test func independentCacheAndReverseMappingKeepTheMessagePath() async throws {
        for router in [makeRouter(clock: TestClock(), independentCache: true), makeRouter(clock: TestClock(), reverseMapping: true)] {
            _ = try await router.exchange(try query("a.test"), metadata: nil)
            #expect(router.cachedWireAnswer(to: ByteBuffer(bytes: try query("a.test").encoded())) == nil)
        }
    }

    @Test func oddQueriesAreLeftToTheParser() async throws {
        let router = makeRouter(clock: TestClock())
        _ = try await router.exchange(try query("a.test", edns: DNSEDNS(udpPayloadSize: 1232)), metadata: nil)
        let plain = try query("a.test", edns: DNSEDNS(udpPayloadSize: 1232, options: [DNSEDNSOption(code: 10, data: [1, 2, 3, 4, 5, 6, 7, 8])]))
        let wire = try plain.encoded()
        #expect(router.cachedWireAnswer(to: ByteBuffer(bytes: wire)) != nil)
        // Every cut of a valid query, and the query with a trailing octet.
        for length in 0..<wire.count {
            #expect(router.cachedWireAnswer(to: ByteBuffer(bytes: wire.prefix(length))) == nil, "length \(length)")
        }
        #expect(router.cachedWireAnswer(to: ByteBuffer(bytes: wire + [0])) == nil)
        var variants: [[UInt8]] = []
        var response = wire; response[2] |= 0x80  // QR set
        variants.append(response)
        var twoQuestions = wire; twoQuestions[5] = 2
        variants.append(twoQuestions)
        var badOption = wire; badOption[badOption.count - 10] = 0xff  // the option length (high octet) overruns RDLENGTH
        variants.append(badOption)
        // A compression pointer as the question name: 12-octet header, c0 0c, type, class.
        variants.append([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1])
        for variant in variants { #expect(router.cachedWireAnswer(to: ByteBuffer(bytes: variant)) == nil) }
        // Random octets never trap, and anything answered agrees with the message path.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            var bytes = wire
            for _ in 0..<Int.random(in: 1...3, using: &generator) {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            guard let fast = router.cachedWireAnswer(to: ByteBuffer(bytes: bytes)) else { continue }
            let parsed = try DNSMessage(parsing: bytes)
            let slow = try router.cachedAnswer(to: parsed).map { try $0.encodedForUDP(replyingTo: parsed) }
            #expect(Array(fast.readableBytesView) == slow)
        }
    }
}
