// TunInbound: the `tun` inbound (sing-box 1.12 `inbound/tun`).
//
// Start:
// 1. open the TUN through the platform (virtio-net header, offloads, MTU)
// 2. a `Stack` in transparent mode on one loop, driven by a `NetstackDriver` over the TUN
// 3. the interface monitor (default interface, local addresses for auto_redirect)
// 4. auto_route: routes and policy rules (an earlier run's leftovers removed first)
// 5. auto_redirect: the redirect listener, then the nftables table pointing at it
// Per flow (on the stack's loop): the stack holds a new TCP SYN or UDP datagram as `.incoming`;
// it is accepted as a channel and handed to the router with its original destination.
// Close: the reverse (nftables, rules and routes first, so no traffic is steered into a dead TUN).
package import Adapter
import Config
package import NIOCore
import Net
import Netstack
package import NetstackNIO
import NetstackWire
import Synchronization

/// The `tun` inbound. Built from validated options; `start(.start)` does the work, `close()` undoes
/// all of it (idempotent). Lifecycle methods run on the box's control task; flows on the stack's loop.
package final class TunInbound: Inbound, @unchecked Sendable {
    /// `"tun"`.
    package let type = "tun"
    /// The config tag.
    package let tag: String
    /// The parsed options (see `TunSettings`); route_address_set contents are re-read at start.
    package private(set) var settings: TunSettings
    let platform: any TunPlatform
    let group: any EventLoopGroup
    let router: any FlowHandler
    let logger: ContextLogger
    /// Go's network manager logs default-interface changes as `network: …`.
    let networkLogger: ContextLogger
    /// The route rule-sets' destination CIDRs by tag, and their update subscription (remote sets are
    /// downloaded after this inbound is built and before it starts, and change while it runs).
    let ruleSetDestinations: @Sendable (String) -> [IPPrefix]?
    let ruleSetUpdates: @Sendable (String, @escaping @Sendable ([IPPrefix]) -> Void) -> Void

    // Set in start, read in close (the control task); `driver` is used on its loop.
    private var handle: TunHandle?
    private var driver: NetstackDriver?
    private var monitor: TunMonitorHandle?
    private var monitorToken: InterfaceListenerToken?
    private var routeInstaller: (any RouteInstaller)?
    private var autoRouteOptions: AutoRouteOptions?
    private var stopAutoRedirect: (@Sendable () throws -> Void)?
    private var redirectListener: RedirectListener?

    /// An inbound for `settings`; nothing is opened until `start(.start)`.
    package init(tag: String, settings: TunSettings, platform: any TunPlatform, group: any EventLoopGroup,
                 router: any FlowHandler, logger: ContextLogger,
                 ruleSetDestinations: @escaping @Sendable (String) -> [IPPrefix]? = { _ in nil },
                 ruleSetUpdates: @escaping @Sendable (String, @escaping @Sendable ([IPPrefix]) -> Void) -> Void = { _, _ in }) {
        self.tag = tag
        self.ruleSetDestinations = ruleSetDestinations
        self.ruleSetUpdates = ruleSetUpdates
        self.settings = settings
        self.platform = platform
        self.group = group
        self.router = router
        self.logger = logger.named("inbound/tun[\(tag)]")
        self.networkLogger = logger.named("network")
    }

    /// The running driver (tests read its stack's statistics on its loop).
    package var netstackDriver: NetstackDriver? { driver }

    /// At `.start`: opens the TUN, starts the stack, then auto_route and auto_redirect (file comment).
    /// Throws Go's start errors (`unknown stack: lwip`), `TunError`/`NetlinkError`/nftables errors
    /// from the platform; the box then calls `close()`, which removes whatever was installed.
    package func start(_ stage: StartStage) async throws {
        guard stage == .start else { return }
        if let error = settings.startError { throw error }
        // Remote rule-sets were downloaded since the build: take their CIDRs now (Go reads them at start).
        let lookup = ruleSetDestinations
        if (settings.routeAddressSet + settings.routeExcludeAddressSet).allSatisfy({ lookup($0.tag) != nil }) {
            try settings.resolveRuleSets(lookup)
        }
        let opened = try platform.openTun(name: settings.interfaceName, mtu: settings.mtu,
                                          addresses: settings.inet4Addresses + settings.inet6Addresses)
        handle = opened
        let loop = group.next()
        var configuration = StackConfiguration()
        configuration.transparent = true
        configuration.mtu = Int(settings.mtu)
        configuration.ipv4Addresses = settings.inet4Addresses.compactMap { TunSettings.ipv4($0) }
        configuration.ipv6Addresses = settings.inet6Addresses.compactMap { TunSettings.ipv6($0) }
        configuration.udpIdleTimeout = .nanoseconds(settings.udpTimeout.nanoseconds)
        configuration.tcpSegmentationOffload = opened.segmentationOffload
        configuration.loopbackAddresses = settings.loopbackAddresses.compactMap { NetstackWire.IPAddress($0) }
        let stack = Stack(configuration: configuration, seed: UInt64.random(in: .min ... .max))
        let driver = NetstackDriver(stack: stack, device: opened.device, eventLoop: loop)
        self.driver = driver
        try await loop.submit {
            driver.onIncoming = { [weak self, unowned driver] flow in self?.incoming(flow, driver: driver) ?? driver.reject(flow, .reset) }
            driver.start()
        }.get()
        logger.info("started at \(opened.name)")
        if settings.stack != "gvisor" && !settings.stack.isEmpty {
            logger.debug("stack \(settings.stack): served by the built-in netstack")
        }

        guard settings.autoRoute else { return }
        let monitor = try platform.startInterfaceMonitor(ignoring: [opened.name])
        self.monitor = monitor
        if let current = monitor.monitor.defaultInterface {
            networkLogger.info("updated default interface \(current.name), index \(current.index)")
        }
        let monitorLogger = networkLogger
        monitorToken = monitor.monitor.addListener { event in
            switch event {
            case .defaultInterfaceChanged(let interface?):
                monitorLogger.info("updated default interface \(interface.name), index \(interface.index)")
            case .defaultInterfaceChanged(nil):
                monitorLogger.info("default interface lost")
            case .linkChanged(let interface):
                monitorLogger.debug("link \(interface.name) \(interface.isUp && interface.isRunning ? "up" : "down")")
            case .linkRemoved(_, let name):
                monitorLogger.debug("link \(name) removed")
            case .addressesChanged(let interface):
                monitorLogger.debug("addresses of \(interface.name): \(interface.addresses.map(\.description).joined(separator: " "))")
            }
        }

        var routeOptions = settings.autoRouteOptions(interfaceName: opened.name)
        let installer = try platform.routeInstaller()
        routeInstaller = installer
        autoRouteOptions = routeOptions
        try installer.install(routeOptions)

        guard settings.autoRedirect else {
            // Only auto_redirect's nftables table consumes the rule-set addresses (Go 1.12 on Linux).
            if !settings.routeAddressSet.isEmpty || !settings.routeExcludeAddressSet.isEmpty {
                logger.warn("route_address_set and route_exclude_address_set require auto_redirect: ignored")
            }
            return
        }
        for (key, sets) in [("route_address_set", settings.routeAddressSet), ("route_exclude_address_set", settings.routeExcludeAddressSet)] {
            for set in sets where set.prefixes.isEmpty {
                logger.warn("\(key): no destination IP CIDR rules found in rule-set: \(set.tag)")
            }
        }
        let listener = try await RedirectListener.bind(group: group) { [weak self] child in self?.redirected(child) }
        redirectListener = listener
        routeOptions.autoRedirectMarkMode = true
        let redirectOptions = settings.autoRedirectOptions(interfaceName: opened.name, redirectPort: listener.port)
        let firewall = try platform.firewallInstaller()
        let redirect = try platform.startAutoRedirect(redirectOptions, firewall: firewall, monitor: monitor.monitor)
        stopAutoRedirect = redirect.stop
        let tags = Set(settings.routeAddressSet.map(\.tag) + settings.routeExcludeAddressSet.map(\.tag))
        if !tags.isEmpty {
            let refresher = RouteAddressSetRefresher(include: settings.routeAddressSet, exclude: settings.routeExcludeAddressSet,
                                                     install: redirect.updateRouteAddressSets, logger: logger)
            for tag in tags { ruleSetUpdates(tag) { refresher.update(tag, $0) } }
        }
        logger.info("auto-redirect: redirect server at port \(listener.port), table \(redirectOptions.tableName)")
    }

    /// Removes the nftables table, the rules and routes, stops the monitor and the redirect listener,
    /// then resets every flow and closes the TUN. Idempotent; reports cleanup failures together.
    package func close() async throws {
        var failures: [String] = []
        if let stop = stopAutoRedirect {
            do { try stop() } catch { failures.append("auto-redirect: \(error)") }
            stopAutoRedirect = nil
        }
        if let installer = routeInstaller, let options = autoRouteOptions {
            do { try installer.uninstall(options) } catch { failures.append("auto-route: \(error)") }
            routeInstaller = nil
        }
        if let monitor {
            if let monitorToken { monitor.monitor.removeListener(monitorToken) }
            monitor.stop()
            self.monitor = nil
        }
        if let listener = redirectListener {
            await listener.close()
            redirectListener = nil
        }
        if let driver {
            try? await driver.eventLoop.submit { driver.onIncoming = nil; driver.stop() }.get()
            self.driver = nil
        }
        handle = nil
        if !failures.isEmpty { throw AdapterError(.other, failures.joined(separator: "; ")) }
    }

    // MARK: Flows

    /// A new flow held by the stack (on its loop): accept it as a channel and route it.
    private func incoming(_ flow: NetstackIncomingFlow, driver: NetstackDriver) {
        let key = flow.key
        let destination = Destination(ip: TunPacketConnection.adapterAddress(key.local.address), port: key.local.port)
        let source = Destination(ip: TunPacketConnection.adapterAddress(key.remote.address), port: key.remote.port)
        // Go's PreMatch: a `reject` rule that needs no payload refuses the flow before the SYN-ACK.
        let network: NetworkKind = key.proto == .tcp ? .tcp : .udp
        let metadata = flowMetadata(network, source: source, destination: destination)
        if let preMatcher = router as? any FlowPreMatcher {
            switch preMatcher.preMatch(metadata) {
            case .accept: break
            case .reject:
                logger.debug("\(key.proto == .tcp ? "connection" : "packet connection") to \(destination) rejected", flow: metadata.flowID)
                driver.reject(flow, .reset)
                return
            case .drop:
                driver.reject(flow, .drop)
                return
            }
        }
        if key.proto == .tcp {
            driver.accept(flow) { channel in
                channel.setOption(ChannelOptions.autoRead, value: false).flatMap {
                    channel.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
                }.flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandler(FlowBufferHandler())
                }
            }.whenSuccess { [self] channel in
                logger.info("inbound connection from \(source)", flow: metadata.flowID)
                logger.info("inbound connection to \(destination)", flow: metadata.flowID)
                router.handleTCP(channel, metadata: metadata, responder: TunTCPResponder())
            }
        } else {
            let handler = TunUDPHandler(connection: nil, destination: nil)
            driver.accept(flow) { channel in
                channel.setOption(ChannelOptions.autoRead, value: false).flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }.whenSuccess { [self] channel in
                let connection = TunPacketConnection(channel: channel, key: key, destination: destination, driver: driver)
                handler.connection = connection
                var metadata = metadata
                metadata.udpTimeout = .nanoseconds(settings.udpTimeout.nanoseconds)
                logger.info("inbound packet connection from \(source)", flow: metadata.flowID)
                logger.info("inbound packet connection to \(destination)", flow: metadata.flowID)
                router.handleUDP(connection, metadata: metadata)
            }
        }
    }

    /// A TCP connection nftables redirected to our listener (auto_redirect): its original destination
    /// comes from SO_ORIGINAL_DST; it is routed as a flow of this inbound, as Go's redirect server does.
    private func redirected(_ child: any Channel) {
        guard let source = child.remoteAddress.flatMap(Destination.init) else {
            child.close(promise: nil)
            return
        }
        RedirectListener.originalDestination(of: child).whenComplete { [self] result in
            switch result {
            case .success(let destination):
                var source = source
                if let ip = source.ip { source.host = .ip(ip.unmapped) }
                let metadata = flowMetadata(.tcp, source: source, destination: destination)
                logger.info("inbound redirect connection from \(source)", flow: metadata.flowID)
                logger.info("inbound connection to \(destination)", flow: metadata.flowID)
                router.handleTCP(child, metadata: metadata, responder: nil)
            case .failure(let error):
                logger.error("process redirect connection from \(source): \(error)")
                child.close(promise: nil)
            }
        }
    }

    private func flowMetadata(_ network: NetworkKind, source: Destination, destination: Destination) -> FlowMetadata {
        var metadata = FlowMetadata(inbound: tag, inboundType: type, network: network, source: source, destination: destination)
        metadata.originalDestination = destination
        settings.applyLegacyFields(to: &metadata)
        return metadata
    }
}

/// Answers the router for a tun TCP flow: the handshake already happened in the stack, so success
/// needs nothing; a reject resets the connection (RST), as a TCP stack refusing it would.
struct TunTCPResponder: HandshakeResponder {
    func succeed(_ channel: any Channel) -> EventLoopFuture<Void> {
        channel.eventLoop.makeSucceededVoidFuture()
    }

    func fail(_ channel: any Channel, error: any Error) -> EventLoopFuture<Void> {
        let promise = channel.eventLoop.makePromise(of: Void.self)
        channel.triggerUserOutboundEvent(NetstackAbort(), promise: promise)
        return promise.futureResult.recover { _ in }
    }
}
