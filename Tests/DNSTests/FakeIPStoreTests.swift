import Testing
import Adapter
@testable import DNS

@Suite struct FakeIPStoreTests {
    @Test func allocatesInSingBoxOrderBothWays() throws {
        let store = FakeIPStore(inet4Range: IPPrefix("198.18.0.0/15"), inet6Range: IPPrefix("fc00::/18"))
        #expect(try store.create(domain: "a.test", ipv6: false).description == "198.18.0.3")
        #expect(try store.create(domain: "b.test", ipv6: false).description == "198.18.0.4")
        #expect(try store.create(domain: "a.test", ipv6: false).description == "198.18.0.3")
        #expect(try store.create(domain: "a.test", ipv6: true).description == "fc00::3")
        #expect(store.lookup(ip("198.18.0.4")) == "b.test")
        #expect(store.lookup(ip("fc00::3")) == "a.test")
        #expect(store.lookup(ip("198.18.0.9")) == nil)
        #expect(store.contains(ip("198.19.255.255")))
        #expect(!store.contains(ip("10.0.0.1")))
        // A flush forgets the mappings; new ones continue after the last address, as sing-box's cursor does.
        store.reset()
        #expect(store.lookup(ip("198.18.0.4")) == nil)
        #expect(try store.create(domain: "z.test", ipv6: false).description == "198.18.0.5")
        #expect(try store.create(domain: "a.test", ipv6: false).description == "198.18.0.6")
    }

    @Test func flushAfterExhaustionStartsOver() throws {
        let store = FakeIPStore(inet4Range: IPPrefix("10.0.0.0/29"), inet6Range: nil)
        for index in 0..<6 { _ = try store.create(domain: "d\(index).test", ipv6: false) }
        store.reset()
        #expect(try store.create(domain: "n0.test", ipv6: false).description == "10.0.0.3")
        #expect(try store.create(domain: "n1.test", ipv6: false).description == "10.0.0.4")
        #expect(store.lookup(ip("10.0.0.3")) == "n0.test" && store.lookup(ip("10.0.0.7")) == nil)
    }

    @Test func reusesLeastRecentlyUsedWhenExhausted() throws {
        // /29: usable .2 … .7 (six), fresh order .3 .4 .5 .6 .7 .2.
        let store = FakeIPStore(inet4Range: IPPrefix("10.0.0.0/29"), inet6Range: nil)
        let order = try (0..<6).map { try store.create(domain: "d\($0).test", ipv6: false).description }
        #expect(order == ["10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.7", "10.0.0.2"])
        // d0 is used again (by domain), d1 by address: d2 is now the least recently used.
        _ = try store.create(domain: "d0.test", ipv6: false)
        _ = store.lookup(ip("10.0.0.4"))
        #expect(try store.create(domain: "new.test", ipv6: false).description == "10.0.0.5")
        #expect(store.lookup(ip("10.0.0.5")) == "new.test")
        // d2 lost its address and gets another (the next least recently used: d3's .6).
        #expect(try store.create(domain: "d2.test", ipv6: false).description == "10.0.0.6")
        #expect(store.lookup(ip("10.0.0.6")) == "d2.test")
    }

    @Test func missingRangesFailWithSingBoxWording() throws {
        let store = FakeIPStore(inet4Range: IPPrefix("10.0.0.0/31"), inet6Range: nil)
        #expect(throws: DNSError.missingFakeIPRange(ipv6: false)) { try store.create(domain: "a", ipv6: false) }
        #expect(throws: DNSError.missingFakeIPRange(ipv6: true)) { try store.create(domain: "a", ipv6: true) }
        #expect(DNSError.missingFakeIPRange(ipv6: true).description == "missing IPv6 fakeip address range")
    }

    @Test func transportAnswersOnlyAddresses() async throws {
        let transport = FakeIPTransport(tag: "fakeip", store: FakeIPStore(inet4Range: IPPrefix("198.18.0.0/15"), inet6Range: IPPrefix("fc00::/18")))
        let response = try await transport.exchange(.query(id: 8, name: try DNSName("Example.com"), type: .aaaa))
        #expect(response.addresses.map(\.description) == ["fc00::3"])
        #expect(response.answers[0].ttl == 600 && response.id == 8)
        #expect(transport.store.lookup(ip("fc00::3")) == "example.com")
        await #expect(throws: DNSError.fakeIPOnlyIPQueries) { try await transport.exchange(.query(name: try DNSName("x"), type: .mx)) }
    }

    /// `store_fakeip`: a snapshot restores mappings (both ways), the allocator's position and the
    /// recency order; a family whose range changed starts over; bytes that are not a whole snapshot
    /// change nothing.
    @Test func snapshotRestoresMappingsPositionAndRecency() throws {
        let first = FakeIPStore(inet4Range: IPPrefix("198.18.0.0/30"), inet6Range: IPPrefix("fc00::/18"))
        #expect(try first.create(domain: "a.test", ipv6: false).description == "198.18.0.3")
        #expect(try first.create(domain: "b.test", ipv6: false).description == "198.18.0.2")  // /30: two usable, wraps
        #expect(try first.create(domain: "a.test", ipv6: true).description == "fc00::3")
        _ = first.lookup(ip("198.18.0.3"))  // a.test is now the most recently used
        let snapshot = first.snapshot()

        let second = FakeIPStore(inet4Range: IPPrefix("198.18.0.0/30"), inet6Range: IPPrefix("fc00::/18"))
        #expect(second.restore(snapshot))
        #expect(second.lookup(ip("198.18.0.2")) == "b.test" && second.lookup(ip("fc00::3")) == "a.test")
        _ = second.lookup(ip("198.18.0.3"))
        // The pool is full: a new name takes the least recently used address, b.test's.
        #expect(try second.create(domain: "c.test", ipv6: false).description == "198.18.0.2")
        #expect(try second.create(domain: "a.test", ipv6: true).description == "fc00::3")
        #expect(try second.create(domain: "d.test", ipv6: true).description == "fc00::4")
        #expect(second.snapshot() != snapshot)

        // Another IPv4 range: that family starts over, IPv6 is kept.
        let moved = FakeIPStore(inet4Range: IPPrefix("198.20.0.0/16"), inet6Range: IPPrefix("fc00::/18"))
        #expect(moved.restore(snapshot))
        #expect(moved.lookup(ip("198.18.0.3")) == nil && moved.lookup(ip("fc00::3")) == "a.test")
        #expect(try moved.create(domain: "z.test", ipv6: false).description == "198.20.0.3")

        // A cut inside a record and foreign bytes are refused: only the magic alone and the cut between
        // the two families are whole snapshots.
        let accepted = (0..<snapshot.count).filter {
            FakeIPStore(inet4Range: IPPrefix("198.18.0.0/30"), inet6Range: nil).restore(Array(snapshot.prefix($0)))
        }
        #expect(accepted.count == 2 && accepted.first == 4, "accepted cuts: \(accepted)")
        let untouched = FakeIPStore(inet4Range: IPPrefix("198.18.0.0/30"), inet6Range: nil)
        #expect(!untouched.restore(Array(snapshot.dropLast())) && untouched.lookup(ip("198.18.0.3")) == nil)
        #expect(!untouched.restore(Array("SBCACHE2\n".utf8)))
    }
}

