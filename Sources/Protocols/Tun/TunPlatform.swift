// The seam between the tun inbound and Linux: the box implements it with Appliance's TunDevice,
// Netlink and Nftables (STYLE.md §1: protocols and Appliance never import each other); tests may fake it.
package import Adapter
package import NetstackNIO

/// A TUN queue opened for the inbound.
package struct TunHandle: Sendable {
    /// The packets' source and sink; the driver starts and stops it.
    package var device: any PacketDevice & Sendable
    /// The interface name the kernel gave (`interface_name`, or `tun%d` chosen by the kernel).
    package var name: String
    /// The TUN took TSO offloads: the stack may emit GSO super-packets and the kernel segments them.
    package var segmentationOffload: Bool

    /// A handle over an opened device.
    package init(device: any PacketDevice & Sendable, name: String, segmentationOffload: Bool) {
        self.device = device
        self.name = name
        self.segmentationOffload = segmentationOffload
    }
}

/// A running interface monitor and how to stop it.
package struct TunMonitorHandle: Sendable {
    /// The monitor (snapshot and listeners).
    package var monitor: any InterfaceMonitor
    /// Stops its thread. Idempotent.
    package var stop: @Sendable () -> Void

    /// A handle over a started monitor.
    package init(monitor: any InterfaceMonitor, stop: @escaping @Sendable () -> Void) {
        self.monitor = monitor
        self.stop = stop
    }
}

/// What the tun inbound needs from the host. Every method blocks (ioctl, netlink round trips): call it
/// from the control plane, never from an event loop. Errors name what failed (`open tun sb0: …`).
package protocol TunPlatform: Sendable {
    /// Opens (creating if needed) TUN `name` with the virtio-net header and every offload the kernel
    /// takes, sets its MTU and `addresses` and brings it up. An empty name lets the kernel choose.
    func openTun(name: String, mtu: UInt32, addresses: [NetworkPrefix]) throws -> TunHandle
    /// The `auto_route` installer (routes, policy rules, the TUN's addresses).
    func routeInstaller() throws -> any RouteInstaller
    /// The nftables installer for `auto_redirect`.
    func firewallInstaller() throws -> any FirewallInstaller
    /// Starts an interface monitor that never picks `ignoring` (our TUN) as the default interface.
    func startInterfaceMonitor(ignoring: Set<String>) throws -> TunMonitorHandle
    /// Installs the auto_redirect table and keeps its local address sets in step with `monitor`;
    /// returns its handle (stop removes the table).
    func startAutoRedirect(_ options: AutoRedirectOptions, firewall: any FirewallInstaller,
                           monitor: any InterfaceMonitor) throws -> AutoRedirectHandle
}

/// A running auto_redirect table: `stop` removes it; `updateRouteAddressSets` replaces the table
/// (one atomic batch) with new route_address_set / route_exclude_address_set contents.
package struct AutoRedirectHandle: Sendable {
    package var stop: @Sendable () throws -> Void
    package var updateRouteAddressSets: @Sendable (_ include: [NetworkPrefix], _ exclude: [NetworkPrefix]) throws -> Void

    package init(stop: @escaping @Sendable () throws -> Void,
                 updateRouteAddressSets: @escaping @Sendable ([NetworkPrefix], [NetworkPrefix]) throws -> Void) {
        self.stop = stop
        self.updateRouteAddressSets = updateRouteAddressSets
    }
}
