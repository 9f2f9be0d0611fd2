import Testing
import Adapter
@testable import DNS

@Suite struct DNSCacheTests {
    func response(_ name: String, ttl: UInt32) throws -> DNSMessage {
        let query = DNSMessage.query(name: try DNSName(name), type: .a)
        return answer(query, [.address(try DNSName(name), ip("1.2.3.4"), ttl: ttl)])
    }

    @Test func countsTTLDownAndExpires() throws {
        let clock = TestClock()
        let cache = DNSCache(capacity: 10, now: clock.now)
        let key = DNSCache.Key(question: DNSQuestion(name: try DNSName("a.test"), type: .a))
        cache.store(try response("a.test", ttl: 60), ttl: 60, for: key)
        #expect(cache.load(key)?.remaining == 60)
        clock.advance(.milliseconds(20_500))
        let loaded = try #require(cache.load(key))
        #expect(loaded.remaining == 39)
        #expect(loaded.message.answers[0].ttl == 39)
        clock.advance(.seconds(40))
        #expect(cache.load(key) == nil)
        #expect(cache.count == 0)
    }

    @Test func disableExpireKeepsEntries() throws {
        let clock = TestClock()
        let cache = DNSCache(capacity: 10, disableExpire: true, now: clock.now)
        let key = DNSCache.Key(question: DNSQuestion(name: try DNSName("a.test"), type: .a))
        cache.store(try response("a.test", ttl: 60), ttl: 60, for: key)
        clock.advance(.seconds(3600))
        let loaded = try #require(cache.load(key))
        #expect(loaded.message.answers[0].ttl == 60)
    }

    @Test func zeroTTLIsNotStored() throws {
        let cache = DNSCache(capacity: 10)
        let key = DNSCache.Key(question: DNSQuestion(name: try DNSName("a.test"), type: .a))
        cache.store(try response("a.test", ttl: 0), ttl: 0, for: key)
        #expect(cache.load(key) == nil)
    }

    @Test func boundedByCapacityLRU() throws {
        let cache = DNSCache(capacity: 3)
        func key(_ i: Int) throws -> DNSCache.Key { DNSCache.Key(question: DNSQuestion(name: try DNSName("n\(i).test"), type: .a)) }
        for i in 0..<3 { cache.store(try response("n\(i).test", ttl: 60), ttl: 60, for: try key(i)) }
        _ = cache.load(try key(0))
        cache.store(try response("n3.test", ttl: 60), ttl: 60, for: try key(3))
        #expect(cache.count == 3)
        #expect(cache.load(try key(1)) == nil)
        #expect(cache.load(try key(0)) != nil)
        for i in 4..<1000 { cache.store(try response("n\(i).test", ttl: 60), ttl: 60, for: try key(i)) }
        #expect(cache.count == 3)
    }

    @Test func keysFoldCaseAndSeparateTagsAndSubnets() throws {
        let a = DNSCache.Key(question: DNSQuestion(name: try DNSName("Example.COM"), type: .a))
        let b = DNSCache.Key(question: DNSQuestion(name: try DNSName("example.com"), type: .a))
        #expect(a == b)
        #expect(a != DNSCache.Key(question: b.question, transportTag: "x"))
        let subnetA = DNSCache.Key(question: b.question, clientSubnet: IPPrefix("10.1.2.3/24"))
        #expect(subnetA == DNSCache.Key(question: b.question, clientSubnet: IPPrefix("10.1.2.0/24")))
        #expect(subnetA != DNSCache.Key(question: b.question, clientSubnet: IPPrefix("10.1.3.0/24")))
        #expect(subnetA != b)
    }
}
