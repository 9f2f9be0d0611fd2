// sing's UDP-over-TCP against Go sing-box 1.12.12 both ways, versions 2 and 1: a DNS query from
// kdig enters a `direct` UDP inbound, leaves through a `socks` outbound with `udp_over_tcp`, rides
// a TCP stream into the other side's `mixed` inbound, and reaches dnsmasq from there.
import Foundation
import Testing

@Suite(.serialized) struct UDPOverTCPInteropTests {
    /// A UDP `direct` inbound that sends everything to the DNS server's port.
    private static func dnsInbound(port: UInt16, dnsPort: UInt16) -> String {
        "{\"type\":\"direct\",\"tag\":\"dns-in\",\"listen\":\"127.0.0.1\",\"listen_port\":\(port),\"network\":\"udp\","
            + "\"override_address\":\"127.0.0.1\",\"override_port\":\(dnsPort)}"
    }

    private static func socksUoT(port: UInt16, version: Int) -> String {
        "{\"type\":\"socks\",\"tag\":\"proxy\",\"server\":\"127.0.0.1\",\"server_port\":\(port),"
            + "\"udp_over_tcp\":{\"enabled\":true,\"version\":\(version)}}"
    }

    private static func query(_ port: UInt16, retries: Int = 2) throws -> String {
        let answer = try runTool(Peers.kdig, ["@127.0.0.1", "-p", String(port), "+short", "+timeout=\(retries == 0 ? 1 : 3)", "+retry=\(retries)",
                                              "test.example", "A"])
        return String(decoding: answer.stdout, as: UTF8.self)
    }

    private static func serverLine(version: Int, dnsPort: UInt16) -> String {
        version == 1 ? "inbound legacy UoT connection" : "inbound UoT connection to 127.0.0.1:\(dnsPort)"
    }

    /// Go's UoT client (socks outbound) through our mixed inbound.
    @Test(arguments: [2, 1]) func goClientThroughOurInbound(version: Int) throws {
        let work = try TemporaryDirectory()
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let ours = try freePort()
        let box = try SingBox(.ours, config: ConfigJSON.box(inbounds: [ConfigJSON.mixed(port: ours)], outbounds: [ConfigJSON.direct]),
                              waitPort: ours, in: work)
        defer { box.stop() }
        let dnsIn = try freePort(udp: true), anchor = try freePort()
        let go = try SingBox(.go, config: ConfigJSON.box(
            inbounds: [Self.dnsInbound(port: dnsIn, dnsPort: dns.port), ConfigJSON.mixed(port: anchor, tag: "anchor")],
            outbounds: [Self.socksUoT(port: ours, version: version)]), waitPort: anchor, in: work)
        defer { go.stop() }
        #expect(try Self.query(dnsIn) == "10.1.2.3\n", "\(go.log)\n\(box.log)")
        #expect(go.log.contains("outbound UoT packet connection to 127.0.0.1:\(dns.port)"), "\(go.log)")
        #expect(box.log.contains(Self.serverLine(version: version, dnsPort: dns.port)), "\(box.log)")
    }

    /// Our UoT client through Go's mixed inbound.
    @Test(arguments: [2, 1]) func ourClientThroughGoInbound(version: Int) throws {
        let work = try TemporaryDirectory()
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let goPort = try freePort()
        let go = try SingBox(.go, config: ConfigJSON.box(inbounds: [ConfigJSON.mixed(port: goPort)], outbounds: [ConfigJSON.direct]),
                             waitPort: goPort, in: work)
        defer { go.stop() }
        let dnsIn = try freePort(udp: true), anchor = try freePort()
        let box = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [Self.dnsInbound(port: dnsIn, dnsPort: dns.port), ConfigJSON.mixed(port: anchor, tag: "anchor")],
            outbounds: [Self.socksUoT(port: goPort, version: version)]), waitPort: anchor, in: work)
        defer { box.stop() }
        #expect(try Self.query(dnsIn) == "10.1.2.3\n", "\(box.log)\n\(go.log)")
        // Several queries share the flow's stream; a second one still answers.
        #expect(try Self.query(dnsIn) == "10.1.2.3\n", "\(box.log)\n\(go.log)")
        #expect(box.log.contains("outbound UoT packet connection to 127.0.0.1:\(dns.port)"), "\(box.log)")
        #expect(go.log.contains(Self.serverLine(version: version, dnsPort: dns.port)), "\(go.log)")
    }

    /// Ours at both ends, and a version Go does not know failing the flow with Go's words.
    @Test func oursAtBothEndsAndAnUnknownVersion() throws {
        let work = try TemporaryDirectory()
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let server = try freePort()
        let far = try SingBox(.ours, config: ConfigJSON.box(inbounds: [ConfigJSON.mixed(port: server)], outbounds: [ConfigJSON.direct]),
                              waitPort: server, in: work)
        defer { far.stop() }
        let good = try freePort(udp: true), bad = try freePort(udp: true), anchor = try freePort()
        let box = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [Self.dnsInbound(port: good, dnsPort: dns.port).replacingOccurrences(of: "dns-in", with: "good"),
                       Self.dnsInbound(port: bad, dnsPort: dns.port).replacingOccurrences(of: "dns-in", with: "bad"),
                       ConfigJSON.mixed(port: anchor, tag: "anchor")],
            outbounds: [Self.socksUoT(port: server, version: 2),
                        Self.socksUoT(port: server, version: 7).replacingOccurrences(of: "\"proxy\"", with: "\"v7\"")],
            rules: "[{\"inbound\":\"bad\",\"outbound\":\"v7\"}]"), waitPort: anchor, in: work)
        defer { box.stop() }
        #expect(try Self.query(good) == "10.1.2.3\n", "\(box.log)\n\(far.log)")
        #expect(try Self.query(bad, retries: 0) == "", "\(box.log)")
        #expect(box.log.contains("unknown protocol version: 7"), "\(box.log)")
    }

    /// The global multiplex names reach the router (no inbound here takes them over) and fail the
    /// flow with Go's words, ours and Go's alike.
    @Test(arguments: [Implementation.ours, .go])
    func globalMultiplexNamesFailWithGoWords(implementation: Implementation) throws {
        let work = try TemporaryDirectory()
        let port = try freePort()
        let box = try SingBox(implementation, config: ConfigJSON.box(inbounds: [ConfigJSON.mixed(port: port)], outbounds: [ConfigJSON.direct]),
                              waitPort: port, in: work)
        defer { box.stop() }
        let expected = [
            "sp.mux.sing-box.arpa:444": "global multiplex is deprecated since sing-box v1.7.0, enable multiplex in Inbound fields instead.",
            "v1.mux.cool:666": "global multiplex (v2ray legacy) not supported since sing-box v1.7.0.",
        ]
        for (target, message) in expected {
            let result = try runTool(Peers.curl, ["--silent", "--max-time", "5", "--socks5-hostname", "127.0.0.1:\(port)", "http://\(target)/"], timeout: 10)
            #expect(result.status != 0)
            var seen = false
            for _ in 0..<40 where !seen {
                seen = box.log.contains(message)
                if !seen { usleep(50_000) }
            }
            #expect(seen, "\(implementation): \(box.log)")
        }
    }
}
