package import Adapter
import Synchronization

/// Fake addresses for domains (sing-box 1.12 `dns/transport/fakeip`): each domain gets one address per
/// family from the configured range, and each address maps back to its domain.
///
/// Allocation follows sing-box: the usable addresses are `base+2 … last` (the network address and
/// `base+1`, typically the gateway, are never handed out) and fresh ones go in order from `base+3`,
/// wrapping to `base+2`. Where sing-box then reuses addresses round-robin, this store reuses the least
/// recently used one (a mapping is used when created, asked for again, or looked up by address), so a
/// domain in active use keeps its address when the range is exhausted. In memory only; thread-safe.
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

        mutating func create(_ domain: String) -> IPAddress? {
            if let existing = byDomain[domain] {
                _ = byAddress.get(existing)
                return existing
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
                return nil
            }
            byAddress.set(address, domain)
            byDomain[domain] = address
            return address
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
        let address = pools.withLock { pools -> IPAddress? in
            ipv6 ? pools.v6?.create(domain) : pools.v4?.create(domain)
        }
        guard let address else { throw .missingFakeIPRange(ipv6: ipv6) }
        return address
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

    /// Forgets every mapping and starts allocating from the beginning again.
    package func reset() {
        pools.withLock { pools in
            pools.v4 = inet4Range.map(Pool.init)
            pools.v6 = inet6Range.map(Pool.init)
        }
    }
}

/// The `fakeip` DNS server: A and AAAA get the domain's fake address with TTL 600; other types fail
/// with "only IP queries are supported by fakeip", as in sing-box.
package final class FakeIPTransport: DNSTransport {
    package let tag: String
    package var type: String { "fakeip" }
    package let store: FakeIPStore

    package init(tag: String, store: FakeIPStore) {
        self.tag = tag
        self.store = store
    }

    package func exchange(_ message: DNSMessage) async throws -> DNSMessage {
        guard let question = message.question else { throw DNSError.noQuestion }
        guard question.type == .a || question.type == .aaaa else { throw DNSError.fakeIPOnlyIPQueries }
        let address = try store.create(domain: question.name.lowercased().domain, ipv6: question.type == .aaaa)
        return DNSFixedResponse.addresses(id: message.id, question: question, addresses: [address], ttl: defaultDNSTTL)
    }
}
