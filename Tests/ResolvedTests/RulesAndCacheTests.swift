// Our `resolved` service answering through the DNS router's rules and cache, seen by real clients:
// kdig on the stub, glibc's nss-resolve (`getent`) over the varlink socket and busctl's
// ResolveHostname agree on a fakeip rule's address, while other names go to a dnsmasq upstream.
// `resolvectl statistics` reports the router cache's size, hits and misses; reset-statistics
// zeroes the counters and flush-caches empties the cache (a changed upstream answer shows through).
import Foundation
import Testing

@Suite(.serialized) struct RulesAndCacheTests {
    /// The stub listens on 127.0.0.54 (a test address, not resolved's default); fake.example goes
    /// to fakeip, everything else to dnsmasq on 127.0.0.2.
    static let fakeIPConfig = """
    {"log":{"level":"debug","timestamp":false},
     "dns":{"servers":[{"type":"udp","tag":"upstream","server":"127.0.0.2"},
                       {"type":"fakeip","tag":"fake","inet4_range":"198.18.0.0/15","inet6_range":"fc00::/18"}],
            "rules":[{"domain_suffix":["fake.example"],"server":"fake"}],
            "final":"upstream"},
     "services":[{"type":"resolved","tag":"resolved","listen":"127.0.0.54","listen_port":53}]}
    """

    static let cacheConfig = """
    {"log":{"level":"debug","timestamp":false},
     "dns":{"servers":[{"type":"udp","tag":"upstream","server":"127.0.0.2"}]},
     "services":[{"type":"resolved","tag":"resolved","listen":"127.0.0.54","listen_port":53}]}
    """

    @Test func fakeIPRuleSeenByStubNssAndBus() throws {
        try Tools.require(Tools.kdig, Tools.dnsmasq, Tools.unshare)
        let scratch = try Scratch()
        let bus = try PrivateBus()
        let namespace = try Namespace("fip")
        try namespace.sh("ip addr add 127.0.0.2/8 dev lo 2>/dev/null || true")
        let upstream = try startDnsmasq(in: namespace, address: "127.0.0.2", records: ["address=/real.example/192.0.2.9"],
                                        scratch: scratch, name: "upstream")
        defer { upstream.stop() }
        let box = try OurBox(config: Self.fakeIPConfig, namespace: namespace, bus: bus, scratch: scratch)
        defer { box.daemon.stop() }

        // The stub: A in 198.18.0.0/15, AAAA in fc00::/18; real.example from dnsmasq.
        var result = try namespace.run(Tools.kdig, ["@127.0.0.54", "app.fake.example", "A", "+short", "+timeout=3", "+retry=0"])
        let stubV4 = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(Self.inRange4(stubV4), "\(result)")
        result = try namespace.run(Tools.kdig, ["@127.0.0.54", "app.fake.example", "AAAA", "+short", "+timeout=3", "+retry=0"])
        let stubV6 = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(stubV6.hasPrefix("fc00:") || stubV6.hasPrefix("fc00::"), "\(result)")
        result = try namespace.run(Tools.kdig, ["@127.0.0.54", "real.example", "A", "+short", "+timeout=3", "+retry=0"])
        #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "192.0.2.9", "\(result)")

        // nss-resolve over our varlink socket, in a mount namespace with our runtime directory.
        let nsswitch = try scratch.write("nsswitch.conf", "hosts: resolve [!UNAVAIL=return]\n")
        let script = """
        set -e
        mount -t tmpfs none /run/systemd 2>/dev/null || { mkdir -p /run/systemd && mount -t tmpfs none /run/systemd; }
        mkdir -p /run/systemd/resolve
        mount --bind \(box.runtimeDirectory) /run/systemd/resolve
        mount --bind \(nsswitch) /etc/nsswitch.conf
        LD_LIBRARY_PATH=\(Tools.nssLibraryDirectory) getent ahostsv4 app.fake.example
        LD_LIBRARY_PATH=\(Tools.nssLibraryDirectory) getent ahostsv4 real.example
        """
        result = try run(Tools.unshare, ["-m", "--propagation", "private", "/bin/sh", "-c", script])
        #expect(result.status == 0, "\(result)")
        // getent prints the address left-aligned in 15 columns.
        let column = stubV4.padding(toLength: 15, withPad: " ", startingAt: 0)
        #expect(!stubV4.isEmpty && result.stdout.contains("\(column) STREAM app.fake.example"), "stub \(stubV4): \(result)")
        #expect(result.stdout.contains("192.0.2.9       STREAM real.example"), "\(result)")

        // ResolveHostname over D-Bus: the same fakeip address.
        result = try managerCall(namespace, bus: bus, ["ResolveHostname", "isit", "0", "app.fake.example", "2", "0"])
        let octets = stubV4.split(separator: ".").joined(separator: " ")
        #expect(result.status == 0 && result.stdout.contains("a(iiay)st 1 0 2 4 \(octets) \"app.fake.example\""),
                "stub \(stubV4): \(result)")
        #expect(box.isRunning, "\(box.log)")
    }

    @Test func cacheStatisticsResetAndFlush() throws {
        try Tools.require(Tools.kdig, Tools.dnsmasq, Tools.resolvectl)
        let scratch = try Scratch()
        let bus = try PrivateBus()
        let namespace = try Namespace("cache")
        try namespace.sh("ip addr add 127.0.0.2/8 dev lo 2>/dev/null || true")
        // dnsmasq's own records have TTL 0 (never cached) unless local-ttl says otherwise.
        var upstream = try startDnsmasq(in: namespace, address: "127.0.0.2", records: ["local-ttl=300", "address=/example.com/192.0.2.7"],
                                        scratch: scratch, name: "upstream")
        defer { upstream.stop() }
        let box = try OurBox(config: Self.cacheConfig, namespace: namespace, bus: bus, scratch: scratch)
        defer { box.daemon.stop() }

        var result = try resolvectl(namespace, bus: bus, ["statistics"])
        #expect(Self.counter("Cache Hits", result) == 0 && Self.counter("Cache Misses", result) == 0, "\(result)")
        // One miss, then three hits: the stub, then resolvectl query (D-Bus).
        for _ in 0..<3 {
            result = try namespace.run(Tools.kdig, ["@127.0.0.54", "example.com", "A", "+short", "+timeout=3", "+retry=0"])
            #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "192.0.2.7", "\(result)")
        }
        result = try resolvectl(namespace, bus: bus, ["query", "-4", "example.com"])
        #expect(result.stdout.contains("example.com: 192.0.2.7"), "\(result)")
        result = try resolvectl(namespace, bus: bus, ["statistics"])
        #expect(Self.counter("Current Cache Size", result) == 1, "\(result)")
        #expect(Self.counter("Cache Hits", result) == 3, "\(result)")
        #expect(Self.counter("Cache Misses", result) == 1, "\(result)")

        // reset-statistics: counters to zero, the entry stays (resolved keeps its cache too).
        result = try resolvectl(namespace, bus: bus, ["reset-statistics"])
        #expect(result.status == 0, "\(result)")
        result = try resolvectl(namespace, bus: bus, ["statistics"])
        #expect(Self.counter("Current Cache Size", result) == 1, "\(result)")
        #expect(Self.counter("Cache Hits", result) == 0 && Self.counter("Cache Misses", result) == 0, "\(result)")

        // The upstream now says 192.0.2.8; the cache still answers 192.0.2.7 until flush-caches.
        upstream.stop()
        upstream = try startDnsmasq(in: namespace, address: "127.0.0.2", records: ["local-ttl=300", "address=/example.com/192.0.2.8"],
                                    scratch: scratch, name: "upstream2")
        result = try namespace.run(Tools.kdig, ["@127.0.0.54", "example.com", "A", "+short", "+timeout=3", "+retry=0"])
        #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "192.0.2.7", "\(result)")
        result = try resolvectl(namespace, bus: bus, ["flush-caches"])
        #expect(result.status == 0, "\(result)")
        result = try resolvectl(namespace, bus: bus, ["statistics"])
        #expect(Self.counter("Current Cache Size", result) == 0, "\(result)")
        result = try namespace.run(Tools.kdig, ["@127.0.0.54", "example.com", "A", "+short", "+timeout=3", "+retry=0"])
        #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "192.0.2.8", "\(result)")
        result = try resolvectl(namespace, bus: bus, ["query", "-4", "example.com"])
        #expect(result.stdout.contains("example.com: 192.0.2.8"), "\(result)")
        #expect(box.isRunning, "\(box.log)")
    }

    /// The number after `label:` in resolvectl's output, nil when the line is missing.
    static func counter(_ label: String, _ result: ToolResult) -> Int? {
        for line in result.stdout.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == label else { continue }
            return Int(parts[1].trimmingCharacters(in: .whitespaces))
        }
        return nil
    }

    /// Whether `text` is an IPv4 address in 198.18.0.0/15.
    static func inRange4(_ text: String) -> Bool {
        let octets = text.split(separator: ".").compactMap { UInt8($0) }
        return octets.count == 4 && octets[0] == 198 && (octets[1] == 18 || octets[1] == 19)
    }
}
