// The interface monitor: a snapshot of links, addresses and default routes kept current from
// RTNLGRP_LINK, RTNLGRP_IPV4/IPV6_IFADDR and RTNLGRP_IPV4/IPV6_ROUTE notifications, and the default
// interface for `route.auto_detect_interface`.
//
// 1. subscribe (the event socket joins the groups) 2. dump links, addresses, routes into the snapshot
// 3. a thread polls the event socket and a stop eventfd 4. each datagram updates the snapshot under the
// lock 5. listeners are called on the monitor thread, outside the lock, snapshot already updated.
// Subscribing before dumping means no change is lost; a change seen twice is applied idempotently.
// ENOBUFS (we fell behind) triggers a full resync.
package import Adapter
import CLinux
import Glibc
import Synchronization

/// `InterfaceMonitor` over rtnetlink, in the namespace of the thread that started it.
package final class NetlinkInterfaceMonitor: InterfaceMonitor {
    private struct State: ~Copyable {
        var links: [Int32: LinkInfo] = [:]
        var addresses: [Int32: [NetworkPrefix]] = [:]
        var defaultRoutes: [RouteInfo] = []
        var defaultInterface: NetworkInterface?
        var listeners: [(UInt64, @Sendable (InterfaceEvent) -> Void)] = []
        var nextToken: UInt64 = 1
    }

    private let ignoredInterfaces: Set<String>
    private let state = Mutex(State())
    private let events: NetlinkSocket
    private let requests: NetlinkSocket
    private let stopEvent: CInt
    private let thread = Mutex<NativeThread?>(nil)

    /// Subscribes and takes the first snapshot; `start()` begins following changes.
    /// `ignoring`: interfaces never chosen as the default (our own TUN).
    package init(ignoring ignoredInterfaces: Set<String> = []) throws {
        self.ignoredInterfaces = ignoredInterfaces
        events = try NetlinkSocket(groups: NetlinkConstant.groupLink | NetlinkConstant.groupIPv4Address
            | NetlinkConstant.groupIPv6Address | NetlinkConstant.groupIPv4Route | NetlinkConstant.groupIPv6Route)
        requests = try NetlinkSocket()
        let eventFD = clinux_eventfd()
        guard eventFD >= 0 else { throw NetlinkError(operation: "create eventfd", errno: -eventFD) }
        stopEvent = eventFD
        try resync()
    }

    deinit {
        stop()
        close(stopEvent)
    }

    /// Starts the monitor thread. Idempotent. The thread keeps the monitor alive: call `stop()`.
    package func start() throws {
        try thread.withLock { thread in
            guard thread == nil else { return }
            thread = try NativeThread(name: "netlink-monitor") { [self] in run() }
        }
    }

    /// Stops and joins the monitor thread. Idempotent.
    package func stop() {
        let running = thread.withLock { thread -> NativeThread? in
            defer { thread = nil }
            return thread
        }
        guard let running else { return }
        var one: UInt64 = 1
        _ = write(stopEvent, &one, 8)
        running.join()
        var drained: UInt64 = 0
        _ = read(stopEvent, &drained, 8)
    }

    // MARK: InterfaceMonitor

    /// The snapshot's links with their addresses, by index.
    package var interfaces: [NetworkInterface] {
        state.withLock { state in
            state.links.values.sorted { $0.index < $1.index }.map { NetlinkInterfaceMonitor.interface($0, state.addresses) }
        }
    }

    /// The interface of the best default route in the main table, ignoring `ignoring`.
    package var defaultInterface: NetworkInterface? { state.withLock { $0.defaultInterface } }

    /// Registers `listener`; it runs on the monitor thread after each change.
    package func addListener(_ listener: @escaping @Sendable (InterfaceEvent) -> Void) -> InterfaceListenerToken {
        state.withLock { state in
            let token = state.nextToken
            state.nextToken += 1
            state.listeners.append((token, listener))
            return InterfaceListenerToken(id: token)
        }
    }

    /// Removes a listener.
    package func removeListener(_ token: InterfaceListenerToken) {
        state.withLock { $0.listeners.removeAll { $0.0 == token.id } }
    }

    // MARK: Loop

    private func run() {
        var descriptors = [pollfd(fd: events.fileDescriptor, events: Int16(POLLIN), revents: 0),
                           pollfd(fd: stopEvent, events: Int16(POLLIN), revents: 0)]
        while true {
            let ready = poll(&descriptors, 2, -1)
            if ready < 0 {
                if errno == EINTR { continue }
                return
            }
            if descriptors[1].revents != 0 { return }
            guard descriptors[0].revents != 0 else { continue }
            do {
                let messages = try events.receiveNotifications()
                apply(messages)
            } catch let error as NetlinkError where error.errno == ENOBUFS {
                // The kernel dropped notifications: the snapshot may be stale, rebuild it.
                try? resync()
            } catch {
                try? resync()
            }
        }
    }

    /// Rebuilds the snapshot from dumps and reports what differs from the old one.
    private func resync() throws {
        let links = try requests.links()
        let addresses = try requests.addresses()
        let routes = try requests.routes().filter(NetlinkInterfaceMonitor.isDefaultRoute)
        var emitted: [InterfaceEvent] = []
        let listeners = state.withLock { state -> [@Sendable (InterfaceEvent) -> Void] in
            let oldLinks = state.links
            let oldAddresses = state.addresses
            state.links = Dictionary(links.map { ($0.index, $0) }, uniquingKeysWith: { $1 })
            state.addresses = Dictionary(grouping: addresses, by: \.interfaceIndex).mapValues { $0.map(\.prefix).sorted(by: NetlinkInterfaceMonitor.addressOrder) }
            state.defaultRoutes = routes
            for (index, link) in state.links where oldLinks[index] != link {
                emitted.append(.linkChanged(NetlinkInterfaceMonitor.interface(link, state.addresses)))
            }
            for (index, link) in oldLinks where state.links[index] == nil {
                emitted.append(.linkRemoved(index: index, name: link.name))
            }
            for (index, link) in state.links where oldLinks[index] != nil && oldAddresses[index] ?? [] != state.addresses[index] ?? [] {
                emitted.append(.addressesChanged(NetlinkInterfaceMonitor.interface(link, state.addresses)))
            }
            if let change = updateDefault(&state) { emitted.append(change) }
            return state.listeners.map(\.1)
        }
        for event in emitted { for listener in listeners { listener(event) } }
    }

    /// Applies one datagram's notifications and calls the listeners.
    private func apply(_ messages: [NetlinkMessage]) {
        var emitted: [InterfaceEvent] = []
        let listeners = state.withLock { state -> [@Sendable (InterfaceEvent) -> Void] in
            for message in messages {
                switch message.type {
                case NetlinkConstant.newLink:
                    guard let link = NetlinkSocket.parseLink(message) else { continue }
                    if state.links[link.index] != link {
                        state.links[link.index] = link
                        emitted.append(.linkChanged(NetlinkInterfaceMonitor.interface(link, state.addresses)))
                    }
                case NetlinkConstant.deleteLink:
                    guard let link = NetlinkSocket.parseLink(message) else { continue }
                    if state.links.removeValue(forKey: link.index) != nil {
                        state.addresses[link.index] = nil
                        state.defaultRoutes.removeAll { $0.outputInterface == link.index }
                        emitted.append(.linkRemoved(index: link.index, name: link.name))
                    }
                case NetlinkConstant.newAddress, NetlinkConstant.deleteAddress:
                    guard let address = NetlinkSocket.parseAddress(message) else { continue }
                    var list = state.addresses[address.interfaceIndex] ?? []
                    let before = list
                    list.removeAll { $0 == address.prefix }
                    if message.type == NetlinkConstant.newAddress { list.append(address.prefix) }
                    list.sort(by: NetlinkInterfaceMonitor.addressOrder)
                    state.addresses[address.interfaceIndex] = list
                    if before != list, let link = state.links[address.interfaceIndex] {
                        emitted.append(.addressesChanged(NetlinkInterfaceMonitor.interface(link, state.addresses)))
                    }
                case NetlinkConstant.newRoute, NetlinkConstant.deleteRoute:
                    guard let route = NetlinkSocket.parseRoute(message), NetlinkInterfaceMonitor.isDefaultRoute(route) else { continue }
                    // `ip route replace` sends one RTM_NEWROUTE with NLM_F_REPLACE and no RTM_DELROUTE for
                    // the route it replaced (same family and metric, maybe another interface): drop that too.
                    let replaced = message.type == NetlinkConstant.newRoute && message.flags & NetlinkConstant.replaceFlag != 0
                    state.defaultRoutes.removeAll {
                        $0.family == route.family && $0.metric == route.metric
                            && (replaced || $0.outputInterface == route.outputInterface)
                    }
                    if message.type == NetlinkConstant.newRoute { state.defaultRoutes.append(route) }
                default:
                    continue
                }
            }
            if let change = updateDefault(&state) { emitted.append(change) }
            return state.listeners.map(\.1)
        }
        for event in emitted { for listener in listeners { listener(event) } }
    }

    /// Recomputes the default interface; returns the event if it changed.
    private func updateDefault(_ state: inout State) -> InterfaceEvent? {
        let chosen = NetlinkInterfaceMonitor.chooseDefault(routes: state.defaultRoutes, links: state.links,
                                                          ignoring: ignoredInterfaces)
        let value = chosen.map { NetlinkInterfaceMonitor.interface($0, state.addresses) }
        guard value != state.defaultInterface else { return nil }
        state.defaultInterface = value
        return .defaultInterfaceChanged(value)
    }

    /// A unicast default route in the main table through some interface.
    static func isDefaultRoute(_ route: RouteInfo) -> Bool {
        route.destination.length == 0 && route.table == NetlinkConstant.tableMain
            && route.type == NetlinkConstant.routeTypeUnicast && route.outputInterface != nil
    }

    /// The best default route's interface: up, not ignored, IPv4 before IPv6, then lowest metric,
    /// then lowest index (the kernel's own choice among equal routes is the first inserted; we want a
    /// stable answer).
    static func chooseDefault(routes: [RouteInfo], links: [Int32: LinkInfo], ignoring: Set<String>) -> LinkInfo? {
        let candidates = routes.compactMap { route -> (RouteInfo, LinkInfo)? in
            guard let index = route.outputInterface, let link = links[index], link.isUp, !ignoring.contains(link.name) else { return nil }
            return (route, link)
        }
        return candidates.min { left, right in
            let l = (left.0.family == .inet4 ? 0 : 1, left.0.metric, left.1.index)
            let r = (right.0.family == .inet4 ? 0 : 1, right.0.metric, right.1.index)
            return l < r
        }?.1
    }

    /// IPv4 before IPv6, then by address bytes: a stable order, so equal sets compare equal.
    static func addressOrder(_ left: NetworkPrefix, _ right: NetworkPrefix) -> Bool {
        if left.isIPv4 != right.isIPv4 { return left.isIPv4 }
        if left.bytes != right.bytes { return left.bytes.lexicographicallyPrecedes(right.bytes) }
        return left.length < right.length
    }

    static func interface(_ link: LinkInfo, _ addresses: [Int32: [NetworkPrefix]]) -> NetworkInterface {
        NetworkInterface(index: link.index, name: link.name, mtu: link.mtu, isUp: link.isUp, isRunning: link.isRunning,
                         isLoopback: link.isLoopback, addresses: addresses[link.index] ?? [])
    }
}
