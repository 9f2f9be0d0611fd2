// Real clients (curl, python) and Go sing-box 1.12.12 against our mixed inbound, and our socks/http
// outbounds against Go's mixed inbound. Each test starts its own processes on fresh ports and
// stops them on every exit path.
import Foundation
import Testing

@Suite(.serialized) struct MixedInteropTests {
    /// curl through our mixed inbound, each way a client can speak to it, byte-exact.
    @Test func curlThroughOurMixed() throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let open = try freePort(), locked = try freePort()
        let box = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: open, tag: "open"), ConfigJSON.mixed(port: locked, users: [("bob", "s3cret")], tag: "locked")],
            outbounds: [ConfigJSON.direct]), waitPort: open, in: work)
        defer { box.stop() }
        try waitForTCP(port: locked, process: box.process)

        let ways: [[String]] = [
            ["--socks5-hostname", "127.0.0.1:\(open)"],
            ["--socks5", "127.0.0.1:\(open)"],
            ["--socks4a", "127.0.0.1:\(open)"],
            ["--socks4", "127.0.0.1:\(open)"],
            ["-x", "http://127.0.0.1:\(open)"],
            ["-x", "http://127.0.0.1:\(open)", "--proxytunnel"],
            ["-x", "socks5h://bob:s3cret@127.0.0.1:\(locked)"],
            ["-x", "http://127.0.0.1:\(locked)", "--proxy-user", "bob:s3cret"],
            ["-x", "http://127.0.0.1:\(locked)", "--proxy-user", "bob:s3cret", "--proxytunnel"],
        ]
        for way in ways {
            let body = try curl(way + [files.blobURL])
            #expect(body == files.blob, "\(way)")
        }
        // Wrong or missing credentials fail.
        for way in [["-x", "socks5h://bob:wrong@127.0.0.1:\(locked)"], ["--socks5-hostname", "127.0.0.1:\(locked)"],
                    ["-x", "http://127.0.0.1:\(locked)", "--proxy-user", "bob:wrong", "--proxytunnel"]] {
            #expect(throws: PeerError.self, "\(way)") { try curl(way + [files.blobURL]) }
        }
        // A plain request with wrong credentials gets Go's 407 and its realm.
        let denied = try runTool(Peers.curl, ["-s", "-i", "-x", "http://127.0.0.1:\(locked)", "--proxy-user", "bob:wrong", files.blobURL])
        let head = String(decoding: denied.stdout, as: UTF8.self)
        #expect(head.hasPrefix("HTTP/1.1 407 Proxy Authentication Required\r\n"))
        #expect(head.contains("Proxy-Authenticate: Basic realm=\"sing-box\" charset=\"UTF-8\"\r\n"))
        #expect(box.log.contains("[bob] inbound connection to 127.0.0.1:\(files.port)"))
    }

    /// A `direct` inbound's listen `detour` hands each connection to another inbound, which runs its
    /// own handshake on it (Go's inbound detour): curl speaks SOCKS5 and HTTP to the direct port,
    /// and the route rules see the detour target as the inbound. A detour to a missing tag fails the
    /// connection with Go's error, on a `direct` inbound at once, on a `mixed` one after its own
    /// handshake (Go's listener gives every TCP inbound the detour). Ours and Go sing-box 1.12.12
    /// run the same config.
    @Test(arguments: [Implementation.ours, .go])
    func inboundDetourHandsConnectionsToTheNamedInbound(implementation: Implementation) throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let front = try freePort(), back = try freePort(), lost = try freePort(), lostMixed = try freePort(), outer = try freePort()
        func direct(_ port: UInt16, tag: String, detour: String) -> String {
            "{\"type\":\"direct\",\"tag\":\"\(tag)\",\"listen\":\"127.0.0.1\",\"listen_port\":\(port),\"detour\":\"\(detour)\"}"
        }
        let mixedLost = ConfigJSON.mixed(port: lostMixed, tag: "plain").dropLast() + ",\"detour\":\"nowhere\"}"
        let mixedOuter = ConfigJSON.mixed(port: outer, tag: "outer").dropLast() + ",\"detour\":\"back\"}"
        let box = try SingBox(implementation, config: ConfigJSON.box(
            inbounds: [direct(front, tag: "front", detour: "back"), ConfigJSON.mixed(port: back, tag: "back"),
                       direct(lost, tag: "lost", detour: "nowhere"), String(mixedLost), String(mixedOuter)],
            outbounds: [ConfigJSON.block, ConfigJSON.direct],
            rules: "[{\"inbound\":[\"back\",\"plain\"],\"outbound\":\"direct\"}]"),
            waitPort: front, in: work)
        defer { box.stop() }
        for port in [back, lost, lostMixed, outer] { try waitForTCP(port: port, process: box.process) }
        for way in [["--socks5-hostname", "127.0.0.1:\(front)"], ["-x", "http://127.0.0.1:\(front)"],
                    ["-x", "http://127.0.0.1:\(front)", "--proxytunnel"]] {
            do {
                #expect(try curl(way + [files.blobURL]) == files.blob, "\(implementation) \(way)")
            } catch {
                Issue.record("\(implementation) \(way): \(error)\n\(box.log)")
            }
        }
        // A mixed inbound with a detour: after its own SOCKS5 handshake (answered), the stream goes to
        // `back`, which wants a second one; then HTTP reaches the file server.
        let fd = connectTCP(port: outer)
        defer { close(fd) }
        let connect: [UInt8] = [5, 1, 0, 1, 127, 0, 0, 1, UInt8(files.port >> 8), UInt8(files.port & 0xff)]
        for hop in ["outer", "back"] {
            #expect(writeAll(fd, [5, 1, 0]) && readAll(fd, timeout: 3, limit: 2) == [5, 0], "\(implementation) \(hop) greeting")
            #expect(writeAll(fd, connect) && readAll(fd, timeout: 3, limit: 10).prefix(2) == [5, 0], "\(implementation) \(hop) CONNECT")
        }
        #expect(writeAll(fd, Array("GET /blob.bin HTTP/1.0\r\n\r\n".utf8)))
        let response = readAll(fd, timeout: 5, limit: 4 << 20)
        #expect(response.count > files.blob.count && Data(response.suffix(files.blob.count)) == files.blob, "\(implementation) through outer → back")
        #expect(throws: PeerError.self) { try curl(["--socks5-hostname", "127.0.0.1:\(lost)", files.blobURL]) }
        #expect(throws: PeerError.self) { try curl(["--socks5", "127.0.0.1:\(lostMixed)", files.blobURL]) }
        let log = box.log
        // Three times: the readiness probe of the direct port, the curl to it, the curl to the mixed port.
        #expect(log.components(separatedBy: "inbound detour not found: nowhere").count - 1 == 3, "\(implementation): \(log)")
        #expect(log.contains("inbound/mixed[plain]: inbound connection to 127.0.0.1:\(files.port)"), "\(implementation): \(log)")
        #expect(log.contains("inbound/mixed[back]") && log.contains("inbound connection to 127.0.0.1:\(files.port)"), "\(log)")
    }

    /// A listen `detour` into a vmess, vless or trojan inbound (each has its own early-bytes holder
    /// in the pipeline the detour injects into): Go's client speaks the protocol to a `direct` port
    /// whose detour is that inbound, TCP and UDP, ours and Go sing-box 1.12.12 as the server with
    /// the same config.
    @Test(arguments: [Implementation.ours, .go])
    func inboundDetourIntoProxyInbounds(implementation: Implementation) throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let uuid = "b831381d-6324-4d53-ad4f-8cda48b30811"
        let protocols: [(type: String, user: String, client: String)] = [
            ("vmess", #"{"name":"a","uuid":"\#(uuid)"}"#, #""uuid":"\#(uuid)","security":"aes-128-gcm""#),
            ("vless", #"{"name":"a","uuid":"\#(uuid)"}"#, #""uuid":"\#(uuid)""#),
            ("trojan", #"{"name":"a","password":"pw"}"#, #""password":"pw""#),
        ]
        for entry in protocols {
            let front = try freePort(), back = try freePort(), mixed = try freePort()
            let server = ConfigJSON.box(
                inbounds: [#"{"type":"direct","tag":"front","listen":"127.0.0.1","listen_port":\#(front),"detour":"back"}"#,
                           #"{"type":"\#(entry.type)","tag":"back","listen":"127.0.0.1","listen_port":\#(back),"users":[\#(entry.user)]}"#],
                outbounds: [ConfigJSON.direct])
            let box = try SingBox(implementation, config: server, waitPort: front, in: work, name: "\(implementation)-\(entry.type)")
            defer { box.stop() }
            let client = try SingBox(.go, config: ConfigJSON.box(
                inbounds: [ConfigJSON.mixed(port: mixed)],
                outbounds: [#"{"type":"\#(entry.type)","tag":"proxy","server":"127.0.0.1","server_port":\#(front),\#(entry.client)}"#]),
                waitPort: mixed, in: work, name: "go-client-\(entry.type)")
            defer { client.stop() }
            try exerciseTCPAndUDP(via: mixed, files: files, dns: dns, work: work, label: "\(implementation) \(entry.type) behind a detour",
                                  logs: [box, client])
            #expect(box.log.contains("inbound/\(entry.type)[back]: [a] inbound connection to 127.0.0.1:\(files.port)"), "\(box.log)")
        }
    }

    /// The `direct` rule action (dial fields inline): Go 1.12.12 parses it, logs the match and goes on
    /// to the next rule, acting on it nowhere. Both implementations route through the rule after it.
    @Test(arguments: [Implementation.ours, .go])
    func directRuleActionIsMatchedAndPassedOver(implementation: Implementation) throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let port = try freePort()
        let box = try SingBox(implementation, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: port)],
            outbounds: [ConfigJSON.block, ConfigJSON.direct],
            rules: "[{\"inbound\":[\"in\"],\"action\":\"direct\",\"bind_interface\":\"lo\",\"routing_mark\":4660,\"tcp_fast_open\":true},"
                + "{\"inbound\":[\"in\"],\"outbound\":\"direct\"}]"),
            waitPort: port, in: work)
        defer { box.stop() }
        #expect(try curl(["--socks5", "127.0.0.1:\(port)", files.blobURL]) == files.blob, "\(implementation)")
        let log = box.log
        #expect(log.contains("match[0] inbound=in => direct(bind_interface=lo,routing_mark=0x1234,...)"), "\(implementation): \(log)")
        #expect(log.contains("match[1] inbound=in => route(direct)"), "\(implementation): \(log)")
    }

    /// `selector`: flows go to its `default` member, or to its first one without a default (a block
    /// here), through groups of groups too; the member logs the connection. Ours and Go alike.
    @Test(arguments: [Implementation.ours, .go])
    func selectorSendsFlowsToItsDefaultOrFirstMember(implementation: Implementation) throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let viaDefault = try freePort(), viaFirst = try freePort(), viaNested = try freePort()
        let box = try SingBox(implementation, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: viaDefault, tag: "a"), ConfigJSON.mixed(port: viaFirst, tag: "b"),
                       ConfigJSON.mixed(port: viaNested, tag: "c")],
            outbounds: [ConfigJSON.direct, ConfigJSON.block,
                        "{\"type\":\"selector\",\"tag\":\"pick\",\"outbounds\":[\"block\",\"direct\"],\"default\":\"direct\"}",
                        "{\"type\":\"selector\",\"tag\":\"first\",\"outbounds\":[\"block\",\"direct\"]}",
                        "{\"type\":\"selector\",\"tag\":\"outer\",\"outbounds\":[\"pick\",\"first\"]}"],
            rules: "[{\"inbound\":[\"a\"],\"outbound\":\"pick\"},{\"inbound\":[\"b\"],\"outbound\":\"first\"},"
                + "{\"inbound\":[\"c\"],\"outbound\":\"outer\"}]"),
            waitPort: viaDefault, in: work)
        defer { box.stop() }
        #expect(try curl(["--socks5", "127.0.0.1:\(viaDefault)", files.blobURL]) == files.blob, "\(implementation) default member")
        #expect(throws: PeerError.self, "\(implementation) first member (block)") { try curl(["--socks5", "127.0.0.1:\(viaFirst)", files.blobURL]) }
        #expect(try curl(["--socks5", "127.0.0.1:\(viaNested)", files.blobURL]) == files.blob, "\(implementation) selector of selectors")
        let log = box.log
        #expect(log.contains("=> route(pick)") && log.contains("outbound/direct[direct]: outbound connection to 127.0.0.1:\(files.port)")
                && log.contains("outbound/block[block]: blocked connection to 127.0.0.1:\(files.port)"), "\(implementation): \(log)")
    }

    /// `urltest`: after start every member is probed with a HEAD of `url` through it; a member that
    /// cannot reach it is logged unavailable and flows go to the one that answered. Ours and Go alike.
    @Test(arguments: [Implementation.ours, .go])
    func urltestProbesMembersAndPicksOneThatAnswers(implementation: Implementation) throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let port = try freePort(), dead = try freePort()
        let box = try SingBox(implementation, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: port)],
            outbounds: [ConfigJSON.direct, ConfigJSON.socksOut(port: dead, tag: "dead"),
                        "{\"type\":\"urltest\",\"tag\":\"auto\",\"outbounds\":[\"dead\",\"direct\"],"
                            + "\"url\":\"http://127.0.0.1:\(files.port)/blob.bin\",\"interval\":\"1m\"}"],
            rules: "[{\"inbound\":[\"in\"],\"outbound\":\"auto\"}]"),
            waitPort: port, in: work)
        defer { box.stop() }
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline && !(box.log.contains("outbound direct available: ") && box.log.contains("outbound dead unavailable: ")) {
            usleep(100_000)
        }
        #expect(box.log.contains("outbound/urltest[auto]: outbound direct available: "), "\(implementation): \(box.log)")
        #expect(box.log.contains("outbound/urltest[auto]: outbound dead unavailable: "), "\(implementation): \(box.log)")
        #expect(try curl(["--socks5", "127.0.0.1:\(port)", files.blobURL]) == files.blob, "\(implementation)")
        #expect(box.log.contains("=> route(auto)") && box.log.contains("outbound/direct[direct]: outbound connection to 127.0.0.1:\(files.port)"),
                "\(implementation): \(box.log)")
    }

    /// The `socks` and `http` inbound types on their own, and the router's sniff action through
    /// our handshakes: only a sniffed `http` flow may leave through `direct` (the default blocks).
    @Test func socksAndHTTPInboundsAndSniffing() throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let socksPort = try freePort(), httpPort = try freePort(), sniffPort = try freePort()
        let box = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: socksPort, type: "socks", tag: "s"), ConfigJSON.mixed(port: httpPort, type: "http", tag: "h"),
                       ConfigJSON.mixed(port: sniffPort, tag: "sniff")],
            outbounds: [ConfigJSON.block, ConfigJSON.direct],
            rules: "[{\"inbound\":[\"s\",\"h\"],\"outbound\":\"direct\"},{\"action\":\"sniff\"},{\"protocol\":\"http\",\"outbound\":\"direct\"}]"),
            waitPort: socksPort, in: work)
        defer { box.stop() }
        try waitForTCP(port: httpPort, process: box.process)
        for way in [["--socks5-hostname", "127.0.0.1:\(socksPort)"], ["--socks4a", "127.0.0.1:\(socksPort)"],
                    ["-x", "http://127.0.0.1:\(httpPort)"], ["-x", "http://127.0.0.1:\(httpPort)", "--proxytunnel"],
                    ["--socks5-hostname", "127.0.0.1:\(sniffPort)"], ["-x", "http://127.0.0.1:\(sniffPort)"],
                    ["-x", "http://127.0.0.1:\(sniffPort)", "--proxytunnel"]] {
            do {
                #expect(try curl(way + [files.blobURL]) == files.blob, "\(way)")
            } catch {
                Issue.record("\(error)\n\(box.log)")
            }
        }
        // A `socks` inbound does not speak HTTP.
        #expect(throws: PeerError.self) { try curl(["-x", "http://127.0.0.1:\(socksPort)", files.blobURL]) }
        // Without a sniffable protocol (the client sends nothing) the default, block, applies.
        let fd = connectTCP(port: sniffPort)
        writeAll(fd, [0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x01, 127, 0, 0, 1] + [UInt8(files.port >> 8), UInt8(files.port & 0xff)])
        let answer = readAll(fd, timeout: 3)
        close(fd)
        // Sniffing answers the client first (as Go's lazy reply does when the sniffer reads), so the
        // blocked flow sees success and then the close, never a byte of the file server.
        #expect(answer == [0x05, 0x00, 0x05, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0], "\(answer)")
        #expect(box.log.contains("using outbound/block[block]"))
    }

    /// UDP ASSOCIATE carries a DNS query to dnsmasq and the answer back.
    @Test func udpAssociateRelaysDNS() throws {
        let work = try TemporaryDirectory()
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let open = try freePort(), locked = try freePort()
        let box = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: open, tag: "open"), ConfigJSON.mixed(port: locked, users: [("bob", "pw")], tag: "locked")],
            outbounds: [ConfigJSON.direct]), waitPort: open, in: work)
        defer { box.stop() }
        let script = try work.write("udp.py", socksUDPClientScript)
        let baseline = box.process.openFileCount
        for args in [[String(open), String(dns.port)], [String(locked), String(dns.port), "bob", "pw"]] {
            let result = try runTool(Peers.python3, [script] + args)
            #expect(result.status == 0, "\(result.stderr)\n\(box.log)")
            #expect(String(decoding: result.stdout, as: UTF8.self) == "127.0.0.1:\(dns.port) 10.1.2.3\n")
        }
        // The client's exit closes its TCP connection, which ends each association (RFC 1928 §7):
        // its sockets are released at once, not after the UDP idle timeout.
        var after = box.process.openFileCount
        for _ in 0..<60 where after > baseline {
            usleep(50_000)
            after = box.process.openFileCount
        }
        #expect(after <= baseline, "fds: \(baseline) before, \(after) after")
    }

    /// Go's socks (5 and 4a) and http outbounds, with credentials, through our mixed inbound.
    @Test func goOutboundsThroughOurMixed() throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let ours = try freePort()
        let box = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: ours, users: [("bob", "pw"), ("carol", "")])], outbounds: [ConfigJSON.direct]),
            waitPort: ours, in: work)
        defer { box.stop() }

        let viaSOCKS5 = try freePort(), viaSOCKS4a = try freePort(), viaHTTP = try freePort(), dnsIn = try freePort(udp: true)
        let go = try SingBox(.go, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: viaSOCKS5, tag: "a"), ConfigJSON.mixed(port: viaSOCKS4a, tag: "b"),
                       ConfigJSON.mixed(port: viaHTTP, tag: "c"),
                       "{\"type\":\"direct\",\"tag\":\"d\",\"listen\":\"127.0.0.1\",\"listen_port\":\(dnsIn),\"network\":\"udp\",\"override_address\":\"127.0.0.1\",\"override_port\":\(dns.port)}"],
            outbounds: [ConfigJSON.socksOut(port: ours, username: "bob", password: "pw", tag: "s5"),
                        ConfigJSON.socksOut(port: ours, version: "4a", username: "carol", tag: "s4"),
                        ConfigJSON.httpOut(port: ours, username: "bob", password: "pw", tag: "h")],
            rules: "[{\"inbound\":[\"a\",\"d\"],\"outbound\":\"s5\"},{\"inbound\":\"b\",\"outbound\":\"s4\"},{\"inbound\":\"c\",\"outbound\":\"h\"}]"),
            waitPort: viaSOCKS5, in: work)
        defer { go.stop() }
        for port in [viaSOCKS5, viaSOCKS4a, viaHTTP] {
            let body = try curl(["--socks5-hostname", "127.0.0.1:\(port)", files.blobURL])
            #expect(body == files.blob, "via Go inbound \(port)\n\(go.log)")
        }
        for tag in ["socks[s5]", "socks[s4]", "http[h]"] {
            #expect(go.log.contains("outbound/\(tag): outbound connection to 127.0.0.1:\(files.port)"), "\(tag) unused")
        }
        #expect(box.log.contains("[carol] inbound connection to 127.0.0.1:\(files.port)"))
        // UDP: kdig → Go direct inbound → Go socks outbound (UDP ASSOCIATE) → our mixed → dnsmasq.
        let answer = try runTool(Peers.kdig, ["@127.0.0.1", "-p", String(dnsIn), "+short", "+timeout=3", "+retry=2", "test.example", "A"])
        #expect(String(decoding: answer.stdout, as: UTF8.self) == "10.1.2.3\n", "\(answer.stderr)\n\(go.log)\n\(box.log)")
    }

    /// Our socks (5, 4a) and http outbounds through Go's mixed inbound, and our UDP over Go's.
    @Test func ourOutboundsThroughGoMixed() throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let goPort = try freePort()
        let go = try SingBox(.go, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: goPort, users: [("bob", "pw"), ("carol", "")])], outbounds: [ConfigJSON.direct]),
            waitPort: goPort, in: work)
        defer { go.stop() }

        let viaSOCKS5 = try freePort(), viaSOCKS4a = try freePort(), viaHTTP = try freePort()
        let box = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: viaSOCKS5, tag: "a"), ConfigJSON.mixed(port: viaSOCKS4a, tag: "b"),
                       ConfigJSON.mixed(port: viaHTTP, tag: "c")],
            outbounds: [ConfigJSON.socksOut(port: goPort, username: "bob", password: "pw", tag: "s5"),
                        ConfigJSON.socksOut(port: goPort, version: "4a", username: "carol", tag: "s4"),
                        ConfigJSON.httpOut(port: goPort, username: "bob", password: "pw", tag: "h")],
            rules: "[{\"inbound\":\"a\",\"outbound\":\"s5\"},{\"inbound\":\"b\",\"outbound\":\"s4\"},{\"inbound\":\"c\",\"outbound\":\"h\"}]"),
            waitPort: viaSOCKS5, in: work)
        defer { box.stop() }
        for port in [viaSOCKS5, viaSOCKS4a, viaHTTP] {
            let body = try curl(["-x", "http://127.0.0.1:\(port)", "--proxytunnel", files.blobURL])
            #expect(body == files.blob, "via our inbound \(port)\n\(box.log)")
        }
        for tag in ["socks[s5]", "socks[s4]", "http[h]"] {
            #expect(box.log.contains("outbound/\(tag): outbound connection to 127.0.0.1:\(files.port)"), "\(tag) unused")
        }
        #expect(go.log.contains("[carol] inbound connection to 127.0.0.1:\(files.port)"))
        // UDP: python client → our mixed → our socks outbound (UDP ASSOCIATE) → Go's mixed → dnsmasq.
        let script = try work.write("udp.py", socksUDPClientScript)
        let result = try runTool(Peers.python3, [script, String(viaSOCKS5), String(dns.port)])
        #expect(String(decoding: result.stdout, as: UTF8.self) == "127.0.0.1:\(dns.port) 10.1.2.3\n", "\(result.stderr)\n\(box.log)\n\(go.log)")
    }
}

/// Rejected connections through a mixed inbound, ours against Go 1.12.12 as the oracle: `reject` and
/// `reject` with `method: drop` both end the client's request at once (a non-tun connection "will just
/// be closed"), also after the flood rule turned rejects into drops (more than 50 in 30 s).
@Suite(.serialized) struct RejectInteropTests {
    @Test(arguments: [Implementation.ours, .go])
    func rejectAndDropCloseAtOnceAsGoDoes(kind: Implementation) throws {
        let work = try TemporaryDirectory()
        let port = try freePort()
        let rules = #"[{"port":[81],"action":"reject"},{"port":[82],"action":"reject","method":"drop"}]"#
        let box = try SingBox(kind, config: ConfigJSON.box(inbounds: [ConfigJSON.mixed(port: port, tag: "in")],
                                                           outbounds: [ConfigJSON.direct], rules: rules),
                              waitPort: port, in: work)
        defer { box.stop() }
        for target in ["http://127.0.0.1:81/"] + Array(repeating: "http://127.0.0.1:81/", count: 55) + ["http://127.0.0.1:82/"] {
            let started = Date()
            let result = try runTool(Peers.curl, ["--silent", "--max-time", "10", "--socks5", "127.0.0.1:\(port)", target], timeout: 15)
            #expect(result.status != 0, "\(kind) \(target): the request must fail")
            #expect(Date().timeIntervalSince(started) < 5, "\(kind) \(target): failed only after \(Date().timeIntervalSince(started)) s")
        }
    }
}
