// Our trojan outbound (and the http outbound over TLS) against real servers: Go sing-box 1.12.12's
// trojan and http inbounds with TLS, and trojan-gfw (Debian's `trojan`). curl and a python SOCKS5
// UDP client go through our mixed inbound; certificates are made with the openssl CLI per test.
// Every process is stopped on every exit path (`defer`, and `Spawned`'s deinit).
import Foundation
import Testing

/// A CA and a server certificate it signed (SANs `trojan.test`, 127.0.0.1), plus an unrelated CA.
final class InteropCertificates: @unchecked Sendable {
    let directory: TemporaryDirectory
    var caPath: String { directory.file("ca.pem") }
    var otherCAPath: String { directory.file("other-ca.pem") }
    var certificatePath: String { directory.file("server.pem") }
    var keyPath: String { directory.file("server.key") }

    init() throws {
        directory = try TemporaryDirectory()
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try Self.openssl(["req", "-x509"] + ec + ["-keyout", directory.file("ca.key"), "-out", caPath, "-days", "2", "-subj", "/CN=sing-box test CA"])
        try Self.openssl(["req", "-x509"] + ec + ["-keyout", directory.file("other-ca.key"), "-out", otherCAPath, "-days", "2", "-subj", "/CN=other CA"])
        try Self.openssl(["req"] + ec + ["-keyout", keyPath, "-out", directory.file("server.csr"), "-subj", "/CN=trojan.test"])
        let san = try directory.write("san.cnf", "subjectAltName=DNS:trojan.test,IP:127.0.0.1\n")
        try Self.openssl(["x509", "-req", "-in", directory.file("server.csr"), "-CA", caPath, "-CAkey", directory.file("ca.key"),
                          "-CAcreateserial", "-out", certificatePath, "-days", "2", "-extfile", san])
    }

    private static func openssl(_ arguments: [String]) throws {
        let result = try runTool("/usr/bin/openssl", arguments)
        guard result.status == 0 else { throw PeerError("openssl \(arguments.joined(separator: " ")): \(result.stderr)") }
    }

    /// An inbound `tls` object serving this certificate.
    var inboundTLS: String {
        "{\"enabled\":true,\"certificate_path\":\"\(certificatePath)\",\"key_path\":\"\(keyPath)\"}"
    }

    /// An outbound `tls` object trusting `ca` (this CA unless told), with `extra` fields.
    func outboundTLS(ca: String? = nil, extra: String = "") -> String {
        "{\"enabled\":true,\"server_name\":\"trojan.test\",\"certificate_path\":\"\(ca ?? caPath)\"\(extra)}"
    }
}

/// trojan-gfw as a server on 127.0.0.1:`port`; a wrong password is forwarded to `fallbackPort`.
final class TrojanGFW: @unchecked Sendable {
    let port: UInt16
    private let process: Spawned

    init(password: String, certificates: InteropCertificates, fallbackPort: UInt16, in work: TemporaryDirectory) throws {
        port = try freePort()
        let config = """
        {"run_type":"server","local_addr":"127.0.0.1","local_port":\(port),
         "remote_addr":"127.0.0.1","remote_port":\(fallbackPort),"password":["\(password)"],"log_level":0,
         "ssl":{"cert":"\(certificates.certificatePath)","key":"\(certificates.keyPath)","key_password":"",
                "cipher":"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305",
                "cipher_tls13":"TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384",
                "prefer_server_cipher":true,"alpn":["http/1.1"],"reuse_session":true,"session_ticket":false,
                "session_timeout":600,"plain_http_response":"","curves":"","dhparam":""},
         "tcp":{"prefer_ipv4":true,"no_delay":true,"keep_alive":true,"reuse_port":false,"fast_open":false,"fast_open_qlen":20},
         "mysql":{"enabled":false,"server_addr":"127.0.0.1","server_port":3306,"database":"","username":"","password":"","key":"","cert":"","ca":""}}
        """
        let path = try work.write("trojan-gfw-\(port).json", config)
        process = try Spawned("/usr/bin/trojan", ["-c", path], name: "trojan-gfw-\(port)", directory: work)
        try waitForTCP(port: port, process: process)
    }

    var log: String { process.log }
    func stop() { process.stop() }
}

/// A SOCKS5 client in python that sends an HTTP/1.0 GET for /blob.bin, half-closes (FIN) and reads
/// the response to its end; prints the body. argv: proxy port, file server port.
let halfCloseDownloadScript = #"""
import socket, sys
proxy, target = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", proxy), timeout=10)
s.sendall(b"\x05\x01\x00")
if s.recv(2) != b"\x05\x00": raise SystemExit("greeting")
s.sendall(b"\x05\x01\x00\x01\x7f\x00\x00\x01" + target.to_bytes(2, "big"))
reply = b""
while len(reply) < 10: reply += s.recv(10 - len(reply))
if reply[1] != 0: raise SystemExit("connect %d" % reply[1])
s.sendall(b"GET /blob.bin HTTP/1.0\r\n\r\n")
s.shutdown(socket.SHUT_WR)
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk: break
    data += chunk
sys.stdout.buffer.write(data.split(b"\r\n\r\n", 1)[1])
"""#

@Suite(.serialized) struct TrojanInteropTests {
    static func trojanOut(port: UInt16, password: String, tls: String, tag: String = "proxy", extra: String = "") -> String {
        "{\"type\":\"trojan\",\"tag\":\"\(tag)\",\"server\":\"127.0.0.1\",\"server_port\":\(port),\"password\":\"\(password)\",\"tls\":\(tls)\(extra)}"
    }

    /// v2ray transports under trojan, against Go's trojan inbound with the same transport: ws (plain
    /// and over TLS; early data in a header and in the path) and httpupgrade; byte-exact downloads
    /// and a DNS query over UDP through each.
    @Test func transportsAgainstGoTrojanInbound() throws {
        let work = try TemporaryDirectory()
        let certificates = try InteropCertificates()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let cases: [(name: String, transport: String, tls: Bool)] = [
            ("ws", #"{"type":"ws","path":"/ws"}"#, false),
            ("ws-tls", #"{"type":"ws","path":"ws-tls","headers":{"Host":"front.test"}}"#, true),
            ("ws-early-header", #"{"type":"ws","path":"/e","max_early_data":2048,"early_data_header_name":"Sec-WebSocket-Protocol"}"#, false),
            ("ws-early-path", #"{"type":"ws","path":"/p","max_early_data":64}"#, true),
            ("httpupgrade", #"{"type":"httpupgrade","path":"/up","host":"front.test"}"#, false),
            ("httpupgrade-tls", #"{"type":"httpupgrade","path":"/up2"}"#, true),
        ]
        var inbounds: [String] = [], outbounds: [String] = [], mixed: [String] = [], rules: [String] = []
        var ports: [(String, UInt16)] = []
        for item in cases {
            let server = try freePort(), client = try freePort()
            ports.append((item.name, client))
            inbounds.append("{\"type\":\"trojan\",\"tag\":\"\(item.name)\",\"listen\":\"127.0.0.1\",\"listen_port\":\(server),"
                            + "\"users\":[{\"password\":\"pw\"}],\"transport\":\(item.transport)"
                            + (item.tls ? ",\"tls\":\(certificates.inboundTLS)}" : "}"))
            let tls = item.tls ? certificates.outboundTLS() : #"{"enabled":false}"#
            outbounds.append(Self.trojanOut(port: server, password: "pw", tls: tls, tag: item.name, extra: ",\"transport\":\(item.transport)"))
            mixed.append(ConfigJSON.mixed(port: client, tag: "in-\(item.name)"))
            rules.append("{\"inbound\":[\"in-\(item.name)\"],\"outbound\":\"\(item.name)\"}")
        }
        let anchor = try freePort()
        let go = try SingBox(.go, config: ConfigJSON.box(inbounds: inbounds + [ConfigJSON.mixed(port: anchor, tag: "anchor")],
                                                         outbounds: [ConfigJSON.direct]),
                             waitPort: anchor, in: work, name: "go-transports")
        defer { go.stop() }
        let box = try SingBox(.ours, config: ConfigJSON.box(inbounds: mixed, outbounds: outbounds + [ConfigJSON.direct],
                                                           rules: "[" + rules.joined(separator: ",") + "]"),
                              waitPort: ports[0].1, in: work)
        defer { box.stop() }
        let script = try work.write("udp.py", socksUDPClientScript)
        for (name, port) in ports {
            try waitForTCP(port: port, process: box.process)
            let intact = (try? curl(["--socks5-hostname", "127.0.0.1:\(port)", files.blobURL])) == files.blob
            #expect(intact, "\(name)\n\(box.log)\n\(go.log)")
            let result = try runTool(Peers.python3, [script, String(port), String(dns.port)])
            #expect(String(decoding: result.stdout, as: UTF8.self) == "127.0.0.1:\(dns.port) 10.1.2.3\n", "\(name) UDP: \(result.stderr)")
        }
        #expect(go.log.contains("inbound/trojan[ws-early-path]") && go.log.contains("inbound/trojan[httpupgrade]"), "\(go.log)")
    }

    /// Our mixed inbound → our trojan outbound → Go's trojan inbound (TLS) → the file server, byte-exact;
    /// a DNS query over UDP the same way to dnsmasq; a wrong password fails the flow.
    @Test func throughGoTrojanInbound() throws {
        let work = try TemporaryDirectory()
        let certificates = try InteropCertificates()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let trojanPort = try freePort()
        let go = try SingBox(.go, config: ConfigJSON.box(
            inbounds: ["{\"type\":\"trojan\",\"tag\":\"trojan-in\",\"listen\":\"127.0.0.1\",\"listen_port\":\(trojanPort),"
                       + "\"users\":[{\"name\":\"alice\",\"password\":\"correct horse\"}],\"tls\":\(certificates.inboundTLS)}"],
            outbounds: [ConfigJSON.direct]), waitPort: trojanPort, in: work, name: "go-trojan")
        defer { go.stop() }
        let good = try freePort(), bad = try freePort()
        let box = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: good, tag: "good"), ConfigJSON.mixed(port: bad, tag: "bad")],
            outbounds: [Self.trojanOut(port: trojanPort, password: "correct horse", tls: certificates.outboundTLS()),
                        Self.trojanOut(port: trojanPort, password: "wrong", tls: certificates.outboundTLS(), tag: "wrong")],
            rules: "[{\"inbound\":[\"bad\"],\"outbound\":\"wrong\"}]"), waitPort: good, in: work)
        defer { box.stop() }
        try waitForTCP(port: bad, process: box.process)

        for way in [["--socks5-hostname", "127.0.0.1:\(good)"], ["-x", "http://127.0.0.1:\(good)"]] {
            do {
                let intact = try curl(way + [files.blobURL]) == files.blob
                #expect(intact, "\(way)")
            } catch {
                Issue.record("\(way): \(error)\n\(box.log)\n\(go.log)")
            }
        }
        // Our FIN goes out as close_notify + FIN; the response still comes back whole.
        let halfClose = try work.write("half-close.py", halfCloseDownloadScript)
        let download = try runTool(Peers.python3, [halfClose, String(good), String(files.port)])
        let intact = download.stdout == files.blob  // a Bool: #expect would diff 2 MiB on failure
        #expect(intact, "\(download.stdout.count) bytes: \(download.stderr)\n\(box.log)")
        #expect(go.log.contains("[alice] inbound connection to 127.0.0.1:\(files.port)"), "\(go.log)")
        #expect(box.log.contains("outbound/trojan[proxy]: outbound connection to 127.0.0.1:\(files.port)"), "\(box.log)")

        let script = try work.write("udp.py", socksUDPClientScript)
        let result = try runTool(Peers.python3, [script, String(good), String(dns.port)])
        #expect(String(decoding: result.stdout, as: UTF8.self) == "127.0.0.1:\(dns.port) 10.1.2.3\n", "\(result.stderr)\n\(box.log)\n\(go.log)")
        #expect(go.log.contains("[alice] inbound packet connection to 127.0.0.1:\(dns.port)"), "\(go.log)")

        #expect(throws: PeerError.self) { try curl(["--socks5-hostname", "127.0.0.1:\(bad)", files.blobURL]) }
        #expect(go.log.contains("fallback disabled"), "\(go.log)")
    }

    /// The same flows against trojan-gfw 1.16 as the server.
    @Test func throughTrojanGFW() throws {
        let work = try TemporaryDirectory()
        let certificates = try InteropCertificates()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        // Nothing listens on the fallback port: a wrong password ends in a closed connection.
        let server = try TrojanGFW(password: "s3cret", certificates: certificates, fallbackPort: try freePort(), in: work)
        defer { server.stop() }
        let good = try freePort(), bad = try freePort(), tls12 = try freePort()
        let box = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: good, tag: "good"), ConfigJSON.mixed(port: bad, tag: "bad"), ConfigJSON.mixed(port: tls12, tag: "tls12")],
            outbounds: [Self.trojanOut(port: server.port, password: "s3cret", tls: certificates.outboundTLS(extra: ",\"alpn\":[\"http/1.1\"]")),
                        Self.trojanOut(port: server.port, password: "nope", tls: certificates.outboundTLS(), tag: "wrong"),
                        Self.trojanOut(port: server.port, password: "s3cret", tls: certificates.outboundTLS(extra: ",\"max_version\":\"1.2\""), tag: "tls12")],
            rules: "[{\"inbound\":[\"bad\"],\"outbound\":\"wrong\"},{\"inbound\":[\"tls12\"],\"outbound\":\"tls12\"}]"),
            waitPort: good, in: work)
        defer { box.stop() }
        try waitForTCP(port: bad, process: box.process)
        try waitForTCP(port: tls12, process: box.process)

        for port in [good, tls12] {
            do {
                let intact = try curl(["--socks5-hostname", "127.0.0.1:\(port)", files.blobURL]) == files.blob
                #expect(intact, "\(port)")
            } catch {
                Issue.record("\(error)\n\(box.log)\n\(server.log)")
            }
        }
        #expect(box.log.contains("outbound/trojan[tls12]: outbound connection to 127.0.0.1:\(files.port)"), "\(box.log)")
        // No half-close here: trojan-gfw tears the whole tunnel down at the client's end of stream.
        let script = try work.write("udp.py", socksUDPClientScript)
        let result = try runTool(Peers.python3, [script, String(good), String(dns.port)])
        #expect(String(decoding: result.stdout, as: UTF8.self) == "127.0.0.1:\(dns.port) 10.1.2.3\n", "\(result.stderr)\n\(box.log)\n\(server.log)")

        #expect(throws: PeerError.self) { try curl(["--socks5-hostname", "127.0.0.1:\(bad)", files.blobURL]) }
        #expect(server.log.contains("authenticated as"), "\(server.log)")
        #expect(server.log.contains("valid trojan request structure but possibly incorrect password"), "\(server.log)")
    }

    /// A certificate from another CA fails the dial with the verify reason in our log; the
    /// unsupported trojan fields fail the start, naming the field.
    @Test func badCertificateAndUnsupportedFields() throws {
        let work = try TemporaryDirectory()
        let certificates = try InteropCertificates()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let server = try TrojanGFW(password: "s3cret", certificates: certificates, fallbackPort: try freePort(), in: work)
        defer { server.stop() }
        let port = try freePort()
        let box = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: port)],
            outbounds: [Self.trojanOut(port: server.port, password: "s3cret", tls: certificates.outboundTLS(ca: certificates.otherCAPath))]),
            waitPort: port, in: work)
        defer { box.stop() }
        #expect(throws: PeerError.self) { try curl(["--socks5-hostname", "127.0.0.1:\(port)", files.blobURL]) }
        #expect(box.log.contains("tls handshake: certificate verify failed: unable to get local issuer certificate"), "\(box.log)")

        for (extra, expected) in [(",\"multiplex\":{\"enabled\":true,\"brutal\":{\"enabled\":true,\"up_mbps\":100,\"down_mbps\":100}}", "not implemented: multiplex brutal"),
                                  (",\"transport\":{\"type\":\"quic\"}", "not implemented: transport quic on trojan outbound")] {
            let config = try work.write("bad.json", ConfigJSON.box(
                inbounds: [ConfigJSON.mixed(port: try freePort())],
                outbounds: [Self.trojanOut(port: server.port, password: "s3cret", tls: certificates.outboundTLS(), extra: extra)]))
            let run = try runTool(Peers.ours, ["run", "-c", config], timeout: 10)
            #expect(run.status != 0)
            #expect(run.stderr.contains("initialize outbound[0]: \(expected)"), "\(run.stderr)")
        }
        // uTLS is missing from Go's release build and from ours, with the same words.
        let utls = try work.write("utls.json", ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: try freePort())],
            outbounds: [Self.trojanOut(port: server.port, password: "s3cret",
                                       tls: certificates.outboundTLS(extra: ",\"utls\":{\"enabled\":true,\"fingerprint\":\"chrome\"}"))]))
        for binary in [Peers.ours, Peers.go] {
            let run = try runTool(binary, ["run", "-c", utls], timeout: 10)
            #expect(run.status != 0)
            #expect(run.stderr.contains("uTLS is not included in this build, rebuild with -tags with_utls"), "\(binary): \(run.stderr)")
        }
    }

    /// Our http outbound over TLS to Go's http inbound with TLS (server_name defaults to the IP).
    @Test func httpOutboundOverTLSToGo() throws {
        let work = try TemporaryDirectory()
        let certificates = try InteropCertificates()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let httpPort = try freePort()
        let go = try SingBox(.go, config: ConfigJSON.box(
            inbounds: ["{\"type\":\"http\",\"tag\":\"https-in\",\"listen\":\"127.0.0.1\",\"listen_port\":\(httpPort),"
                       + "\"users\":[{\"username\":\"bob\",\"password\":\"pw\"}],\"tls\":\(certificates.inboundTLS)}"],
            outbounds: [ConfigJSON.direct]), waitPort: httpPort, in: work, name: "go-https")
        defer { go.stop() }
        let port = try freePort(), wrongCA = try freePort()
        let tls = "{\"enabled\":true,\"certificate_path\":\"\(certificates.caPath)\"}"
        let badTLS = "{\"enabled\":true,\"certificate_path\":\"\(certificates.otherCAPath)\"}"
        let box = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: port, tag: "in"), ConfigJSON.mixed(port: wrongCA, tag: "in-bad")],
            outbounds: [String(ConfigJSON.httpOut(port: httpPort, username: "bob", password: "pw").dropLast()) + ",\"tls\":\(tls)}",
                        String(ConfigJSON.httpOut(port: httpPort, username: "bob", password: "pw", tag: "bad").dropLast()) + ",\"tls\":\(badTLS)}"],
            rules: "[{\"inbound\":[\"in-bad\"],\"outbound\":\"bad\"}]"), waitPort: port, in: work)
        defer { box.stop() }
        try waitForTCP(port: wrongCA, process: box.process)
        do {
            let intact = try curl(["--socks5-hostname", "127.0.0.1:\(port)", files.blobURL]) == files.blob
            #expect(intact)
        } catch {
            Issue.record("\(error)\n\(box.log)\n\(go.log)")
        }
        #expect(go.log.contains("[bob] inbound connection to 127.0.0.1:\(files.port)"), "\(go.log)")
        #expect(throws: PeerError.self) { try curl(["--socks5-hostname", "127.0.0.1:\(wrongCA)", files.blobURL]) }
        #expect(box.log.contains("tls handshake: certificate verify failed"), "\(box.log)")
    }
}
