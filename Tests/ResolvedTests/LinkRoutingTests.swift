// The `resolved` DNS server follows what network managers push over resolve1: busctl's
// SetLinkDNS / SetLinkDomains on veth links decide which of two dnsmasq upstreams (in namespaces of
// their own, reached over those veths) answers a query sent to our 127.0.0.53 stub; deleting a
// veth drops its settings (netlink) and queries go back to the other link.
import Foundation
import Testing

@Suite(.serialized) struct LinkRoutingTests {
    static let config = """
    {"log":{"level":"debug","timestamp":false},
     "dns":{"servers":[{"type":"resolved","tag":"links","service":"resolved"}],"disable_cache":true},
     "services":[{"type":"resolved","tag":"resolved"}]}
    """

    /// `kdig @127.0.0.53 <name> +short` inside `namespace`: the first answer line ("" when none).
    func stub(_ namespace: Namespace, _ name: String, tcp: Bool = false) throws -> ToolResult {
        try namespace.run(Tools.kdig, ["@127.0.0.53", name, "+timeout=3", "+retry=0"] + (tcp ? ["+tcp"] : []))
    }

    func answer(_ result: ToolResult) -> String {
        for line in result.stdout.split(separator: "\n") where line.contains("\tA\t") || line.contains(" A ") {
            if let last = line.split(whereSeparator: { $0 == "\t" || $0 == " " }).last { return String(last) }
        }
        return ""
    }

    @Test func setLinkDNSAndDomainsSteerQueries() throws {
        try Tools.require(Tools.dnsmasq, Tools.kdig, Tools.busctl)
        let scratch = try Scratch()
        let bus = try PrivateBus()
        let gateway = try Namespace("gw")
        let sideA = try Namespace("a")
        let sideB = try Namespace("b")
        for (side, subnet, local, remote) in [(sideA, 1, "la", "ua"), (sideB, 2, "lb", "ub")] {
            let link = try run(Tools.ip, ["link", "add", local, "netns", gateway.name, "type", "veth", "peer", "name", remote, "netns", side.name])
            #expect(link.status == 0, "\(link)")
            try gateway.sh("ip addr add 10.61.\(subnet).1/24 dev \(local) && ip link set \(local) up")
            try side.sh("ip addr add 10.61.\(subnet).2/24 dev \(remote) && ip link set \(remote) up")
        }
        let upstreamA = try startDnsmasq(in: sideA, address: "10.61.1.2", records: ["address=/host.test/198.51.100.1"], scratch: scratch, name: "dnsmasq-a")
        let upstreamB = try startDnsmasq(in: sideB, address: "10.61.2.2", records: ["address=/host.test/198.51.100.2"], scratch: scratch, name: "dnsmasq-b")
        defer { upstreamA.stop(); upstreamB.stop() }
        let box = try OurBox(config: Self.config, namespace: gateway, bus: bus, scratch: scratch)
        defer { box.daemon.stop() }
        let indexA = try gateway.ifindex("la"), indexB = try gateway.ifindex("lb")

        // No link carries a domain for host.test: NXDOMAIN (Go's resolved server does the same).
        var result = try stub(gateway, "host.test")
        #expect(result.stdout.contains("NXDOMAIN"), "\(result)")

        // Link A gets a server and the routing domain ~test: A answers.
        result = try managerCall(gateway, bus: bus, ["SetLinkDNS", "ia(iay)", "\(indexA)", "1", "2", "4", "10", "61", "1", "2"])
        #expect(result.status == 0, "\(result)")
        result = try managerCall(gateway, bus: bus, ["SetLinkDomains", "ia(sb)", "\(indexA)", "1", "test", "true"])
        #expect(result.status == 0, "\(result)")
        #expect(answer(try stub(gateway, "host.test")) == "198.51.100.1")

        // Link B claims the longer domain host.test: B answers, over UDP and TCP.
        result = try managerCall(gateway, bus: bus, ["SetLinkDNS", "ia(iay)", "\(indexB)", "1", "2", "4", "10", "61", "2", "2"])
        #expect(result.status == 0, "\(result)")
        result = try managerCall(gateway, bus: bus, ["SetLinkDomains", "ia(sb)", "\(indexB)", "1", "host.test", "true"])
        #expect(result.status == 0, "\(result)")
        #expect(answer(try stub(gateway, "host.test")) == "198.51.100.2")
        #expect(answer(try stub(gateway, "host.test", tcp: true)) == "198.51.100.2")
        #expect(upstreamB.log.contains("query[A] host.test from 10.61.2.1"), "\(upstreamB.log)")

        // The veth to B disappears: its settings go with it, A answers again.
        try gateway.sh("ip link del lb")
        try box.daemon.wait(for: "link B to be forgotten") {
            (try? managerCall(gateway, bus: bus, ["GetLink", "i", "\(indexB)"]))?.stderr.contains("Link \(indexB) not known") ?? false
        }
        #expect(answer(try stub(gateway, "host.test")) == "198.51.100.1")
        result = try managerCall(gateway, bus: bus, ["SetLinkDNS", "ia(iay)", "\(indexB)", "1", "2", "4", "10", "61", "2", "2"])
        #expect(result.status != 0 && result.stderr.contains("Link \(indexB) not known"), "\(result)")
        #expect(box.isRunning)
    }
}
