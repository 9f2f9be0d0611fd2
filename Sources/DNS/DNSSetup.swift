// Building the DNS parts of a box from the 1.12 `dns` options (sing-box dns/transport_manager.go,
// NewClient and NewRouter): transports, the client, the rules and the router over them. The default
// server is `final`, else the first server that is not fakeip; with no servers, a `local` one.
//
// Seam: `makeTransport` has one case per server type; a new type (`resolved`, in its own file)
// adds one line there.
//
// Config has its own text-based IPAddress/IPPrefix/DomainStrategy; Adapter's are the runtime values.
// Both modules are imported here, so every use is qualified.

package import Adapter
package import Config
import NIOCore
package import Rules

/// The client, transports, router and hijack handler built from `dns` options. The box points its
/// resolver switch at `router`, gives `hijacker` to the flow router and closes `lifecycle` last.
package struct DNSSetup: Sendable {
    package let client: DNSClient
    package let transports: [any DNSTransport]
    /// The DNS router: rules over the transports; the box's `DNSResolver`.
    package let router: DNSRouter
    /// The router as the box's resolver (dialers' `domain_resolver`, the `resolve` action).
    package var resolver: DNSRouter { router }
    package let hijacker: DNSHijackHandler
    /// fakeip and reverse mapping for the flow router.
    package let domainMapper: DNSRouterDomainMapper
    package let lifecycle: DNSTransportLifecycle

    /// Builds everything; throws `AdapterError` with sing-box's wording for what cannot be built
    /// (`default DNS server not found: x`, `parse dns rule[0]: missing server field`, …).
    /// `ruleSets` are the route's compiled rule-sets, by tag, for `rule_set` items.
    package init(options: Config.DNSOptions, context: AdapterContext, ruleSets: [String: RuleSet] = [:]) throws {
        let logger = context.logger("dns")
        var clientOptions = DNSClientOptions(disableCache: options.disableCache, disableExpire: options.disableExpire,
                                             independentCache: options.independentCache,
                                             cacheCapacity: Int(options.cacheCapacity ?? 1024))
        if let subnet = options.clientSubnet {
            clientOptions.clientSubnet = Adapter.IPPrefix(subnet.prefix.description)
        }
        client = DNSClient(options: clientOptions, logger: logger)
        var built: [any DNSTransport] = []
        var fakeIPCount = 0
        for server in options.servers {
            let transport = try Self.makeTransport(server, context: context)
            if transport is FakeIPTransport {
                fakeIPCount += 1
                guard fakeIPCount == 1 else { throw AdapterError(.other, "multiple fakeip server are not supported") }
            }
            built.append(transport)
        }
        // The default server: `final`, else the first that is not fakeip, else a local one.
        let defaultTransport: any DNSTransport
        if let final = options.final, !final.isEmpty {
            guard let found = built.first(where: { $0.tag == final }) else {
                throw AdapterError(.notFound, "default DNS server not found: \(final)")
            }
            guard !(found is FakeIPTransport) else { throw AdapterError(.other, "default server cannot be fakeip") }
            defaultTransport = found
        } else if let first = built.first(where: { !($0 is FakeIPTransport) }) {
            defaultTransport = first
        } else {
            let local = LocalTransport(tag: "local", dialer: try context.dialerFactory.makeDialer(DialerOptions()),
                                       eventLoop: context.group.next())
            built.append(local)
            defaultTransport = local
        }
        transports = built
        let strategy = options.strategy.flatMap { Adapter.DomainStrategy(rawValue: $0.rawValue) } ?? .asIs
        var rules: [DNSRule] = []
        for (index, ruleOptions) in options.rules.enumerated() {
            do {
                let condition = try DNSRuleCondition(options: ruleOptions, ruleSets: ruleSets)
                // An unknown server is not an error here: Go logs "transport not found" when the rule matches.
                let action = try DNSRouteAction(options: ruleOptions.action, requireServer: true)
                rules.append(DNSRule(condition: condition, action: action))
            } catch {
                throw AdapterError(.other, "parse dns rule[\(index)]: \(error)")
            }
        }
        let router = DNSRouter(client: client, transports: built, defaultTransport: defaultTransport, rules: rules,
                               defaultStrategy: strategy, reverseMapping: options.reverseMapping, logger: logger)
        self.router = router
        hijacker = DNSHijackHandler(logger: logger, cachedAnswer: { router.cachedAnswer(to: $0) },
                                    cachedWireAnswer: { router.cachedWireAnswer(to: $0) }) { message, metadata in
            try await router.exchange(message, metadata: metadata)
        }
        let fakeIPStore = built.lazy.compactMap { ($0 as? FakeIPTransport)?.store }.first
        domainMapper = DNSRouterDomainMapper(router: router, fakeIPStore: fakeIPStore)
        lifecycle = DNSTransportLifecycle(transports: built)
    }

    /// Where a udp/tcp/tls/https server is: its address, or its name, which the dialer resolves
    /// through the server's `domain_resolver` (that server alone, no DNS rules) or leaves to the
    /// `detour` outbound. A name with neither is Go's `missing domain resolver for domain server address`
    /// (`route.default_domain_resolver` does not apply to DNS servers).
    static func serverDestination(_ host: String, port: UInt16, dial: DialerOptions) throws -> Destination {
        if let address = Adapter.IPAddress(host) { return Destination(ip: address, port: port) }
        let viaDetour = !(dial.detour ?? "").isEmpty
        let hasResolver = !(dial.domainResolver?.server ?? "").isEmpty
        // The config check refuses this first, naming the JSON path.
        guard viaDetour || hasResolver else { throw AdapterError(.other, "missing domain resolver for domain server address") }
        return Destination(domain: host, port: port)
    }

    /// One server from its options. resolved and tailscale are not implemented in this module.
    package static func makeTransport(_ server: DNSServerOptions, context: AdapterContext) throws -> any DNSTransport {
        let loop = context.group.next()
        switch server.options {
        case .udp(let remote), .tcp(let remote):
            let destination = try serverDestination(remote.server, port: remote.serverPort ?? 53, dial: remote.dial)
            let dialer = try context.dialerFactory.makeDialer(remote.dial)
            if case .udp = server.options {
                return UDPTransport(tag: server.tag, server: destination, dialer: dialer, eventLoop: loop)
            }
            return TCPTransport(tag: server.tag, server: destination, dialer: dialer, eventLoop: loop)
        case .tls(let remote):
            let destination = try serverDestination(remote.remote.server, port: remote.remote.serverPort ?? 853, dial: remote.remote.dial)
            let tls: DNSTLSContext
            do { tls = try DNSTLSContext(options: remote.tls, defaultServerName: remote.remote.server) } catch {
                throw AdapterError(.other, "dns server[\(server.tag)]: \(error)")
            }
            return TLSTransport(tag: server.tag, server: destination, tls: tls,
                                dialer: try context.dialerFactory.makeDialer(remote.remote.dial), eventLoop: loop)
        case .https(let https):
            let destination = try serverDestination(https.remote.server, port: https.remote.serverPort ?? 443, dial: https.remote.dial)
            // sing-box offers h2 then http/1.1 unless the config names protocols (dns/transport/https.go).
            var tlsOptions = https.tls ?? OutboundTLSOptions()
            if tlsOptions.alpn.isEmpty { tlsOptions.alpn = ["h2", "http/1.1"] }
            let tls: DNSTLSContext
            do { tls = try DNSTLSContext(options: tlsOptions, defaultServerName: https.remote.server) } catch {
                throw AdapterError(.other, "dns server[\(server.tag)]: \(error)")
            }
            return HTTPSTransport(tag: server.tag, server: destination, tls: tls,
                                  path: https.path, headers: https.headers,
                                  dialer: try context.dialerFactory.makeDialer(https.remote.dial), eventLoop: loop)
        case .dhcp(let dhcp):
            return DHCPTransport(tag: server.tag, interface: dhcp.interface, dialer: try context.dialerFactory.makeDialer(dhcp.dial),
                                 eventLoop: loop, logger: context.logger("dns/dhcp[\(server.tag)]"))
        case .local(let dial):
            return LocalTransport(tag: server.tag, dialer: try context.dialerFactory.makeDialer(dial), eventLoop: loop)
        case .hosts(let hosts):
            let predefined = (hosts.predefined ?? []).map { entry in
                (entry.name, entry.addresses.compactMap { Adapter.IPAddress($0.text) })
            }
            do {
                return try HostsTransport(tag: server.tag, paths: hosts.path, predefined: predefined)
            } catch {
                throw AdapterError(.other, "dns server[\(server.tag)]: predefined: \(error)")
            }
        case .fakeip(let fakeIP):
            let store = FakeIPStore(inet4Range: fakeIP.inet4Range.flatMap { Adapter.IPPrefix($0.description) },
                                    inet6Range: fakeIP.inet6Range.flatMap { Adapter.IPPrefix($0.description) })
            return FakeIPTransport(tag: server.tag, store: store, storage: context.fakeIPStorage)
        case .quic, .h3:
            // Go without with_quic says "QUIC is not included in this build, rebuild with -tags with_quic".
            throw AdapterError(.notImplemented, "dns server[\(server.tag)]: \(server.type): QUIC is not included in this build (needs the QUIC module)")
        case .resolved(let resolved):
            return try ResolvedTransport(tag: server.tag, options: resolved, context: context)
        default:
            throw AdapterError.notImplemented(server.type)
        }
    }
}

/// Closes every transport when the box closes (sockets, pending queries).
package final class DNSTransportLifecycle: Lifecycle {
    private let transports: [any DNSTransport]

    package init(transports: [any DNSTransport]) { self.transports = transports }

    package func close() async throws {
        for transport in transports { await transport.close() }
    }
}
