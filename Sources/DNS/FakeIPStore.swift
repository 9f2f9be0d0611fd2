package import Adapter
import Synchronization

/// Fake addresses for domains (sing-box 1.12 `dns/transport/fakeip`): each domain gets one address per
/// family from the configured range, and each address maps back to its domain.
///
/// Allocation follows sing-box: the usable addresses are `base+2 … last` (the network address and
/// `base+1`, typically the gateway, are never handed out) and fresh ones go in order from `base+3`,
/// wrapping to `base+2`. Where sing-box then reuses addresses round-robin, this store reuses the least
/// recently used one (a mapping is used when created, asked for again, or looked up by address), so a
/// domain in active use keeps its address when the range is exhausted. Thread-safe. With `store_fakeip`
/// the owner saves `snapshot()` in the cache file and hands it to `restore` at the next start.
package final class FakeIPStore: Sendable {
    package let inet4Range: IPPrefix?
    package let inet6Range: IPPrefix?

    private struct Pool {
        let range: IPPrefix
        /// Usable addresses: offsets 2 ... size-1 from the base.
        let usable: UInt128
        /// How many fresh addresses have been handed out.
        var issued: UInt128 = 0
        /// Address → domain, in recency order; its oldest entry is reused once the pool is exhausted.
        var byAddress: LRUCache<IPAddress, String>
        var byDomain: [String: IPAddress] = [:]

        init(range: IPPrefix) {
            self.range = range
            let hostBits = range.address.bitCount - range.bits
            let size: UInt128 = hostBits >= 128 ? UInt128.max : UInt128(1) << UInt128(hostBits)
            usable = size > 2 ? size - 2 : 0
            // The LRU's own bound never bites before the pool does, except for huge v6 ranges where
            // memory is the real limit: keep at most 65536 live mappings per family.
            byAddress = LRUCache(capacity: Int(min(max(usable, 1), 65536)))
        }

        /// The address at `offset` from the base.
        func address(at offset: UInt128) -> IPAddress {
            switch range.address {
            case .v4(let base):
                return .v4(base &+ UInt32(truncatingIfNeeded: offset))
            case .v6(let base):
                let value = (UInt128(base.high) << 64 | UInt128(base.low)) &+ offset
                return .v6(IPv6Bits(high: UInt64(truncatingIfNeeded: value >> 64), low: UInt64(truncatingIfNeeded: value)))
            }
        }

        mutating func forget() {
            byAddress = LRUCache(capacity: byAddress.capacity)
            byDomain = [:]
        }

        /// The domain's address, and whether it was made now.
        mutating func create(_ domain: String) -> (address: IPAddress, isNew: Bool)? {
            if let existing = byDomain[domain] {
                _ = byAddress.get(existing)
                return (existing, false)
            }
            guard usable > 0 else { return nil }
            let address: IPAddress
            if issued < usable && issued < UInt128(byAddress.capacity) {
                // Fresh: base+3, base+4, …, last, then base+2 (sing-box's wrap-around order).
                let offset = issued + 3 <= usable + 1 ? issued + 3 : 2
                address = self.address(at: offset)
                issued += 1
            } else if let (reused, oldDomain) = byAddress.removeOldest() {
                byDomain[oldDomain] = nil
                address = reused
            } else {
                // Every mapping was forgotten after the pool ran out: hand out fresh ones again.
                issued = 1
                address = self.address(at: 3 <= usable + 1 ? 3 : 2)
            }
            byAddress.set(address, domain)
            byDomain[domain] = address
            return (address, true)
        }
    }

    private let pools: Mutex<(v4: Pool?, v6: Pool?)>

    /// A store over these ranges; either may be absent (queries for that family then fail).
    package init(inet4Range: IPPrefix?, inet6Range: IPPrefix?) {
        self.inet4Range = inet4Range.flatMap { $0.address.isIPv4 ? $0 : nil }
        self.inet6Range = inet6Range.flatMap { $0.address.isIPv4 ? nil : $0 }
        pools = Mutex((self.inet4Range.map(Pool.init), self.inet6Range.map(Pool.init)))
    }

    /// The fake address for `domain` in one family, allocating one when needed.
    /// Throws `DNSError.missingFakeIPRange` when that family has no (usable) range.
    package func create(domain: String, ipv6: Bool) throws(DNSError) -> IPAddress {
        let created = pools.withLock { pools in ipv6 ? pools.v6?.create(domain) : pools.v4?.create(domain) }
        guard let created else { throw .missingFakeIPRange(ipv6: ipv6) }
        if created.isNew { version.add(1, ordering: .releasing) }
        return created.address
    }

    /// The domain a fake address stands for, marking the mapping used.
    package func lookup(_ address: IPAddress) -> String? {
        pools.withLock { pools in
            address.isIPv4 ? pools.v4?.byAddress.get(address) : pools.v6?.byAddress.get(address)
        }
    }

    /// Whether `address` lies in one of the ranges.
    package func contains(_ address: IPAddress) -> Bool {
        inet4Range?.contains(address) == true || inet6Range?.contains(address) == true
    }

    /// Bumped by every new mapping, so an owner saves only after a change.
    private let version = Atomic<UInt64>(0)

    /// Changes since the store was made (a saver compares it with the last saved value).
    package var changeCount: UInt64 { version.load(ordering: .acquiring) }

    /// The whole state in a format of ours: "FIP1", then per family present: u8 4 or 6, its range
    /// (u8 prefix length, 16 address bytes), 16 bytes of `issued`, u32 mapping count, and the mappings
    /// least recently used first (16 address bytes, u16 domain length, domain). Big-endian.
    package func snapshot() -> [UInt8] {
        var out = Array("FIP1".utf8)
        pools.withLock { pools in
            for pool in [pools.v4, pools.v6].compactMap({ $0 }) {
                out.append(pool.range.address.isIPv4 ? 4 : 6)
                out.append(UInt8(pool.range.bits))
                out += Self.bytes16(pool.range.address)
                out += withUnsafeBytes(of: UInt64(truncatingIfNeeded: pool.issued >> 64).bigEndian, Array.init)
                out += withUnsafeBytes(of: UInt64(truncatingIfNeeded: pool.issued).bigEndian, Array.init)
                let entries = pool.byAddress.entriesOldestFirst
                out += withUnsafeBytes(of: UInt32(entries.count).bigEndian, Array.init)
                for (address, domain) in entries {
                    out += Self.bytes16(address)
                    let name = Array(domain.utf8.prefix(65535))
                    out += withUnsafeBytes(of: UInt16(name.count).bigEndian, Array.init)
                    out += name
                }
            }
        }
        return out
    }

    /// Takes back a `snapshot()`. A family is restored only when its saved range equals the configured
    /// one (Go resets the store when a range changed), and only addresses inside it are kept. Returns
    /// false, changing nothing, for bytes that are not a whole snapshot.
    @discardableResult
    package func restore(_ bytes: [UInt8]) -> Bool {
        guard bytes.starts(with: Array("FIP1".utf8)) else { return false }
        var offset = 4
        func take(_ count: Int) -> ArraySlice<UInt8>? {
            guard bytes.count - offset >= count else { return nil }
            defer { offset += count }
            return bytes[offset..<offset + count]
        }
        func integer(_ width: Int) -> UInt64? { take(width).map { $0.reduce(UInt64(0)) { $0 << 8 | UInt64($1) } } }
        var restored: [(Bool, Pool)] = []
        while offset < bytes.count {
            guard let family = integer(1), family == 4 || family == 6, let bits = integer(1),
                  let base = take(16).map({ Self.address(Array($0), ipv4: family == 4) }),
                  let high = integer(8), let low = integer(8), let count = integer(4) else { return false }
            let ipv4 = family == 4
            let configured = ipv4 ? inet4Range : inet6Range
            var pool = configured.flatMap { $0.address == base && $0.bits == Int(bits) ? Pool(range: $0) : nil }
            pool?.issued = UInt128(high) << 64 | UInt128(low)
            for _ in 0..<count {
                guard let raw = take(16), let length = integer(2), let name = take(Int(length)),
                      let domain = String(validating: name, as: UTF8.self) else { return false }
                let address = Self.address(Array(raw), ipv4: ipv4)
                guard pool?.range.contains(address) == true, pool?.byDomain[domain] == nil else { continue }
                if let evicted = pool?.byAddress.set(address, domain) { pool?.byDomain[evicted.value] = nil }
                pool?.byDomain[domain] = address
            }
            if let pool { restored.append((ipv4, pool)) }
        }
        pools.withLock { pools in
            for (ipv4, pool) in restored {
                if ipv4 { pools.v4 = pool } else { pools.v6 = pool }
            }
        }
        return true
    }

    private static func bytes16(_ address: IPAddress) -> [UInt8] {
        switch address {
        case .v4(let value): return [UInt8](repeating: 0, count: 12) + withUnsafeBytes(of: value.bigEndian, Array.init)
        case .v6(let bits):
            return withUnsafeBytes(of: bits.high.bigEndian, Array.init) + withUnsafeBytes(of: bits.low.bigEndian, Array.init)
        }
    }

    private static func address(_ raw: [UInt8], ipv4: Bool) -> IPAddress {
        func word(_ range: Range<Int>) -> UInt64 { raw[range].reduce(UInt64(0)) { $0 << 8 | UInt64($1) } }
        if ipv4 { return .v4(UInt32(truncatingIfNeeded: word(12..<16))) }
        return .v6(IPv6Bits(high: word(0..<8), low: word(8..<16)))
    }

    /// Forgets every mapping (Clash API `/cache/fakeip/flush`). As in sing-box, where the flush empties
    /// the cache file's mappings but not the store's cursor, new domains get the addresses after the
    /// last one handed out.
    package func reset() {
        version.add(1, ordering: .releasing)
        pools.withLock { pools in
            pools.v4?.forget()
            pools.v6?.forget()
        }
    }
}

/// The `fakeip` DNS server: A and AAAA get the domain's fake address with TTL 600; other types fail
/// with "only IP queries are supported by fakeip", as in sing-box.
/// With `storage` (`store_fakeip`) the mappings saved by the last run are restored at once, and new
/// ones are saved within `saveInterval` and at close (Go writes each one through to bbolt as it is
/// made; a run killed without close loses at most the last interval's).
package final class FakeIPTransport: DNSTransport {
    package let tag: String
    package var type: String { "fakeip" }
    package let store: FakeIPStore
    private let storage: FakeIPStorage?
    private let saver: Mutex<Task<Void, Never>?> = Mutex(nil)
    private let savedVersion = Mutex<UInt64>(0)
    package static let saveInterval: Duration = .seconds(10)

    package init(tag: String, store: FakeIPStore, storage: FakeIPStorage? = nil) {
        self.tag = tag
        self.store = store
        self.storage = storage
        guard let storage else { return }
        if let saved = storage.load() { store.restore(saved) }
        savedVersion.withLock { $0 = store.changeCount }
        let task = Task { [weak self] in
            while !Task.isCancelled {
                do { try await Task.sleep(for: Self.saveInterval) } catch { return }
                self?.saveIfChanged()
            }
        }
        saver.withLock { $0 = task }
    }

    /// Writes the store to the cache file when it changed since the last write.
    package func saveIfChanged() {
        guard let storage else { return }
        let current = store.changeCount
        guard savedVersion.withLock({ $0 }) != current else { return }
        storage.save(store.snapshot())
        savedVersion.withLock { $0 = current }
    }

    package func close() async {
        saver.withLock { task in
            task?.cancel()
            task = nil
        }
        saveIfChanged()
    }

    package func exchange(_ message: DNSMessage) async throws -> DNSMessage {
        guard let question = message.question else { throw DNSError.noQuestion }
        guard question.type == .a || question.type == .aaaa else { throw DNSError.fakeIPOnlyIPQueries }
        let address = try store.create(domain: question.name.lowercased().domain, ipv6: question.type == .aaaa)
        return DNSFixedResponse.addresses(id: message.id, question: question, addresses: [address], ttl: defaultDNSTTL)
    }
}
