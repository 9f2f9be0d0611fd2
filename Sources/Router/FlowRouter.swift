// FlowRouter: the box's `FlowHandler` — matches route rules, dials, relays.
package import Adapter
package import NIOCore
import Net
import Rules

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
    package let dnsHijacker: (any DNSHijacker)?
    /// UDP NAT idle time when no rule sets `udp_timeout` (Go's `C.UDPTimeout`, 5 minutes).
    package let defaultUDPTimeout: TimeAmount
    /// `route.default_domain_resolver` strategy for `resolve` without one.
    package let defaultDomainStrategy: DomainStrategy

    package init(rules: [RouteRule], outbounds: OutboundManager, logger: ContextLogger,
                 resolver: (any DNSResolver)? = nil, dnsHijacker: (any DNSHijacker)? = nil,
                 defaultUDPTimeout: TimeAmount = .minutes(5), defaultDomainStrategy: DomainStrategy = .asIs) {
        self.rules = rules
        self.outbounds = outbounds
        self.logger = logger.named("router")
        self.connectionLogger = logger.named("connection")
        self.resolver = resolver
        self.dnsHijacker = dnsHijacker
        self.defaultUDPTimeout = defaultUDPTimeout
        self.defaultDomainStrategy = defaultDomainStrategy
    }

    // MARK: Decision

    /// Runs the rules over `metadata` (which non-final actions modify) and returns the decision.
    package func match(_ metadata: inout FlowMetadata) async -> RouteDecision {
        for (index, rule) in rules.enumerated() where rule.condition.matches(metadata) {
            let text = rule.description
            logger.debug(text.isEmpty ? "match[\(index)] => \(rule.action)" : "match[\(index)] \(text) => \(rule.action)",
                         flow: metadata.flowID)
            switch rule.action {
            case .route(let tag, let options):
                options.apply(to: &metadata)
                return select(tag: tag, network: metadata.network)
            case .routeOptions(let options):
                options.apply(to: &metadata)
            case .reject(let method, _):
                return .reject(method)
            case .hijackDNS:
                return .hijackDNS
            case .resolve(let strategy, let server):
                if let failure = await resolve(&metadata, strategy: strategy, server: server) { return .failure(failure) }
            case .sniff:
                // Sniffing needs the first payload; TODO(#engine-sniff): TLS/HTTP sniffers.
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
            let addresses = try await resolver.lookup(domain, options: DNSLookupOptions(server: server, strategy: effective))
            metadata.destinationAddresses = addresses
            metadata.domainStrategy = effective
            return nil
        } catch {
            return AdapterError.cause(error, "resolve \(domain)")
        }
    }

    // MARK: TCP

    package func handleTCP(_ channel: any Channel, metadata: FlowMetadata, responder: (any HandshakeResponder)?) {
        Task {
            var metadata = metadata
            let decision = await match(&metadata)
            await route(channel, metadata: metadata, decision: decision, responder: responder)
        }
    }

    private func route(_ channel: any Channel, metadata: FlowMetadata, decision: RouteDecision,
                       responder: (any HandshakeResponder)?) async {
        let loop = channel.eventLoop
        switch decision {
        case .reject(let method):
            logger.debug("connection closed: rejected", flow: metadata.flowID)
            if method == .drop {
                // Drop: never answer; the client sees its connection hang until it gives up.
                _ = try? await channel.closeFuture.get()
                return
            }
            await fail(channel, responder: responder, error: AdapterError(.rejected, "connection refused"))
        case .hijackDNS:
            guard let dnsHijacker else {
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
            let remote: any Channel
            do {
                remote = try await outbound.dialTCP(metadata, on: loop)
            } catch {
                connectionLogger.error("open connection to \(metadata.destination) using \(outbound.logName): \(error)",
                                       flow: metadata.flowID)
                await fail(channel, responder: responder, error: error)
                return
            }
            let flowLogger = connectionLogger
            let flowID = metadata.flowID
            // Install the relay, then let the inbound answer, in one loop turn: no client byte can
            // arrive in between and miss the relay.
            let installed = loop.submit {
                let done = Relay.start(client: channel, remote: remote)
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
            if let (_, end) = try? await done.get(), case .error(let text) = end {
                flowLogger.debug("connection closed: \(text)", flow: flowID)
            }
        }
    }

    private func fail(_ channel: any Channel, responder: (any HandshakeResponder)?, error: any Error) async {
        if let responder {
            _ = try? await channel.eventLoop.flatSubmit { responder.fail(channel, error: error) }.get()
        }
        try? await channel.close()
    }

    // MARK: UDP

    package func handleUDP(_ connection: any PacketConnection, metadata: FlowMetadata) {
        Task {
            var metadata = metadata
            let decision = await match(&metadata)
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
            guard let dnsHijacker else {
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
                                  domainDestination: domain, rewrite: rewrite)
        }
    }
}
