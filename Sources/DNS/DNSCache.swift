package import Adapter
import Synchronization

/// The response cache of a `DNSClient` (sing-box `dns.Client`'s freelru caches).
///
/// Entries are keyed by the question with its name lowered (RFC 4343: `Example.COM` and `example.com`
/// are one name), the transport's tag when `independent_cache` is on, and the client subnet the query
/// carried, so answers tailored to one subnet never reach another. Capacity is bounded; the least
/// recently used entry goes first. Unless `disable_expire` is set an entry expires `ttl` seconds after
/// it was stored and is served with its TTLs counted down. Thread-safe behind one lock; holds no
/// references to transports.
package final class DNSCache: Sendable {
    /// What an entry is stored under.
    package struct Key: Hashable, Sendable {
        package var question: DNSQuestion
        package var transportTag: String?
        package var clientSubnet: IPPrefix?

        /// A key for `question` (its name is lowered here).
        package init(question: DNSQuestion, transportTag: String? = nil, clientSubnet: IPPrefix? = nil) {
            var question = question
            question.name = question.name.lowercased()
            self.question = question
            self.transportTag = transportTag
            self.clientSubnet = clientSubnet
        }

        /// A key for `question` whose name the caller has already lowered (the wire fast path).
        package init(loweredQuestion question: DNSQuestion, clientSubnet: IPPrefix?) {
            self.question = question
            self.transportTag = nil
            self.clientSubnet = clientSubnet
        }
    }

    private struct Entry {
        var message: DNSMessage
        /// `message` encoded, for hits on simple UDP queries; nil when it cannot serve them.
        var wire: DNSCachedWire?
        var ttl: UInt32
        var expiresAt: ContinuousClock.Instant
    }

    private let entries: Mutex<LRUCache<Key, Entry>>
    private let hits = Atomic<UInt64>(0)
    private let misses = Atomic<UInt64>(0)
    private let disableExpire: Bool
    private let now: @Sendable () -> ContinuousClock.Instant

    /// A cache of at most `capacity` responses; `now` is the clock (tests pass a simulated one).
    package init(capacity: Int, disableExpire: Bool = false,
                 now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }) {
        entries = Mutex(LRUCache(capacity: max(1, capacity)))
        self.disableExpire = disableExpire
        self.now = now
    }

    /// The number of entries held, expired ones included until they are next touched.
    package var count: Int { entries.withLock { $0.count } }

    /// What the cache holds and how often it answered (resolved's CacheStatistics `(ttt)`).
    package struct Statistics: Sendable, Equatable {
        /// Entries held, expired ones included until they are next touched.
        package var size: UInt64
        /// Queries answered from the cache since start or `resetStatistics`.
        package var hits: UInt64
        /// Cacheable queries that went to a server since start or `resetStatistics`.
        package var misses: UInt64

        package init(size: UInt64, hits: UInt64, misses: UInt64) {
            self.size = size
            self.hits = hits
            self.misses = misses
        }
    }

    /// The current size and the hit/miss counters.
    package var statistics: Statistics {
        Statistics(size: UInt64(count), hits: hits.load(ordering: .relaxed), misses: misses.load(ordering: .relaxed))
    }

    /// Counts a query answered from the cache (the client calls this once per answer it serves).
    package func countHit() { hits.add(1, ordering: .relaxed) }

    /// Counts a cacheable query that had to ask a server.
    package func countMiss() { misses.add(1, ordering: .relaxed) }

    /// Sets the hit and miss counters back to zero (resolved's ResetStatistics); entries stay.
    package func resetStatistics() {
        hits.store(0, ordering: .relaxed)
        misses.store(0, ordering: .relaxed)
    }

    /// Stores `message` for `ttl` seconds. A TTL of 0 is not stored (sing-box `storeCache`).
    package func store(_ message: DNSMessage, ttl: UInt32, for key: Key) {
        guard ttl > 0 else { return }
        let entry = Entry(message: message, wire: DNSCachedWire(encoding: message), ttl: ttl,
                          expiresAt: now().advanced(by: .seconds(Int64(ttl))))
        entries.withLock { _ = $0.set(key, entry) }
    }

    /// The cached response and its remaining whole seconds, or nil when absent or expired (an expired
    /// entry is removed). With `disable_expire` the response comes back as stored with 0 seconds.
    package func load(_ key: Key) -> (message: DNSMessage, remaining: UInt32)? {
        let current = now()
        let found: Entry? = entries.withLock { cache in
            guard let entry = cache.get(key) else { return nil }
            if !disableExpire, current >= entry.expiresAt {
                cache.remove(key)
                return nil
            }
            return entry
        }
        guard let found else { return nil }
        if disableExpire { return (found.message, 0) }
        // Whole seconds left, rounded down as Go's int(Duration.Seconds()) does.
        let left = found.expiresAt - current
        let remaining = UInt32(clamping: left.components.seconds)
        var message = found.message
        // Every record was stored with the same TTL (the client rewrites them); serve what is left.
        // The OPT pseudo-record's TTL field holds flags, not a TTL, and is left alone.
        message.updateRecords { record in
            if record.type != .opt { record.ttl = remaining }
        }
        return (message, remaining)
    }

    /// The cached response's wire form and the whole seconds left to serve as every TTL (nil with
    /// `disable_expire`: the TTLs as stored), like `load` but without copying the message. Nil when
    /// absent, expired (removed, as `load` does) or without a wire form.
    package func loadWire(_ key: Key) -> (wire: DNSCachedWire, remaining: UInt32?)? {
        let current = now()
        let found: (DNSCachedWire?, ContinuousClock.Instant)? = entries.withLock { cache in
            // Only the wire form and the deadline: copying the whole entry retains every array of its message.
            guard let (wire, expiresAt) = cache.get(key, { entry in (entry.wire, entry.expiresAt) }) else { return nil }
            if !disableExpire, current >= expiresAt {
                cache.remove(key)
                return nil
            }
            return (wire, expiresAt)
        }
        guard let (stored, expiresAt) = found, let wire = stored else { return nil }
        if disableExpire { return (wire, nil) }
        return (wire, UInt32(clamping: (expiresAt - current).components.seconds))
    }

    /// Removes `key`.
    package func remove(_ key: Key) {
        entries.withLock { _ = $0.remove(key) }
    }

    /// Drops every entry (sing-box `ClearCache`, called when the network changes).
    package func removeAll() {
        entries.withLock { $0.removeAll() }
    }
}
