// Our trojan inbound against real clients: Go sing-box 1.12.12's trojan outbound (TCP download and a
// DNS query over UDP to dnsmasq), our own trojan outbound over TLS and over plain TCP, a wrong
// password (closed, as Go), and the fallback: curl's HTTPS request to the trojan port reaches the
// fallback web server, per ALPN too. Every process is stopped on every exit path.
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct TrojanInboundInteropTests {
    static func trojanIn(port: UInt16, tag: String = "trojan-in", tls: String?, extra: String = "") -> String {
        "{\"type\":\"trojan\",\"tag\":\"\(tag)\",\"listen\":\"127.0.0.1\",\"listen_port\":\(port),"
            + "\"users\":[{\"name\":\"alice\",\"password\":\"correct horse\"},{\"name\":\"\",\"password\":\"nameless\"}]"
            + (tls.map { ",\"tls\":\($0)" } ?? "") + extra + "}"
    }

    /// Go's trojan outbound with a v2ray transport (ws under TLS, httpupgrade plain) through our trojan
    /// inbound with the same transport: a byte-exact download and a DNS query over UDP.
    @Test(arguments: [(#","transport":{"type":"ws","path":"/tw"}"#, true), (#","transport":{"type":"httpupgrade","path":"/th"}"#, false)])
    func transportsFromGo(transport: String, tls: Bool) throws {
        let work = try TemporaryDirectory()
        let certificates = try InteropCertificates()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let trojanPort = try freePort(), viaGo = try freePort()
        let box = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [Self.trojanIn(port: trojanPort, tls: tls ? certificates.inboundTLS : nil, extra: transport)], outbounds: [ConfigJSON.direct]),
            waitPort: trojanPort, in: work)
        defer { box.stop() }
        let go = try SingBox(.go, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: viaGo)],
            outbounds: [TrojanInteropTests.trojanOut(port: trojanPort, password: "correct horse",
                                                     tls: tls ? certificates.outboundTLS() : #"{"enabled":false}"#, extra: transport)]),
            waitPort: viaGo, in: work, name: "go-client")
        defer { go.stop() }
        let intact = (try? curl(["--socks5-hostname", "127.0.0.1:\(viaGo)", files.blobURL])) == files.blob
        #expect(intact, "\(box.log)\n\(go.log)")
        let script = try work.write("udp.py", socksUDPClientScript)
        let result = try runTool(Peers.python3, [script, String(viaGo), String(dns.port)])
        #expect(String(decoding: result.stdout, as: UTF8.self) == "127.0.0.1:\(dns.port) 10.1.2.3\n", "\(result.stderr)\n\(box.log)\n\(go.log)")
    }

    /// Go's mixed inbound → Go's trojan outbound → our trojan inbound (TLS) → the file server,
    /// byte-exact; a DNS query over UDP the same way; a wrong password closes the stream.
    @Test func fromGoTrojanOutbound() throws {
        let work = try TemporaryDirectory()
        let certificates = try InteropCertificates()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let trojanPort = try freePort()
        let box = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [Self.trojanIn(port: trojanPort, tls: certificates.inboundTLS)], outbounds: [ConfigJSON.direct]),
            waitPort: trojanPort, in: work)
        defer { box.stop() }
        let good = try freePort(), bad = try freePort(), nameless = try freePort()
        let go = try SingBox(.go, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: good, tag: "good"), ConfigJSON.mixed(port: bad, tag: "bad"), ConfigJSON.mixed(port: nameless, tag: "nameless")],
            outbounds: [TrojanInteropTests.trojanOut(port: trojanPort, password: "correct horse", tls: certificates.outboundTLS()),
                        TrojanInteropTests.trojanOut(port: trojanPort, password: "wrong", tls: certificates.outboundTLS(), tag: "wrong"),
                        TrojanInteropTests.trojanOut(port: trojanPort, password: "nameless", tls: certificates.outboundTLS(), tag: "nameless")],
            rules: "[{\"inbound\":[\"bad\"],\"outbound\":\"wrong\"},{\"inbound\":[\"nameless\"],\"outbound\":\"nameless\"}]"),
            waitPort: good, in: work, name: "go-client")
        defer { go.stop() }
        try waitForTCP(port: bad, process: go.process)
        try waitForTCP(port: nameless, process: go.process)

        do {
            let intact = try curl(["--socks5-hostname", "127.0.0.1:\(good)", files.blobURL]) == files.blob
            #expect(intact)
        } catch {
            Issue.record("\(error)\n\(box.log)\n\(go.log)")
        }
        #expect(box.log.contains("inbound/trojan[trojan-in]: [alice] inbound connection to 127.0.0.1:\(files.port)"), "\(box.log)")
        let script = try work.write("udp.py", socksUDPClientScript)
        let result = try runTool(Peers.python3, [script, String(good), String(dns.port)])
        #expect(String(decoding: result.stdout, as: UTF8.self) == "127.0.0.1:\(dns.port) 10.1.2.3\n", "\(result.stderr)\n\(box.log)\n\(go.log)")
        #expect(box.log.contains("[alice] inbound packet connection to 127.0.0.1:\(dns.port)"), "\(box.log)")
        // A user without a name is logged by index, as Go does.
        let namelessBody = try curl(["--socks5-hostname", "127.0.0.1:\(nameless)", files.blobURL]) == files.blob
        #expect(namelessBody)
        #expect(box.log.contains("[1] inbound connection to 127.0.0.1:\(files.port)"), "\(box.log)")

        #expect(throws: PeerError.self) { try curl(["--socks5-hostname", "127.0.0.1:\(bad)", files.blobURL]) }
        #expect(box.log.contains(": bad request: fallback disabled"), "\(box.log)")
        #expect(box.process.isRunning)
    }

    /// Our mixed inbound → our trojan outbound → our trojan inbound, over TLS and over plain TCP
    /// (Go allows trojan without TLS), in one box: TCP byte-exact and DNS over UDP.
    @Test func selfOverTLSAndPlain() throws {
        let work = try TemporaryDirectory()
        let certificates = try InteropCertificates()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let tlsPort = try freePort(), plainPort = try freePort(), viaTLS = try freePort(), viaPlain = try freePort()
        let box = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [Self.trojanIn(port: tlsPort, tag: "t-tls", tls: certificates.inboundTLS),
                       Self.trojanIn(port: plainPort, tag: "t-plain", tls: nil),
                       ConfigJSON.mixed(port: viaTLS, tag: "via-tls"), ConfigJSON.mixed(port: viaPlain, tag: "via-plain")],
            outbounds: [ConfigJSON.direct,
                        TrojanInteropTests.trojanOut(port: tlsPort, password: "correct horse", tls: certificates.outboundTLS(), tag: "out-tls"),
                        TrojanInteropTests.trojanOut(port: plainPort, password: "correct horse", tls: "{\"enabled\":false}", tag: "out-plain")],
            rules: "[{\"inbound\":[\"via-tls\"],\"outbound\":\"out-tls\"},{\"inbound\":[\"via-plain\"],\"outbound\":\"out-plain\"}]"),
            waitPort: tlsPort, in: work)
        defer { box.stop() }
        for port in [plainPort, viaTLS, viaPlain] { try waitForTCP(port: port, process: box.process) }
        let script = try work.write("udp.py", socksUDPClientScript)
        for (port, tag) in [(viaTLS, "t-tls"), (viaPlain, "t-plain")] {
            do {
                let intact = try curl(["--socks5-hostname", "127.0.0.1:\(port)", files.blobURL]) == files.blob
                #expect(intact, "\(tag)")
            } catch {
                Issue.record("\(tag): \(error)\n\(box.log)")
            }
            #expect(box.log.contains("inbound/trojan[\(tag)]: [alice] inbound connection to 127.0.0.1:\(files.port)"), "\(box.log)")
            let result = try runTool(Peers.python3, [script, String(port), String(dns.port)])
            #expect(String(decoding: result.stdout, as: UTF8.self) == "127.0.0.1:\(dns.port) 10.1.2.3\n", "\(tag): \(result.stderr)\n\(box.log)")
            #expect(box.log.contains("inbound/trojan[\(tag)]: [alice] inbound packet connection to 127.0.0.1:\(dns.port)"), "\(box.log)")
        }
    }

    /// Not trojan on the port: curl's HTTPS request goes to the fallback web server (Go routes it
    /// there), by ALPN when `fallback_for_alpn` names the protocol; an unnamed ALPN is closed. A
    /// plain-TCP inbound falls back too; a request shorter than the key is `bad request size`.
    @Test func fallback() throws {
        let work = try TemporaryDirectory()
        let certificates = try InteropCertificates()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let byDefault = try freePort(), byALPN = try freePort(), plain = try freePort()
        let tlsALPN = "{\"enabled\":true,\"certificate_path\":\"\(certificates.certificatePath)\",\"key_path\":\"\(certificates.keyPath)\","
            + "\"alpn\":[\"http/1.1\",\"h2\"]}"
        let dead = try freePort()
        let box = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [Self.trojanIn(port: byDefault, tag: "default", tls: certificates.inboundTLS,
                                     extra: ",\"fallback\":{\"server\":\"127.0.0.1\",\"server_port\":\(files.port)}"),
                       Self.trojanIn(port: byALPN, tag: "alpn", tls: tlsALPN,
                                     extra: ",\"fallback\":{\"server\":\"127.0.0.1\",\"server_port\":\(dead)},"
                                        + "\"fallback_for_alpn\":{\"http/1.1\":{\"server\":\"127.0.0.1\",\"server_port\":\(files.port)}}"),
                       Self.trojanIn(port: plain, tag: "plain", tls: nil,
                                     extra: ",\"fallback\":{\"server\":\"127.0.0.1\",\"server_port\":\(files.port)}")],
            outbounds: [ConfigJSON.direct]), waitPort: byDefault, in: work)
        defer { box.stop() }
        try waitForTCP(port: byALPN, process: box.process)
        try waitForTCP(port: plain, process: box.process)

        for (port, extra) in [(byDefault, [String]()), (byALPN, ["--http1.1"])] {
            do {
                let body = try curl(["--cacert", certificates.caPath] + extra + ["https://127.0.0.1:\(port)/blob.bin"])
                let intact = body == files.blob
                #expect(intact, "\(port): \(body.count) bytes")
            } catch {
                Issue.record("\(port): \(error)\n\(box.log)")
            }
        }
        let body = try curl(["http://127.0.0.1:\(plain)/blob.bin"]) == files.blob
        #expect(body, "\(box.log)")
        #expect(box.log.contains("inbound/trojan[default]: fallback connection to 127.0.0.1:\(files.port)"), "\(box.log)")
        #expect(box.log.contains("inbound/trojan[alpn]: fallback connection to 127.0.0.1:\(files.port)"), "\(box.log)")
        // h2 is offered by the server but has no fallback of its own: closed.
        let h2Script = try work.write("h2.py", """
            import socket, ssl, sys
            context = ssl.create_default_context(cafile=sys.argv[2])
            context.set_alpn_protocols(["h2"])
            s = context.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5), server_hostname="127.0.0.1")
            print(s.selected_alpn_protocol())
            s.sendall(b"PRI * HTTP/2.0" * 8)
            try:
                print(s.recv(100) == b"")
            except (ConnectionResetError, ssl.SSLError):
                print(True)
            """)
        let h2 = try runTool(Peers.python3, [h2Script, String(byALPN), certificates.caPath])
        #expect(String(decoding: h2.stdout, as: UTF8.self) == "h2\nTrue\n", "\(h2.stderr)")
        #expect(box.log.contains("fallback disabled for ALPN: h2"), "\(box.log)")
        // Start-time checks in Go's words.
        let noTLS = try work.write("alpn-plain.json", ConfigJSON.box(
            inbounds: [Self.trojanIn(port: try freePort(), tls: nil,
                                     extra: ",\"fallback_for_alpn\":{\"h2\":{\"server\":\"127.0.0.1\",\"server_port\":80}}")],
            outbounds: [ConfigJSON.direct]))
        let duplicate = try work.write("duplicate.json", ConfigJSON.box(
            inbounds: ["{\"type\":\"trojan\",\"listen_port\":\(try freePort()),\"users\":[{\"name\":\"a\",\"password\":\"p\"},{\"name\":\"b\",\"password\":\"p\"}]}"],
            outbounds: [ConfigJSON.direct]))
        for (config, expected) in [(noTLS, "fallback for ALPN is not supported without TLS"), (duplicate, "user already exists: password used by 0")] {
            let go = try runTool(Peers.go, ["check", "-c", config], timeout: 10)
            #expect(go.status != 0)
            #expect(go.stderr.contains("initialize inbound[0]: \(expected)"), "go: \(go.stderr)")
            // Ours says the same, after the config check's JSON path when that check caught it first.
            let ours = try runTool(Peers.ours, ["check", "-c", config], timeout: 10)
            #expect(ours.status != 0)
            #expect(ours.stderr.contains("initialize inbound[0]: \(expected)") || ours.stderr.contains("inbounds[0].") && ours.stderr.contains(": \(expected)"),
                    "ours: \(ours.stderr)")
        }
    }
}
