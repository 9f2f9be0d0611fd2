import Adapter
import Foundation
import Netlink
import Synchronization
import Testing

@Suite(.enabled(if: isRoot, "needs root for network namespaces"))
struct NetlinkKernelTests {
    @Test func linkAddressRouteRuleRoundTrip() throws {
        let namespace = try TestNamespace("nl")
        let socket = try NetworkNamespace.run(named: namespace.name) { try NetlinkSocket() }

        // This kernel has no dummy driver; veth is always there.
        try socket.createVeth(name: "dum0", peerName: "dum1")
        let link = try #require(try socket.link(named: "dum0"))
        #expect(link.kind == "veth")
        #expect(try socket.link(named: "dum1")?.kind == "veth")
        try socket.setMTU(1400, interfaceIndex: link.index)
        try socket.setUp(true, interfaceIndex: link.index)
        let shown = try namespace.ipJSON("link", "show", "dum0")
        #expect(shown.first?["mtu"] as? Int == 1400)
        #expect((shown.first?["flags"] as? [String])?.contains("UP") == true)

        try socket.addAddress(NetworkPrefix("198.51.100.1/24")!, interfaceIndex: link.index)
        try socket.addAddress(NetworkPrefix("2001:db8:5::1/64")!, interfaceIndex: link.index)
        // EEXIST is success by default, an error when asked.
        try socket.addAddress(NetworkPrefix("198.51.100.1/24")!, interfaceIndex: link.index)
        #expect(throws: NetlinkError.self) {
            try socket.addAddress(NetworkPrefix("198.51.100.1/24")!, interfaceIndex: link.index, ignoreExisting: false)
        }
        let addresses = try namespace.ipJSON("addr", "show", "dum0")
        let local = (addresses.first?["addr_info"] as? [[String: Any]] ?? []).compactMap { "\($0["local"] ?? "")/\($0["prefixlen"] ?? "")" }
        #expect(local.contains("198.51.100.1/24") && local.contains("2001:db8:5::1/64"))
        #expect(try socket.addresses().contains { $0.interfaceIndex == link.index && $0.prefix.description == "198.51.100.1/24" })

        let route = RouteInfo(destination: NetworkPrefix("203.0.113.0/24")!, table: 2022, outputInterface: link.index)
        try socket.addRoute(route)
        let route6 = RouteInfo(destination: NetworkPrefix("::/0")!, table: 2022, outputInterface: link.index)
        try socket.addRoute(route6)
        let routes = try namespace.ipJSON("route", "show", "table", "2022")
        #expect(routes.map { $0["dst"] as? String } == ["203.0.113.0/24"])
        #expect(try namespace.ipJSON("-6", "route", "show", "table", "2022").first?["dst"] as? String == "default")
        #expect(try socket.routes(table: 2022).count == 2)

        var rule = RoutingRule(family: .inet4, priority: 9100, action: .lookup(table: 2022))
        rule.mark = 0x2023
        rule.inputInterface = "dum0"
        rule.uidRange = 1000...2000
        try socket.addRule(rule)
        var rule2 = RoutingRule(family: .inet4, priority: 9101, action: .lookup(table: 254))
        rule2.invert = true
        rule2.destinationPorts = 53...53
        rule2.suppressPrefixLength = 0
        try socket.addRule(rule2)
        try socket.addRule(RoutingRule(family: .inet6, priority: 9102, action: .unreachable))
        var rule4 = RoutingRule(family: .inet4, priority: 9103, action: .goto(priority: 9110))
        rule4.source = NetworkPrefix("0.0.0.0/32")!
        try socket.addRule(rule4)
        try socket.addRule(RoutingRule(family: .inet4, priority: 9110, action: .nop))

        let rules = try namespace.ipJSON("rule", "show")
        let ours = rules.filter { ($0["priority"] as? Int ?? 0) >= 9100 && ($0["priority"] as? Int ?? 0) < 9200 }
        #expect(ours.count == 4)
        let first = try #require(ours.first { $0["priority"] as? Int == 9100 })
        #expect(first["fwmark"] as? String == "0x2023")
        #expect(first["iif"] as? String == "dum0")
        #expect(first["table"] as? String == "2022")
        #expect(first["uid_start"] as? Int == 1000 && first["uid_end"] as? Int == 2000)
        let inverted = try #require(ours.first { $0["priority"] as? Int == 9101 })
        #expect(inverted["not"] != nil)
        #expect(inverted["dport"] as? Int == 53, "\(inverted)")
        #expect(inverted["suppress_prefixlen"] as? Int == 0)
        #expect(inverted["table"] as? String == "main")
        #expect(try namespace.ipJSON("-6", "rule", "show").contains { $0["priority"] as? Int == 9102 && $0["action"] as? String == "unreachable" })
        let nop = try #require(ours.first { $0["priority"] as? Int == 9110 })
        #expect(nop.keys.contains("nop"))

        // Our own dump reads them back the same way.
        let dumped = try socket.rules(family: .inet4).filter { (9100..<9200).contains($0.priority) }
        #expect(dumped.contains(rule))
        #expect(dumped.contains(rule2))
        #expect(dumped.contains(rule4))

        try socket.deleteRule(rule)
        try socket.deleteRule(family: .inet4, priority: 9101)
        try socket.deleteRoute(route)
        try socket.deleteAddress(NetworkPrefix("198.51.100.1/24")!, interfaceIndex: link.index)
        #expect(try namespace.ipJSON("rule", "show").allSatisfy { ($0["priority"] as? Int) != 9100 && ($0["priority"] as? Int) != 9101 })
        #expect(try namespace.ipJSON("route", "show", "table", "2022").isEmpty)
        #expect(throws: NetlinkError.self) { try socket.deleteRoute(route) }

        try socket.deleteLink(interfaceIndex: link.index)
        #expect(try socket.link(named: "dum0") == nil)
        #expect(try socket.link(named: "dum1") == nil)
    }

    @Test func routeInstallerInstallsAndRemovesEverything() throws {
        let namespace = try TestNamespace("ri")
        let socket = try NetworkNamespace.run(named: namespace.name) { try NetlinkSocket() }
        try socket.createVeth(name: "tun9", peerName: "tun9p")
        let options = AutoRouteOptions(interfaceName: "tun9", inet4Addresses: [NetworkPrefix("172.19.0.1/30")!],
                                       inet6Addresses: [NetworkPrefix("fdfe:dcba:9876::1/126")!], strictRoute: true)
        let installer = NetlinkRouteInstaller(socket: socket)
        // A leftover of a crashed run in our range is removed first.
        try socket.addRule(RoutingRule(family: .inet4, priority: 9005, action: .nop))
        try installer.install(options)

        let plan = AutoRoutePlan(options)
        let rules4 = try namespace.ipJSON("rule", "show").filter { (9000...9010).contains($0["priority"] as? Int ?? 0) }
        let rules6 = try namespace.ipJSON("-6", "rule", "show").filter { (9000...9010).contains($0["priority"] as? Int ?? 0) }
        #expect(rules4.count == plan.rules.filter { $0.family == .inet4 }.count)
        #expect(rules6.count == plan.rules.filter { $0.family == .inet6 }.count)
        #expect(!rules4.contains { $0["priority"] as? Int == 9005 })
        #expect(try namespace.ipJSON("route", "show", "table", "2022").first?["dst"] as? String == "default")
        #expect(try namespace.ipJSON("-6", "route", "show", "table", "2022").first?["dst"] as? String == "default")
        // Policy works: a lookup for an outside address now resolves through the tun.
        let lookup = try namespace.ipJSON("route", "get", "8.8.8.8")
        #expect(lookup.first?["dev"] as? String == "tun9")

        // Forwarded LAN traffic ("not iif lo lookup 2022") goes to the tun as well.
        try namespace.exec("ip", "link", "add", "lanx", "type", "veth", "peer", "name", "lany")
        try namespace.exec("ip", "addr", "add", "192.168.50.1/24", "dev", "lanx")
        try namespace.exec("ip", "link", "set", "lanx", "up")
        try namespace.exec("ip", "link", "set", "lany", "up")
        try namespace.exec("sysctl", "-qw", "net.ipv4.ip_forward=1")
        let forwarded = try namespace.ipJSON("route", "get", "1.1.1.1", "from", "192.168.50.7", "iif", "lanx")
        #expect(forwarded.first?["dev"] as? String == "tun9")
        // Traffic arriving from the tun itself goes to the nop rule and then the main table, never back.
        let fromTun = namespace.status(["ip", "route", "get", "1.1.1.1", "from", "192.168.50.7", "iif", "tun9"])
        #expect(!fromTun.1.contains("dev tun9"))

        // Installing again (a restart) ends with exactly one set.
        try installer.install(options)
        #expect(try namespace.ipJSON("rule", "show").filter { (9000...9010).contains($0["priority"] as? Int ?? 0) }.count == rules4.count)

        // strict_route with IPv4 only: IPv6 is unreachable instead of leaking past the tun.
        let strict = AutoRouteOptions(interfaceName: "tun9", inet4Addresses: [NetworkPrefix("172.19.0.1/30")!], strictRoute: true)
        try installer.uninstall(options)
        try namespace.exec("ip", "-6", "addr", "add", "2001:db8:50::1/64", "dev", "lanx", "nodad")
        try namespace.exec("ip", "-6", "route", "add", "default", "via", "2001:db8:50::2", "dev", "lanx")
        #expect(namespace.status(["ip", "-6", "route", "get", "2001:db8::1"]).0 == 0)
        try installer.install(strict)
        let leak = namespace.status(["ip", "-6", "route", "get", "2001:db8::1"])
        #expect(leak.0 != 0)
        try installer.uninstall(strict)
        try installer.install(options)

        try installer.uninstall(options)
        #expect(try namespace.ipJSON("rule", "show").allSatisfy { !(9000...9010).contains($0["priority"] as? Int ?? 0) })
        #expect(try namespace.ipJSON("-6", "rule", "show").allSatisfy { !(9000...9010).contains($0["priority"] as? Int ?? 0) })
        #expect(try namespace.ipJSON("route", "show", "table", "2022").isEmpty)
        #expect(try namespace.ipJSON("addr", "show", "tun9").first.map { ($0["addr_info"] as? [Any])?.isEmpty ?? true } ?? true)
    }

    @Test func monitorSeesLinkStateAddressesAndDefaultInterface() throws {
        let namespace = try TestNamespace("mon")
        try namespace.exec("ip", "link", "add", "vm0", "type", "veth", "peer", "name", "vm1")
        try namespace.exec("ip", "link", "set", "vm0", "up")
        try namespace.exec("ip", "link", "set", "vm1", "up")
        let monitor = try NetworkNamespace.run(named: namespace.name) { try NetlinkInterfaceMonitor(ignoring: ["tun0"]) }
        defer { monitor.stop() }
        let seen = Mutex<[InterfaceEvent]>([])
        _ = monitor.addListener { event in seen.withLock { $0.append(event) } }
        try monitor.start()
        #expect(monitor.interfaces.contains { $0.name == "vm0" && $0.isUp })
        #expect(monitor.defaultInterface == nil)

        try namespace.exec("ip", "link", "set", "vm0", "down")
        #expect(eventually { monitor.interfaces.contains { $0.name == "vm0" && !$0.isUp } })
        #expect(seen.withLock { $0.contains { if case .linkChanged(let link) = $0 { link.name == "vm0" && !link.isUp } else { false } } })
        try namespace.exec("ip", "link", "set", "vm0", "up")
        #expect(eventually { monitor.interfaces.contains { $0.name == "vm0" && $0.isUp } })

        try namespace.exec("ip", "addr", "add", "192.0.2.10/24", "dev", "vm0")
        #expect(eventually { monitor.interfaces.first { $0.name == "vm0" }?.addresses.contains { $0.description == "192.0.2.10/24" } == true })
        #expect(seen.withLock { $0.contains { if case .addressesChanged(let link) = $0 { link.name == "vm0" } else { false } } })

        try namespace.exec("ip", "route", "add", "default", "via", "192.0.2.1", "dev", "vm0")
        #expect(eventually { monitor.defaultInterface?.name == "vm0" })
        try namespace.exec("ip", "addr", "add", "198.51.100.10/24", "dev", "vm1")
        try namespace.exec("ip", "route", "add", "default", "via", "198.51.100.1", "dev", "vm1", "metric", "10")
        try namespace.exec("ip", "route", "del", "default", "via", "192.0.2.1", "dev", "vm0")
        #expect(eventually { monitor.defaultInterface?.name == "vm1" })
        // `ip route replace` moves the route to another link with no RTM_DELROUTE for the old one.
        try namespace.exec("ip", "route", "replace", "default", "via", "192.0.2.1", "dev", "vm0", "metric", "10")
        #expect(eventually { monitor.defaultInterface?.name == "vm0" })
        try namespace.exec("ip", "route", "replace", "default", "via", "198.51.100.1", "dev", "vm1", "metric", "10")
        #expect(eventually { monitor.defaultInterface?.name == "vm1" })
        try namespace.exec("ip", "addr", "del", "192.0.2.10/24", "dev", "vm0")
        #expect(eventually { monitor.interfaces.first { $0.name == "vm0" }?.addresses.isEmpty == true })
        try namespace.exec("ip", "link", "del", "vm0")
        #expect(eventually { !monitor.interfaces.contains { $0.name == "vm0" || $0.name == "vm1" } })
        #expect(eventually { monitor.defaultInterface == nil })
        #expect(seen.withLock { $0.contains(.defaultInterfaceChanged(nil)) })

        // An IPv6 default route counts too.
        try namespace.exec("ip", "link", "add", "vm2", "type", "veth", "peer", "name", "vm3")
        try namespace.exec("ip", "link", "set", "vm2", "up")
        try namespace.exec("ip", "link", "set", "vm3", "up")
        try namespace.exec("ip", "-6", "addr", "add", "2001:db8:9::10/64", "dev", "vm2", "nodad")
        try namespace.exec("ip", "-6", "route", "add", "default", "via", "2001:db8:9::1", "dev", "vm2")
        #expect(eventually { monitor.defaultInterface?.name == "vm2" })
        #expect(monitor.defaultInterface?.addresses.contains { $0.description == "2001:db8:9::10/64" } == true)
    }
}
