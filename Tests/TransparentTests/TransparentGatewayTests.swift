import TestSupport
import Foundation
import Testing

/// The whole-LAN transparent gateway with the `tproxy` and `redirect` inbounds (issue #4, acceptance
/// 2): lan ↔ gw ↔ srv namespaces, nftables rules in gw steer LAN traffic into our inbound, and real
/// clients (curl, socat) in lan reach real servers (python http.server, socat echo) in srv. Go
/// sing-box 1.12.12 runs the same config in the same topology as the cross-check.
@Suite(.serialized, .enabled(if: isRoot, "needs root for network namespaces"))
struct TransparentGatewayTests {
    static let port: UInt16 = 7893

    /// tproxy for TCP and UDP, a sniff rule and a domain rule that rejects `blocked.example`.
    static func tproxyConfig(port: UInt16 = port) -> String {
        """
        {"log": {"level": "debug"},
         "inbounds": [{"type": "tproxy", "tag": "tproxy-in", "listen": "::", "listen_port": \(port), "udp_timeout": "10s"}],
         "outbounds": [{"type": "direct", "tag": "direct"}],
         "route": {"rules": [
            {"inbound": "tproxy-in", "action": "sniff"},
            {"domain": ["blocked.example"], "action": "reject"},
            {"protocol": "quic", "domain": ["blocked-quic.example"], "action": "reject"},
            {"ip_cidr": ["10.77.2.0/24", "2001:db8:772::/64"], "outbound": "direct"}
         ], "final": "direct"}}
        """
    }

    static func redirectConfig(port: UInt16 = port) -> String {
        """
        {"log": {"level": "debug"},
         "inbounds": [{"type": "redirect", "tag": "redirect-in", "listen": "::", "listen_port": \(port)}],
         "outbounds": [{"type": "direct", "tag": "direct"}],
         "route": {"rules": [
            {"inbound": "redirect-in", "action": "sniff"},
            {"domain": ["blocked.example"], "action": "reject"}
         ], "final": "direct"}}
        """
    }

    /// Everything a LAN host does through the tproxy gateway, for one binary.
    func exerciseTProxy(_ binary: String) throws {
        let topology = try GatewayTopology()
        try topology.installTProxyRules(port: Self.port)
        let token = "tproxy-\(uniqueSuffix())"
        let servers = try topology.startServers(body: token)
        defer { servers.forEach { $0.stop() } }
        let box = try startBox(binary, in: topology, config: Self.tproxyConfig())
        defer { box.stop() }

        // TCP, IPv4 and IPv6: the body comes back through the gateway.
        let (status4, body4) = topology.curl("http://\(GatewayTopology.server4):8080/index.txt")
        #expect(status4 == 0 && body4 == token, "IPv4 curl: \(status4) \(body4)\n\(box.log)")
        let (status6, body6) = topology.curl("http://[\(GatewayTopology.server6)]:8080/index.txt")
        #expect(status6 == 0 && body6 == token, "IPv6 curl: \(status6) \(body6)\n\(box.log)")
        // The inbound saw the original destination, and the client's own address.
        #expect(box.log.contains("inbound connection to \(GatewayTopology.server4):8080"))
        #expect(box.log.contains("inbound connection from 10.77.1.2:"))

        // The sniffed HTTP Host routes to reject: curl gets no answer.
        let (blocked, _) = topology.curl("http://\(GatewayTopology.server4):8080/index.txt", host: "blocked.example")
        #expect(blocked != 0, "a rejected flow must not be answered")

        // UDP both ways, both families: the reply comes back from the server's address.
        let reply4 = topology.udpEcho("udp4-\(token)", to: GatewayTopology.server4)
        #expect(reply4 == "udp4-\(token)", "IPv4 UDP echo: \(reply4)\n\(box.log)")
        let reply6 = topology.udpEcho("udp6-\(token)", to: GatewayTopology.server6)
        #expect(reply6 == "udp6-\(token)", "IPv6 UDP echo: \(reply6)\n\(box.log)")
        #expect(box.log.contains("inbound packet connection to \(GatewayTopology.server4):9000"))

        // QUIC from a real client: the Initial's SNI is sniffed; a quic+domain rule rejects one
        // name, the other is relayed (the echo server returns the datagrams).
        #expect(topology.quicEcho(serverName: "allowed-quic.example", to: GatewayTopology.server4) > 0, "\(box.log)")
        #expect(topology.quicEcho(serverName: "blocked-quic.example", to: GatewayTopology.server4) == 0, "\(box.log)")
        #expect(box.log.contains("sniffed packet protocol: quic, domain: allowed-quic.example, client: firefox"), "\(box.log)")
        // A ClientHello over several Initials: reassembled, and reported as Go reports it.
        #expect(topology.quicEcho(serverName: "split-quic.example", to: GatewayTopology.server4, extraALPN: 40) > 0)
        #expect(box.log.contains("sniffed packet protocol: quic, domain: split-quic.example, client: chromium"), "\(box.log)")

        // A server-first protocol is not held by the sniffer beyond its timeout.
        let start = Date()
        #expect(topology.serverFirstGreeting(from: GatewayTopology.server4).hasPrefix("server-first"))
        #expect(Date().timeIntervalSince(start) < 3)
    }

    func exerciseRedirect(_ binary: String) throws {
        let topology = try GatewayTopology()
        try topology.installRedirectRules(port: Self.port)
        let token = "redirect-\(uniqueSuffix())"
        let servers = try topology.startServers(body: token)
        defer { servers.forEach { $0.stop() } }
        let box = try startBox(binary, in: topology, config: Self.redirectConfig())
        defer { box.stop() }

        let (status4, body4) = topology.curl("http://\(GatewayTopology.server4):8080/index.txt")
        #expect(status4 == 0 && body4 == token, "IPv4 curl: \(status4) \(body4)\n\(box.log)")
        let (status6, body6) = topology.curl("http://[\(GatewayTopology.server6)]:8080/index.txt")
        #expect(status6 == 0 && body6 == token, "IPv6 curl: \(status6) \(body6)\n\(box.log)")
        #expect(box.log.contains("inbound connection to \(GatewayTopology.server4):8080"))
        #expect(box.log.contains("inbound connection to [\(GatewayTopology.server6)]:8080"))
        let (blocked, _) = topology.curl("http://\(GatewayTopology.server4):8080/index.txt", host: "blocked.example")
        #expect(blocked != 0, "a rejected flow must not be answered")
    }

    @Test(.timeLimit(.minutes(2))) func tproxyCarriesTCPAndUDPBothFamilies() throws {
        try exerciseTProxy(Binaries.ours)
    }

    @Test(.timeLimit(.minutes(2))) func goSingBoxPassesTheSameTProxyChecks() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Binaries.go), "run scripts/install-test-deps.sh")
        try exerciseTProxy(Binaries.go)
    }

    @Test(.timeLimit(.minutes(2))) func redirectCarriesTCPBothFamilies() throws {
        try exerciseRedirect(Binaries.ours)
    }

    @Test(.timeLimit(.minutes(2))) func goSingBoxPassesTheSameRedirectChecks() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Binaries.go), "run scripts/install-test-deps.sh")
        try exerciseRedirect(Binaries.go)
    }

    /// A redirect listener reached without a redirect rule has no original destination: Go's error
    /// line, and the connection is closed.
    @Test(.timeLimit(.minutes(1))) func unredirectedConnectionIsClosedWithGoError() throws {
        let topology = try GatewayTopology()
        let box = try startBox(Binaries.ours, in: topology, config: Self.redirectConfig())
        defer { box.stop() }
        let (status, _) = topology.curl("http://10.77.1.1:\(Self.port)/")
        #expect(status != 0)
        #expect(box.waitFor("get redirect destination:", seconds: 5), "\(box.log)")
    }
}

/// Sniffing through the gateway, judged against Go: real clients (kdig, openssl DTLS, ssh, a
/// BitTorrent handshake, curl, aioquic) cross our tproxy and Go's, and both must log the same
/// protocol, domain and client for each.
@Suite(.serialized, .enabled(if: isRoot, "needs root for network namespaces"))
struct SniffAgreementTests {
    /// The "sniffed …" lines one binary logs for the client mix, without flow ids.
    func sniffedLines(_ binary: String) throws -> [String] {
        let topology = try GatewayTopology()
        try topology.installTProxyRules(port: TransparentGatewayTests.port)
        let servers = try topology.startServers(body: "sniff")
        defer { servers.forEach { $0.stop() } }
        let box = try startBox(binary, in: topology, config: TransparentGatewayTests.tproxyConfig())
        defer { box.stop() }
        let server = GatewayTopology.server4
        _ = topology.lan.status(["kdig", "@\(server)", "-p", "9000", "+timeout=1", "+retry=0", "dns.example"], timeout: 5)
        _ = topology.lan.status(["openssl", "s_client", "-dtls1_2", "-connect", "\(server):9000"], timeout: 3)
        _ = topology.lan.status(["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                                 "-o", "ConnectTimeout=3", "-p", "2222", "sniff@\(server)"], timeout: 5)
        _ = topology.lan.status(["sh", "-c", "printf '\\023BitTorrent protocol\\0\\0\\0\\0\\0\\0\\0\\0' | socat -T 2 - TCP:\(server):2222"], timeout: 5)
        _ = topology.curl("http://\(server):8080/index.txt", host: "http.example")
        _ = topology.quicEcho(serverName: "quic.example", to: server)
        usleep(300_000)
        return box.log.split(separator: "\n").compactMap { line -> String? in
            let plain = line.replacingOccurrences(of: "\u{1B}[", with: "")
            guard let range = plain.range(of: "router: sniffed") else { return nil }
            return String(plain[range.lowerBound...])
        }.sorted()
    }

    @Test(.timeLimit(.minutes(2))) func oursAndGoReportTheSameProtocolsDomainsAndClients() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Binaries.go), "run scripts/install-test-deps.sh")
        let ours = try sniffedLines(Binaries.ours)
        let go = try sniffedLines(Binaries.go)
        // One known difference, not copied: Go 1.12.12 runs its DNS sniffer first, and that one
        // returns success without a protocol for any datagram that parses as a DNS *response*. A
        // DTLS 1.2 ClientHello does (0xFEFD sets QR), so Go logs an empty protocol where we say dtls.
        let goEmpty = "router: sniffed packet protocol: "
        #expect(go.filter { $0 == goEmpty }.count == 1)
        #expect(ours.filter { $0 == "router: sniffed packet protocol: dtls" }.count == 1)
        #expect(ours.filter { !$0.hasSuffix("protocol: dtls") } == go.filter { $0 != goEmpty })
        // And the mix was what we think: six protocols.
        for expected in ["packet protocol: dns", "packet protocol: dtls", "protocol: ssh", "protocol: bittorrent",
                         "protocol: http, domain: http.example", "packet protocol: quic, domain: quic.example"] {
            #expect(ours.contains { $0.contains(expected) }, "\(expected) missing from \(ours)")
        }
    }
}

/// examples/tproxy-gateway.{json,nft} stay valid: our `check`, Go's `check`, and nft loading the
/// rules into a namespace of the test's own.
@Suite(.enabled(if: isRoot, "needs root for network namespaces"))
struct TProxyExampleTests {
    static let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("examples").path

    @Test func configPassesOursAndGosCheck() throws {
        let config = Self.examples + "/tproxy-gateway.json"
        let (ours, _, oursError) = try runFull([Binaries.ours, "check", "-c", config])
        #expect(ours == 0, "\(oursError)")
        if FileManager.default.isExecutableFile(atPath: Binaries.go) {
            let (go, _, goError) = try runFull([Binaries.go, "check", "-c", config])
            #expect(go == 0, "\(goError)")
        }
    }

    @Test func nftablesRulesLoad() throws {
        let namespace = try TestNamespace("nft")
        try namespace.exec("nft", "-f", Self.examples + "/tproxy-gateway.nft")
        let listed = try namespace.exec("nft", "list", "table", "inet", "sing-box-tproxy")
        #expect(listed.contains("tproxy ip to :7893"))
        // Loading twice replaces the table (the file deletes it first).
        try namespace.exec("nft", "-f", Self.examples + "/tproxy-gateway.nft")
    }
}

/// The tproxy port already taken (TCP and UDP): the box refuses to start, with Go's words for it.
@Suite(.enabled(if: isRoot, "needs root for network namespaces"))
struct TProxyStartErrorTests {
    @Test(.timeLimit(.minutes(1)), arguments: ["udp", "tcp"]) func busyPortFailsLikeGo(network: String) throws {
        let namespace = try TestNamespace("busy")
        let kind = network == "udp" ? "SOCK_DGRAM" : "SOCK_STREAM"
        let holder = try BackgroundCommand(namespace, ["python3", "-c",
            "import socket, time; s = socket.socket(socket.AF_INET6, socket.\(kind)); s.bind(('::', 7893)); "
            + (network == "tcp" ? "s.listen(); " : "") + "print('bound', flush=True); time.sleep(30)"])
        defer { holder.stop() }
        #expect(holder.waitFor("bound"))
        let config = """
        {"inbounds": [{"type": "tproxy", "tag": "tproxy-in", "listen": "::", "listen_port": 7893, "network": "\(network)"}],
         "outbounds": [{"type": "direct", "tag": "direct"}]}
        """
        let path = NSTemporaryDirectory() + "sbtp-busy-\(uniqueSuffix()).json"
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        var tails: [String] = []
        for binary in [Binaries.ours, Binaries.go] where FileManager.default.isExecutableFile(atPath: binary) {
            let (status, out, errorText) = try runFull(["ip", "netns", "exec", namespace.name, binary, "run", "-c", path], timeout: 10)
            let text = (out + errorText).replacingOccurrences(of: "\u{1B}[", with: "")
            #expect(status != 0, "\(binary) started on a busy port")
            let tail = text.range(of: "start inbound/").map { String(text[$0.lowerBound...]).prefix { $0 != "\n" } }
            #expect(tail == "start inbound/tproxy[tproxy-in]: listen \(network) 0.0.0.0:7893: bind: address already in use", "\(text)")
            tails.append(String(tail ?? ""))
        }
        #expect(Set(tails).count == 1, "\(tails)")
    }
}
