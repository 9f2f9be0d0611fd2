// The DNS router (sing-box dns/router.go): DNS rules choose the server for every query the box
// answers — hijacked flows (`hijack-dns`), the route `resolve` action and dialers' `domain_resolver`.
//
// exchange (a query message from a flow):
// 1. not exactly one question → FORMERR
// 2. a cached answer (client-wide cache) is served before any rule runs, as Go does
// 3. rules run in order (`matchRule`): route-options accumulate, route/reject/predefined end;
//    a rule with an address limit is skipped for non-address queries; fakeip is allowed
// 4. reject → REFUSED (default) or no answer (drop); predefined → the fixed answer
// 5. the client exchanges through the chosen server; a rule's address limit may reject the
//    response, and matching resumes after that rule
// 6. reverse mapping (when enabled) remembers every A/AAAA answer not made by fakeip, for its TTL
// lookup (a domain for a dialer or `resolve`): a named server is asked directly; otherwise the same
// rules run with fakeip not allowed, and predefined answers give their addresses.

package import Adapter
package import NIOCore
import Synchronization

/// Why the DNS router gave no answer.
package enum DNSRejection: Error, CustomStringConvertible, Equatable {
    /// A `reject` rule with `method: drop`: the asker gets nothing (Go's `tun.ErrDrop`).
    case dropped
    /// A `reject` rule stopped a lookup (Go's `RejectedError`).
    case rejected

    package var description: String {
        switch self {
        case .dropped: "drop request"
        case .rejected: "rejected"
        }
    }
}

/// A DNS rule: a condition and its action.
package struct DNSRule: Sendable, CustomStringConvertible {
    package let condition: DNSRuleCondition
    package let action: DNSRouteAction
    /// Precomputed `condition.hasAddressLimit`.
    package let hasAddressLimit: Bool

    package init(condition: DNSRuleCondition, action: DNSRouteAction) {
        self.condition = condition
        self.action = action
        self.hasAddressLimit = condition.hasAddressLimit
    }

    package var description: String { condition.description }
}

/// Routes DNS queries through rules to transports. Immutable after init except the reverse-mapping
/// table; every method may be called from any task.
package final class DNSRouter: DNSResolver, FlowDNSResolver {
    package let client: DNSClient
    package let rules: [DNSRule]
    private let transports: [String: any DNSTransport]
    /// `final`, else the first server that is not fakeip.
    package let defaultTransport: any DNSTransport
    /// `dns.strategy`, applied when neither the query nor a rule set one.
    package let defaultStrategy: DomainStrategy
    /// `reverse_mapping`: address → domain, for the router to name connections to plain IPs.
    package let reverseMapping: DNSReverseMapping?
    private let logger: ContextLogger?
    /// The Clash API's mode for `clash_mode` items; set by the box when `experimental.clash_api` is
    /// (a change of mode clears the cache, as Go's `SetMode` does).
    package var clashModes: ClashModeStore? {
        get { clashModeStore.withLock { $0 } }
        set { clashModeStore.withLock { $0 = newValue } }
    }
    private let clashModeStore = Mutex<ClashModeStore?>(nil)

    package init(client: DNSClient, transports: [any DNSTransport], defaultTransport: any DNSTransport,
                 rules: [DNSRule], defaultStrategy: DomainStrategy = .asIs, reverseMapping: Bool = false,
                 logger: ContextLogger? = nil) {
        self.client = client
        self.transports = Dictionary(transports.map { ($0.tag, $0) }, uniquingKeysWith: { first, _ in first })
        self.defaultTransport = defaultTransport
        self.rules = rules
        self.defaultStrategy = defaultStrategy
        self.reverseMapping = reverseMapping ? DNSReverseMapping() : nil
        self.logger = logger
    }

    /// The transport with `tag`.
    package func transport(_ tag: String) -> (any DNSTransport)? { transports[tag] }

    /// The outcome of matching: a transport with options, or the rule that answers itself.
    enum Match {
        case transport(any DNSTransport, DNSQueryOptions, rule: DNSRule?, index: Int)
        case reject(drop: Bool, index: Int)
        case predefined(DNSPredefinedAnswer, index: Int)
    }

    /// Go's `matchDNS`: the first rule after `after` that decides, accumulating route-options.
    func matchRule(_ input: DNSRuleInput, allowFakeIP: Bool, after: Int, isAddressQuery: Bool,
                   options: DNSQueryOptions) -> Match {
        var options = options
        var index = after + 1
        while index < rules.count {
            defer { index += 1 }
            let rule = rules[index]
            if rule.hasAddressLimit && !isAddressQuery { continue }
            guard rule.condition.matches(input) else { continue }
            let text = rule.description
            logger?.debug(text.isEmpty ? "match[\(index)] => \(rule.action)" : "match[\(index)] \(text) => \(rule.action)",
                          flow: input.metadata.flowID)
            switch rule.action {
            case .route(let server, let settings):
                guard let transport = transports[server] else {
                    logger?.error("transport not found: \(server)", flow: input.metadata.flowID)
                    continue
                }
                let isFakeIP = transport is FakeIPTransport
                if isFakeIP && !allowFakeIP { continue }
                settings.apply(to: &options)
                if isFakeIP { options.disableCache = true }
                return .transport(transport, options, rule: rule, index: index)
            case .routeOptions(let settings):
                settings.apply(to: &options)
            case .reject(let drop):
                return .reject(drop: drop, index: index)
            case .predefined(let answer):
                return .predefined(answer, index: index)
            }
        }
        return .transport(defaultTransport, options, rule: nil, index: rules.count)
    }

    /// Answers one query message from a flow (`metadata`: the hijacked flow; nil for the box's
    /// own queries). Throws `DNSRejection.dropped` for a drop rule and the exchange's errors.
    package func exchange(_ message: DNSMessage, metadata: FlowMetadata?, options: DNSQueryOptions = DNSQueryOptions()) async throws -> DNSMessage {
        guard message.questions.count == 1, let question = message.question else {
            logger?.warn("bad question size: \(message.questions.count)")
            return DNSMessage(id: message.id, isResponse: true, rcode: .formatError, questions: message.questions)
        }
        logger?.debug("exchange \(question.name.domain) \(question.class) \(question.type)", flow: metadata?.flowID)
        if let cached = client.exchangeCache(message) {
            remember(cached, fromFakeIP: false)
            return cached
        }
        var input = DNSRuleInput(domain: question.name.domain, queryType: question.type.rawValue, base: metadata)
        input.metadata.clashMode = clashModes?.mode
        let isAddressQuery = question.type == .a || question.type == .aaaa || question.type == .https
        var after = -1
        while true {
            switch matchRule(input, allowFakeIP: true, after: after, isAddressQuery: isAddressQuery, options: options) {
            case .reject(let drop, _):
                if drop { throw DNSRejection.dropped }
                return DNSMessage(id: message.id, isResponse: true, rcode: .refused, questions: [question])
            case .predefined(let answer, _):
                return answer.response(to: message)
            case .transport(let transport, var queryOptions, let rule, let index):
                if queryOptions.strategy == .asIs { queryOptions.strategy = defaultStrategy }
                let check = rule.flatMap { rule in rule.hasAddressLimit ? Self.addressCheck(rule, input) : nil }
                do {
                    let response = try await client.exchange(message, transport: transport, options: queryOptions, responseChecker: check)
                    remember(response, fromFakeIP: transport is FakeIPTransport)
                    return response
                } catch DNSError.responseRejected where check != nil {
                    logger?.debug("response rejected for \(question.name.domain) \(question.class) \(question.type)", flow: metadata?.flowID)
                    after = index
                    continue
                } catch {
                    logger?.error("exchange failed for \(question.name.domain) \(question.class) \(question.type): \(error)",
                                  flow: metadata?.flowID)
                    throw error
                }
            }
        }
    }

    /// The cached answer to a one-question query, if the cache has one (step 2 of `exchange`,
    /// without the rest): never blocks, so the hijack handler calls it on the flow's loop.
    package func cachedAnswer(to message: DNSMessage) -> DNSMessage? {
        guard message.questions.count == 1, let cached = client.exchangeCache(message) else { return nil }
        remember(cached, fromFakeIP: false)
        return cached
    }

    /// `cachedAnswer(to:)` for a UDP query still in wire form: the cached answer's octets, cut as
    /// `encodedForUDP` would (DNSClient.exchangeCacheWire), or nil when the message path must answer:
    /// not a simple query (DNSQueryView), not cached that way, or `reverse_mapping` on (it records
    /// each answer's addresses, which needs the message).
    package func cachedWireAnswer(to query: ByteBuffer) -> ByteBuffer? {
        guard reverseMapping == nil, let view = DNSQueryView(query),
              let (wire, ttl) = client.exchangeCacheWire(view, in: query) else { return nil }
        return wire.reply(id: view.id, ttl: ttl)
    }

    /// `Adapter.DNSResolver`: a lookup for a dialer (`domain_resolver`) or the `resolve` action.
    package func lookup(_ domain: String, options: DNSLookupOptions) async throws -> [IPAddress] {
        try await lookup(domain, options: options, metadata: nil)
    }

    /// `Adapter.FlowDNSResolver`: the `resolve` action's lookup, with its flow for the rules.
    package func lookup(_ domain: String, options: DNSLookupOptions, flow: FlowMetadata) async throws -> [IPAddress] {
        try await lookup(domain, options: options, metadata: flow)
    }

    /// A lookup, with the flow that caused it when there is one (the `resolve` action).
    package func lookup(_ domain: String, options: DNSLookupOptions, metadata: FlowMetadata?) async throws -> [IPAddress] {
        let bare = domain.hasSuffix(".") ? String(domain.dropLast()) : domain
        var queryOptions = DNSQueryOptions(strategy: options.strategy, disableCache: options.disableCache,
                                           rewriteTTL: options.rewriteTTL, clientSubnet: options.clientSubnet)
        if let tag = options.server {
            // domain_resolver / resolve naming a server: no rules (Go's `options.Transport`).
            guard let transport = transports[tag] else {
                throw AdapterError(.notFound, "lookup \(bare): DNS server not found: \(tag)")
            }
            if queryOptions.strategy == .asIs { queryOptions.strategy = defaultStrategy }
            return try await client.lookup(bare, transport: transport, options: queryOptions)
        }
        if let cached = client.lookupCache(bare, strategy: options.strategy) {
            if cached.isEmpty { throw DNSLookupError(domain: bare, underlying: DNSError.emptyResult) }
            return cached
        }
        var input = DNSRuleInput(domain: bare, queryType: nil, base: metadata)
        input.metadata.clashMode = clashModes?.mode
        var after = -1
        while true {
            switch matchRule(input, allowFakeIP: false, after: after, isAddressQuery: true, options: queryOptions) {
            case .reject:
                throw DNSLookupError(domain: bare, underlying: DNSRejection.rejected)
            case .predefined(let answer, _):
                guard answer.rcode == .noError else { throw DNSLookupError(domain: bare, underlying: DNSError.rcode(answer.rcode)) }
                let addresses = answer.addresses
                if addresses.isEmpty { throw DNSLookupError(domain: bare, underlying: DNSError.emptyResult) }
                return addresses
            case .transport(let transport, var matched, let rule, let index):
                if matched.strategy == .asIs { matched.strategy = defaultStrategy }
                let check = rule.flatMap { rule in rule.hasAddressLimit ? Self.addressCheck(rule, input) : nil }
                do {
                    let addresses = try await client.lookup(bare, transport: transport, options: matched, responseChecker: check)
                    logger?.info("lookup succeed for \(bare): \(addresses.map(\.description).joined(separator: " "))",
                                 flow: metadata?.flowID)
                    return addresses
                } catch where check != nil && Self.isRejection(error) {
                    logger?.debug("response rejected for \(bare)", flow: metadata?.flowID)
                    after = index
                    continue
                } catch {
                    logger?.error("lookup failed for \(bare): \(error)", flow: metadata?.flowID)
                    throw error
                }
            }
        }
    }

    /// Whether `error` is the client's rejection of a response by an address limit.
    private static func isRejection(_ error: any Error) -> Bool {
        if let error = error as? DNSError { return error == .responseRejected }
        if let error = error as? DNSLookupError, let inner = error.underlying as? DNSError { return inner == .responseRejected }
        return false
    }

    /// The rule's address limit as a response check (Go's `responseCheck` closure).
    private static func addressCheck(_ rule: DNSRule, _ input: DNSRuleInput) -> @Sendable ([IPAddress]) -> Bool {
        { addresses in rule.condition.matchesAddressLimit(input, addresses: addresses) }
    }

    /// Feeds the reverse mapping from a response (not from fakeip: those are the fakeip store's).
    private func remember(_ response: DNSMessage, fromFakeIP: Bool) {
        guard let reverseMapping, !fromFakeIP else { return }
        for record in response.answers {
            switch record.data {
            case .a(let address) where record.type == .a, .aaaa(let address) where record.type == .aaaa:
                reverseMapping.add(address, domain: record.name.domain, ttl: record.ttl)
            default: continue
            }
        }
    }

    /// The domain an address was last answered for, while its TTL lasts (Go's `LookupReverseMapping`).
    package func reverseDomain(for address: IPAddress) -> String? {
        reverseMapping?.lookup(address)
    }
}

/// The `reverse_mapping` table: 1024 entries (Go's LRU size), each living for its record's TTL.
package final class DNSReverseMapping: Sendable {
    private struct Entry { var domain: String; var expiresAt: ContinuousClock.Instant }
    private let table = Mutex(LRUCache<IPAddress, Entry>(capacity: 1024))
    private let now: @Sendable () -> ContinuousClock.Instant

    package init(now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }) {
        self.now = now
    }

    package func add(_ address: IPAddress, domain: String, ttl: UInt32) {
        let entry = Entry(domain: domain, expiresAt: now().advanced(by: .seconds(Int64(ttl))))
        table.withLock { _ = $0.set(address.unmapped, entry) }
    }

    package func lookup(_ address: IPAddress) -> String? {
        let instant = now()
        return table.withLock { table -> String? in
            guard let entry = table.get(address.unmapped) else { return nil }
            guard entry.expiresAt > instant else {
                table.remove(address.unmapped)
                return nil
            }
            return entry.domain
        }
    }
}

/// The router's `Adapter.DNSDomainMapper`: the fakeip store (if a fakeip server exists) and the
/// reverse mapping (if `reverse_mapping` is on).
package final class DNSRouterDomainMapper: DNSDomainMapper {
    private let fakeIPStore: FakeIPStore?
    private let router: DNSRouter

    package init(router: DNSRouter, fakeIPStore: FakeIPStore?) {
        self.router = router
        self.fakeIPStore = fakeIPStore
    }

    package func fakeIPMapping(for address: IPAddress) -> FakeIPMapping {
        guard let fakeIPStore, fakeIPStore.contains(address) else { return .notFake }
        return fakeIPStore.lookup(address).map(FakeIPMapping.domain) ?? .missing
    }

    package func reverseDomain(for address: IPAddress) -> String? {
        router.reverseDomain(for: address)
    }
}
