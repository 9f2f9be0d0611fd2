// The DNS client: one query through one transport, with strategy, cache and sing-box 1.12's rules for
// what a response means (dns/client.go).
//
// exchange:
// 1. no question → FORMERR; A under ipv6_only or AAAA under ipv4_only → empty NOERROR, nothing sent
// 2. the client subnet (per query, else the client's) is set in an EDNS option
// 3. simple queries (one question, no authority, at most an option-less OPT) use the cache: identical
//    queries in flight wait for the first one, then read what it stored
// 4. loopback guard: a query may not re-enter the transport it is being answered by
// 5. the transport is asked under the client's timeout; an `.rcode` error becomes that response
// 6. a response checker (a rule's address limit) may reject the response
// 7. HTTPS hints of the excluded family are dropped under ipv4_only/ipv6_only
// 8. TTL: the SOA's negative TTL for empty answers, else the smallest non-zero TTL; every record gets it
// 9. NOERROR and NXDOMAIN responses are stored; the ID and EDNS are fixed up for the asker

package import Adapter
package import NIOCore
import Synchronization

/// Per-query options (sing-box `adapter.DNSQueryOptions`).
package struct DNSQueryOptions: Sendable {
    package var strategy: DomainStrategy
    /// The strategy for lookups when set; otherwise `strategy` applies.
    package var lookupStrategy: DomainStrategy
    package var disableCache: Bool
    /// Replaces every record's TTL (`rewrite_ttl`).
    package var rewriteTTL: UInt32?
    /// Overrides the client's subnet (`client_subnet` of a rule or server).
    package var clientSubnet: IPPrefix?

    package init(strategy: DomainStrategy = .asIs, lookupStrategy: DomainStrategy = .asIs, disableCache: Bool = false,
                 rewriteTTL: UInt32? = nil, clientSubnet: IPPrefix? = nil) {
        self.strategy = strategy
        self.lookupStrategy = lookupStrategy
        self.disableCache = disableCache
        self.rewriteTTL = rewriteTTL
        self.clientSubnet = clientSubnet
    }
}

/// Client-wide options (the `dns` block: `disable_cache`, `disable_expire`, `independent_cache`,
/// `cache_capacity`, `client_subnet`; the timeout is sing-box's `C.DNSTimeout`).
package struct DNSClientOptions: Sendable {
    package var timeout: Duration
    package var disableCache: Bool
    package var disableExpire: Bool
    package var independentCache: Bool
    /// Entries kept; sing-box raises anything below 1024 to 1024.
    package var cacheCapacity: Int
    package var clientSubnet: IPPrefix?

    package init(timeout: Duration = .seconds(10), disableCache: Bool = false, disableExpire: Bool = false,
                 independentCache: Bool = false, cacheCapacity: Int = 1024, clientSubnet: IPPrefix? = nil) {
        self.timeout = timeout
        self.disableCache = disableCache
        self.disableExpire = disableExpire
        self.independentCache = independentCache
        self.cacheCapacity = cacheCapacity
        self.clientSubnet = clientSubnet
    }
}

/// Asks transports, caches their answers and turns responses into addresses.
/// Thread-safe; every method may be called from any task.
package final class DNSClient: Sendable {
    package let options: DNSClientOptions
    /// nil when `disable_cache` is set.
    package let cache: DNSCache?
    private let inflight = Mutex<[DNSCache.Key: DNSGate]>([:])
    /// sing-box's `dns` logger: "exchanged"/"cached"/"rejected" lines; nil logs nothing.
    private let logger: ContextLogger?

    /// The tag of the transport answering the current task's query (the loopback guard).
    @TaskLocal static var activeTransportTag: String?

    /// A client; `now` is the cache's clock.
    package init(options: DNSClientOptions = DNSClientOptions(), logger: ContextLogger? = nil,
                 now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }) {
        self.options = options
        self.logger = logger
        cache = options.disableCache ? nil
            : DNSCache(capacity: max(options.cacheCapacity, 1024), disableExpire: options.disableExpire, now: now)
    }

    /// Exchanges `message` through `transport` (sing-box `Client.Exchange`).
    ///
    /// `responseChecker` receives the response's addresses; false rejects it with
    /// `DNSError.responseRejected` (also thrown for a non-NOERROR or empty response when a checker is set).
    package func exchange(_ message: DNSMessage, transport: any DNSTransport, options queryOptions: DNSQueryOptions = DNSQueryOptions(),
                          responseChecker: (@Sendable ([IPAddress]) -> Bool)? = nil) async throws -> DNSMessage {
        guard let question = message.question else {
            logger?.warn("bad question size: 0")
            return DNSFixedResponse.status(message, rcode: .formatError)
        }
        if question.type == .a && queryOptions.strategy == .ipv6Only || question.type == .aaaa && queryOptions.strategy == .ipv4Only {
            logger?.debug("strategy rejected")
            return DNSFixedResponse.status(message, rcode: .noError)
        }
        // Judge simplicity on the query as asked: sing-box judges it after adding the subnet option,
        // which turns the cache off whenever a client subnet is configured; we key by subnet instead.
        let isSimple = message.questions.count == 1 && message.authorities.isEmpty
            && (message.additionals.isEmpty || message.additionals.count == 1 && message.additionals[0].type == .opt
                && message.additionals[0].class.rawValue > 0 && message.additionals[0].ttl == 0
                && message.additionals[0].data == .opt([]))
        let clientSubnet = queryOptions.clientSubnet ?? options.clientSubnet
        var query = message
        if let clientSubnet { query = query.settingClientSubnet(clientSubnet) }
        let useCache = isSimple && cache != nil && !queryOptions.disableCache
        let key = DNSCache.Key(question: question, transportTag: options.independentCache ? transport.tag : nil,
                               clientSubnet: clientSubnet)
        var gate: DNSGate? = nil
        if useCache {
            // Coalesce: the first asker queries; the others wait for it, then read the cache.
            while true {
                let (leader, existing) = inflight.withLock { table -> (DNSGate?, DNSGate?) in
                    if let existing = table[key] { return (nil, existing) }
                    let created = DNSGate()
                    table[key] = created
                    return (created, nil)
                }
                if let existing {
                    await existing.wait()
                    if let cached = cachedResponse(key, for: message) { return cached }
                    continue
                }
                gate = leader
                break
            }
        }
        defer {
            if let gate {
                inflight.withLock { table in
                    if table[key] === gate { table[key] = nil }
                }
                gate.open()
            }
        }
        if useCache, let cached = cachedResponse(key, for: message) { return cached }
        if Self.activeTransportTag == transport.tag {
            throw DNSError.loopback(transport: transport.tag)
        }
        if useCache { cache?.countMiss() }
        var response: DNSMessage
        let outgoing = query
        do {
            response = try await Self.$activeTransportTag.withValue(transport.tag) {
                try await withDNSTimeout(options.timeout) { try await transport.exchange(outgoing) }
            }
        } catch let DNSError.rcode(rcode) {
            response = DNSFixedResponse.status(query, rcode: rcode)
        }
        let cacheable = useCache && (response.rcode == .noError || response.rcode == .nameError)
        if let responseChecker {
            if response.rcode != .noError || response.answers.isEmpty || !responseChecker(response.addresses) {
                log("rejected", response, ttl: nil)
                throw DNSError.responseRejected
            }
        }
        if question.type == .https, queryOptions.strategy == .ipv4Only || queryOptions.strategy == .ipv6Only {
            let drop = queryOptions.strategy == .ipv4Only ? DNSSVCParameter.ipv6hint : DNSSVCParameter.ipv4hint
            for index in response.answers.indices {
                guard response.answers[index].type == .https, case .svcb(var svcb) = response.answers[index].data else { continue }
                svcb.parameters.removeAll { $0.key == drop }
                response.answers[index].data = .svcb(svcb)
            }
        }
        var ttl = Self.timeToLive(of: response)
        if let rewrite = queryOptions.rewriteTTL { ttl = rewrite }
        response.updateRecords { record in
            if record.type != .opt { record.ttl = ttl }
        }
        if cacheable, let cache { cache.store(response, ttl: ttl, for: key) }
        response.id = message.id
        Self.fixEDNS(of: &response, for: message)
        log("exchanged", response, ttl: ttl)
        return response
    }

    /// Resolves `domain` to addresses (sing-box `Client.Lookup`): A and AAAA in parallel unless the
    /// strategy names one family; prefer_ipv6 puts IPv6 first. Throws `DNSLookupError` wrapping the
    /// RCODE error, or `.emptyResult` when no address came back (the router's wording).
    package func lookup(_ domain: String, transport: any DNSTransport, options queryOptions: DNSQueryOptions = DNSQueryOptions(),
                        responseChecker: (@Sendable ([IPAddress]) -> Bool)? = nil) async throws -> [IPAddress] {
        let bare = domain.hasSuffix(".") ? String(domain.dropLast()) : domain
        let name: DNSName
        do { name = try DNSName(bare) } catch { throw DNSLookupError(domain: bare, underlying: error) }
        let strategy = queryOptions.lookupStrategy != .asIs ? queryOptions.lookupStrategy : queryOptions.strategy
        do {
            let addresses: [IPAddress]
            switch strategy {
            case .ipv4Only:
                addresses = try await lookupType(name, .a, transport: transport, options: queryOptions, responseChecker: responseChecker)
            case .ipv6Only:
                addresses = try await lookupType(name, .aaaa, transport: transport, options: queryOptions, responseChecker: responseChecker)
            default:
                async let v4 = catching { try await lookupType(name, .a, transport: transport, options: queryOptions, responseChecker: responseChecker) }
                async let v6 = catching { try await lookupType(name, .aaaa, transport: transport, options: queryOptions, responseChecker: responseChecker) }
                let (result4, result6) = await (v4, v6)
                let addresses4 = (try? result4.get()) ?? [], addresses6 = (try? result6.get()) ?? []
                if addresses4.isEmpty && addresses6.isEmpty {
                    // Both failed or came back empty: report the first failure, as task.Group does.
                    if case .failure(let error) = result4 { throw error }
                    if case .failure(let error) = result6 { throw error }
                }
                addresses = strategy == .preferIPv6 ? addresses6 + addresses4 : addresses4 + addresses6
            }
            if addresses.isEmpty { throw DNSError.emptyResult }
            return addresses
        } catch let error as DNSLookupError {
            throw error
        } catch {
            throw DNSLookupError(domain: bare, underlying: error)
        }
    }

    /// Cached addresses for `domain` without asking anyone (sing-box `LookupCache`); nil when not
    /// cached, or when the cache is independent per transport.
    package func lookupCache(_ domain: String, strategy: DomainStrategy) -> [IPAddress]? {
        guard let cache, !options.independentCache else { return nil }
        let bare = domain.hasSuffix(".") ? String(domain.dropLast()) : domain
        guard let name = try? DNSName(bare) else { return nil }
        func load(_ type: DNSType) -> DNSMessage? {
            cache.load(DNSCache.Key(question: DNSQuestion(name: name, type: type), clientSubnet: options.clientSubnet))?.message
        }
        switch strategy {
        case .ipv4Only: return load(.a)?.addresses
        case .ipv6Only: return load(.aaaa)?.addresses
        default:
            guard let response4 = load(.a), let response6 = load(.aaaa) else { return nil }
            return strategy == .preferIPv6 ? response6.addresses + response4.addresses : response4.addresses + response6.addresses
        }
    }

    /// A cached response to `message`, if any (sing-box `ExchangeCache`).
    package func exchangeCache(_ message: DNSMessage) -> DNSMessage? {
        guard cache != nil, !options.independentCache, message.questions.count == 1, let question = message.question else { return nil }
        return cachedResponse(DNSCache.Key(question: question, clientSubnet: options.clientSubnet), for: message)
    }

    /// The cached answer to the simple UDP query `query` (read from `buffer`) in wire form, with the
    /// TTL to write into it (nil: as stored): what `exchangeCache` then `encodedForUDP` would give,
    /// without building a message (DNSCachedWire.swift). Nil when that path must answer instead: no
    /// cache or an independent one, not cached, another spelling of the name, an answer over the
    /// asker's UDP limit, or a logger wanting the per-record "cached" lines. Counts the hit.
    package func exchangeCacheWire(_ query: DNSQueryView, in buffer: ByteBuffer) -> (wire: DNSCachedWire, ttl: UInt32?)? {
        guard let cache, !options.independentCache else { return nil }
        if let logger, logger.isEnabled(.info) { return nil }
        let question = DNSQuestion(name: query.loweredName(in: buffer), type: query.type, class: query.class)
        guard let (wire, remaining) = cache.loadWire(DNSCache.Key(loweredQuestion: question, clientSubnet: options.clientSubnet)),
              wire.serves(query, in: buffer) else { return nil }
        cache.countHit()
        return (wire, remaining)
    }

    /// Drops every cached response.
    package func clearCache() { cache?.removeAll() }

    private func lookupType(_ name: DNSName, _ type: DNSType, transport: any DNSTransport, options queryOptions: DNSQueryOptions,
                            responseChecker: (@Sendable ([IPAddress]) -> Bool)?) async throws -> [IPAddress] {
        let question = DNSQuestion(name: name, type: type)
        if let cache, !queryOptions.disableCache {
            let key = DNSCache.Key(question: question, transportTag: options.independentCache ? transport.tag : nil,
                                   clientSubnet: queryOptions.clientSubnet ?? options.clientSubnet)
            if let cached = cache.load(key)?.message {
                cache.countHit()
                guard cached.rcode == .noError else { throw DNSError.rcode(cached.rcode) }
                return cached.addresses
            }
        }
        let response = try await exchange(DNSMessage.query(name: name, type: type), transport: transport,
                                          options: queryOptions, responseChecker: responseChecker)
        guard response.rcode == .noError else { throw DNSError.rcode(response.rcode) }
        return response.addresses
    }

    private func cachedResponse(_ key: DNSCache.Key, for message: DNSMessage) -> DNSMessage? {
        guard let cache, let (cached, remaining) = cache.load(key) else { return nil }
        cache.countHit()
        var response = cached
        response.id = message.id
        // Serve the asker's spelling of the name (the key is case-folded).
        response.questions = message.questions
        log("cached", response, ttl: remaining)
        return response
    }

    /// sing-box's client_log.go lines: a debug summary (`exchanged example.com NOERROR 300`), then one
    /// info line per record (`exchanged A example.com. 300 IN A 192.0.2.1`).
    private func log(_ verb: String, _ response: DNSMessage, ttl: UInt32?) {
        guard let logger, let question = response.question else { return }
        if let ttl { logger.debug("\(verb) \(question.name.domain) \(response.rcode) \(ttl)") }
        guard logger.isEnabled(.info) else { return }
        for record in response.allRecords { logger.info("\(verb) \(record.type) \(record)") }
    }

    /// sing-box's TTL choice: for an empty answer with an SOA in authority, min(SOA TTL, SOA MINIMUM)
    /// (RFC 2308 §5); otherwise the smallest non-zero TTL of all records (the first record's even if 0).
    static func timeToLive(of response: DNSMessage) -> UInt32 {
        if response.answers.isEmpty {
            for record in response.authorities {
                if case .soa(let soa) = record.data, record.type == .soa {
                    let negative = min(record.ttl, soa.minimum)
                    if negative > 0 { return negative }
                    break
                }
            }
        }
        var ttl: UInt32 = 0
        for record in response.allRecords where record.type != .opt {
            if ttl == 0 || record.ttl > 0 && record.ttl < ttl { ttl = record.ttl }
        }
        return ttl
    }

    /// Drops an OPT record the asker did not send or cannot read (a newer EDNS version), and echoes the
    /// server's payload size and DO bit back to an EDNS asker (sing-box does the same after exchange).
    static func fixEDNS(of response: inout DNSMessage, for request: DNSMessage) {
        guard let responseEDNS = response.edns else { return }
        let requestEDNS = request.edns
        if (requestEDNS?.version).map({ $0 < responseEDNS.version }) ?? true {
            response.edns = nil
            if requestEDNS != nil {
                var fresh = DNSEDNS(udpPayloadSize: responseEDNS.udpPayloadSize)
                fresh.dnssecOK = responseEDNS.dnssecOK
                response.edns = fresh
            }
        }
    }
}

/// The outcome of `body` as a value, so two lookups can run to the end side by side.
func catching<T>(_ body: () async throws -> T) async -> Result<T, any Error> {
    do { return .success(try await body()) } catch { return .failure(error) }
}

/// A one-shot barrier: `wait` suspends until `open` is called (at once if it already was).
final class DNSGate: Sendable {
    private let state = Mutex<(isOpen: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { state -> Bool in
                if state.isOpen { return true }
                state.waiters.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.isOpen = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// Runs `body`, throwing `DNSError.timeout` if it has not finished after `timeout` (the body is cancelled).
func withDNSTimeout<T: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: timeout)
            throw DNSError.timeout
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else { throw DNSError.timeout }
        return first
    }
}
