// `RouteInstaller` over rtnetlink: addresses on the TUN, routes in our table, the policy rules of
// `AutoRoutePlan`; cleanup of ours on exit and of an earlier run's leftovers before installing.
package import Adapter
import Glibc

/// Installs `auto_route` as sing-box 1.12 does, in the namespace of its socket.
package final class NetlinkRouteInstaller: RouteInstaller {
    private let socket: NetlinkSocket

    /// An installer that speaks through `socket` (and so acts in that socket's namespace).
    package init(socket: NetlinkSocket) {
        self.socket = socket
    }

    /// 1. remove leftovers (rules in our priority range, routes in our table) 2. addresses on the TUN
    /// 3. link up 4. routes in the table 5. rules in order. On failure what was added is removed again.
    package func install(_ options: AutoRouteOptions) throws {
        guard let link = try socket.link(named: options.interfaceName) else {
            throw NetlinkError(operation: "find link \(options.interfaceName)", errno: ENODEV)
        }
        try removeLeftovers(options)
        do {
            for address in options.inet4Addresses + options.inet6Addresses {
                try socket.addAddress(address, interfaceIndex: link.index)
            }
            if !link.isUp { try socket.setUp(true, interfaceIndex: link.index) }
            let plan = AutoRoutePlan(options)
            for destination in plan.routes {
                try socket.addRoute(RouteInfo(destination: destination, table: options.tableIndex,
                                              outputInterface: link.index), replace: true)
            }
            for rule in plan.rules { try socket.addRule(rule) }
        } catch {
            try? uninstall(options)
            throw error
        }
    }

    /// Removes our rules and routes, then the TUN's addresses (the link itself goes with its fd).
    package func uninstall(_ options: AutoRouteOptions) throws {
        try removeLeftovers(options)
        if let link = try socket.link(named: options.interfaceName) {
            for address in options.inet4Addresses + options.inet6Addresses {
                do { try socket.deleteAddress(address, interfaceIndex: link.index) }
                catch let error as NetlinkError where error.errno == EADDRNOTAVAIL || error.errno == ENODEV {}
            }
        }
    }

    /// Deletes every rule whose priority is in [ruleIndex, ruleIndex + 10] (both families), as sing-box's
    /// `unsetRules` does, and every route in our table. Used at start (a crashed run's leftovers) and exit.
    package func removeLeftovers(_ options: AutoRouteOptions) throws {
        let range = AutoRoutePlan.priorityRange(options)
        for rule in try socket.rules() where range.contains(rule.priority) {
            do { try socket.deleteRule(family: rule.family, priority: rule.priority) }
            catch let error as NetlinkError where error.errno == ENOENT {}
        }
        for route in try socket.routes(table: options.tableIndex) {
            do { try socket.deleteRoute(route) }
            catch let error as NetlinkError where error.errno == ESRCH || error.errno == ENOENT {}
        }
    }
}
