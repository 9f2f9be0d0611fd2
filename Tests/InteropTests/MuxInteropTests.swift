// sing-mux multiplex against Go sing-box 1.12.12, both ways, for each multiplexer (smux, yamux,
// h2mux) over each protocol that carries it (shadowsocks, vmess, trojan; vless as a client only):
// Go's outbound with `multiplex` → our inbound with `multiplex.enabled`, and our outbound with
// `multiplex` → Go's inbound. Each pairing carries a byte-exact download and a DNS query over UDP
// (`exerciseTCPAndUDP`). Then: padding both ways, several concurrent streams over one session, a
// stream the client drops while another continues, and garbage / truncated mux bytes sent to our
// server (refused with Go's words, the server keeps serving). Every process is stopped in a `defer`.
import Foundation
import Testing

enum MuxConfig {
    static let password = "mux-secret"
    static let uuid = "b831381d-6324-4d53-ad4f-8cda48b30811"

    /// A plain (no TLS) inbound of `type` on `port` with sing-mux enabled.
    static func inbound(_ type: String, port: UInt16, padding: Bool = false) -> String {
        let mux = ",\"multiplex\":{\"enabled\":true\(padding ? ",\"padding\":true" : "")}"
        let head = "{\"type\":\"\(type)\",\"tag\":\"\(type)-in\",\"listen\":\"127.0.0.1\",\"listen_port\":\(port)"
        switch type {
        case "shadowsocks": return head + ",\"method\":\"aes-128-gcm\",\"password\":\"\(password)\"\(mux)}"
        case "vmess": return head + ",\"users\":[{\"name\":\"alice\",\"uuid\":\"\(uuid)\",\"alterId\":0}]\(mux)}"
        case "trojan": return head + ",\"users\":[{\"name\":\"alice\",\"password\":\"\(password)\"}]\(mux)}"
        default: return head + ",\"users\":[{\"name\":\"alice\",\"uuid\":\"\(uuid)\"}]\(mux)}"  // vless
        }
    }

    /// An outbound of `type` to `port` with `multiplex` (protocol, padding, and extra fields).
    static func outbound(_ type: String, port: UInt16, protocol name: String, padding: Bool = false, extra: String = "") -> String {
        let mux = ",\"multiplex\":{\"enabled\":true,\"protocol\":\"\(name)\"\(padding ? ",\"padding\":true" : "")\(extra)}"
        let head = "{\"type\":\"\(type)\",\"tag\":\"proxy\",\"server\":\"127.0.0.1\",\"server_port\":\(port)"
        switch type {
        case "shadowsocks": return head + ",\"method\":\"aes-128-gcm\",\"password\":\"\(password)\"\(mux)}"
        case "vmess": return head + ",\"uuid\":\"\(uuid)\",\"security\":\"aes-128-gcm\"\(mux)}"
        case "trojan": return head + ",\"password\":\"\(password)\"\(mux)}"
        default: return head + ",\"uuid\":\"\(uuid)\",\"packet_encoding\":\"\"\(mux)}"  // vless
        }
    }

    /// A server box: `inbound` to direct.
    static func server(_ inbound: String) -> String {
        ConfigJSON.box(inbounds: [inbound], outbounds: [ConfigJSON.direct])
    }

    /// A client box: a mixed inbound on `mixedPort` to `outbound`.
    static func client(mixedPort: UInt16, outbound: String) -> String {
        ConfigJSON.box(inbounds: [ConfigJSON.mixed(port: mixedPort)], outbounds: [outbound])
    }
}

@Suite(.serialized) struct MuxInteropTests {
    static let protocols = ["smux", "yamux", "h2mux"]
    static let carriers = ["shadowsocks", "vmess", "trojan"]

    /// Go client → our server and our client → Go server, one multiplexer over one protocol.
    @Test(arguments: carriers, protocols)
    func againstGoSingBox(carrier: String, protocol name: String) throws {
        try pairWithGo(carrier: carrier, protocol: name, padding: false)
    }

    /// `padding: true` on both ends (version 1 session request, the first 16 frames padded).
    @Test(arguments: protocols)
    func paddingAgainstGoSingBox(protocol name: String) throws {
        try pairWithGo(carrier: "shadowsocks", protocol: name, padding: true)
    }

    /// `udp_connect` flows (route-options) ride UDP streams without packet addresses (Go's
    /// `DialContext("udp")` → flags 1 only): Go client → ours and ours → Go.
    @Test(arguments: ["smux", "h2mux"])
    func udpConnectStreams(protocol name: String) throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let ourServer = try freePort(), goServer = try freePort(), ourMixed = try freePort(), goMixed = try freePort()
        let connect = "[{\"action\":\"route-options\",\"udp_connect\":true}]"
        let client = { (port: UInt16, server: UInt16) in
            ConfigJSON.box(inbounds: [ConfigJSON.mixed(port: port)], outbounds: [MuxConfig.outbound("shadowsocks", port: server, protocol: name)], rules: connect)
        }
        let oursServer = try SingBox(.ours, config: MuxConfig.server(MuxConfig.inbound("shadowsocks", port: ourServer)), waitPort: ourServer, in: work)
        defer { oursServer.stop() }
        let goServerBox = try SingBox(.go, config: MuxConfig.server(MuxConfig.inbound("shadowsocks", port: goServer)), waitPort: goServer, in: work)
        defer { goServerBox.stop() }
        let goClient = try SingBox(.go, config: client(goMixed, ourServer), waitPort: goMixed, in: work)
        defer { goClient.stop() }
        let oursClient = try SingBox(.ours, config: client(ourMixed, goServer), waitPort: ourMixed, in: work)
        defer { oursClient.stop() }
        try exerciseTCPAndUDP(via: goMixed, files: files, dns: dns, work: work, label: "Go → ours udp_connect \(name)", logs: [oursServer, goClient])
        try exerciseTCPAndUDP(via: ourMixed, files: files, dns: dns, work: work, label: "ours → Go udp_connect \(name)", logs: [oursClient, goServerBox])
        // Go's server names the destination of a stream without packet addresses.
        for server in [oursServer as any SingBoxOrProcess, goServerBox] {
            #expect(server.log.contains("inbound multiplex packet connection to 127.0.0.1:\(dns.port)"), "\(server.log)")
        }
    }

    /// VLESS carries multiplex as a client only (Go's inbound serves it).
    @Test(arguments: protocols)
    func vlessClientToGo(protocol name: String) throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let goServer = try freePort(), ourMixed = try freePort()
        let go = try SingBox(.go, config: MuxConfig.server(MuxConfig.inbound("vless", port: goServer)), waitPort: goServer, in: work)
        defer { go.stop() }
        let ours = try SingBox(.ours, config: MuxConfig.client(mixedPort: ourMixed, outbound: MuxConfig.outbound("vless", port: goServer, protocol: name)),
                               waitPort: ourMixed, in: work)
        defer { ours.stop() }
        try exerciseTCPAndUDP(via: ourMixed, files: files, dns: dns, work: work, label: "ours → Go vless \(name)", logs: [ours, go])
        #expect(go.log.contains("inbound multiplex connection to 127.0.0.1:\(files.port)"), "\(go.log)")
    }

    /// Ours → ours: our outbound's sessions to our inbound, TCP and UDP, each multiplexer over vmess.
    @Test(arguments: protocols)
    func selfToSelf(protocol name: String) throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let server = try freePort(), mixed = try freePort()
        let box = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: mixed, tag: "m"), MuxConfig.inbound("vmess", port: server)],
            outbounds: [ConfigJSON.direct, MuxConfig.outbound("vmess", port: server, protocol: name)],
            rules: "[{\"inbound\":[\"m\"],\"outbound\":\"proxy\"}]"), waitPort: mixed, in: work)
        defer { box.stop() }
        try waitForTCP(port: server, process: box.process)
        try exerciseTCPAndUDP(via: mixed, files: files, dns: dns, work: work, label: "ours → ours vmess \(name)", logs: [box])
        #expect(box.log.contains("inbound multiplex connection to 127.0.0.1:\(files.port)"), "\(box.log)")
    }

    /// A client that sends its request and half-closes at once still gets the whole response over
    /// the multiplexers with a half-close (yamux FIN flag, h2mux END_STREAM): ours → Go and ours →
    /// ours. (smux has none: its FIN ends both directions, in Go as here.)
    @Test(arguments: ["yamux", "h2mux"])
    func halfCloseGetsTheWholeResponse(protocol name: String) throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let goServer = try freePort(), ourServer = try freePort(), toGo = try freePort(), toOurs = try freePort()
        let go = try SingBox(.go, config: MuxConfig.server(MuxConfig.inbound("trojan", port: goServer)), waitPort: goServer, in: work)
        defer { go.stop() }
        let ours = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: toGo, tag: "to-go"), ConfigJSON.mixed(port: toOurs, tag: "to-ours"), MuxConfig.inbound("trojan", port: ourServer)],
            outbounds: [ConfigJSON.direct, MuxConfig.outbound("trojan", port: goServer, protocol: name),
                        MuxConfig.outbound("trojan", port: ourServer, protocol: name).replacingOccurrences(of: "\"tag\":\"proxy\"", with: "\"tag\":\"self\"")],
            rules: "[{\"inbound\":[\"to-go\"],\"outbound\":\"proxy\"},{\"inbound\":[\"to-ours\"],\"outbound\":\"self\"}]"),
            waitPort: toGo, in: work)
        defer { ours.stop() }
        try waitForTCP(port: ourServer, process: ours.process)
        let script = try work.write("half-close.py", halfCloseDownloadScript)
        for (port, label) in [(toGo, "ours → Go"), (toOurs, "ours → ours")] {
            let download = try runTool(Peers.python3, [script, String(port), String(files.port)])
            let intact = download.stdout == files.blob  // a Bool: #expect would diff 2 MiB on failure
            #expect(intact, "\(label) \(name): \(download.stdout.count) bytes: \(download.stderr)\n\(ours.log)\n----\n\(go.log)")
        }
    }

    /// A stream whose destination refuses: the server answers status 1 with its dial error and the
    /// client reports `remote error: …`, both ways.
    @Test func dialFailureIsARemoteError() throws {
        let work = try TemporaryDirectory()
        let closed = try freePort()
        let ourServer = try freePort(), goServer = try freePort(), ourMixed = try freePort(), goMixed = try freePort()
        let oursServer = try SingBox(.ours, config: MuxConfig.server(MuxConfig.inbound("shadowsocks", port: ourServer)), waitPort: ourServer, in: work)
        defer { oursServer.stop() }
        let goServerBox = try SingBox(.go, config: MuxConfig.server(MuxConfig.inbound("shadowsocks", port: goServer)), waitPort: goServer, in: work)
        defer { goServerBox.stop() }
        let goClient = try SingBox(.go, config: MuxConfig.client(mixedPort: goMixed, outbound: MuxConfig.outbound("shadowsocks", port: ourServer, protocol: "h2mux")),
                                   waitPort: goMixed, in: work)
        defer { goClient.stop() }
        let oursClient = try SingBox(.ours, config: MuxConfig.client(mixedPort: ourMixed, outbound: MuxConfig.outbound("shadowsocks", port: goServer, protocol: "smux")),
                                     waitPort: ourMixed, in: work)
        defer { oursClient.stop() }
        for (mixed, client) in [(goMixed, goClient), (ourMixed, oursClient)] {
            #expect(throws: PeerError.self) { try curl(["--socks5-hostname", "127.0.0.1:\(mixed)", "http://127.0.0.1:\(closed)/"]) }
            #expect(waitForLog(client, "remote error: "), "\(client.log)")
            #expect(client.log.contains("dial tcp 127.0.0.1:\(closed): connect: connection refused"), "\(client.log)")
        }
        // Both servers send their router's whole message.
        for client in [goClient, oursClient] {
            #expect(client.log.contains("remote error: open connection to 127.0.0.1:\(closed) using outbound/direct[direct]: dial tcp"), "\(client.log)")
        }
    }

    /// A server that requires padding refuses an unpadded session with Go's words; ours as the server.
    @Test func unpaddedSessionRefusedWhenPaddingRequired() throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let ourServer = try freePort(), goMixed = try freePort()
        let ours = try SingBox(.ours, config: MuxConfig.server(MuxConfig.inbound("shadowsocks", port: ourServer, padding: true)),
                               waitPort: ourServer, in: work)
        defer { ours.stop() }
        let go = try SingBox(.go, config: MuxConfig.client(mixedPort: goMixed, outbound: MuxConfig.outbound("shadowsocks", port: ourServer, protocol: "h2mux")),
                             waitPort: goMixed, in: work)
        defer { go.stop() }
        let body = try? curl(["--socks5-hostname", "127.0.0.1:\(goMixed)", "--max-time", "5", files.blobURL])
        #expect(body != files.blob)
        #expect(waitForLog(ours, "non-padded connection rejected"), "\(ours.log)")
    }

    /// Four downloads at once ride one session (max_connections 1), both ways; each is byte-exact
    /// and the server saw a single session.
    @Test(arguments: protocols)
    func concurrentStreamsShareOneSession(protocol name: String) throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let ourServer = try freePort(), goServer = try freePort(), ourMixed = try freePort(), goMixed = try freePort()
        let extra = ",\"max_connections\":1"
        let oursServer = try SingBox(.ours, config: MuxConfig.server(MuxConfig.inbound("trojan", port: ourServer)), waitPort: ourServer, in: work)
        defer { oursServer.stop() }
        let goServerBox = try SingBox(.go, config: MuxConfig.server(MuxConfig.inbound("trojan", port: goServer)), waitPort: goServer, in: work)
        defer { goServerBox.stop() }
        let goClient = try SingBox(.go, config: MuxConfig.client(mixedPort: goMixed, outbound: MuxConfig.outbound("trojan", port: ourServer, protocol: name, extra: extra)),
                                   waitPort: goMixed, in: work)
        defer { goClient.stop() }
        let oursClient = try SingBox(.ours, config: MuxConfig.client(mixedPort: ourMixed, outbound: MuxConfig.outbound("trojan", port: goServer, protocol: name, extra: extra)),
                                     waitPort: ourMixed, in: work)
        defer { oursClient.stop() }
        for (mixed, server, label) in [(goMixed, oursServer as any SingBoxOrProcess, "Go → ours"), (ourMixed, goServerBox, "ours → Go")] {
            let bodies = parallelCurls(count: 4, port: mixed, url: files.blobURL)
            for (index, body) in bodies.enumerated() {
                let intact = body == files.blob
                #expect(intact, "\(label) \(name): download \(index): \(body?.count ?? -1) bytes\n\(server.log)")
            }
            let sessions = server.log.components(separatedBy: "inbound connection to sp.mux.sing-box.arpa:444").count - 1
            let streams = server.log.components(separatedBy: "inbound multiplex connection to 127.0.0.1:\(files.port)").count - 1
            #expect(streams == 4, "\(label) \(name): \(streams) streams\n\(server.log)")
            if label == "Go → ours" {
                #expect(sessions == 1, "\(label) \(name): \(sessions) sessions\n\(server.log)")
            } else {
                // Our client keeps sessions per event loop (a relay joins channels of one loop), so
                // max_connections counts per loop: at most one session per loop, and some session
                // carried several streams at once.
                #expect(sessions >= 1 && sessions <= ProcessInfo.processInfo.activeProcessorCount && sessions < streams,
                        "\(label) \(name): \(sessions) sessions\n\(server.log)")
            }
        }
    }

    /// One stream is reset by the client mid-download while another on the same session is half
    /// read; that one continues to the end byte-exact, and a new stream works afterwards; both ways.
    @Test(arguments: protocols)
    func droppedStreamLeavesOthersRunning(protocol name: String) throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let ourServer = try freePort(), goServer = try freePort(), ourMixed = try freePort(), goMixed = try freePort()
        let extra = ",\"max_connections\":1"
        let oursServer = try SingBox(.ours, config: MuxConfig.server(MuxConfig.inbound("vmess", port: ourServer)), waitPort: ourServer, in: work)
        defer { oursServer.stop() }
        let goServerBox = try SingBox(.go, config: MuxConfig.server(MuxConfig.inbound("vmess", port: goServer)), waitPort: goServer, in: work)
        defer { goServerBox.stop() }
        let goClient = try SingBox(.go, config: MuxConfig.client(mixedPort: goMixed, outbound: MuxConfig.outbound("vmess", port: ourServer, protocol: name, extra: extra)),
                                   waitPort: goMixed, in: work)
        defer { goClient.stop() }
        let oursClient = try SingBox(.ours, config: MuxConfig.client(mixedPort: ourMixed, outbound: MuxConfig.outbound("vmess", port: goServer, protocol: name, extra: extra)),
                                     waitPort: ourMixed, in: work)
        defer { oursClient.stop() }
        let script = try work.write("mux-drop.py", muxDropScript)
        for (mixed, logs, label) in [(goMixed, [oursServer, goClient], "Go → ours"), (ourMixed, [oursClient, goServerBox], "ours → Go")] {
            let result = try runTool(Peers.python3, [script, String(mixed), String(files.port)])
            let survivor = result.stdout == files.blob  // a Bool: #expect would diff 2 MiB on failure
            #expect(survivor, "\(label) \(name): survivor got \(result.stdout.count) bytes: \(result.stderr)\n\(logs.map(\.log).joined(separator: "\n----\n"))")
            let after = (try? curl(["--socks5-hostname", "127.0.0.1:\(mixed)", files.blobURL])) == files.blob
            #expect(after, "\(label) \(name): a new stream after the drop\n\(logs.map(\.log).joined(separator: "\n----\n"))")
        }
        // All of it on one session at the server.
        for server in [oursServer, goServerBox] {
            let sessions = server.log.components(separatedBy: "inbound connection to sp.mux.sing-box.arpa:444").count - 1
            #expect(sessions <= ProcessInfo.processInfo.activeProcessorCount, "\(name): \(sessions) sessions\n\(server.log)")
        }
    }

    /// Garbage and truncated mux bytes inside a valid trojan stream to the magic destination: our
    /// server logs Go's error, closes that session, and goes on serving a real Go client.
    @Test func garbageSessionsRejectedWithoutCrash() throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let ourServer = try freePort(), goMixed = try freePort()
        let ours = try SingBox(.ours, config: MuxConfig.server(MuxConfig.inbound("trojan", port: ourServer)), waitPort: ourServer, in: work)
        defer { ours.stop() }
        let script = try work.write("mux-garbage.py", muxGarbageScript)
        // (session bytes as hex, what our log must then say)
        let cases: [(String, String)] = [
            ("0500", "unsupported version: 5"),
            ("0007", "unexpected protocol 7"),
            ("01", ": EOF"),
            // smux: version 9; command 9
            ("0000" + "09000000" + "03000000", "smux: invalid protocol version 9"),
            ("0000" + "01090000" + "03000000", "smux: invalid protocol command 9"),
            // yamux: type 7; a data frame of 1 MiB against a 256 KiB window
            ("0001" + "0007" + "0000" + "00000001" + "00000000", "yamux: invalid msg type 7"),
            ("0001" + "0000" + "0001" + "00000001" + "00100000", "yamux: recv window exceeded"),
            // h2mux: HTTP/1.1 instead of the HTTP/2 preface
            ("0002" + Data("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8).map { String(format: "%02x", $0) }.joined(),
             "process multiplex connection from"),
            // smux SYN 3, then PSH 3 with a stream request cut after its flags; then one with family 9
            ("0000" + "01000000" + "03000000" + "01020200" + "03000000" + "0001", "read multiplex stream request: EOF"),
            ("0000" + "01000000" + "03000000" + "01020300" + "03000000" + "000209", "read multiplex stream request: unknown address family: 9"),
        ]
        for (hex, expected) in cases {
            let before = ours.log.count
            let result = try runTool(Peers.python3, [script, String(ourServer), MuxConfig.password, hex])
            #expect(result.status == 0, "\(hex): \(result.stderr)")
            #expect(waitForLog(ours, expected, after: before), "\(hex): no \"\(expected)\" in\n\(ours.log)")
        }
        let go = try SingBox(.go, config: MuxConfig.client(mixedPort: goMixed, outbound: MuxConfig.outbound("trojan", port: ourServer, protocol: "smux")),
                             waitPort: goMixed, in: work)
        defer { go.stop() }
        let intact = (try? curl(["--socks5-hostname", "127.0.0.1:\(goMixed)", files.blobURL])) == files.blob
        #expect(intact, "after garbage\n\(ours.log)\n\(go.log)")
    }

    /// `brutal` is not in this build: the start fails naming it, inbound and outbound; an unknown
    /// protocol name fails with Go's words (Go says the same for the same config).
    @Test func configErrors() throws {
        let work = try TemporaryDirectory()
        let brutal = ",\"brutal\":{\"enabled\":true,\"up_mbps\":100,\"down_mbps\":100}"
        let inbound = MuxConfig.inbound("shadowsocks", port: try freePort()).replacingOccurrences(of: "{\"enabled\":true}", with: "{\"enabled\":true\(brutal)}")
        let cases: [(String, String, Bool)] = [
            (MuxConfig.server(inbound), "initialize inbound[0]: not implemented: multiplex brutal", false),
            (MuxConfig.client(mixedPort: try freePort(), outbound: MuxConfig.outbound("vmess", port: 1, protocol: "h2mux", extra: brutal)),
             "initialize outbound[0]: not implemented: multiplex brutal", false),
            (MuxConfig.client(mixedPort: try freePort(), outbound: MuxConfig.outbound("trojan", port: 1, protocol: "qmux")),
             "unknown protocol: qmux", true),
        ]
        for (config, expected, goAgrees) in cases {
            let path = try work.write("bad.json", config)
            let run = try runTool(Peers.ours, ["run", "-c", path], timeout: 10)
            #expect(run.status != 0 && run.stderr.contains(expected), "\(run.stderr)")
            if goAgrees {
                let go = try runTool(Peers.go, ["run", "-c", path], timeout: 10)
                #expect(go.status != 0 && go.stderr.contains(expected), "Go: \(go.stderr)")
            }
        }
    }

    /// The corpus config with multiplex on a shadowsocks inbound (padding) and outbound (h2mux) starts
    /// (its listeners moved to free loopback ports).
    @Test func corpusShadowsocksConfigStarts() throws {
        let work = try TemporaryDirectory()
        let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("ConfigTests/Corpus/valid-shadowsocks.json")
        let first = try freePort(), second = try freePort()
        let text = try String(contentsOf: corpus, encoding: .utf8)
            .replacingOccurrences(of: "\"listen\": \"::\", \"listen_port\": 8388", with: "\"listen\": \"127.0.0.1\", \"listen_port\": \(first)")
            .replacingOccurrences(of: "\"listen_port\": 8389", with: "\"listen\": \"127.0.0.1\", \"listen_port\": \(second)")
        #expect(text.contains("\"multiplex\""))
        let box = try SingBox(.ours, config: text, waitPort: first, in: work)
        defer { box.stop() }
        try waitForTCP(port: second, process: box.process)
        #expect(waitForLog(box, "sing-box started"), "\(box.log)")
    }

    private func pairWithGo(carrier: String, protocol name: String, padding: Bool) throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let ourServer = try freePort(), goServer = try freePort(), ourMixed = try freePort(), goMixed = try freePort()
        let oursServer = try SingBox(.ours, config: MuxConfig.server(MuxConfig.inbound(carrier, port: ourServer, padding: padding)),
                                     waitPort: ourServer, in: work)
        defer { oursServer.stop() }
        let goServerBox = try SingBox(.go, config: MuxConfig.server(MuxConfig.inbound(carrier, port: goServer, padding: padding)),
                                      waitPort: goServer, in: work)
        defer { goServerBox.stop() }
        let goClient = try SingBox(.go, config: MuxConfig.client(mixedPort: goMixed, outbound: MuxConfig.outbound(carrier, port: ourServer, protocol: name, padding: padding)),
                                   waitPort: goMixed, in: work)
        defer { goClient.stop() }
        let oursClient = try SingBox(.ours, config: MuxConfig.client(mixedPort: ourMixed, outbound: MuxConfig.outbound(carrier, port: goServer, protocol: name, padding: padding)),
                                     waitPort: ourMixed, in: work)
        defer { oursClient.stop() }
        try exerciseTCPAndUDP(via: goMixed, files: files, dns: dns, work: work, label: "Go → ours \(carrier) \(name)", logs: [oursServer, goClient])
        try exerciseTCPAndUDP(via: ourMixed, files: files, dns: dns, work: work, label: "ours → Go \(carrier) \(name)", logs: [oursClient, goServerBox])
        // The flows went through mux streams on both servers (Go's words for a stream).
        #expect(oursServer.log.contains("inbound multiplex connection to 127.0.0.1:\(files.port)"), "\(oursServer.log)")
        #expect(oursServer.log.contains("inbound multiplex packet connection"), "\(oursServer.log)")
        #expect(goServerBox.log.contains("inbound multiplex connection to 127.0.0.1:\(files.port)"), "\(goServerBox.log)")
        #expect(goServerBox.log.contains("inbound multiplex packet connection"), "\(goServerBox.log)")
        #expect(oursClient.log.contains("outbound multiplex connection to 127.0.0.1:\(files.port)"), "\(oursClient.log)")
    }
}

/// Polls `box`'s log (past its first `after` characters) for `text` for up to 3 s.
func waitForLog(_ box: SingBox, _ text: String, after: Int = 0) -> Bool {
    for _ in 0..<30 {
        if box.log.dropFirst(after).contains(text) { return true }
        usleep(100_000)
    }
    return false
}

/// `count` curls of `url` through the SOCKS port at once; each body or nil.
func parallelCurls(count: Int, port: UInt16, url: String) -> [Data?] {
    parallelRun(Array(repeating: ["--socks5-hostname", "127.0.0.1:\(port)", url], count: count))
}

/// Runs one curl per argument list at once; each body, or nil when curl failed.
func parallelRun(_ argumentLists: [[String]]) -> [Data?] {
    let results = NSLock()
    nonisolated(unsafe) var bodies = [Data?](repeating: nil, count: argumentLists.count)
    DispatchQueue.concurrentPerform(iterations: argumentLists.count) { index in
        let body = try? curl(argumentLists[index])
        results.lock()
        bodies[index] = body
        results.unlock()
    }
    return bodies
}

/// Opens a plain trojan stream to sp.mux.sing-box.arpa:444 on 127.0.0.1:<port>, sends the hex bytes
/// as the mux session, then waits (up to 3 s) for the server to close. Exit 0 unless connecting failed.
let muxGarbageScript = #"""
import hashlib, socket, sys
port, password, payload = int(sys.argv[1]), sys.argv[2], bytes.fromhex(sys.argv[3])
key = hashlib.sha224(password.encode()).hexdigest().encode()
name = b"sp.mux.sing-box.arpa"
header = key + b"\r\n" + b"\x01\x03" + bytes([len(name)]) + name + (444).to_bytes(2, "big") + b"\r\n"
s = socket.create_connection(("127.0.0.1", port), timeout=3)
s.sendall(header + payload)
try:
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
except OSError:
    pass
s.close()
"""#

/// Through the SOCKS5 port argv[1]: download /blob.bin from 127.0.0.1:argv[2] on stream A, read
/// 100 KB, open stream B, read 50 KB of it and reset it, then finish A; A's body to stdout.
let muxDropScript = #"""
import socket, struct, sys, time
proxy, target = int(sys.argv[1]), int(sys.argv[2])
def open_stream():
    s = socket.create_connection(("127.0.0.1", proxy), timeout=10)
    s.sendall(b"\x05\x01\x00")
    if s.recv(2) != b"\x05\x00": raise SystemExit("greeting")
    s.sendall(b"\x05\x01\x00\x01\x7f\x00\x00\x01" + target.to_bytes(2, "big"))
    reply = b""
    while len(reply) < 10: reply += s.recv(10 - len(reply))
    if reply[1] != 0: raise SystemExit("connect %d" % reply[1])
    s.sendall(b"GET /blob.bin HTTP/1.0\r\n\r\n")
    return s
def read_at_least(s, n, data):
    while len(data) < n:
        chunk = s.recv(65536)
        if not chunk: break
        data += chunk
    return data
a = open_stream()
body = read_at_least(a, 100000, b"")
b = open_stream()
dropped = read_at_least(b, 50000, b"")
b.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
b.close()
sys.stderr.write("dropped after %d bytes\n" % len(dropped))
time.sleep(0.3)
while True:
    chunk = a.recv(65536)
    if not chunk: break
    body += chunk
sys.stdout.buffer.write(body.split(b"\r\n\r\n", 1)[1])
"""#
