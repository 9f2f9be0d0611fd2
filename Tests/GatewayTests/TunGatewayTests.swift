// The `tun` inbound as a whole-LAN gateway (issue #4): lan ↔ gw ↔ srv namespaces (Topology.swift),
// our binary on gw with tun + auto_route (+ auto_redirect), real curl / socat / kdig / openssl peers,
// and Go sing-box 1.12.12 with the same config in the same topology as a cross-check.
import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A tun gateway config: sniff, hijack-dns, rejects by IP (before any sniff, so Go's pre-match
/// applies) and by sniffed domain, a sniffed HTTP Host routed to a second direct outbound bound to
/// 10.77.2.3, a TLS SNI routed to `block`.
/// `tunExtra` is added to the inbound (`"route_address_set": [...],`), `ruleSets` is `route.rule_set`'s body.
func tunConfig(autoRedirect: Bool, stack: String = "mixed", autoDetect: Bool = false, tunExtra: String = "",
               ruleSets: String = "") -> String {
    """
    {
      "log": { "level": "debug" },
      "dns": { "servers": [ { "type": "hosts", "tag": "hosts", "predefined": { "app.test": ["10.77.9.1"] } } ] },
      "inbounds": [ {
        "type": "tun", "tag": "tun-in", "interface_name": "sbtun0", "stack": "\(stack)",
        "address": ["172.19.0.1/30", "fdfe:dcba:9876::1/126"], \(tunExtra)
        "auto_route": true, "auto_redirect": \(autoRedirect), "udp_timeout": "1m"
      } ],
      "outbounds": [
        { "type": "direct", "tag": "direct" },
        { "type": "direct", "tag": "direct-b", "inet4_bind_address": "10.77.2.3" },
        { "type": "block", "tag": "block" }
      ],
      "route": {
        "rule_set": [\(ruleSets)],
        "rules": [
          { "ip_cidr": ["10.77.9.66/32"], "action": "reject" },
          { "inbound": ["tun-in"], "action": "sniff" },
          { "port": 53, "action": "hijack-dns" },
          { "domain": ["blocked.test"], "action": "reject" },
          { "domain": ["via-b.test"], "outbound": "direct-b" },
          { "domain": ["sni-block.test"], "outbound": "block" }
        ],
        "final": "direct", "auto_detect_interface": \(autoDetect)
      }
    }
    """
}

@Suite(.serialized) struct TunGatewayTests {
    static let urls = ["http://10.77.9.1:8080/", "http://[2001:db8:9::1]:8080/", "http://[fd77:9::1]:8080/"]
    static let udpTargets = ["10.77.9.1", "[2001:db8:9::1]", "[fd77:9::1]"]

    static func requireTools() throws {
        for tool in ["/usr/bin/curl", "/usr/bin/iperf3", "/usr/bin/socat", "/usr/bin/kdig", "/usr/bin/openssl", "/usr/sbin/nft", "/usr/bin/python3"] {
            guard FileManager.default.isExecutableFile(atPath: tool) else {
                throw GatewayTestError("missing \(tool): run scripts/install-test-deps.sh")
            }
        }
        guard getuid() == 0 else { throw GatewayTestError("gateway tests need root (namespaces, TUN, nftables)") }
    }

    /// Our objects in gw: policy rules in 9000…9010, routes in table 2022, the `sing-box` nft table.
    static func installed(_ topology: GatewayTopology) -> (rules: Int, routes: Int, table: Bool) {
        let rules = topology.run(in: topology.gw, "ip -4 rule; ip -6 rule").output.split(separator: "\n")
            .filter { line in (9000...9010).contains(Int(line.prefix { $0 != ":" }) ?? 0) }.count
        let routes = topology.run(in: topology.gw, "ip -4 route show table all; ip -6 route show table all").output
            .split(separator: "\n").filter { $0.contains("table 2022") }.count
        let table = topology.run(in: topology.gw, "nft list tables").output.contains("inet sing-box")
        return (rules, routes, table)
    }

    /// curl from lan; returns (exit status, body).
    static func curl(_ topology: GatewayTopology, _ arguments: String) -> (status: Int32, output: String) {
        topology.run(in: topology.lan, "curl -sg -m 5 \(arguments)", timeout: 10)
    }

    /// TCP (both families, documentation and ULA prefixes), UDP both ways, hijacked DNS.
    static func expectTraffic(_ topology: GatewayTopology, udp: Bool = true, comment: String) {
        for url in urls {
            let result = curl(topology, url)
            #expect(result.status == 0 && result.output.contains("hello from srv"), "\(comment) TCP \(url): \(result)")
        }
        // Bulk both ways (16 MiB): windows fill and must reopen (a stalled relay shows up here).
        for host in ["10.77.9.1", "[2001:db8:9::1]"] {
            let down = topology.run(in: topology.lan, "curl -sg -m 20 -o /dev/null -w '%{size_download}' http://\(host):8080/big", timeout: 25)
            #expect(down.output == "16777216", "\(comment) download via \(host): \(down)")
            let up = topology.run(in: topology.lan, "head -c 16777216 /dev/zero | curl -sg -m 20 --data-binary @- http://\(host):8080/up",
                                  timeout: 25)
            #expect(up.output.contains("received 16777216"), "\(comment) upload via \(host): \(up)")
        }
        guard udp else { return }
        for target in udpTargets {
            let result = topology.run(in: topology.lan, "echo ping-\(target) | socat -t 3 - UDP:\(target):9000", timeout: 10)
            #expect(result.output.contains("echo:ping-\(target)"), "\(comment) UDP \(target): \(result)")
        }
        let dns = topology.run(in: topology.lan, "kdig +short +time=3 +retry=1 @10.77.9.53 app.test A", timeout: 15)
        #expect(dns.output.contains("10.77.9.1"), "\(comment) hijacked DNS: \(dns)")
    }

    /// iperf3 from lan to srv through the gateway (issue #4, acceptance 1): TCP up and down (-R) and
    /// UDP, IPv4 and IPv6, 2 s each. One server per address, bound to it: srv has several addresses
    /// on one link, and an unbound UDP server would answer from the route's source address, which
    /// the client's connected socket (rightly) ignores.
    static func expectIperf(_ topology: GatewayTopology, comment: String) throws {
        for (host, port) in [("10.77.9.1", 5201), ("2001:db8:9::1", 5202)] {
            let server = try topology.spawn(in: topology.srv, ["iperf3", "-s", "-B", host, "-p", "\(port)"], log: "iperf3-server.log")
            defer { server.send(SIGKILL); server.waitUntilExit() }
            try topology.waitFor("iperf3 -s on \(host)") { topology.run(in: topology.srv, "ss -ltn 'sport = :\(port)'").output.contains("\(port)") }
            for (name, flags) in [("TCP up", ""), ("TCP down", "-R"), ("UDP", "-u -b 20M -l 1400")] {
                let result = topology.run(in: topology.lan, "iperf3 -c \(host) -p \(port) -t 2 -J --connect-timeout 3000 \(flags)", timeout: 20)
                let json = (try? JSONSerialization.jsonObject(with: Data(result.output.utf8))) as? [String: Any]
                let end = json?["end"] as? [String: Any]
                let sum = (end?["sum_received"] ?? end?["sum"]) as? [String: Any]
                let bytes = sum?["bytes"] as? Int ?? 0
                #expect(result.status == 0 && bytes > 0, "\(comment) iperf3 \(name) to \(host): status \(result.status), \(bytes) bytes, \(json?["error"] ?? "")")
                if flags.hasPrefix("-u"), let lost = sum?["lost_percent"] as? Double {
                    // 20 Mbit/s for 2 s is far below what the path carries: loss means a broken UDP path.
                    #expect(lost < 20, "\(comment) iperf3 UDP to \(host): \(lost) % lost")
                }
            }
        }
    }

    /// The route rules: sniffed Host and SNI, rejects by domain and IP.
    static func expectRules(_ topology: GatewayTopology, comment: String) {
        let viaB = curl(topology, "-H 'Host: via-b.test' http://10.77.9.1:8080/")
        #expect(viaB.output.contains("you are ::ffff:10.77.2.3"), "\(comment) sniffed Host → direct-b: \(viaB)")
        let plain = curl(topology, "http://10.77.9.1:8080/")
        #expect(plain.output.contains("you are ::ffff:10.77.2.1"), "\(comment) default → direct: \(plain)")
        let blocked = curl(topology, "-H 'Host: blocked.test' http://10.77.9.1:8080/")
        #expect(blocked.status != 0 && !blocked.output.contains("hello"), "\(comment) sniffed Host reject: \(blocked)")
        let sniOK = curl(topology, "-k --resolve sni-ok.test:8443:10.77.9.1 https://sni-ok.test:8443/")
        #expect(sniOK.status == 0, "\(comment) TLS through direct: \(sniOK)")
        let sniBlocked = curl(topology, "-k --resolve sni-block.test:8443:10.77.9.1 https://sni-block.test:8443/")
        #expect(sniBlocked.status != 0, "\(comment) TLS SNI → block: \(sniBlocked)")
        // The address is served (the rule, not the topology, refuses it).
        let direct = topology.run(in: topology.srv, "curl -s -m 3 http://10.77.9.66:8080/")
        #expect(direct.output.contains("hello from srv"))
        let rejected = curl(topology, "http://10.77.9.66:8080/")
        #expect(rejected.status != 0 && !rejected.output.contains("hello"), "\(comment) ip_cidr reject: \(rejected)")
    }

    @Test func autoRedirectServesTheLANAndLeavesNothingBehind() throws {
        try Self.requireTools()
        let topology = try GatewayTopology()
        defer { topology.close() }
        _ = try topology.startGateway(binary: GatewayPeers.ours, config: tunConfig(autoRedirect: true))
        let running = Self.installed(topology)
        #expect(running.rules == 6, "mark rules 9000-9002, both families: \(topology.run(in: topology.gw, "ip rule; ip -6 rule").output)")
        #expect(running.routes >= 2 && running.table, "\(running)")
        let ruleset = topology.run(in: topology.gw, "nft list table inet sing-box").output
        #expect(ruleset.contains("redirect to :") && ruleset.contains("meta mark set 0x00002023"), "\(ruleset)")

        Self.expectTraffic(topology, comment: "auto_redirect")
        try Self.expectIperf(topology, comment: "auto_redirect")
        Self.expectRules(topology, comment: "auto_redirect")
        let log = topology.log("gateway.log")
        #expect(log.contains("inbound redirect connection from 10.77.1.2"))
        #expect(log.contains("inbound packet connection to [2001:db8:9::1]:9000"))

        topology.stopGateway(SIGTERM)
        let after = Self.installed(topology)
        #expect(after.rules == 0 && after.routes == 0 && !after.table, "left behind after SIGTERM: \(after)")
        #expect(topology.run(in: topology.gw, "ip link show sbtun0").status != 0)

        // After SIGKILL the table and rules stay; the next start replaces them, SIGTERM removes them.
        _ = try topology.startGateway(binary: GatewayPeers.ours, config: tunConfig(autoRedirect: true), log: "gateway2.log")
        topology.stopGateway(SIGKILL)
        let killed = Self.installed(topology)
        #expect(killed.rules == running.rules && killed.table, "leftovers of a SIGKILL: \(killed)")
        _ = try topology.startGateway(binary: GatewayPeers.ours, config: tunConfig(autoRedirect: true), log: "gateway3.log")
        #expect(Self.installed(topology).rules == running.rules, "no duplicates after the restart")
        #expect(Self.curl(topology, Self.urls[1]).output.contains("hello from srv"))
        topology.stopGateway(SIGTERM)
        let clean = Self.installed(topology)
        #expect(clean.rules == 0 && clean.routes == 0 && !clean.table, "left behind: \(clean)")
    }

    @Test func autoRouteSurvivesBadInputAndCleansUpAfterSIGKILL() throws {
        try Self.requireTools()
        let topology = try GatewayTopology()
        defer { topology.close() }
        let config = tunConfig(autoRedirect: false, stack: "gvisor", autoDetect: true)
        let gateway = try topology.startGateway(binary: GatewayPeers.ours, config: config)
        let running = Self.installed(topology)
        #expect(running.rules >= 8 && running.routes >= 2 && !running.table, "\(running)")
        Self.expectTraffic(topology, comment: "auto_route")
        try Self.expectIperf(topology, comment: "auto_route")
        // A reply from another address reaches the client from that address (Go 1.12 always does this;
        // `endpoint_independent_nat` is gone).
        let other = topology.run(in: topology.lan, """
            python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5); \
            s.sendto(b"hi", ("10.77.9.1", 9100)); d, p = s.recvfrom(100); print(d.decode(), p[0], p[1])'
            """, timeout: 10)
        #expect(other.output.contains("other:hi 10.77.9.2 9100"), "reply from a second address: \(other)")
        // Pre-match: the SYN itself is refused with RST, so curl sees "connection refused" (exit 7).
        let refused = Self.curl(topology, "http://10.77.9.66:8080/")
        #expect(refused.status == 7, "pre-matched reject: \(refused)")

        try floodScript.write(toFile: topology.directory + "/flood.py", atomically: true, encoding: .utf8)
        let flood = topology.run(in: topology.lan, "python3 \(topology.directory)/flood.py 3000 1000 600 2000", timeout: 60)
        #expect(flood.output.contains("flood sent"), "\(flood)")
        #expect(gateway.isRunning)
        Self.expectTraffic(topology, udp: false, comment: "after the flood")
        let echo = topology.run(in: topology.lan, "echo after | socat -t 3 - UDP:10.77.9.1:9000", timeout: 10)
        #expect(echo.output.contains("echo:after"), "UDP after the flood: \(echo)")
        let status = (try? String(contentsOfFile: "/proc/\(gateway.processIdentifier)/status", encoding: .utf8)) ?? ""
        let rssKB = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
            .flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
        #expect(rssKB > 0 && rssKB < 400 * 1024, "gateway RSS after the flood: \(rssKB) kB")

        // Uplink down and up: the monitor sees the default route go and come back; flows resume.
        let uplink = "gs\(topology.suffix)"
        topology.run(in: topology.gw, "ip link set \(uplink) down")
        try topology.waitFor("default interface lost") { topology.log("gateway.log").contains("network: default interface lost") }
        topology.run(in: topology.gw, """
            ip link set \(uplink) up; ip route replace default via 10.77.2.2
            ip addr replace 2001:db8:2::1/64 dev \(uplink) nodad; ip addr replace fd77:2::1/64 dev \(uplink) nodad
            ip -6 route replace default via 2001:db8:2::2
            """)
        try topology.waitFor("default interface back") {
            topology.log("gateway.log").components(separatedBy: "network: updated default interface \(uplink)").count >= 3
        }
        #expect(topology.log("gateway.log").contains("link \(uplink) down"))
        let resumed = Self.curl(topology, "-m 10 " + Self.urls[0])
        #expect(resumed.output.contains("hello from srv"), "after the uplink came back: \(resumed)")

        // SIGKILL leaves the rules and routes; the next start removes them before installing its own.
        topology.stopGateway(SIGKILL)
        let leftovers = Self.installed(topology)
        #expect(leftovers.rules == running.rules, "rules survive a SIGKILL: \(leftovers)")
        _ = try topology.startGateway(binary: GatewayPeers.ours, config: config, log: "gateway2.log")
        #expect(Self.installed(topology).rules == running.rules, "no duplicate rules after the restart")
        let again = Self.curl(topology, Self.urls[0])
        #expect(again.output.contains("hello from srv"), "\(again)")
        topology.stopGateway(SIGTERM)
        let after = Self.installed(topology)
        #expect(after.rules == 0 && after.routes == 0, "left behind after SIGTERM: \(after)")
    }

    /// Two inline rule-sets for route_address_set: `srv-one` (10.77.9.1 plainly, 2001:db8:9::1 inside a
    /// logical rule) and `names-only` (no IP CIDR: Go warns and it adds nothing).
    static let routeRuleSets = """
        { "type": "inline", "tag": "srv-one", "rules": [
            { "ip_cidr": ["10.77.9.1/32"] },
            { "type": "logical", "mode": "and", "rules": [ { "ip_cidr": ["2001:db8:9::1/128"] }, { "port": 8080 } ] } ] },
        { "type": "inline", "tag": "names-only", "rules": [ { "domain": ["app.test"] } ] }
        """

    /// Who srv saw for a curl from lan to `host`: the gateway's uplink address (proxied by us) or the
    /// LAN client's own (forwarded by the kernel, bypassing sing-box).
    static func seenAs(_ topology: GatewayTopology, _ host: String) -> String {
        let output = curl(topology, "http://\(host):8080/").output
        guard let range = output.range(of: "you are ") else { return "no answer: \(output)" }
        return String(output[range.upperBound...].prefix { $0 != "\n" })
    }

    /// route_address_set: only the rule-set's destinations go through sing-box, the rest is forwarded
    /// as if there were no proxy; route_exclude_address_set the opposite. The sets are in the nftables
    /// table; Go sing-box 1.12.12 with the same config sends the same destinations through itself.
    @Test func routeAddressSetsSteerOnlyTheirDestinations() throws {
        try Self.requireTools()
        let topology = try GatewayTopology()
        defer { topology.close() }
        let include = tunConfig(autoRedirect: true, tunExtra: #""route_address_set": ["srv-one", "names-only"],"#,
                                ruleSets: Self.routeRuleSets)
        _ = try topology.startGateway(binary: GatewayPeers.ours, config: include)
        let table = topology.run(in: topology.gw, "nft list table inet sing-box").output
        #expect(table.contains("set inet4_route_address_set") && table.contains("10.77.9.1")
                && table.contains("set inet6_route_address_set") && table.contains("2001:db8:9::1"), "\(table)")
        #expect(table.contains("ip daddr != @inet4_route_address_set"), "\(table)")
        #expect(Self.seenAs(topology, "10.77.9.1") == "::ffff:10.77.2.1", "in the set: proxied")
        #expect(Self.seenAs(topology, "[2001:db8:9::1]") == "2001:db8:2::1", "in the set (logical rule): proxied")
        #expect(Self.seenAs(topology, "10.77.9.2") == "::ffff:10.77.1.2", "outside the set: bypasses")
        #expect(Self.seenAs(topology, "[fd77:9::1]") == "fd77:1::2", "outside the set: bypasses")
        var log = topology.log("gateway.log")
        #expect(log.contains("inbound connection to 10.77.9.1:8080") && !log.contains("10.77.9.2:8080"), "\(log)")
        #expect(log.contains("route_address_set: no destination IP CIDR rules found in rule-set: names-only"))
        topology.stopGateway(SIGTERM)
        #expect(!Self.installed(topology).table)

        let exclude = tunConfig(autoRedirect: true, tunExtra: #""route_exclude_address_set": ["srv-one"],"#,
                                ruleSets: Self.routeRuleSets)
        _ = try topology.startGateway(binary: GatewayPeers.ours, config: exclude, log: "exclude.log")
        let excludeTable = topology.run(in: topology.gw, "nft list table inet sing-box").output
        #expect(excludeTable.contains("set inet4_route_exclude_address_set") && !excludeTable.contains("inet4_route_address_set"),
                "\(excludeTable)")
        #expect(Self.seenAs(topology, "10.77.9.1") == "::ffff:10.77.1.2", "excluded: bypasses")
        #expect(Self.seenAs(topology, "10.77.9.2") == "::ffff:10.77.2.1", "not excluded: proxied")
        log = topology.log("exclude.log")
        #expect(log.contains("inbound connection to 10.77.9.2:8080") && !log.contains("10.77.9.1:8080"), "\(log)")
        topology.stopGateway(SIGTERM)

        // The real peer: Go sing-box with the include config steers the same destinations.
        guard FileManager.default.isExecutableFile(atPath: GatewayPeers.go) else {
            throw GatewayTestError("missing \(GatewayPeers.go): run scripts/install-test-deps.sh")
        }
        _ = try topology.startGateway(binary: GatewayPeers.go, config: include.replacingOccurrences(of: "\"mixed\"", with: "\"gvisor\""),
                                      log: "go.log")
        let goTable = topology.run(in: topology.gw, "nft list table inet sing-box").output
        #expect(goTable.contains("set inet4_route_address_set") && goTable.contains("10.77.9.1"), "Go: \(goTable)")
        #expect(Self.seenAs(topology, "10.77.9.1") == "::ffff:10.77.2.1", "Go: in the set: proxied")
        #expect(Self.seenAs(topology, "10.77.9.2") == "::ffff:10.77.1.2", "Go: outside the set: bypasses")
        topology.stopGateway(SIGTERM)
    }

    /// A remote rule-set in route_address_set (served from gw's own loopback by python3): its CIDRs are
    /// in the table at the first start (downloaded before tun starts, no cache), and an update of the
    /// served file replaces the set while the gateway runs (Go re-feeds it through update callbacks).
    @Test func remoteRouteAddressSetIsInstalledAndFollowsUpdates() throws {
        try Self.requireTools()
        let topology = try GatewayTopology()
        defer { topology.close() }
        let files = topology.directory + "/rule-sets"
        try FileManager.default.createDirectory(atPath: files, withIntermediateDirectories: true)
        func serve(_ cidr: String) throws {
            try #"{"version":3,"rules":[{"ip_cidr":["\#(cidr)"]}]}"#.write(toFile: files + "/set.json.tmp", atomically: false, encoding: .utf8)
            rename(files + "/set.json.tmp", files + "/set.json")
        }
        try serve("10.77.9.1/32")
        try topology.spawn(in: topology.gw, ["python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", files, "18088"],
                           log: "rule-set-server.log")
        try topology.waitFor("rule-set server") { topology.run(in: topology.gw, "curl -sf http://127.0.0.1:18088/set.json").status == 0 }
        let remote = #"{ "type": "remote", "tag": "remote-set", "format": "source", "url": "http://127.0.0.1:18088/set.json", "update_interval": "1s" }"#
        let config = tunConfig(autoRedirect: true, tunExtra: #""route_address_set": ["remote-set"],"#, ruleSets: remote)
        _ = try topology.startGateway(binary: GatewayPeers.ours, config: config)
        let table = topology.run(in: topology.gw, "nft list table inet sing-box").output
        #expect(table.contains("set inet4_route_address_set") && table.contains("10.77.9.1"), "\(table)")
        #expect(Self.seenAs(topology, "10.77.9.1") == "::ffff:10.77.2.1", "in the set: proxied")
        #expect(Self.seenAs(topology, "10.77.9.2") == "::ffff:10.77.1.2", "outside the set: bypasses")

        try serve("10.77.9.2/32")
        try topology.waitFor("the updated set in nftables", seconds: 15) {
            let now = topology.run(in: topology.gw, "nft list set inet sing-box inet4_route_address_set").output
            return now.contains("10.77.9.2") && !now.contains("10.77.9.1")
        }
        #expect(Self.seenAs(topology, "10.77.9.2") == "::ffff:10.77.2.1", "now in the set: proxied")
        #expect(Self.seenAs(topology, "10.77.9.1") == "::ffff:10.77.1.2", "now outside the set: bypasses")
        #expect(topology.log("gateway.log").contains("updated route address sets from rule-set remote-set"))
        topology.stopGateway(SIGTERM)
        #expect(!Self.installed(topology).table)
    }

    /// auto_detect_interface: with a second uplink in gw and the default route moved to it while the
    /// gateway runs, new connections leave by the new uplink (srv sees its address), for ours and for
    /// Go sing-box 1.12.12 alike. Bound to the old uplink they could not leave at all.
    @Test func autoDetectInterfaceFollowsTheDefaultRoute() throws {
        try Self.requireTools()
        let topology = try GatewayTopology()
        defer { topology.close() }
        let second = "gt\(topology.suffix)"
        let setup = shell("""
            set -e
            ip link add \(second) netns \(topology.gw) type veth peer name \(second) netns \(topology.srv)
            ip -n \(topology.gw) addr add 10.77.3.1/24 dev \(second); ip -n \(topology.gw) link set \(second) up
            ip -n \(topology.srv) addr add 10.77.3.2/24 dev \(second); ip -n \(topology.srv) link set \(second) up
            """)
        #expect(setup.status == 0, "second uplink: \(setup.output)")
        let config = tunConfig(autoRedirect: false, stack: "gvisor", autoDetect: true)
        var binaries = [("ours", GatewayPeers.ours)]
        if FileManager.default.isExecutableFile(atPath: GatewayPeers.go) { binaries.append(("Go", GatewayPeers.go)) }
        for (name, binary) in binaries {
            topology.run(in: topology.gw, "ip route replace default via 10.77.2.2")
            _ = try topology.startGateway(binary: binary, config: config, log: "\(name).log")
            #expect(Self.seenAs(topology, "10.77.9.1") == "::ffff:10.77.2.1", "\(name): first uplink")
            topology.run(in: topology.gw, "ip route replace default via 10.77.3.2 dev \(second)")
            var seen = ""
            for _ in 0..<20 {
                seen = Self.seenAs(topology, "10.77.9.1")
                if seen == "::ffff:10.77.3.1" { break }
                usleep(250_000)
            }
            #expect(seen == "::ffff:10.77.3.1", "\(name): after the default route moved: \(seen)")
            // And back: the monitor follows every change, not only the first.
            topology.run(in: topology.gw, "ip route replace default via 10.77.2.2")
            for _ in 0..<20 {
                seen = Self.seenAs(topology, "10.77.9.1")
                if seen == "::ffff:10.77.2.1" { break }
                usleep(250_000)
            }
            #expect(seen == "::ffff:10.77.2.1", "\(name): after the default route came back: \(seen)")
            topology.stopGateway(SIGTERM)
        }
        #expect(topology.log("ours.log").contains("network: updated default interface \(second)"))
        #expect(binaries.count == 2, "missing \(GatewayPeers.go): run scripts/install-test-deps.sh")
    }

    /// Go sing-box 1.12.12, same config and topology: TCP and the rules behave as ours. (Go's UDP and
    /// ULA through auto_redirect fail here, PEERS.md; they are not asserted.)
    @Test func goSingBoxCrossCheck() throws {
        try Self.requireTools()
        guard FileManager.default.isExecutableFile(atPath: GatewayPeers.go) else {
            throw GatewayTestError("missing \(GatewayPeers.go): run scripts/install-test-deps.sh")
        }
        let topology = try GatewayTopology()
        defer { topology.close() }
        _ = try topology.startGateway(binary: GatewayPeers.go, config: tunConfig(autoRedirect: true, stack: "gvisor"), log: "go.log")
        for url in Self.urls.prefix(2) {
            let result = Self.curl(topology, url)
            #expect(result.output.contains("hello from srv"), "Go TCP \(url): \(result)")
        }
        Self.expectRules(topology, comment: "Go")
        let goRules = Self.installed(topology)
        topology.stopGateway(SIGTERM)
        #expect(Self.installed(topology).rules == 0)
        // Ours installs the same number of policy rules for the same config.
        _ = try topology.startGateway(binary: GatewayPeers.ours, config: tunConfig(autoRedirect: true, stack: "gvisor"))
        #expect(Self.installed(topology).rules == goRules.rules, "Go installed \(goRules)")
        topology.stopGateway(SIGTERM)
    }

    /// tun `loopback_address` (sing-box 1.12): a connection to the address reaches the dialling host's
    /// own port, from lan through the gateway and from gw itself, IPv4 and IPv6; the stack turns the
    /// segments around and terminates nothing. Go sing-box 1.12.12 does the same for lan.
    @Test func loopbackAddressTurnsConnectionsBackToTheirSource() throws {
        try Self.requireTools()
        let topology = try GatewayTopology()
        defer { topology.close() }
        try topology.spawn(in: topology.lan, ["socat", "TCP6-LISTEN:7777,fork,reuseaddr,ipv6only=0", "SYSTEM:echo lan-self"], log: "lan-7777.log")
        try topology.spawn(in: topology.gw, ["socat", "TCP6-LISTEN:7778,fork,reuseaddr,ipv6only=0", "SYSTEM:echo gw-self"], log: "gw-7778.log")
        try topology.waitFor("socat servers") {
            topology.run(in: topology.lan, "ss -ltn 'sport = :7777'").output.contains("7777")
                && topology.run(in: topology.gw, "ss -ltn 'sport = :7778'").output.contains("7778")
        }
        let config = tunConfig(autoRedirect: false, autoDetect: true, tunExtra: #""loopback_address": ["10.7.0.1", "fdfe:dcba:9876::7"],"#)
        func dial(_ ns: String, _ target: String) -> String {
            topology.run(in: ns, "socat -t 3 -T 5 - TCP:\(target) </dev/null", timeout: 10).output
        }
        _ = try topology.startGateway(binary: GatewayPeers.ours, config: config)
        #expect(dial(topology.lan, "10.7.0.1:7777").contains("lan-self"), "lan → 10.7.0.1:7777")
        #expect(dial(topology.lan, "[fdfe:dcba:9876::7]:7777").contains("lan-self"), "lan → [fdfe:dcba:9876::7]:7777")
        #expect(dial(topology.gw, "10.7.0.1:7778").contains("gw-self"), "gw → 10.7.0.1:7778")
        // Other destinations are proxied as before.
        #expect(Self.seenAs(topology, "10.77.9.1") == "::ffff:10.77.2.1")
        let log = topology.log("gateway.log")
        #expect(!log.contains("10.7.0.1:777") && !log.contains("9876::7]:777"), "turned around, never terminated: \(log)")
        topology.stopGateway(SIGTERM)

        guard FileManager.default.isExecutableFile(atPath: GatewayPeers.go) else {
            throw GatewayTestError("missing \(GatewayPeers.go): run scripts/install-test-deps.sh")
        }
        _ = try topology.startGateway(binary: GatewayPeers.go, config: config.replacingOccurrences(of: "\"mixed\"", with: "\"gvisor\""),
                                      log: "go.log")
        #expect(dial(topology.lan, "10.7.0.1:7777").contains("lan-self"), "Go: lan → 10.7.0.1:7777")
        #expect(dial(topology.lan, "[fdfe:dcba:9876::7]:7777").contains("lan-self"), "Go: lan → [fdfe:dcba:9876::7]:7777")
        topology.stopGateway(SIGTERM)

        // auto_redirect: TCP to the addresses skips the redirect and is marked into the TUN instead;
        // the loopback parts of the table are Go's, line for line.
        let redirect = config.replacingOccurrences(of: "\"auto_redirect\": false", with: "\"auto_redirect\": true")
        func loopbackLines() -> [String] {
            topology.run(in: topology.gw, "nft list table inet sing-box").output.split(separator: "\n")
                .map { $0.trimmingCharacters(in: .whitespaces)
                    .replacingOccurrences(of: #"counter packets \d+ bytes \d+"#, with: "counter", options: .regularExpression)
                    .replacingOccurrences(of: #"redirect to :\d+"#, with: "redirect to :port", options: .regularExpression) }
                .filter { $0.contains("local_redirect_address_set") || $0.contains("10.7.0.1") || $0.contains("9876::7")
                    || $0.hasPrefix("chain output_route") || $0.hasPrefix("chain prerouting_filter") }
        }
        _ = try topology.startGateway(binary: GatewayPeers.go, config: redirect.replacingOccurrences(of: "\"mixed\"", with: "\"gvisor\""),
                                      log: "go-redirect.log")
        #expect(dial(topology.lan, "10.7.0.1:7777").contains("lan-self"), "Go auto_redirect: lan → 10.7.0.1:7777")
        let goLines = loopbackLines()
        topology.stopGateway(SIGTERM)
        _ = try topology.startGateway(binary: GatewayPeers.ours, config: redirect, log: "redirect.log")
        let ourLines = loopbackLines()
        #expect(ourLines.count >= 8 && ourLines == goLines, "ours:\n\(ourLines.joined(separator: "\n"))\nGo:\n\(goLines.joined(separator: "\n"))")
        #expect(dial(topology.lan, "10.7.0.1:7777").contains("lan-self"), "auto_redirect: lan → 10.7.0.1:7777")
        #expect(dial(topology.lan, "[fdfe:dcba:9876::7]:7777").contains("lan-self"), "auto_redirect: lan → [fdfe:dcba:9876::7]:7777")
        #expect(dial(topology.gw, "10.7.0.1:7778").contains("gw-self"), "auto_redirect: gw → 10.7.0.1:7778")
        #expect(Self.seenAs(topology, "10.77.9.1") == "::ffff:10.77.2.1", "auto_redirect: other TCP is redirected and proxied")
        let redirectLog = topology.log("redirect.log")
        #expect(!redirectLog.contains("10.7.0.1:777") && !redirectLog.contains("9876::7]:777"), "\(redirectLog)")
        topology.stopGateway(SIGTERM)
    }

    @Test func exampleConfigPassesBothChecksAndBadStackFailsAtStart() throws {
        try Self.requireTools()
        let example = GatewayPeers.packageRoot + "/examples/tun-gateway.json"
        #expect(shell("\(GatewayPeers.ours) check -c \(example)").status == 0)
        if FileManager.default.isExecutableFile(atPath: GatewayPeers.go) {
            #expect(shell("\(GatewayPeers.go) check -c \(example)").status == 0)
        }
        // Go accepts an unknown stack in `check` and refuses it when the inbound starts.
        let namespace = "sbx\(getpid() % 100000)"
        shell("ip netns add \(namespace)")
        defer { shell("ip netns del \(namespace)") }
        let bad = tunConfig(autoRedirect: false).replacingOccurrences(of: "\"stack\": \"mixed\"", with: "\"stack\": \"lwip\"")
        let path = "/tmp/sbx-gw-bad-\(getpid()).json"
        try bad.write(toFile: path, atomically: true, encoding: .utf8)
        defer { unlink(path) }
        #expect(shell("\(GatewayPeers.ours) check -c \(path)").status == 0)
        let run = shell("ip netns exec \(namespace) \(GatewayPeers.ours) run -c \(path)", timeout: 10)
        #expect(run.status == 1 && run.output.contains("start inbound/tun[tun-in]: unknown stack: lwip"), "\(run)")
    }
}
