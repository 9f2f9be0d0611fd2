// The Linux side of the `tun` inbound: Appliance's TUN device, rtnetlink and nftables behind the Tun
// module's `TunPlatform` seam (protocols never import Appliance; the box joins them).
import Adapter
import Config
import Net
import Netlink
import NetstackNIO
import Nftables
import Tun
import TunDevice

/// `TunPlatform` over Appliance, in the namespace the process runs in.
struct BoxTunPlatform: TunPlatform {
    func openTun(name: String, mtu: UInt32, addresses: [NetworkPrefix]) throws -> TunHandle {
        let device = try TunDevice(TunOptions(name: name))
        do {
            let socket = try NetlinkSocket()
            try socket.configureInterface(named: device.name, mtu: mtu, addresses: addresses)
        } catch {
            device.close()
            throw AdapterError(.other, "configure tun \(device.name): \(error)")
        }
        // User → kernel GSO works with IFF_VNET_HDR whatever TUNSETOFFLOAD took (TunDevice.swift), so
        // the stack may always hand the kernel TCP super-packets to segment.
        return TunHandle(device: TunPacketDevice(device: device), name: device.name, segmentationOffload: true)
    }

    func routeInstaller() throws -> any RouteInstaller {
        NetlinkRouteInstaller(socket: try NetlinkSocket())
    }

    func firewallInstaller() throws -> any FirewallInstaller {
        NftablesFirewallInstaller(socket: try NftablesSocket())
    }

    func startInterfaceMonitor(ignoring: Set<String>) throws -> TunMonitorHandle {
        let monitor = try NetlinkInterfaceMonitor(ignoring: ignoring)
        try monitor.start()
        return TunMonitorHandle(monitor: monitor, stop: { monitor.stop() })
    }

    func startAutoRedirect(_ options: AutoRedirectOptions, firewall: any FirewallInstaller,
                           monitor: any InterfaceMonitor) throws -> AutoRedirectHandle {
        let controller = AutoRedirectController(options: options, firewall: firewall, monitor: monitor)
        try controller.start()
        return AutoRedirectHandle(stop: { try controller.stop() },
                                  updateRouteAddressSets: { try controller.updateRouteAddressSets(include: $0, exclude: $1) })
    }
}

extension BoxTunPlatform {
    /// Registers the `tun` inbound with this platform (one line in `BoxRegistrations.all`).
    static let register: @Sendable (AdapterRegistry) -> Void = { TunModule.register(in: $0, platform: BoxTunPlatform()) }

    /// The dial defaults a tun inbound implies, as Go 1.12 applies them: with `auto_redirect` every
    /// outbound socket without its own `routing_mark` carries `auto_redirect_output_mark`, so the
    /// nftables rules and policy routes let our own traffic out instead of looping it back.
    static func defaultMark(_ options: Options) -> UInt32? {
        for inbound in options.inbounds {
            if case .tun(let tun) = inbound.options, tun.autoRoute, tun.autoRedirect {
                return tun.autoRedirectOutputMark.flatMap { $0.value == 0 ? nil : $0.value } ?? 0x2024
            }
        }
        return nil
    }

    /// `route.auto_detect_interface` without `default_interface`: outbound sockets bind to the interface
    /// of the default route (SO_BINDTODEVICE), so auto_route's `lookup` rules cannot send them back into
    /// the TUN. The watcher reads it from the kernel now and, once started, follows the default route,
    /// so each new dial binds to the current uplink (as Go's dialer asks its interface monitor).
    static func defaultInterfaceWatcher(_ options: Options, logger: ContextLogger) -> DefaultInterfaceWatcher? {
        guard let route = options.route, route.autoDetectInterface, route.defaultInterface == nil else { return nil }
        var ignored: Set<String> = []
        for inbound in options.inbounds {
            if case .tun(let tun) = inbound.options, let name = tun.interfaceName { ignored.insert(name) }
        }
        let initial = (try? NetlinkInterfaceMonitor(ignoring: ignored))?.defaultInterface?.name
        return DefaultInterfaceWatcher(tracker: DefaultInterfaceTracker(initial: initial), ignoring: ignored, logger: logger)
    }
}

/// Keeps a `DefaultInterfaceTracker` on the interface of the default route with its own netlink monitor
/// (the tun inbound has one only under auto_route). `start` and `stop` run on the box's control task.
final class DefaultInterfaceWatcher: @unchecked Sendable {
    /// What the dialers read.
    let tracker: DefaultInterfaceTracker
    private let ignored: Set<String>
    private let logger: ContextLogger
    private var monitor: NetlinkInterfaceMonitor?
    private var token: InterfaceListenerToken?

    init(tracker: DefaultInterfaceTracker, ignoring ignored: Set<String>, logger: ContextLogger) {
        self.tracker = tracker
        self.ignored = ignored
        self.logger = logger
    }

    /// Starts following the default route. Throws the monitor's netlink error.
    func start() throws {
        guard monitor == nil else { return }
        let monitor = try NetlinkInterfaceMonitor(ignoring: ignored)
        let tracker = tracker, logger = logger
        // The listener first, then the snapshot: a change in between is not lost.
        token = monitor.addListener { event in
            guard case .defaultInterfaceChanged(let interface) = event, tracker.update(interface?.name) else { return }
            logger.debug("auto_detect_interface: new connections bind to \(interface?.name ?? "no interface")")
        }
        tracker.update(monitor.defaultInterface?.name)
        try monitor.start()
        self.monitor = monitor
    }

    /// Stops the monitor. Idempotent.
    func stop() {
        guard let monitor else { return }
        if let token { monitor.removeListener(token) }
        monitor.stop()
        self.monitor = nil
        token = nil
    }
}
