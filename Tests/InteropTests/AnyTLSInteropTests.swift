// anytls against Go sing-box 1.12.12 both ways: our outbound → Go's inbound and Go's outbound →
// our inbound (TLS; a byte-exact download and a DNS query over UDP-over-TCP through each), session
// reuse across sequential flows, a wrong password refused with Go's wording on both servers, and
// garbage after TLS on our inbound (random bytes, a SYN before settings, random frames) leaving it
// serving. Concurrent streams on one session are in AnyTLSTests (Go's client never shares one).
import Foundation
import Testing

/// A python TLS client that talks to an anytls server by hand; prints what came back, in hex.
/// argv: port, mode (`garbage`, `short`, `syn-first`, `frames`), password.
private let anyTLSRawClientScript = #"""
import hashlib, os, random, socket, ssl, sys
port, mode, password = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode()
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
s = context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname="trojan.test")
auth = hashlib.sha256(password).digest() + b"\x00\x00"
if mode == "garbage":
    s.sendall(os.urandom(300))
elif mode == "short":
    s.sendall(b"\x01" * 10)
elif mode == "syn-first":
    s.sendall(auth)
    s.sendall(b"\x01\x00\x00\x00\x01\x00\x00")
elif mode == "frames":
    rng = random.Random(7)
    s.sendall(auth)
    s.sendall(b"\x04\x00\x00\x00\x00\x00\x03v=2")
    # Well-formed frames, never a SYN: nothing can open a stream whose random "destination" would
    # be dialed (tests reach loopback only). Unknown commands (11, 200) carry no data, as in Go.
    for _ in range(200):
        command = rng.choice([0, 2, 3, 4, 6, 7, 8, 9, 10, 11, 200])
        data = rng.randbytes(rng.randrange(40)) if command in (0, 2, 4, 6, 7, 10) else b""
        s.sendall(bytes([command]) + rng.randbytes(4) + len(data).to_bytes(2, "big") + data)
    s.close()
    raise SystemExit(0)
data = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
except Exception:
    pass
sys.stdout.write(data.hex())
"""#

@Suite(.serialized) struct AnyTLSInteropTests {
    static func anytlsIn(port: UInt16, tls: String, tag: String = "anytls-in") -> String {
        "{\"type\":\"anytls\",\"tag\":\"\(tag)\",\"listen\":\"127.0.0.1\",\"listen_port\":\(port),"
            + "\"users\":[{\"name\":\"alice\",\"password\":\"correct horse\"},{\"password\":\"nameless\"}],\"tls\":\(tls)}"
    }

    static func anytlsOut(port: UInt16, password: String, tls: String, tag: String = "proxy") -> String {
        "{\"type\":\"anytls\",\"tag\":\"\(tag)\",\"server\":\"127.0.0.1\",\"server_port\":\(port),\"password\":\"\(password)\","
            + "\"idle_session_check_interval\":\"30s\",\"idle_session_timeout\":\"30s\",\"min_idle_session\":1,\"tls\":\(tls)}"
    }

    /// Polls `condition` for up to 3 s (log lines land after the flow ends).
    static func eventually(_ condition: () -> Bool) -> Bool {
        for _ in 0..<30 {
            if condition() { return true }
            usleep(100_000)
        }
        return condition()
    }

    static func count(_ needle: String, in log: String) -> Int {
        log.components(separatedBy: needle).count - 1
    }

    /// Connections an anytls server accepted, less the readiness probe's (it ends in the TLS handshake).
    static func sessions(in log: String) -> Int {
        count("inbound/anytls[anytls-in]: inbound connection from", in: log) - count(": TLS handshake: EOF", in: log)
    }

    /// Our mixed inbound → our anytls outbound → Go's anytls inbound (TLS) → file server / dnsmasq.
    @Test func ourOutboundToGoInbound() throws {
        let work = try TemporaryDirectory()
        let certificates = try InteropCertificates()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let serverPort = try freePort()
        let go = try SingBox(.go, config: ConfigJSON.box(inbounds: [Self.anytlsIn(port: serverPort, tls: certificates.inboundTLS)],
                                                         outbounds: [ConfigJSON.direct]),
                             waitPort: serverPort, in: work, name: "go-anytls")
        defer { go.stop() }
        let good = try freePort(), bad = try freePort()
        let box = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: good, tag: "good"), ConfigJSON.mixed(port: bad, tag: "bad")],
            outbounds: [Self.anytlsOut(port: serverPort, password: "correct horse", tls: certificates.outboundTLS()),
                        Self.anytlsOut(port: serverPort, password: "wrong", tls: certificates.outboundTLS(), tag: "wrong")],
            rules: "[{\"inbound\":[\"bad\"],\"outbound\":\"wrong\"}]"), waitPort: good, in: work)
        defer { box.stop() }
        try waitForTCP(port: bad, process: box.process)

        try exerciseTCPAndUDP(via: good, files: files, dns: dns, work: work, label: "ours → Go", logs: [box, go])
        #expect(go.log.contains("[alice] inbound connection to 127.0.0.1:\(files.port)"), "\(go.log)")
        #expect(go.log.contains("inbound UoT connection to 127.0.0.1:\(dns.port)"), "\(go.log)")
        #expect(box.log.contains("outbound/anytls[proxy]: outbound connection to 127.0.0.1:\(files.port)"), "\(box.log)")
        #expect(box.log.contains("outbound/anytls[proxy]: outbound UoT packet connection to 127.0.0.1:\(dns.port)"), "\(box.log)")

        // Sequential downloads reuse idle sessions: Go accepts fewer connections than it serves streams.
        for round in 0..<4 {
            let intact = (try? curl(["--socks5-hostname", "127.0.0.1:\(good)", files.blobURL])) == files.blob
            #expect(intact, "download \(round)")
        }
        let streams = Self.count("[alice] inbound connection to 127.0.0.1:\(files.port)", in: go.log)
        let sessions = Self.sessions(in: go.log)
        #expect(streams == 5 && sessions < streams, "\(sessions) sessions for \(streams) streams\n\(go.log)")

        // A wrong password: Go refuses the session; the flow fails.
        #expect(throws: PeerError.self) { try curl(["--socks5-hostname", "127.0.0.1:\(bad)", files.blobURL]) }
        #expect(go.log.contains(": unknown user password: fallback disabled"), "\(go.log)")
        // Go's server could not connect: its SYN-ACK carries the error, which ends our stream.
        let refused = try freePort()
        _ = try? curl(["--socks5-hostname", "127.0.0.1:\(good)", "http://127.0.0.1:\(refused)/"])
        #expect(Self.eventually { box.log.contains("connection closed: remote: open connection to 127.0.0.1:\(refused) using outbound/direct[direct]: dial tcp 127.0.0.1:\(refused): connect: connection refused") },
                "\(box.log)")
    }

    /// Go's mixed inbound → Go's anytls outbound → our anytls inbound (TLS) → file server / dnsmasq.
    @Test func goOutboundToOurInbound() throws {
        let work = try TemporaryDirectory()
        let certificates = try InteropCertificates()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let serverPort = try freePort()
        let box = try SingBox(.ours, config: ConfigJSON.box(inbounds: [Self.anytlsIn(port: serverPort, tls: certificates.inboundTLS)],
                                                           outbounds: [ConfigJSON.direct]),
                              waitPort: serverPort, in: work)
        defer { box.stop() }
        let good = try freePort(), bad = try freePort(), nameless = try freePort()
        let go = try SingBox(.go, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: good, tag: "good"), ConfigJSON.mixed(port: bad, tag: "bad"),
                       ConfigJSON.mixed(port: nameless, tag: "nameless")],
            outbounds: [Self.anytlsOut(port: serverPort, password: "correct horse", tls: certificates.outboundTLS()),
                        Self.anytlsOut(port: serverPort, password: "wrong", tls: certificates.outboundTLS(), tag: "wrong"),
                        Self.anytlsOut(port: serverPort, password: "nameless", tls: certificates.outboundTLS(), tag: "nameless")],
            rules: "[{\"inbound\":[\"bad\"],\"outbound\":\"wrong\"},{\"inbound\":[\"nameless\"],\"outbound\":\"nameless\"}]"),
            waitPort: good, in: work, name: "go-client")
        defer { go.stop() }
        try waitForTCP(port: bad, process: go.process)
        try waitForTCP(port: nameless, process: go.process)

        try exerciseTCPAndUDP(via: good, files: files, dns: dns, work: work, label: "Go → ours", logs: [box, go])
        #expect(box.log.contains("inbound/anytls[anytls-in]: [alice] inbound connection to 127.0.0.1:\(files.port)"), "\(box.log)")
        #expect(box.log.contains("inbound UoT connection to 127.0.0.1:\(dns.port)"), "\(box.log)")

        // Go's client reuses the session once a stream closed: fewer connections than streams.
        for round in 0..<3 {
            let intact = (try? curl(["--socks5-hostname", "127.0.0.1:\(good)", files.blobURL])) == files.blob
            #expect(intact, "download \(round)")
        }
        let streams = Self.count("[alice] inbound connection to 127.0.0.1:\(files.port)", in: box.log)
        let sessions = Self.sessions(in: box.log)
        #expect(streams == 4 && sessions < streams, "\(sessions) sessions for \(streams) streams\n\(box.log)")

        // A user without a name sets no user; the download still works.
        let intact = (try? curl(["--socks5-hostname", "127.0.0.1:\(nameless)", files.blobURL])) == files.blob
        #expect(intact, "nameless\n\(box.log)")
        #expect(box.log.contains("inbound/anytls[anytls-in]: inbound connection to 127.0.0.1:\(files.port)"), "\(box.log)")

        // A wrong password: refused with Go's words (the Go server says the same in ourOutboundToGoInbound).
        #expect(throws: PeerError.self) { try curl(["--socks5-hostname", "127.0.0.1:\(bad)", files.blobURL]) }
        #expect(box.log.contains(": unknown user password: fallback disabled"), "\(box.log)")
        #expect(box.log.contains("inbound/anytls[anytls-in]: process connection from 127.0.0.1:"), "\(box.log)")
        // Our router could not connect: the SYN-ACK carries the error to Go's client.
        let refused = try freePort()
        _ = try? curl(["--socks5-hostname", "127.0.0.1:\(good)", "http://127.0.0.1:\(refused)/"])
        #expect(Self.eventually { go.log.contains("remote: open connection to 127.0.0.1:\(refused) using outbound/direct[direct]: dial tcp 127.0.0.1:\(refused): connect: connection refused") }, "\(go.log)")
    }

    /// Garbage after TLS on our inbound: refused or ignored with one log line each, never a crash;
    /// a SYN before settings gets Go's alert; afterwards Go's client is still served.
    @Test func garbageAfterTLSOnOurInbound() throws {
        let work = try TemporaryDirectory()
        let certificates = try InteropCertificates()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let serverPort = try freePort()
        let box = try SingBox(.ours, config: ConfigJSON.box(inbounds: [Self.anytlsIn(port: serverPort, tls: certificates.inboundTLS)],
                                                           outbounds: [ConfigJSON.direct]),
                              waitPort: serverPort, in: work)
        defer { box.stop() }
        let script = try work.write("anytls-raw.py", anyTLSRawClientScript)
        for mode in ["garbage", "short", "frames"] {
            let result = try runTool(Peers.python3, [script, String(serverPort), mode, "correct horse"])
            #expect(result.status == 0, "\(mode): \(result.stderr)")
        }
        let alert = try runTool(Peers.python3, [script, String(serverPort), "syn-first", "correct horse"])
        // alert frame: cmd 5, stream 0, length 32, "client did not send its settings"
        let expected = "050000000000" + "20" + Array("client did not send its settings".utf8).map { String($0, radix: 16) }.joined()
        #expect(String(decoding: alert.stdout, as: UTF8.self).contains(expected), "\(alert.stdout.count) bytes\n\(box.log)")
        #expect(box.log.contains(": unknown user password: fallback disabled"), "\(box.log)")
        #expect(box.log.contains(": EOF: fallback disabled"), "\(box.log)")

        let client = try freePort()
        let go = try SingBox(.go, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: client)],
            outbounds: [Self.anytlsOut(port: serverPort, password: "correct horse", tls: certificates.outboundTLS())]),
            waitPort: client, in: work, name: "go-client")
        defer { go.stop() }
        try exerciseTCPAndUDP(via: client, files: files, dns: dns, work: work, label: "after garbage", logs: [box, go])
    }

    /// An inbound `padding_scheme` reaches the other side's client as an update both ways: Go's
    /// client logs it from our inbound, ours from Go's; downloads still arrive whole. A scheme that
    /// does not parse stops both binaries with the same words; the corpus config with anytls,
    /// ssh and shadowtls now fails only at shadowtls.
    @Test func paddingSchemeUpdatesAndBadConfigs() throws {
        let work = try TemporaryDirectory()
        let certificates = try InteropCertificates()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let scheme = #","padding_scheme":["stop=4","0=20-20","1=200-300","2=100-150,c,400-500","3=50-60"]}"#
        // md5 of those lines joined by "\n" (python3 hashlib).
        let md5 = "0c156c156257f2bdc38718a6e634cf5b"
        let ourServer = try freePort(), goServer = try freePort()
        let inbound = { (port: UInt16) in String(Self.anytlsIn(port: port, tls: certificates.inboundTLS).dropLast()) + scheme }
        let box = try SingBox(.ours, config: ConfigJSON.box(inbounds: [inbound(ourServer)], outbounds: [ConfigJSON.direct]),
                              waitPort: ourServer, in: work)
        defer { box.stop() }
        let go = try SingBox(.go, config: ConfigJSON.box(inbounds: [inbound(goServer)], outbounds: [ConfigJSON.direct]),
                             waitPort: goServer, in: work, name: "go-server")
        defer { go.stop() }
        let viaGo = try freePort(), viaOurs = try freePort()
        let goClient = try SingBox(.go, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: viaGo)],
            outbounds: [Self.anytlsOut(port: ourServer, password: "correct horse", tls: certificates.outboundTLS())]),
            waitPort: viaGo, in: work, name: "go-client")
        defer { goClient.stop() }
        let ourClient = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: viaOurs)],
            outbounds: [Self.anytlsOut(port: goServer, password: "correct horse", tls: certificates.outboundTLS())]),
            waitPort: viaOurs, in: work, name: "ours-client")
        defer { ourClient.stop() }
        for round in 0..<3 {
            for port in [viaGo, viaOurs] {
                let intact = (try? curl(["--socks5-hostname", "127.0.0.1:\(port)", files.blobURL])) == files.blob
                #expect(intact, "round \(round) via \(port)\n\(box.log)\n\(go.log)")
            }
        }
        #expect(goClient.log.contains("[Update padding succeed] \(md5)"), "\(goClient.log)")
        #expect(ourClient.log.contains("outbound/anytls[proxy]: [Update padding succeed] \(md5)"), "\(ourClient.log)")

        let bad = try work.write("bad-scheme.json", ConfigJSON.box(
            inbounds: [String(Self.anytlsIn(port: try freePort(), tls: certificates.inboundTLS).dropLast()) + #","padding_scheme":["garbage"]}"#],
            outbounds: [ConfigJSON.direct]))
        for binary in [Peers.ours, Peers.go] {
            let run = try runTool(binary, ["run", "-c", bad], timeout: 10)
            #expect(run.status != 0)
            #expect(run.stderr.contains("initialize inbound[0]: incorrect padding scheme format"), "\(binary): \(run.stderr)")
        }
        let corpus = Peers.packageRoot + "/Tests/ConfigTests/Corpus/valid-ssh-anytls-shadowtls.json"
        let run = try runTool(Peers.ours, ["run", "-c", corpus], timeout: 10)
        #expect(run.status != 0)
        #expect(run.stderr.contains("start outbound/shadowtls[shadowtls]: not implemented: shadowtls"), "\(run.stderr)")
        #expect(!run.stderr.contains("not implemented: anytls"), "\(run.stderr)")
    }

    /// Our outbound → our inbound: TCP byte-exact and UDP, sessions reused.
    @Test func selfToSelf() throws {
        let work = try TemporaryDirectory()
        let certificates = try InteropCertificates()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let serverPort = try freePort(), client = try freePort()
        let server = try SingBox(.ours, config: ConfigJSON.box(inbounds: [Self.anytlsIn(port: serverPort, tls: certificates.inboundTLS)],
                                                              outbounds: [ConfigJSON.direct]),
                                 waitPort: serverPort, in: work, name: "ours-server")
        defer { server.stop() }
        let box = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: client)],
            outbounds: [Self.anytlsOut(port: serverPort, password: "correct horse", tls: certificates.outboundTLS())]),
            waitPort: client, in: work, name: "ours-client")
        defer { box.stop() }
        try exerciseTCPAndUDP(via: client, files: files, dns: dns, work: work, label: "ours → ours", logs: [box, server])
        for round in 0..<3 {
            let intact = (try? curl(["--socks5-hostname", "127.0.0.1:\(client)", files.blobURL])) == files.blob
            #expect(intact, "download \(round)")
        }
        let streams = Self.count("[alice] inbound connection to 127.0.0.1:\(files.port)", in: server.log)
        let sessions = Self.sessions(in: server.log)
        #expect(streams == 4 && sessions < streams, "\(sessions) sessions for \(streams) streams\n\(server.log)")
    }
}
