// The shadowsocks outbound's SIP003 plugin `obfs-local` against a real server: shadowsocks-libev's
// `ss-server --plugin obfs-server` (Debian's simple-obfs). Ours and Go sing-box 1.12.12 run side by
// side as clients of the same server and must both download the same bytes; UDP goes to ss-server
// directly, as Go sends it (the plugin wraps TCP only). Bad plugin settings fail as Go's do, and a
// server answering garbage ends the flow with a clear error. Processes are stopped in `defer`s.
import Foundation
import Testing

@Suite(.serialized) struct ShadowsocksPluginInteropTests {
    static let method = "aes-256-gcm", password = "obfs-interop"

    static func outbound(port: UInt16, plugin: String?, options: String, tag: String = "ss-out") -> String {
        let base = String(ShadowsocksConfig.outbound(port: port, method: method, password: password, tag: tag).dropLast())
        guard let plugin else { return base + "}" }
        return base + ",\"plugin\":\"\(plugin)\",\"plugin_opts\":\"\(options)\"}"
    }

    /// ss-server with obfs-server in front on `port` (TCP); its UDP relay listens on `port` itself.
    static func libevServer(port: UInt16, mode: String, in work: TemporaryDirectory) throws -> Spawned {
        let server = try Spawned(ShadowsocksPeerPaths.ssServer, ["-s", "127.0.0.1", "-p", String(port), "-k", password, "-m", method, "-u", "-v",
                                                                 "--plugin", "/usr/bin/obfs-server", "--plugin-opts", "obfs=\(mode)"],
                                 name: "ss-server-obfs-\(mode)", directory: work)
        do {
            try waitForTCP(port: port, process: server)
        } catch {
            server.stop()
            throw error
        }
        return server
    }

    @Test(arguments: ["http", "tls"])
    func obfsLocalAgainstLibevObfsServer(mode: String) throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let serverPort = try freeDualPort(), ourMixed = try freePort(), goMixed = try freePort()
        let server = try Self.libevServer(port: serverPort, mode: mode, in: work)
        defer { server.stop() }
        let options = "obfs=\(mode);obfs-host=www.bing.com"
        // Ours goes through a recorder, to show what went on the wire (obfs-server also lets plain
        // shadowsocks through, so a download alone would not prove the obfuscation).
        let recorder = try TCPRecorder(upstream: serverPort)
        defer { recorder.stop() }
        let ours = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: ourMixed, tag: "m")],
            // UDP skips the plugin, so it takes an outbound to ss-server's own port, not the TCP recorder.
            outbounds: [Self.outbound(port: recorder.port, plugin: "obfs-local", options: options),
                        Self.outbound(port: serverPort, plugin: "obfs-local", options: options, tag: "ss-udp")],
            rules: "[{\"network\":[\"udp\"],\"outbound\":\"ss-udp\"}]"), waitPort: ourMixed, in: work)
        defer { ours.stop() }
        let go = try SingBox(.go, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: goMixed, tag: "m")],
            outbounds: [Self.outbound(port: serverPort, plugin: "obfs-local", options: options)]), waitPort: goMixed, in: work)
        defer { go.stop() }

        try exerciseTCPAndUDP(via: ourMixed, files: files, dns: dns, work: work, label: "ours obfs-\(mode) → ss-server", logs: [ours, server])
        try exerciseTCPAndUDP(via: goMixed, files: files, dns: dns, work: work, label: "Go obfs-\(mode) → ss-server", logs: [go, server])
        #expect(ours.log.contains("outbound/shadowsocks[ss-out]: outbound connection to 127.0.0.1:\(files.port)"), "\(ours.log)")
        #expect(server.log.contains("connect to 127.0.0.1:\(files.port)"), "\(server.log)")
        #expect(ours.log.contains("outbound/shadowsocks[ss-udp]: outbound packet connection to 127.0.0.1:\(dns.port)"), "\(ours.log)")
        let upload = recorder.firstUpload()
        if mode == "http" {
            let head = String(decoding: upload.prefix(200), as: UTF8.self)
            #expect(head.hasPrefix("GET / HTTP/1.1\r\nHost: www.bing.com:\(recorder.port)\r\nUser-Agent: curl/7."), "\(head)")
        } else {
            // ClientHello in a TLS 1.0 record, the SNI at its end before 66 bytes of fixed extensions.
            #expect(Array(upload.prefix(3)) == [0x16, 0x03, 0x01] && upload.count > 300, "\(upload.prefix(16))")
            let helloLength = Int(upload[3]) << 8 | Int(upload[4])
            #expect(String(decoding: upload[(5 + helloLength - 66 - 12)..<(5 + helloLength - 66)], as: UTF8.self) == "www.bing.com")
        }
    }

    /// The plugin also carries what rides shadowsocks TCP streams: `udp_over_tcp` and `multiplex`
    /// (Go's uot and mux clients dial through the plugin). Server: Go's shadowsocks inbound (TCP only,
    /// so UDP must ride UoT) behind a standalone obfs-server; ours and Go as clients side by side.
    @Test(arguments: ["udp_over_tcp", "multiplex"])
    func obfsLocalCarriesUoTAndMultiplexToGo(feature: String) throws {
        let method = "2022-blake3-aes-128-gcm", password = "AAECAwQFBgcICQoLDA0ODw=="
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let goServer = try freePort(), obfsPort = try freePort(), ourMixed = try freePort(), goMixed = try freePort()
        let inbound = String(ShadowsocksConfig.inbound(port: goServer, method: method, password: password).dropLast())
            + ",\"network\":\"tcp\"" + (feature == "multiplex" ? ",\"multiplex\":{\"enabled\":true}" : "") + "}"
        let server = try SingBox(.go, config: ConfigJSON.box(inbounds: [inbound], outbounds: [ConfigJSON.direct]), waitPort: goServer, in: work,
                                 name: "go-server")
        defer { server.stop() }
        let obfs = try Spawned("/usr/bin/obfs-server", ["-s", "127.0.0.1", "-p", String(obfsPort), "-r", "127.0.0.1:\(goServer)", "--obfs", "http", "-v"],
                               name: "obfs-server", directory: work)
        defer { obfs.stop() }
        try waitForTCP(port: obfsPort, process: obfs)
        let extra = feature == "multiplex" ? ",\"multiplex\":{\"enabled\":true,\"protocol\":\"h2mux\"}" : ",\"udp_over_tcp\":true"
        let outbound = String(ShadowsocksConfig.outbound(port: obfsPort, method: method, password: password).dropLast())
            + ",\"plugin\":\"obfs-local\",\"plugin_opts\":\"obfs=http;obfs-host=www.bing.com\"\(extra)}"
        // Ours reaches obfs-server through a tap that notes how each connection starts (obfs-server
        // also forwards unobfuscated bytes, so only the wire shows the plugin was used).
        let tapPort = try freePort(), heads = work.file("heads.txt")
        let tapScript = try work.write("tap.py", Self.tapScript)
        let tap = try Spawned(Peers.python3, [tapScript, String(tapPort), String(obfsPort), heads], name: "tap", directory: work)
        defer { tap.stop() }
        try waitForTCP(port: tapPort, process: tap)
        let ourOutbound = outbound.replacingOccurrences(of: "\"server_port\":\(obfsPort)", with: "\"server_port\":\(tapPort)")
        let ours = try SingBox(.ours, config: ConfigJSON.box(inbounds: [ConfigJSON.mixed(port: ourMixed, tag: "m")], outbounds: [ourOutbound]),
                               waitPort: ourMixed, in: work)
        defer { ours.stop() }
        let go = try SingBox(.go, config: ConfigJSON.box(inbounds: [ConfigJSON.mixed(port: goMixed, tag: "m")], outbounds: [outbound]),
                             waitPort: goMixed, in: work)
        defer { go.stop() }
        try exerciseTCPAndUDP(via: ourMixed, files: files, dns: dns, work: work, label: "ours obfs + \(feature) → Go", logs: [ours, obfs, server])
        // Go's own pair is the reference here; under load its UoT reply is sometimes lost, so its
        // UDP query gets three tries (ours gets one, in exerciseTCPAndUDP above).
        #expect(try curl(["--socks5-hostname", "127.0.0.1:\(goMixed)", files.blobURL]) == files.blob, "Go obfs + \(feature) → Go: TCP")
        let udpScript = try work.write("udp-go.py", socksUDPClientScript)
        let answered = (0..<3).contains { _ in
            let result = try? runTool(Peers.python3, [udpScript, String(goMixed), String(dns.port)])
            return result.map { String(decoding: $0.stdout, as: UTF8.self) } == "127.0.0.1:\(dns.port) 10.1.2.3\n"
        }
        #expect(answered, "Go obfs + \(feature) → Go: UDP\n\(go.log)")
        let expected = feature == "multiplex" ? "outbound multiplex packet connection to 127.0.0.1:\(dns.port)"
            : "outbound UoT packet connection to 127.0.0.1:\(dns.port)"
        #expect(ours.log.contains(expected), "\(ours.log)")
        #expect(go.log.contains(expected), "\(go.log)")
        let starts = ((try? String(contentsOfFile: heads, encoding: .utf8)) ?? "").split(separator: "\n")
        #expect(!starts.isEmpty && starts.allSatisfy { $0 == "GET / HTTP/1.1" }, "\(starts)")
    }

    /// A TCP forwarder that appends the first line of each connection's upload to a file at once.
    static let tapScript = #"""
import socket, sys, threading
port, upstream, heads = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen(64)
lock = threading.Lock()
def pump(src, dst, first):
    try:
        while True:
            chunk = src.recv(65536)
            if not chunk: break
            if first:
                with lock, open(heads, "a") as f: f.write(chunk.split(b"\r\n")[0].decode("latin-1") + "\n")
                first = False
            dst.sendall(chunk)
    except OSError:
        pass
    try: dst.shutdown(socket.SHUT_WR)
    except OSError: pass
def serve(client):
    up = socket.create_connection(("127.0.0.1", upstream))
    threading.Thread(target=pump, args=(up, client, False), daemon=True).start()
    pump(client, up, True)
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""#

    /// `v2ray-plugin` against ss-server behind Debian's v2ray-plugin (`ss-v2ray-plugin -server`):
    /// websocket with mux.cool framing (the default), over TLS, and without mux.cool (`mux=0`, which
    /// this server does not serve, for Go as for us). Ours and Go
    /// side by side; ours through a recorder to show the websocket upgrade (or the TLS record).
    @Test(arguments: ["mux", "nomux", "tls"])
    func v2rayPluginAgainstLibev(variant: String) throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let certificates = try InteropCertificates()
        let serverPort = try freeDualPort(), ourMixed = try freePort(), goMixed = try freePort()
        var serverOptions = "server;path=/ws;host=trojan.test", clientOptions = "path=/ws;host=trojan.test"
        switch variant {
        case "nomux": clientOptions += ";mux=0"
        case "tls":
            serverOptions += ";tls;cert=\(certificates.certificatePath);key=\(certificates.keyPath)"
            clientOptions += ";tls;cert=\(certificates.caPath)"
        default: break
        }
        let server = try Spawned(ShadowsocksPeerPaths.ssServer, ["-s", "127.0.0.1", "-p", String(serverPort), "-k", Self.password, "-m", Self.method,
                                                                 "-u", "-v", "--plugin", "/usr/bin/ss-v2ray-plugin", "--plugin-opts", serverOptions],
                                 name: "ss-server-v2ray-\(variant)", directory: work)
        defer { server.stop() }
        try waitForTCP(port: serverPort, process: server)
        let recorder = try TCPRecorder(upstream: serverPort)
        defer { recorder.stop() }
        let ours = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: ourMixed, tag: "m")],
            outbounds: [Self.outbound(port: recorder.port, plugin: "v2ray-plugin", options: clientOptions),
                        Self.outbound(port: serverPort, plugin: "v2ray-plugin", options: clientOptions, tag: "ss-udp")],
            rules: "[{\"network\":[\"udp\"],\"outbound\":\"ss-udp\"}]"), waitPort: ourMixed, in: work)
        defer { ours.stop() }
        let go = try SingBox(.go, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: goMixed, tag: "m")],
            outbounds: [Self.outbound(port: serverPort, plugin: "v2ray-plugin", options: clientOptions)]), waitPort: goMixed, in: work)
        defer { go.stop() }
        if variant == "nomux" {
            // Debian's v2ray-plugin server (1.3.1) expects mux.cool: a raw websocket stream reaches
            // nothing, from Go as from ours. Same result both ways; the bytes still went out as ws.
            for port in [ourMixed, goMixed] {
                #expect(throws: PeerError.self) { try curl(["--max-time", "4", "--socks5-hostname", "127.0.0.1:\(port)", files.blobURL]) }
            }
            let head = String(decoding: recorder.firstUpload().prefix(300), as: UTF8.self)
            #expect(head.hasPrefix("GET /ws HTTP/1.1\r\nHost: trojan.test\r\n"), "\(head)")
            return
        }
        try exerciseTCPAndUDP(via: ourMixed, files: files, dns: dns, work: work, label: "ours v2ray-plugin \(variant) → ss-server", logs: [ours, server])
        // Go's mux.cool reader (sing-vmess MuxConnWrapper) now and then ends a 2 MiB download with
        // "connection download closed: short buffer" (about one run in four here): Go gets three tries.
        var goBody: Data?
        for _ in 0..<3 where goBody != files.blob {
            goBody = try? curl(["--max-time", "10", "--socks5-hostname", "127.0.0.1:\(goMixed)", files.blobURL])
        }
        #expect(goBody == files.blob, "Go v2ray-plugin \(variant): \(go.log)")
        #expect(server.log.contains("connect to 127.0.0.1:\(files.port)"), "\(server.log)")
        let upload = recorder.firstUpload()
        if variant == "tls" {
            #expect(Array(upload.prefix(1)) == [0x16], "\(upload.prefix(16))")
        } else {
            let head = String(decoding: upload.prefix(300), as: UTF8.self)
            #expect(head.hasPrefix("GET /ws HTTP/1.1\r\nHost: trojan.test\r\n") && head.contains("Upgrade: websocket"), "\(head)")
        }
    }

    /// A server that answers the first request with garbage: ours closes the flow and logs why.
    @Test(arguments: [("http", "simple-obfs http: server reply is not an HTTP response"),
                      ("tls", "simple-obfs tls: record type 72 where ServerHello was expected")])
    func garbageFromTheServerEndsTheFlowWithAClearError(mode: String, message: String) throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let fake = try freePort(), mixed = try freePort()
        // After 16 bytes of the request: a line that is neither HTTP nor TLS, then silence.
        let reply = try work.write("garbage.sh", "head -c 16 >/dev/null; printf 'HELLO THIS IS NOT OBFS\\r\\n\\r\\n'; sleep 3\n")
        let server = try Spawned("/usr/bin/socat", ["TCP-LISTEN:\(fake),bind=127.0.0.1,reuseaddr,fork", "EXEC:/bin/sh \(reply)"],
                                 name: "garbage", directory: work)
        defer { server.stop() }
        try waitForTCP(port: fake, process: server)
        let ours = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: mixed, tag: "m")],
            outbounds: [Self.outbound(port: fake, plugin: "obfs-local", options: "obfs=\(mode)")]), waitPort: mixed, in: work)
        defer { ours.stop() }
        let started = Date()
        #expect(throws: PeerError.self) { try curl(["--max-time", "10", "--socks5-hostname", "127.0.0.1:\(mixed)", files.blobURL]) }
        #expect(Date().timeIntervalSince(started) < 3, "the flow ended only when the server hung up")
        var log = ours.log
        for _ in 0..<40 where !log.contains(message) {
            usleep(50_000)
            log = ours.log
        }
        #expect(log.contains(message), "\(log)")
        #expect(ours.process.isRunning)
    }

    /// Bad `plugin` / `plugin_opts` stop the box with Go's words, and Go says the same.
    @Test func badPluginSettingsFailAsGoFails() throws {
        let work = try TemporaryDirectory()
        let cases: [(String, String, String)] = [
            ("nope", "obfs=http", "plugin not found: nope"),
            ("obfs-local", "obfs=ws", "unknown obfs mode ws"),
            ("obfs-local", #"obfs=tls\\"#, #"parse plugin_opts: nothing following final escape in "tls\\""#),
            ("v2ray-plugin", "mux=x", #"parse mux value: strconv.Atoi: parsing "x": invalid syntax"#),
        ]
        for (index, (plugin, options, expected)) in cases.enumerated() {
            let config = try work.write("bad-\(index).json", ConfigJSON.box(
                inbounds: [], outbounds: [Self.outbound(port: 1, plugin: plugin, options: options)]))
            for implementation in [Peers.go, Peers.ours] {
                let result = try runTool(implementation, ["check", "-c", config], timeout: 10)
                #expect(result.status != 0, "\(implementation) \(plugin) \(options)")
                #expect(result.stderr.contains("initialize outbound[0]: \(expected)"), "\(implementation): \(result.stderr)")
            }
        }
        // What Go builds and this build does not (v2ray-plugin's quic mode): refused at start, not half-run.
        let quic = try work.write("quic.json", ConfigJSON.box(
            inbounds: [], outbounds: [Self.outbound(port: 1, plugin: "v2ray-plugin", options: "mode=quic;host=a.io")]))
        let ours = try runTool(Peers.ours, ["check", "-c", quic], timeout: 10)
        #expect(ours.status != 0)
        #expect(ours.stderr.contains("initialize outbound[0]: not implemented: v2ray-plugin mode quic on shadowsocks outbound"), "\(ours.stderr)")
    }
}
