// The real resolvectl (systemd 252, from the .deb) against our `resolved` service on a private
// system bus, in a network namespace of the test's own: queries answered through our DNS router
// (dnsmasq upstream), per-link settings, status, statistics, revert and the resolv.conf files.
import Foundation
import Testing

@Suite(.serialized) struct ResolvectlTests {
    /// dnsmasq's records: A/AAAA/MX for example.com, a PTR for 192.0.2.7, NXDOMAIN for nx.example.
    static let records = [
        "address=/example.com/192.0.2.7", "address=/example.com/2001:db8::7",
        "mx-host=example.com,mail.example.com,10", "ptr-record=7.2.0.192.in-addr.arpa,seven.example.com",
        "address=/nx.example/",
        "srv-host=_http._tcp.example.com,web.example.com,8080,10,5", "address=/web.example.com/192.0.2.80",
        "txt-record=_http._tcp.example.com,path=/index",
    ]

    static let config = """
    {"log":{"level":"debug","timestamp":false},
     "dns":{"servers":[{"type":"udp","tag":"upstream","server":"127.0.0.2"}]},
     "services":[{"type":"resolved","tag":"resolved"}]}
    """

    @Test func queriesStatusAndLinkSettings() throws {
        try Tools.require(Tools.resolvectl, Tools.dnsmasq)
        let scratch = try Scratch()
        let bus = try PrivateBus()
        let namespace = try Namespace("ctl")
        try namespace.sh("ip addr add 127.0.0.2/8 dev lo 2>/dev/null || true; ip link add v0 type veth peer name v1; ip link set v0 up")
        let upstream = try startDnsmasq(in: namespace, address: "127.0.0.2", records: Self.records, scratch: scratch, name: "upstream")
        defer { upstream.stop() }
        let box = try OurBox(config: Self.config, namespace: namespace, bus: bus, scratch: scratch)
        defer { box.daemon.stop() }

        // query: A and AAAA, one family, MX, reverse PTR.
        var result = try resolvectl(namespace, bus: bus, ["query", "example.com"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.contains("example.com: 192.0.2.7"), "\(result)")
        #expect(result.stdout.contains("2001:db8::7"), "\(result)")
        #expect(result.stdout.contains("-- Data from: network"), "\(result)")
        result = try resolvectl(namespace, bus: bus, ["query", "-6", "example.com"])
        #expect(result.stdout.contains("example.com: 2001:db8::7") && !result.stdout.contains("192.0.2.7"), "\(result)")
        result = try resolvectl(namespace, bus: bus, ["query", "-t", "MX", "example.com"])
        #expect(result.status == 0 && result.stdout.contains("example.com IN MX 10 mail.example.com"), "\(result)")
        result = try resolvectl(namespace, bus: bus, ["query", "192.0.2.7"])
        #expect(result.status == 0 && result.stdout.contains("192.0.2.7: seven.example.com"), "\(result)")
        // ResolveService: SRV, the target's addresses and the TXT strings.
        result = try resolvectl(namespace, bus: bus, ["service", "_http._tcp", "example.com"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.contains("web.example.com:8080 [priority=10, weight=5]"), "\(result)")
        #expect(result.stdout.contains("192.0.2.80"), "\(result)")
        #expect(result.stdout.contains("path=/index"), "\(result)")
        result = try resolvectl(namespace, bus: bus, ["query", "nx.example"])
        #expect(result.status == 1 && result.stderr.contains("nx.example: 'nx.example' not found"), "\(result)")

        // Per-link settings as a network manager would push them.
        result = try resolvectl(namespace, bus: bus, ["dns", "v0", "192.0.2.53", "2001:db8::53", "192.0.2.54:5353#dns.example"])
        #expect(result.status == 0, "\(result)")
        result = try resolvectl(namespace, bus: bus, ["domain", "v0", "~example", "corp.example"])
        #expect(result.status == 0, "\(result)")
        result = try resolvectl(namespace, bus: bus, ["default-route", "v0", "no"])
        #expect(result.status == 0, "\(result)")
        result = try resolvectl(namespace, bus: bus, ["status", "v0"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.contains("Current Scopes: DNS"), "\(result)")
        #expect(result.stdout.contains("-DefaultRoute"), "\(result)")
        #expect(result.stdout.contains("DNS Servers: 192.0.2.53 2001:db8::53 192.0.2.54:5353#dns.example"), "\(result)")
        #expect(result.stdout.contains("DNS Domain: ~example corp.example"), "\(result)")
        result = try resolvectl(namespace, bus: bus, ["default-route", "v0"])
        #expect(result.stdout.contains(": no"), "\(result)")
        result = try resolvectl(namespace, bus: bus, ["default-route", "v0", "yes"])
        result = try resolvectl(namespace, bus: bus, ["status", "v0"])
        #expect(result.stdout.contains("+DefaultRoute"), "\(result)")

        // Global status lists the link's settings; resolv.conf files follow.
        result = try resolvectl(namespace, bus: bus, ["status"])
        #expect(result.status == 0 && result.stdout.contains("Global") && result.stdout.contains("resolv.conf mode:"), "\(result)")
        #expect(result.stdout.contains("(v0)"), "\(result)")
        let stub = try String(contentsOfFile: box.runtimeDirectory + "/stub-resolv.conf", encoding: .utf8)
        #expect(stub.contains("nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch corp.example\n"), "\(stub)")
        let uplink = try String(contentsOfFile: box.runtimeDirectory + "/resolv.conf", encoding: .utf8)
        #expect(uplink.contains("nameserver 192.0.2.53\nnameserver 2001:db8::53\nnameserver 192.0.2.54\nsearch corp.example\n"), "\(uplink)")

        // flush-caches, statistics (our five queries above are transactions), revert.
        result = try resolvectl(namespace, bus: bus, ["flush-caches"])
        #expect(result.status == 0, "\(result)")
        result = try resolvectl(namespace, bus: bus, ["statistics"])
        #expect(result.status == 0 && result.stdout.contains("Current Transactions: 0"), "\(result)")
        let total = result.stdout.split(separator: "\n").first { $0.contains("Total Transactions:") }
            .flatMap { Int($0.split(separator: ":").last!.trimmingCharacters(in: .whitespaces)) } ?? 0
        #expect(total >= 6, "\(result)")
        result = try resolvectl(namespace, bus: bus, ["reset-statistics"])
        #expect(result.status == 0, "\(result)")
        result = try resolvectl(namespace, bus: bus, ["statistics"])
        #expect(result.stdout.contains("Total Transactions: 0"), "\(result)")
        result = try resolvectl(namespace, bus: bus, ["revert", "v0"])
        #expect(result.status == 0, "\(result)")
        result = try resolvectl(namespace, bus: bus, ["status", "v0"])
        #expect(result.stdout.contains("Current Scopes: none") && !result.stdout.contains("DNS Servers"), "\(result)")
        let reverted = try String(contentsOfFile: box.runtimeDirectory + "/resolv.conf", encoding: .utf8)
        #expect(reverted.contains("# No DNS servers known.") && !reverted.contains("\nsearch "), "\(reverted)")
        #expect(box.isRunning)
    }
}
