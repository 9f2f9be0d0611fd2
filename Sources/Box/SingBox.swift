// SingBox: one running configuration.
package import Adapter
package import Config
package import NIOCore
import Block
import Direct
import Group
import Net
import NIOPosix
package import Router
package import Rules

/// A box built from `Options`. Owns every adapter it built; `close()` releases them all.
/// `start()` and `close()` are called from one control task (the CLI's), never concurrently.
package final class SingBox: @unchecked Sendable {
    package let options: Options
    package let logCore: LogCore
    package let outbounds: OutboundManager
    package let router: FlowRouter
    /// The Clash API's mode (nil without `experimental.clash_api`).
    package let clashModes: ClashModeStore?
    package private(set) var services: [any Service] = []
    package private(set) var outboundList: [any Outbound] = []
    package private(set) var endpoints: [any Endpoint] = []
    package private(set) var inbounds: [any Inbound] = []
    /// Box-level lines (`sing-box started`, reload errors).
    package let logger: ContextLogger
    private var started: [any Lifecycle] = []
    /// The DNS router's lifecycle, started with the services.
    private var dnsLifecycle: (any Lifecycle)?
    /// The Clash API server, when `external_controller` is set and the CLI provided a factory.
    private var clashAPIServer: (any Lifecycle)?
    /// Remote rule-sets: downloaded after outbounds start, before inbounds (Go's `router.Start`).
    private var ruleSetLifecycle: RuleSetLifecycle?
    /// The compiled `route.rule_set` entries by tag (remote ones updatable in place).
    package let ruleSets: [String: RuleSet]
    private var closed = false
    /// `route.auto_detect_interface`: follows the default route for the dialers (started with the box).
    private let interfaceWatcher: DefaultInterfaceWatcher?

    /// The registry with every protocol this build has. Protocol modules add themselves here.
    package static func defaultRegistry() -> AdapterRegistry {
        let registry = AdapterRegistry()
        DirectModule.register(in: registry)
        BlockModule.register(in: registry)
        GroupModule.register(in: registry) { outbound, url, group in
            try await RuleSetDownloader(outbound: outbound, group: group).head(url)
        }
        for hook in extraRegistrations { hook(registry) }
        return registry
    }

    /// Registration hooks for protocol modules wired in by the box (`SOCKS`, `Mixed`, …), set up
    /// in `BoxRegistrations.swift`.
    static var extraRegistrations: [@Sendable (AdapterRegistry) -> Void] { BoxRegistrations.all }

    /// Builds every adapter. Throws `BoxError(.create, …)` worded as Go's `box.New`.
    package init(options: Options, registry: AdapterRegistry = SingBox.defaultRegistry(),
                 group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                 logCore: LogCore? = nil, colors: Bool = false) throws(BoxError) {
        self.options = options
        let core: LogCore
        if let logCore {
            core = logCore
        } else {
            do { core = try SingBox.makeLogCore(options.log, colors: colors) } catch {
                throw BoxError(.create, "\(error)")
            }
        }
        self.logCore = core
        self.logger = ContextLogger(core: core, name: "")
        // The experimental APIs: v2ray_api is left out of this build as it is of Go's release (same
        // error); the Clash API is not served here, which is said rather than silently skipped.
        if let v2ray = options.experimental?.v2rayAPI, !(v2ray.listen ?? "").isEmpty {
            throw BoxError(.create, "create v2ray-server: v2ray api is not included in this build, rebuild with -tags with_v2ray_api")
        }
        let outbounds = OutboundManager()
        self.outbounds = outbounds
        let route = options.route ?? RouteOptions()

        // Rule-sets, then rules: Go parses them while building the router.
        var ruleSets: [String: RuleSet] = [:]
        for setOptions in route.ruleSet {
            do { ruleSets[setOptions.tag] = try RuleSet.load(setOptions) } catch {
                throw BoxError(.create, "initialize router: \(error.message)")
            }
        }
        self.ruleSets = ruleSets
        var rules: [RouteRule] = []
        for (index, ruleOptions) in route.rules.enumerated() {
            do {
                rules.append(try RouteRule(options: ruleOptions, ruleSets: ruleSets))
            } catch {
                throw BoxError(.create, "initialize router: parse rule[\(index)]: \(error.message)")
            }
        }
        let resolver = ResolverSwitch(SystemResolver())
        let routerLogger = ContextLogger(core: core, name: "")
        let defaultStrategy = route.defaultDomainResolver?.strategy.flatMap { Adapter.DomainStrategy(rawValue: $0.rawValue) } ?? .asIs
        let router = FlowRouter(rules: rules, outbounds: outbounds, logger: routerLogger, resolver: resolver,
                                defaultDomainStrategy: defaultStrategy)
        self.router = router
        let clashModes = Self.makeClashModes(options)
        self.clashModes = clashModes
        router.clashModes = clashModes
        let watcher = BoxTunPlatform.defaultInterfaceWatcher(options, logger: ContextLogger(core: core, name: "network"))
        interfaceWatcher = watcher
        let dialers = DefaultDialerFactory(resolver: resolver, outbounds: outbounds, defaultInterface: route.defaultInterface,
                                           defaultMark: route.defaultMark?.value ?? BoxTunPlatform.defaultMark(options),
                                           autoDetectedInterface: watcher?.tracker)
        var context = AdapterContext(group: group, logCore: core, router: router, outbounds: outbounds,
                                     resolver: resolver, dialerFactory: dialers)
        context.clashModes = clashModes
        // Remote sets: a cached copy is compiled now (tun reads route_address_set while being built).
        var remotes: [RemoteRuleSet] = []
        let cacheOptions = options.experimental?.cacheFile
        let storesFakeIP = cacheOptions?.storeFakeIP == true
        let cache = (route.ruleSet.contains(where: { $0.type == "remote" }) || storesFakeIP) && cacheOptions?.enabled == true
            ? CacheFile(configuredPath: cacheOptions?.path, logger: ContextLogger(core: core, name: "cache-file")) : nil
        if storesFakeIP, let cache { context.fakeIPStorage = cache.fakeIPStorage }
        for (index, setOptions) in route.ruleSet.enumerated() where setOptions.type == "remote" {
            guard let set = ruleSets[setOptions.tag] else { continue }
            remotes.append(RemoteRuleSet(index: index, set: set, options: setOptions, cache: cache, outbounds: outbounds,
                                         group: group, logger: ContextLogger(core: core, name: "router")))
        }
        // Local files are reloaded when they change (Go 1.12's fswatch).
        var watchers: [LocalRuleSetWatcher] = []
        for setOptions in route.ruleSet {
            guard case .local(let path) = setOptions.source, let set = ruleSets[setOptions.tag] else { continue }
            watchers.append(LocalRuleSetWatcher(ruleSet: set, path: path, format: setOptions.format,
                                                logger: ContextLogger(core: core, name: "router")))
        }
        if !remotes.isEmpty || !watchers.isEmpty { ruleSetLifecycle = RuleSetLifecycle(remotes: remotes, watchers: watchers) }
        let loadedRuleSets = ruleSets
        context.ruleSetDestinations = { loadedRuleSets[$0]?.destinationPrefixes }
        context.ruleSetUpdates = { tag, callback in loadedRuleSets[tag]?.onUpdate { callback($0.destinationPrefixes) } }

        for (index, item) in options.services.enumerated() {
            let tag = item.tag.isEmpty ? String(index) : item.tag
            var named = item
            named.tag = tag
            do {
                services.append(try registry.service(item.type)?(context, named)
                                ?? NotImplementedAdapter(kind: "service", type: item.type, tag: tag))
            } catch {
                throw BoxError(.create, "initialize service[\(index)]: \(error)")
            }
        }
        for (index, item) in options.endpoints.enumerated() {
            let tag = item.tag.isEmpty ? String(index) : item.tag
            var named = item
            named.tag = tag
            do {
                let endpoint = try registry.endpoint(item.type)?(context, named)
                    ?? NotImplementedAdapter(kind: "endpoint", type: item.type, tag: tag)
                endpoints.append(endpoint)
                outbounds.add(endpoint)
            } catch {
                throw BoxError(.create, "initialize endpoint[\(index)]: \(error)")
            }
        }
        for (index, item) in options.outbounds.enumerated() {
            let tag = item.tag.isEmpty ? String(index) : item.tag
            var named = item
            named.tag = tag
            do {
                let outbound = try registry.outbound(item.type)?(context, named)
                    ?? NotImplementedAdapter(kind: "outbound", type: item.type, tag: tag)
                outboundList.append(outbound)
                outbounds.add(outbound)
            } catch {
                throw BoxError(.create, "initialize outbound[\(index)]: \(error)")
            }
        }
        // Go adds a `direct` outbound when the config has none.
        if options.outbounds.isEmpty && options.endpoints.isEmpty {
            let direct = DirectOutbound(tag: "direct", dialer: try! dialers.makeDialer(DialerOptions()), logger: logger)
            outboundList.append(direct)
            outbounds.add(direct)
        }
        if let final = route.final, !final.isEmpty {
            guard outbounds.outbound(final) != nil else {
                throw BoxError(.create, "initialize router: default outbound not found: \(final)")
            }
            outbounds.setDefault(tag: final)
        }
        var dnsNeedsProcess = false
        var clashDNS: ClashAPIDNS?
        if let makeDNS = BoxRegistrations.dns {
            do {
                if let dns = try makeDNS(options, context, ruleSets) {
                    dnsNeedsProcess = dns.needsProcess
                    resolver.set(dns.resolver)
                    router.dnsHijacker = dns.hijacker
                    router.dnsDomainMapper = dns.domainMapper
                    router.dnsFlowResolver = dns.flowResolver
                    if let lifecycle = dns.lifecycle { dnsLifecycle = lifecycle }
                    clashDNS = dns.clashAPI
                    // Go's fakeip flush empties the cache file's fakeip data: only a store kept there forgets.
                    if context.fakeIPStorage == nil { clashDNS?.resetFakeIP = nil }
                }
            } catch {
                throw BoxError(.create, "initialize dns-router: \(error)")
            }
        }
        if Self.needsProcessFinder(route: route, rules: rules, ruleSets: ruleSets, dnsNeedsProcess: dnsNeedsProcess) {
            router.processFinder = Self.makeProcessFinder()
        }
        for (index, item) in options.inbounds.enumerated() {
            let tag = item.tag.isEmpty ? String(index) : item.tag
            var named = item
            named.tag = tag
            do {
                inbounds.append(try registry.inbound(item.type)?(context, named)
                                ?? NotImplementedAdapter(kind: "inbound", type: item.type, tag: tag))
            } catch {
                throw BoxError(.create, "initialize inbound[\(index)]: \(error)")
            }
        }
        let created = inbounds
        router.inboundLookup = { tag in created.first { $0.tag == tag } }
        if let clash = options.experimental?.clashAPI, let clashModes, !(clash.externalController ?? "").isEmpty {
            let clashLogger = ContextLogger(core: core, name: "clash-api")
            if let factory = Self.clashAPIServerFactory {
                // Flows are tracked (and relays count bytes) only when the API is served.
                let tracker = ConnectionTracker(outbounds: outbounds) { ($0 as? any OutboundGroup)?.nowTag }
                router.connectionTracker = tracker
                var setup = ClashAPISetup(options: clash, outbounds: outbounds, modes: clashModes, logLevel: Self.clashLogLevel(options),
                                          group: group, logger: clashLogger, connections: tracker, logCore: core) { outbound, url in
                    try await RuleSetDownloader(outbound: outbound, group: group).head(url)
                }
                setup.rules = router.rules.map { rule in
                    let type: String
                    if case .logical = rule.condition { type = "logical" } else { type = "default" }
                    return ClashAPIRule(type: type, payload: rule.description, proxy: "\(rule.action)")
                }
                setup.dns = clashDNS
                // external_ui's zip: Go's client has no size limit and no overall timeout; ours is generous.
                setup.download = { outbound, url in
                    let response = try await RuleSetDownloader(outbound: outbound, group: group, maximumBodySize: 256 << 20,
                                                               timeout: .minutes(5)).get(url, etag: nil)
                    return (response.status, "\(response.status) \(response.statusText)", response.body)
                }
                do { clashAPIServer = try factory(setup) } catch {
                    throw BoxError(.create, "create clash-server: \(error)")
                }
            } else {
                clashLogger.warn("not served by this program: experimental.clash_api.external_controller is ignored")
            }
        }
    }

    /// The log core for `log` options: level (default trace, as Go when unset), output file,
    /// timestamps, colours only for a terminal.
    package static func makeLogCore(_ options: LogOptions?, colors: Bool) throws -> LogCore {
        let options = options ?? LogOptions()
        if options.disabled { return .disabled }
        var level = LogLevel.trace
        if let name = options.level, !name.isEmpty {
            guard let parsed = LogLevel(name: name) else { throw AdapterError(.other, "parse log level: unknown log level: \(name)") }
            level = parsed
        }
        let sink: any LogSink
        var toFile = false
        switch options.output ?? "" {
        case "", "stderr": sink = FileDescriptorLogSink(fd: 2)
        case "stdout": sink = FileDescriptorLogSink(fd: 1)
        case let path:
            sink = try FileDescriptorLogSink(path: path)
            toFile = true
        }
        let style: LogCore.TimestampStyle = options.timestamp ? .full : (toFile ? .none : .relative)
        return LogCore(level: level, sink: sink, colors: colors && !toFile, timestampStyle: style)
    }

    // MARK: Lifecycle

    private func ordered() -> [(String, any Lifecycle)] {
        var out: [(String, any Lifecycle)] = []
        if let clashAPIServer { out.append(("clash-api", clashAPIServer)) }
        if let dnsLifecycle { out.append(("dns-router", dnsLifecycle)) }
        for service in services { out.append((service.logName, service)) }
        for outbound in dependencyOrder(outboundList) { out.append((outbound.logName, outbound)) }
        for endpoint in endpoints { out.append((endpoint.logName, endpoint)) }
        if let ruleSetLifecycle { out.append(("router", ruleSetLifecycle)) }
        for inbound in inbounds { out.append((inbound.logName, inbound)) }
        return out
    }

    /// Outbounds with their `dependencies` (detours) before them; unknown tags are ignored here
    /// (the dial reports them), cycles keep config order.
    private func dependencyOrder(_ list: [any Outbound]) -> [any Outbound] {
        var byTag: [String: any Outbound] = [:]
        for outbound in list { byTag[outbound.tag] = outbound }
        var visited = Set<String>(), out: [any Outbound] = []
        func visit(_ outbound: any Outbound, _ path: Set<String>) {
            guard !visited.contains(outbound.tag), !path.contains(outbound.tag) else { return }
            for dependency in outbound.dependencies {
                if let next = byTag[dependency] { visit(next, path.union([outbound.tag])) }
            }
            if visited.insert(outbound.tag).inserted { out.append(outbound) }
        }
        for outbound in list { visit(outbound, []) }
        return out
    }

    /// Starts every adapter stage by stage. On failure closes everything and throws
    /// `BoxError(.start, "start <name>: <error>")`.
    package func start() async throws(BoxError) {
        let begin = NIODeadline.now()
        do { try interfaceWatcher?.start() } catch {
            throw BoxError(.start, "start network monitor: \(error)")
        }
        let adapters = ordered()
        for stage in StartStage.allCases {
            for (name, adapter) in adapters {
                do {
                    try await adapter.start(stage)
                    if stage == .initialize { started.append(adapter) }
                    if stage == .start, adapter === ruleSetLifecycle { enableProcessFinderForRuleSets() }
                } catch let error as BoxError where adapter === ruleSetLifecycle {
                    // Go's router start errors carry no adapter name: `initialize rule-set[0]: …`.
                    await close()
                    throw error
                } catch {
                    let prefix = stage == .start ? "start" : stage.description
                    await close()
                    throw BoxError(.start, "\(prefix) \(name): \(error)")
                }
            }
        }
        let elapsed = Double((NIODeadline.now() - begin).nanoseconds) / 1e9
        logger.info("sing-box started (\(SingBox.formatSeconds(elapsed))s)")
    }

    /// Go's router start: once the rule-sets have their first copy (remote ones may have just been
    /// downloaded), any set that reads the owning process turns the lookup on, before inbounds start.
    private func enableProcessFinderForRuleSets() {
        guard router.processFinder == nil, ruleSets.values.contains(where: \.needsProcess) else { return }
        router.processFinder = Self.makeProcessFinder()
    }

    /// Closes every adapter in reverse start order. Idempotent; errors are logged.
    package func close() async {
        guard !closed else { return }
        closed = true
        let adapters = ordered().reversed()
        // Inbounds stop accepting first, then every live flow ends, then the rest closes.
        for (name, adapter) in adapters where adapter is any Inbound {
            do { try await adapter.close() } catch { logger.error("close \(name): \(error)") }
        }
        await router.flows.closeAll()
        for (name, adapter) in adapters where !(adapter is any Inbound) {
            do { try await adapter.close() } catch { logger.error("close \(name): \(error)") }
        }
        interfaceWatcher?.stop()
    }

    /// Go prints the start time with two decimals: `0.33`.
    static func formatSeconds(_ value: Double) -> String {
        let hundredths = Int((value * 100).rounded())
        let fraction = hundredths % 100
        return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }
}
