import Adapter
import Foundation
import Netlink
import Nftables
import Testing

@Test func intervalElementsMergeAndClose() {
    let elements = AutoRedirectTable.intervalElements([
        NetworkPrefix("10.0.0.7/24")!, NetworkPrefix("10.0.1.0/24")!, NetworkPrefix("192.168.1.1/32")!, NetworkPrefix("10.0.0.0/23")!,
    ])
    // 10.0.0.0/24 + 10.0.1.0/24 (+ the /23 covering both) merge into [10.0.0.0, 10.0.2.0); the /32 stays.
    #expect(elements == [
        NftSetElement(key: [10, 0, 0, 0]), NftSetElement(key: [10, 0, 2, 0], isIntervalEnd: true),
        NftSetElement(key: [192, 168, 1, 1]), NftSetElement(key: [192, 168, 1, 2], isIntervalEnd: true),
    ])
    let top = AutoRedirectTable.intervalElements([NetworkPrefix("255.255.255.0/24")!])
    #expect(top.count == 2 && top[1].isIntervalEnd)
}

@Test func autoRedirectTableShape() {
    let options = AutoRedirectOptions(interfaceName: "tun0", enableIPv4: true, enableIPv6: true,
                                      inet4Address: NetworkPrefix("172.19.0.1/30"), inet6Address: NetworkPrefix("fdfe:dcba:9876::1/126"),
                                      redirectPort: 12345, localAddresses: [NetworkPrefix("127.0.0.1/8")!, NetworkPrefix("::1/128")!])
    let table = AutoRedirectTable.build(options)
    #expect(table.name == "sing-box" && table.family == .inet)
    #expect(table.sets.map(\.name) == ["inet4_local_address_set", "inet6_local_address_set"])
    #expect(table.chains.map(\.name) == ["output", "output_udp_icmp", "prerouting", "prerouting_udp_icmp"])
    #expect(table.chains.map { $0.hook?.priority } == [-150, -150, -99, -98])
    // output: mark bypass, 2 DNS hijacks, 2 local-address returns, redirect.
    #expect(table.chains[0].rules.count == 6)
    // output_udp_icmp: protocol filter, mark bypass, ct mark bypass, 2 local returns, mark.
    #expect(table.chains[1].rules.count == 6)
    // prerouting: tun bypass, 2 DNS hijacks, 2 local returns, redirect, mark.
    #expect(table.chains[2].rules.count == 7)
    #expect(table.chains[3].rules.count == 4)
    // Including interfaces without lo skips the output chains, as sing-box does.
    var lanOnly = options
    lanOnly.includeInterfaces = ["eth1"]
    #expect(AutoRedirectTable.build(lanOnly).chains.map(\.name) == ["prerouting", "prerouting_udp_icmp"])
}

/// route_address(_set) and route_exclude_address(_set) land in sing-tun's four named sets, one per
/// family and kind, each only when it has prefixes, with one return rule per set in every chain.
@Test func routeAddressSetsAreNamedSetsPerFamily() {
    var options = AutoRedirectOptions(interfaceName: "tun0", enableIPv4: true, enableIPv6: true, redirectPort: 1,
                                      routeAddresses: [NetworkPrefix("10.1.0.0/16")!])
    options.routeAddressSet = [NetworkPrefix("10.9.0.0/16")!, NetworkPrefix("2001:db8::/32")!]
    options.routeExcludeAddressSet = [NetworkPrefix("10.9.1.0/24")!]
    let table = AutoRedirectTable.build(options)
    #expect(table.sets.map(\.name) == ["inet4_local_address_set", "inet6_local_address_set", "inet4_route_address_set",
                                       "inet6_route_address_set", "inet4_route_exclude_address_set"])
    // 10.1.0.0/16 and 10.9.0.0/16: two ranges, four interval elements.
    #expect(table.sets[2].elements.count == 4 && table.sets[2].isInterval && table.sets[2].keyType == .ipv4Address)
    let prerouting = table.chains.first { $0.name == "prerouting" }!
    let lookups = prerouting.rules.flatMap(\.expressions).compactMap { expression -> String? in
        if case .lookup(let set, _, let invert) = expression, set.contains("route") { return "\(invert ? "!" : "")\(set)" }
        return nil
    }
    #expect(lookups == ["!inet4_route_address_set", "!inet6_route_address_set", "inet4_route_exclude_address_set"])
    #expect(AutoRedirectTable.build(AutoRedirectOptions(interfaceName: "tun0", enableIPv4: true, enableIPv6: false, redirectPort: 1))
        .sets.map(\.name) == ["inet4_local_address_set"])
}

/// tun `loopback_address` (sing-tun v0.7.3): constant sets per family, a redirect rule per family that
/// skips them, and output_route / prerouting_filter chains that mark TCP to them into the TUN.
@Test func loopbackAddressesSkipTheRedirectAndAreMarkedIntoTheTUN() throws {
    var options = AutoRedirectOptions(interfaceName: "tun0", enableIPv4: true, enableIPv6: true, redirectPort: 7890)
    options.loopbackAddresses = [NetworkPrefix("10.7.0.1/32")!]
    let table = AutoRedirectTable.build(options)
    #expect(table.sets.map(\.name) == ["inet4_local_address_set", "inet6_local_address_set", "inet4_local_redirect_address_set"])
    let set = table.sets[2]
    #expect(set.isConstant && !set.isInterval && set.elements == [NftSetElement(key: [10, 7, 0, 1])])
    #expect(table.chains.map(\.name) == ["output", "output_route", "output_udp_icmp", "prerouting", "prerouting_filter", "prerouting_udp_icmp"])
    #expect(table.chains.map { $0.hook?.priority } == [-150, -150, -150, -99, -99, -98])
    // IPv4 skips the set; IPv6 has no loopback address and is redirected whole.
    let redirects = table.chains[0].rules.filter { $0.expressions.contains(.redirect()) }
    #expect(redirects.count == 2)
    #expect(redirects[0].expressions.contains(.lookup(set: "inet4_local_redirect_address_set", invert: true)))
    #expect(redirects[1].expressions.prefix(2) == [.meta(.nfproto), .cmp(equal: true, data: [NftFamily.ipv6.rawValue])])
    // One mark rule (IPv4 only): TCP, not yet marked, to the set; output sets the ct mark too.
    let mark = NftExpression.hostOrder(options.inputMark)
    let output = try #require(table.chains[1].rules.first)
    #expect(table.chains[1].rules.count == 1 && table.chains[4].rules.count == 1)
    #expect(output.expressions.prefix(4) == [.meta(.l4proto), .cmp(equal: true, data: [6]), .meta(.mark), .cmp(equal: false, data: mark)])
    #expect(output.expressions.contains(.lookup(set: "inet4_local_redirect_address_set", invert: false)))
    #expect(output.expressions.contains(.setCTMark()) && !table.chains[4].rules[0].expressions.contains(.setCTMark()))
    #expect(table.chains[4].hook?.type == .filter && table.chains[1].hook?.type == .route)
}

@Suite(.enabled(if: isRoot, "needs root for network namespaces"))
struct NftablesKernelTests {
    static func options(port: UInt16 = 12345) -> AutoRedirectOptions {
        AutoRedirectOptions(interfaceName: "tun0", enableIPv4: true, enableIPv6: true,
                            inet4Address: NetworkPrefix("172.19.0.1/30"), inet6Address: NetworkPrefix("fdfe:dcba:9876::1/126"),
                            redirectPort: port,
                            localAddresses: [NetworkPrefix("127.0.0.1/8")!, NetworkPrefix("10.55.0.1/24")!, NetworkPrefix("::1/128")!])
    }

    func ruleset(_ namespace: TestNamespace) throws -> [[String: Any]] {
        let text = try namespace.exec("nft", "-j", "list", "ruleset")
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        return (object?["nftables"] as? [[String: Any]] ?? []).filter { $0["metainfo"] == nil }
    }

    @Test func installReplaceAtomicallyAndRemove() throws {
        let namespace = try TestNamespace("nft")
        let socket = try NetworkNamespace.run(named: namespace.name) { try NftablesSocket() }
        let installer = NftablesFirewallInstaller(socket: socket)
        let table = AutoRedirectTable.build(Self.options())
        try installer.installAutoRedirect(Self.options())

        let objects = try ruleset(namespace)
        let tables = objects.compactMap { $0["table"] as? [String: Any] }
        #expect(tables.count == 1)
        #expect(tables.first?["name"] as? String == "sing-box" && tables.first?["family"] as? String == "inet")
        let chains = objects.compactMap { $0["chain"] as? [String: Any] }
        #expect(chains.map { $0["name"] as? String ?? "" }.sorted() == ["output", "output_udp_icmp", "prerouting", "prerouting_udp_icmp"])
        let prerouting = try #require(chains.first { $0["name"] as? String == "prerouting" })
        #expect(prerouting["type"] as? String == "nat" && prerouting["hook"] as? String == "prerouting" && prerouting["prio"] as? Int == -99)
        let sets = objects.compactMap { $0["set"] as? [String: Any] }.filter { ($0["name"] as? String)?.hasPrefix("inet") == true }
        #expect(sets.map { $0["name"] as? String ?? "" }.sorted() == ["inet4_local_address_set", "inet6_local_address_set"])
        let rules = objects.compactMap { $0["rule"] as? [String: Any] }
        for chain in table.chains {
            #expect(rules.filter { $0["chain"] as? String == chain.name }.count == chain.rules.count, "\(chain.name)")
        }
        let text = try namespace.exec("nft", "list", "ruleset")
        #expect(text.contains("redirect to :12345"))
        #expect(text.contains("meta mark set 0x00002023"))
        #expect(text.contains("dnat ip to 172.19.0.2"))
        #expect(text.contains("dnat ip6 to fdfe:dcba:9876::2"))
        #expect(text.contains("10.55.0.0/24"))
        #expect(text.contains("iifname \"tun0\""))

        // A batch with an error (a lookup of a set that does not exist) changes nothing at all.
        var broken = AutoRedirectTable.build(Self.options(port: 23456))
        broken.chains[2].rules.append(NftRule([.meta(.l4proto), .lookup(set: "missing_set"), .verdict(.return)]))
        #expect(throws: NftablesError.self) { try socket.apply([.replaceTable(broken)], operation: "install broken") }
        let afterFailure = try namespace.exec("nft", "list", "ruleset")
        #expect(afterFailure == text)

        // A replacement swaps everything in one batch: the new port, no duplicates.
        try installer.installAutoRedirect(Self.options(port: 23456))
        let replaced = try namespace.exec("nft", "list", "ruleset")
        #expect(replaced.contains("redirect to :23456") && !replaced.contains("redirect to :12345"))
        #expect(try ruleset(namespace).compactMap { $0["rule"] }.count == table.chains.reduce(0) { $0 + $1.rules.count })

        // The local address sets can be updated alone.
        var updated = Self.options(port: 23456)
        updated.localAddresses = [NetworkPrefix("127.0.0.1/8")!, NetworkPrefix("10.66.0.1/16")!]
        try installer.updateLocalAddresses(updated)
        let afterUpdate = try namespace.exec("nft", "list", "set", "inet", "sing-box", "inet4_local_address_set")
        #expect(afterUpdate.contains("10.66.0.0/16") && !afterUpdate.contains("10.55.0.0/24"))

        // include/exclude UID rules for local traffic (output chains only).
        var users = Self.options(port: 23456)
        users.includeUIDs = [1000...1999]
        users.excludeUIDs = [1500...1500]
        try installer.installAutoRedirect(users)
        let withUsers = try namespace.exec("nft", "list", "chain", "inet", "sing-box", "output")
        #expect(withUsers.contains("meta skuid != { 1000-1999 }"))
        #expect(withUsers.contains("meta skuid 1500"))
        #expect(!(try namespace.exec("nft", "list", "chain", "inet", "sing-box", "prerouting")).contains("skuid"))

        try installer.removeTable(named: "sing-box")
        #expect(try ruleset(namespace).isEmpty)
        // Removing a missing table is not an error.
        try installer.removeTable(named: "sing-box")
    }

    @Test func redirectSendsTCPToTheLocalPortAndSkipsMarkedTraffic() throws {
        let namespace = try TestNamespace("redir")
        try namespace.exec("ip", "link", "add", "rv0", "type", "veth", "peer", "name", "rv1")
        try namespace.exec("ip", "addr", "add", "10.55.0.1/24", "dev", "rv0")
        try namespace.exec("ip", "link", "set", "rv0", "up")
        try namespace.exec("ip", "link", "set", "rv1", "up")
        try namespace.exec("ip", "route", "add", "default", "via", "10.55.0.2")
        let socket = try NetworkNamespace.run(named: namespace.name) { try NftablesSocket() }
        try NftablesFirewallInstaller(socket: socket).installAutoRedirect(Self.options())
        let server = try BackgroundCommand(namespace, ["socat", "TCP-LISTEN:12345,reuseaddr,fork", "SYSTEM:echo redirected"])
        defer { server.stop() }
        // The listener needs a moment; retry the client until it answers.
        let client = """
        import socket, sys
        mark = int(sys.argv[1], 0)
        s = socket.socket()
        if mark: s.setsockopt(socket.SOL_SOCKET, 36, mark)  # SO_MARK
        s.settimeout(1.5)
        try:
            s.connect(("203.0.113.1", 80)); print(s.recv(100).decode().strip())
        except OSError as e:
            print("error", e)
        """
        var answer = ""
        _ = eventually(5) {
            answer = namespace.status(["python3", "-c", client, "0"]).1.trimmingCharacters(in: .whitespacesAndNewlines)
            return answer == "redirected"
        }
        #expect(answer == "redirected")
        // Our own outbound traffic carries the output mark and is never redirected.
        let marked = namespace.status(["python3", "-c", client, "0x2024"]).1
        #expect(!marked.contains("redirected"))

        // include_uid 1000-1999 with exclude_uid 1500: only those users' connections are redirected.
        var users = Self.options()
        users.localAddresses = [NetworkPrefix("127.0.0.1/8")!, NetworkPrefix("10.55.0.1/24")!]
        users.includeUIDs = [1000...1999]
        users.excludeUIDs = [1500...1500]
        try NftablesFirewallInstaller(socket: socket).installAutoRedirect(users)
        let asUser = client.replacingOccurrences(of: "mark = int(sys.argv[1], 0)", with: "import os; os.setuid(int(sys.argv[2])); mark = int(sys.argv[1], 0)")
        #expect(namespace.status(["python3", "-c", asUser, "0", "1200"]).1.contains("redirected"))
        #expect(!namespace.status(["python3", "-c", asUser, "0", "1500"]).1.contains("redirected"))
        #expect(!namespace.status(["python3", "-c", asUser, "0", "3000"]).1.contains("redirected"))
        #expect(!namespace.status(["python3", "-c", asUser, "0", "0"]).1.contains("redirected"))
    }

    @Test func tproxyTableInstalls() throws {
        let namespace = try TestNamespace("tpx")
        let socket = try NetworkNamespace.run(named: namespace.name) { try NftablesSocket() }
        let installer = NftablesFirewallInstaller(socket: socket)
        try installer.installTProxy(TProxyOptions(port: 7893, bypassAddresses: [NetworkPrefix("192.168.0.0/16")!]))
        let text = try namespace.exec("nft", "list", "ruleset")
        #expect(text.contains("table inet sing-box-tproxy"))
        #expect(text.contains("tproxy to :7893"))
        #expect(text.contains("meta mark set 0x00002025"))
        #expect(text.contains("192.168.0.0/16"))
        try installer.removeTable(named: "sing-box-tproxy")
        #expect(try ruleset(namespace).isEmpty)
    }
}

@Suite(.enabled(if: isRoot, "needs root for network namespaces"))
struct AutoRedirectControllerTests {
    /// A namespace with veth `<link>0` up at 10.88.0.1/24, and inside it a started interface monitor
    /// (ignoring tun0) and an nftables socket; the caller stops the monitor.
    static func monitoredNamespace(_ name: String, link: String) throws -> (TestNamespace, NetlinkInterfaceMonitor, NftablesSocket) {
        let namespace = try TestNamespace(name)
        try namespace.exec("ip", "link", "add", "\(link)0", "type", "veth", "peer", "name", "\(link)1")
        try namespace.exec("ip", "link", "set", "\(link)0", "up")
        try namespace.exec("ip", "addr", "add", "10.88.0.1/24", "dev", "\(link)0")
        let (monitor, nft) = try NetworkNamespace.run(named: namespace.name) {
            (try NetlinkInterfaceMonitor(ignoring: ["tun0"]), try NftablesSocket())
        }
        do { try monitor.start() } catch { monitor.stop(); throw error }
        return (namespace, monitor, nft)
    }

    @Test func localAddressSetsFollowTheMonitor() throws {
        let (namespace, monitor, nft) = try Self.monitoredNamespace("arc", link: "ac")
        defer { monitor.stop() }
        let controller = AutoRedirectController(
            options: AutoRedirectOptions(interfaceName: "tun0", enableIPv4: true, enableIPv6: false, redirectPort: 12345),
            firewall: NftablesFirewallInstaller(socket: nft), monitor: monitor)
        try controller.start()
        func set() throws -> String { try namespace.exec("nft", "list", "set", "inet", "sing-box", "inet4_local_address_set") }
        #expect(try set().contains("10.88.0.0/24"))
        #expect(try set().contains("127.0.0.0/8"))

        try namespace.exec("ip", "addr", "add", "172.31.5.1/16", "dev", "ac0")
        #expect(try eventually { try set().contains("172.31.0.0/16") })
        try namespace.exec("ip", "addr", "del", "10.88.0.1/24", "dev", "ac0")
        #expect(try eventually { !(try set().contains("10.88.0.0/24")) })
        #expect(controller.lastError == nil)

        try controller.stop()
        #expect(!(try namespace.exec("nft", "list", "ruleset")).contains("sing-box"))
    }

    /// A rule-set update replaces the route address sets (and keeps the local ones); after stop it is a no-op.
    @Test func routeAddressSetUpdateReplacesTheTable() throws {
        let (namespace, monitor, nft) = try Self.monitoredNamespace("arr", link: "ar")
        defer { monitor.stop() }
        var options = AutoRedirectOptions(interfaceName: "tun0", enableIPv4: true, enableIPv6: false, redirectPort: 12345)
        options.routeAddressSet = [NetworkPrefix("10.9.0.0/16")!]
        let controller = AutoRedirectController(options: options, firewall: NftablesFirewallInstaller(socket: nft), monitor: monitor)
        try controller.start()
        func set(_ name: String) throws -> String { try namespace.exec("nft", "list", "set", "inet", "sing-box", name) }
        #expect(try set("inet4_route_address_set").contains("10.9.0.0/16"))

        try controller.updateRouteAddressSets(include: [NetworkPrefix("10.10.0.0/16")!], exclude: [NetworkPrefix("10.11.0.0/16")!])
        let include = try set("inet4_route_address_set")
        #expect(include.contains("10.10.0.0/16") && !include.contains("10.9.0.0/16"), "\(include)")
        #expect(try set("inet4_route_exclude_address_set").contains("10.11.0.0/16"))
        #expect(try set("inet4_local_address_set").contains("10.88.0.0/24"))

        try controller.stop()
        try controller.updateRouteAddressSets(include: [NetworkPrefix("10.12.0.0/16")!], exclude: [])
        #expect(!(try namespace.exec("nft", "list", "ruleset")).contains("sing-box"))
    }
}
