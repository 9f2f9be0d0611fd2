// FlowRouter: the box's `FlowHandler` — matches route rules, dials, relays.
package import Adapter
package import NIOCore
import Net
import Rules
import Synchronization

/// What the rules decided for a flow.
package enum RouteDecision: Sendable {
    case outbound(any Outbound)
    case reject(RejectMethod)
    case hijackDNS
    /// The flow cannot be routed (unknown outbound, unsupported network, resolve failure).
    case failure(AdapterError)
}

/// Routes flows from every inbound. Immutable after init (a reload builds a new box and router);
/// safe to call from any loop. Per flow it runs one task for the decision and dial (not per chunk).
package final class FlowRouter: FlowHandler {
    package let rules: [RouteRule]
    package let outbounds: OutboundManager
    package let logger: ContextLogger
    /// `connection:` lines (dial failures), as Go's connection manager logs them.
    let connectionLogger: ContextLogger
    package let resolver: (any DNSResolver)?
    /// The DNS router's hijack handler; set by the box once DNS is built (before any flow).
    package var dnsHijacker: (any DNSHijacker)? {
        get { hijacker.withLock { $0 } }
        set { hijacker.withLock { $0 = newValue } }
    }
    private let hijacker: Mutex<(any DNSHijacker)?>
    /// fakeip and reverse mapping from the DNS router; set by the box once DNS is built.
    package var dnsDomainMapper: (any DNSDomainMapper)? {
        get { domainMapper.withLock { $0 } }
        set { domainMapper.withLock { $0 = newValue } }
    }
    private let domainMapper = Mutex<(any DNSDomainMapper)?>(nil)
    /// The DNS router as a flow-aware resolver for `resolve` (DNS rules see the flow); set by the box.
    package var dnsFlowResolver: (any FlowDNSResolver)? {
        get { flowResolver.withLock { $0 } }
        set { flowResolver.withLock { $0 = newValue } }
    }
    private let flowResolver = Mutex<(any FlowDNSResolver)?>(nil)
    /// The Clash API's mode for `clash_mode` items; set by the box when `experimental.clash_api` is.
    package var clashModes: ClashModeStore? {
        get { clashModeStore.withLock { $0 } }
        set { clashModeStore.withLock { $0 = newValue } }
    }
    private let clashModeStore = Mutex<ClashModeStore?>(nil)
    /// The box's inbounds by tag, for listen `detour`; set by the box once its inbounds exist.
    package var inboundLookup: (@Sendable (String) -> (any Inbound)?)? {
        get { inboundsByTag.withLock { $0 } }
        set { inboundsByTag.withLock { $0 = newValue } }
    }
    private let inboundsByTag = Mutex<(@Sendable (String) -> (any Inbound)?)?>(nil)
    /// UDP NAT idle time when no rule sets `udp_timeout` (Go's `C.UDPTimeout`, 5 minutes).
    package let defaultUDPTimeout: TimeAmount
    /// `route.default_domain_resolver` strategy for `resolve` without one.
    package let defaultDomainStrategy: DomainStrategy
    /// Every flow this router owns (client sides; the relay closes the outbound side with them).
    package let flows = FlowTracker()
    /// Looks up a flow's owning process before matching; set only when a rule or rule-set needs it or
    /// `route.find_process` is on (Go's `processSearcher`). The box may set it at start, once remote
    /// rule-sets have their first copy.
    package var processFinder: (any ProcessFinder)? {
        get { finder.withLock { $0 } }
        set { finder.withLock { $0 = newValue } }
    }
    private let finder: Mutex<(any ProcessFinder)?>
    /// The Clash API's flow list and byte counters; set by the box only when the API is served
    /// (nil: no flow is tracked and relays count nothing beyond their own totals).
    package var connectionTracker: ConnectionTracker? {
        get { tracker.withLock { $0 } }
        set { tracker.withLock { $0 = newValue } }
    }
    private let tracker = Mutex<ConnectionTracker?>(nil)

    package init(rules: [RouteRule], outbounds: OutboundManager, logger: ContextLogger,
                 resolver: (any DNSResolver)? = nil, dnsHijacker: (any DNSHijacker)? = nil,
                 defaultUDPTimeout: TimeAmount = .minutes(5), defaultDomainStrategy: DomainStrategy = .asIs,
                 processFinder: (any ProcessFinder)? = nil) {
        self.finder = Mutex(processFinder)
        self.rules = rules
        self.outbounds = outbounds
        self.logger = logger.named("router")
        self.connectionLogger = logger.named("connection")
        self.resolver = resolver
        self.hijacker = Mutex(dnsHijacker)
        self.defaultUDPTimeout = defaultUDPTimeout
        self.defaultDomainStrategy = defaultDomainStrategy
    }

    // MARK: Decision

    /// Reads a flow's first bytes for a `sniff` action: sniffer names and timeout in, outcome out
    /// (nil when nothing could be read).
    package typealias Sniff = @Sendable (_ sniffers: [String], _ timeout: TimeAmount?) async -> SniffOutcome?

    /// Runs the rules over `metadata` (which non-final actions modify) and returns the decision.
    /// `sniff` serves `sniff` actions (TCP flows); without it they are skipped.
    package func match(_ metadata: inout FlowMetadata, sniff: Sniff? = nil) async -> RouteDecision {
        metadata.clashMode = clashModes?.mode
        // A fake IP becomes its domain again; a real one answered earlier lends rules its domain
        // (reverse_mapping), as Go's router does before matching.
        if let mapper = dnsDomainMapper, let ip = metadata.destination.ip {
            switch mapper.fakeIPMapping(for: ip) {
            case .domain(let domain):
                metadata.originalDestination = metadata.originalDestination ?? metadata.destination
                metadata.destination.host = .domain(domain)
            case .missing:
                return .failure(AdapterError(.notFound, "missing fakeip record, try enable `experimental.cache_file`"))
            case .notFake:
                if metadata.sniffedDomain == nil, let domain = mapper.reverseDomain(for: ip) {
                    metadata.sniffedDomain = domain
                }
            }
        }
        // Legacy inbound fields act before the rules, as Go 1.12 still does.
        if let legacy = metadata.inboundSniff, let sniff {
            await runSniff(&metadata, sniff: sniff, sniffers: [], timeout: legacy.timeout)
            if legacy.overrideDestination, let domain = metadata.sniffedDomain {
                metadata.originalDestination = metadata.originalDestination ?? metadata.destination
                metadata.destination.host = .domain(domain)
            }
        }
        if let strategy = metadata.inboundDomainStrategy, metadata.destination.isDomain {
            if let failure = await resolve(&metadata, strategy: strategy, server: nil) { return .failure(failure) }
        }
        if let processFinder, metadata.process == nil { findProcess(&metadata, processFinder) }
        for (index, rule) in rules.enumerated() where rule.condition.matches(metadata) {
            let text = rule.description
            logger.debug(text.isEmpty ? "match[\(index)] => \(rule.action)" : "match[\(index)] \(text) => \(rule.action)",
                         flow: metadata.flowID)
            switch rule.action {
            case .route(let tag, let options):
                options.apply(to: &metadata)
                metadata.matchedRule = index
                return select(tag: tag, network: metadata.network)
            case .routeOptions(let options):
                options.apply(to: &metadata)
            case .reject(let method, _):
                let (effective, flooded) = rule.rejectMethod(method)
                if flooded { logger.debug("dropped due to flooding", flow: metadata.flowID) }
                return .reject(effective)
            case .hijackDNS:
                return .hijackDNS
            case .resolve(let strategy, let server):
                if let failure = await resolve(&metadata, strategy: strategy, server: server) { return .failure(failure) }
            case .sniff(let sniffers, let timeout):
                if let sniff { await runSniff(&metadata, sniff: sniff, sniffers: sniffers, timeout: timeout) }
            case .direct:
                break
            }
        }
        guard let fallback = outbounds.defaultOutbound else {
            return .failure(AdapterError(.notFound, "missing default outbound"))
        }
        guard fallback.networks.contains(metadata.network) else {
            return .failure(AdapterError(.unsupportedNetwork,
                                         "\(metadata.network == .tcp ? "TCP" : "UDP") is not supported by default outbound: \(fallback.tag)"))
        }
        return .outbound(fallback)
    }

    /// Go's matchRule preamble: look the owner up once, log what was found or why not.
    private func findProcess(_ metadata: inout FlowMetadata, _ finder: any ProcessFinder) {
        guard let source = metadata.source else { return }
        let destination = metadata.originalDestination ?? (metadata.destination.ip != nil ? metadata.destination : nil)
        do {
            let found = try finder.findProcess(network: metadata.network, source: source, destination: destination)
            if !found.path.isEmpty {
                let user = !found.userName.isEmpty ? ", user: \(found.userName)" : found.userID != -1 ? ", user id: \(found.userID)" : ""
                logger.info("found process path: \(found.path)\(user)", flow: metadata.flowID)
            } else if found.userID != -1 {
                logger.info(found.userName.isEmpty ? "found user id: \(found.userID)" : "found user: \(found.userName)", flow: metadata.flowID)
            }
            metadata.process = found
        } catch {
            logger.info("failed to search process: \(error)", flow: metadata.flowID)
        }
    }

    /// Sniffs once per flow (a later sniff sees the first one's result, as Go skips) and logs it.
    private func runSniff(_ metadata: inout FlowMetadata, sniff: Sniff, sniffers: [String], timeout: TimeAmount?) async {
        guard metadata.sniffedProtocol == nil else { return }
        guard case .found(let name, let domain, let client) = await sniff(sniffers, timeout) else { return }
        metadata.sniffedProtocol = name
        metadata.sniffedDomain = domain
        metadata.sniffedClient = client
        // Go words UDP results "sniffed packet protocol".
        let what = metadata.network == .udp ? "sniffed packet protocol" : "sniffed protocol"
        if let domain, let client {
            logger.debug("\(what): \(name), domain: \(domain), client: \(client)", flow: metadata.flowID)
        } else if let domain {
            logger.debug("\(what): \(name), domain: \(domain)", flow: metadata.flowID)
        } else {
            logger.debug("\(what): \(name)", flow: metadata.flowID)
        }
    }

    private func select(tag: String, network: NetworkKind) -> RouteDecision {
        guard let outbound = outbounds.outbound(tag) else {
            return .failure(AdapterError(.notFound, "outbound not found: \(tag)"))
        }
        guard outbound.networks.contains(network) else {
            return .failure(AdapterError(.unsupportedNetwork, "\(network == .tcp ? "TCP" : "UDP") is not supported by outbound: \(tag)"))
        }
        return .outbound(outbound)
    }

    /// The `resolve` action: look the domain up now so later `ip_cidr` rules and the dialer see
    /// addresses. An IP destination is left alone.
    private func resolve(_ metadata: inout FlowMetadata, strategy: DomainStrategy, server: String?) async -> AdapterError? {
        guard let domain = metadata.destination.domain else { return nil }
        guard let resolver else { return AdapterError(.other, "resolve: no DNS resolver") }
        let effective = strategy == .asIs ? defaultDomainStrategy : strategy
        do {
            let options = DNSLookupOptions(server: server, strategy: effective)
            let addresses = if let flowResolver = dnsFlowResolver {
                try await flowResolver.lookup(domain, options: options, flow: metadata)
            } else {
                try await resolver.lookup(domain, options: options)
            }
            metadata.destinationAddresses = addresses
            metadata.domainStrategy = effective
            return nil
        } catch {
            return AdapterError.cause(error, "resolve \(domain)")
        }
    }

    // MARK: TCP

    package func handleTCP(_ channel: any Channel, metadata: FlowMetadata, responder: (any HandshakeResponder)?) {
        if let detour = metadata.inboundDetour {
            // Go's routeConnection: the flow is not routed but handed to the detour inbound.
            Task { await followDetour(detour, channel: channel, metadata: metadata, responder: responder) }
            return
        }
        if let name = metadata.destination.domain, let message = Self.retiredGlobalNames[name] {
            // Go's routeConnection: these names are answered only by the inbounds that wrap the
            // router (mux and UoT); reaching the router itself means a client relies on the global
            // forms removed in 1.7.
            let error = AdapterError(.other, message)
            logger.error("\(error)", flow: metadata.flowID)
            Task { await fail(channel, responder: responder, error: error) }
            return
        }
        flows.track(channel)
        Task {
            var metadata = metadata
            let state = TCPFlowState(responder: responder)
            let decision = await match(&metadata) { [self] sniffers, timeout in
                await self.sniffTCP(channel, state: state, sniffers: sniffers, timeout: timeout)
            }
            await route(channel, metadata: metadata, decision: decision, responder: state.pendingResponder)
        }
    }

    /// Destination names of the global multiplex and UoT forms, with Go's error for each.
    static let retiredGlobalNames: [String: String] = [
        "sp.mux.sing-box.arpa": "global multiplex is deprecated since sing-box v1.7.0, enable multiplex in Inbound fields instead.",
        "v1.mux.cool": "global multiplex (v2ray legacy) not supported since sing-box v1.7.0.",
        "sp.v2.udp-over-tcp.arpa": "global UoT not supported since sing-box v1.7.0.",
        "sp.udp-over-tcp.arpa": "global UoT (legacy) not supported since sing-box v1.7.0.",
    ]

    /// Hands a TCP flow to its detour inbound: the first inbound's handshake (a SOCKS or CONNECT
    /// reply) is answered first, as Go's lazy handshakes answer when the next inbound reads, and what
    /// its handlers release waits in a `FlowBufferHandler` for the next inbound's handshake.
    private func followDetour(_ detour: String, channel: any Channel, metadata: FlowMetadata,
                              responder: (any HandshakeResponder)?) async {
        let target: any Inbound
        let injectable: any TCPInjectableInbound
        do {
            target = try detourTarget(detour, metadata: metadata)
            guard let taking = target as? any TCPInjectableInbound else {
                throw AdapterError(.other, "inbound detour is not TCP injectable: \(detour)")
            }
            injectable = taking
        } catch {
            logger.error("\(error)", flow: metadata.flowID)
            await fail(channel, responder: responder, error: error)
            return
        }
        if let responder {
            guard (try? await channel.eventLoop.flatSubmit({ Self.holdBytesAndAnswer(channel, responder: responder) }).get()) != nil else {
                try? await channel.close()
                return
            }
        }
        injectable.injectTCP(channel, metadata: Self.detoured(metadata, to: target))
    }

    /// The inbound a listen `detour` names; throws Go's error for a loop or a missing tag.
    private func detourTarget(_ detour: String, metadata: FlowMetadata) throws(AdapterError) -> any Inbound {
        if metadata.lastInbound == detour { throw AdapterError(.other, "routing loop on detour: \(detour)") }
        guard let inbound = inboundLookup?(detour) else { throw AdapterError(.notFound, "inbound detour not found: \(detour)") }
        return inbound
    }

    /// On the channel's loop: makes sure a `FlowBufferHandler` holds what arrives (and what the
    /// inbound's handshake handlers release when they go), then answers the handshake if there is a
    /// responder. The sniffer reads from that buffer; a detour's next inbound gets it replayed.
    static func holdBytesAndAnswer(_ channel: any Channel, responder: (any HandshakeResponder)?) -> EventLoopFuture<FlowBufferHandler> {
        let loop = channel.eventLoop
        let sync = channel.pipeline.syncOperations
        let handler: FlowBufferHandler
        if let existing = try? sync.handler(type: FlowBufferHandler.self) {
            handler = existing
        } else {
            handler = FlowBufferHandler()
            do { try sync.addHandler(handler) } catch { return loop.makeFailedFuture(error) }
        }
        guard let responder else { return loop.makeSucceededFuture(handler) }
        return responder.succeed(channel).map { handler }
    }

    /// The metadata the detour inbound gets: the first inbound becomes `lastInbound`.
    static func detoured(_ metadata: FlowMetadata, to inbound: any Inbound) -> FlowMetadata {
        var out = metadata
        out.lastInbound = metadata.inbound
        out.inbound = inbound.tag
        out.inboundType = inbound.type
        out.inboundDetour = nil
        return out
    }

    /// Peeks at the client's first bytes: answers the inbound's handshake first (a SOCKS client
    /// sends nothing before its reply, as Go's lazy handshake does), then waits for bytes until a
    /// sniffer decides, the input ends, or the timeout (300 ms default, Go's `ReadPayloadTimeout`).
    private func sniffTCP(_ channel: any Channel, state: TCPFlowState, sniffers names: [String],
                          timeout: TimeAmount?) async -> SniffOutcome? {
        let sniffers = StreamSniffer.selected(by: names)
        guard !sniffers.isEmpty else { return nil }
        let loop = channel.eventLoop
        let buffer: FlowBufferHandler
        do {
            buffer = try await loop.flatSubmit { Self.holdBytesAndAnswer(channel, responder: state.takeResponder()) }.get()
        } catch {
            return nil
        }
        let deadline = NIODeadline.now() + (timeout ?? .milliseconds(300))
        var seen = 0
        while true {
            let remaining = deadline - .now()
            guard remaining > .zero else { return nil }
            let already = seen
            guard let (bytes, ended) = try? await loop.flatSubmit({ buffer.waitForBytes(moreThan: already, timeout: remaining) }).get() else {
                return nil
            }
            let outcome = StreamSniffer.run(sniffers, over: bytes)
            if outcome != .needMore { return outcome }
            if ended || bytes.count == seen { return nil }
            seen = bytes.count
        }
    }

    private func route(_ channel: any Channel, metadata: FlowMetadata, decision: RouteDecision,
                       responder: (any HandshakeResponder)?) async {
        let loop = channel.eventLoop
        switch decision {
        case .reject:
            // Both methods end here the same way: Go drops silently only a tun flow not yet answered (its
            // pre-match); an inbound's handshake is failed and an established connection "will just be
            // closed" (rule_action.md). Hanging it open instead left clients (and the reject flood rule's
            // drops) waiting forever.
            logger.debug("connection closed: rejected", flow: metadata.flowID)
            await fail(channel, responder: responder, error: AdapterError(.rejected, "connection refused"))
        case .hijackDNS:
            guard let dnsHijacker = self.dnsHijacker else {
                logger.error("hijack-dns: DNS router not available", flow: metadata.flowID)
                await fail(channel, responder: responder, error: AdapterError(.other, "hijack-dns unavailable"))
                return
            }
            if let responder { _ = try? await loop.flatSubmit { responder.succeed(channel) }.get() }
            dnsHijacker.hijackTCP(channel, metadata: metadata)
        case .failure(let error):
            logger.error("\(error)", flow: metadata.flowID)
            await fail(channel, responder: responder, error: error)
        case .outbound(let outbound):
            var metadata = metadata
            metadata.outbound = outbound.tag
            // Go's trackers wrap the client connection before the dial: the flow shows while dialing.
            let tracked = connectionTracker?.track(channel, metadata: metadata, rule: ruleText(metadata), outbound: outbound)
            let remote: any Channel
            do {
                remote = try await outbound.dialTCP(metadata, on: loop)
                // The client may have gone (or the box closed) while we dialed.
                if !channel.isActive {
                    remote.close(promise: nil)
                    return
                }
            } catch {
                let failure = DialFailure("open connection to \(metadata.destination) using \(outbound.logName)", underlying: error)
                connectionLogger.error("\(failure)", flow: metadata.flowID)
                await fail(channel, responder: responder, error: failure)
                return
            }
            let flowLogger = connectionLogger
            let flowID = metadata.flowID
            // Install the relay, then let the inbound answer, in one loop turn: no client byte can
            // arrive in between and miss the relay.
            let installed = loop.submit {
                let done = Relay.start(client: channel, remote: remote, counter: tracked)
                if let responder {
                    responder.succeed(channel).whenFailure { _ in
                        channel.close(promise: nil)
                        remote.close(promise: nil)
                    }
                }
                return done
            }
            guard let done = try? await installed.get() else {
                channel.close(promise: nil)
                remote.close(promise: nil)
                return
            }
            // The task ends here; the relay's end is a callback. Awaiting it kept the task and its
            // async frames (~7.5 KB) alive for the flow's whole life, half of an idle flow's cost.
            done.whenSuccess { _, end in
                if case .error(let text) = end { flowLogger.debug("connection closed: \(text)", flow: flowID) }
            }
        }
    }

    /// Go's tracker `rule`: `<rule> => <action>` of the rule that chose the outbound, else `final`.
    private func ruleText(_ metadata: FlowMetadata) -> String {
        guard let index = metadata.matchedRule, rules.indices.contains(index) else { return "final" }
        return "\(rules[index].description) => \(rules[index].action)"
    }

    private func fail(_ channel: any Channel, responder: (any HandshakeResponder)?, error: any Error) async {
        if let responder {
            _ = try? await channel.eventLoop.flatSubmit { responder.fail(channel, error: error) }.get()
        }
        try? await channel.close()
    }

    // MARK: UDP

    package func handleUDP(_ connection: any PacketConnection, metadata: FlowMetadata) {
        if let detour = metadata.inboundDetour {
            // Go's routePacketConnection: none of our inbounds takes packet connections over.
            let message: String
            do {
                _ = try detourTarget(detour, metadata: metadata)
                message = "inbound detour is not UDP injectable: \(detour)"
            } catch {
                message = error.description
            }
            logger.error(message, flow: metadata.flowID)
            connection.eventLoop.execute { connection.close() }
            return
        }
        flows.track(connection)
        Task {
            var metadata = metadata
            let decision = await match(&metadata) { sniffers, timeout in
                await PacketSniffing.sniff(connection, sniffers: sniffers, timeout: timeout)
            }
            await route(connection, metadata: metadata, decision: decision)
        }
    }

    private func route(_ connection: any PacketConnection, metadata: FlowMetadata, decision: RouteDecision) async {
        let loop = connection.eventLoop
        switch decision {
        case .reject:
            logger.debug("connection closed: rejected", flow: metadata.flowID)
            loop.execute { connection.close() }
        case .hijackDNS:
            guard let dnsHijacker = self.dnsHijacker else {
                logger.error("hijack-dns: DNS router not available", flow: metadata.flowID)
                loop.execute { connection.close() }
                return
            }
            dnsHijacker.hijackUDP(connection, metadata: metadata)
        case .failure(let error):
            logger.error("\(error)", flow: metadata.flowID)
            loop.execute { connection.close() }
        case .outbound(let outbound):
            var metadata = metadata
            metadata.outbound = outbound.tag
            let tracked = connectionTracker?.track(connection, metadata: metadata, rule: ruleText(metadata), outbound: outbound)
            let remote: any PacketConnection
            do {
                remote = try await outbound.listenPacket(metadata, on: loop)
            } catch {
                connectionLogger.error("open packet connection to \(metadata.destination) using \(outbound.logName): \(error)",
                                       flow: metadata.flowID)
                loop.execute { connection.close() }
                return
            }
            let timeout = metadata.udpTimeout ?? defaultUDPTimeout
            let domain = metadata.destination.isDomain && !metadata.udpDisableDomainUnmapping ? metadata.destination : nil
            var rewrite: (from: Destination, to: Destination)?
            if let original = metadata.originalDestination, original != metadata.destination {
                rewrite = (original, metadata.destination)
            }
            _ = PacketRelay.start(client: connection, remote: remote, idleTimeout: timeout,
                                  domainDestination: domain, rewrite: rewrite, counter: tracked)
        }
    }
}

/// Per-flow state shared between sniffing and routing: whether the inbound was already answered.
final class TCPFlowState: @unchecked Sendable {
    // Touched from the flow's task only (sequentially), and from its loop inside flatSubmit.
    private var responder: (any HandshakeResponder)?

    init(responder: (any HandshakeResponder)?) { self.responder = responder }

    /// Hands out the responder once (sniffing answers early; routing then must not answer again).
    func takeResponder() -> (any HandshakeResponder)? {
        defer { responder = nil }
        return responder
    }

    /// The responder if nobody answered yet.
    var pendingResponder: (any HandshakeResponder)? { responder }
}
