// The v2ray `grpc` and `http` transports against Go sing-box 1.12.12, both directions, plain and
// over TLS, under trojan and vmess: our outbound → Go's inbound, Go's outbound → our inbound, and
// ours → ours; each a byte-exact download and a DNS query over UDP (exerciseTCPAndUDP). Then what
// our server answers to bad requests (wrong service name or path: Go's status and log line) and to
// garbage gRPC framing (the stream is reset, the server keeps serving), and its idle_timeout. v2ray
// 4.34's `http` transport (h2 over TLS) under vmess both ways as a second peer. Every process is
// stopped on every exit path.
import Foundation
import Synchronization
import Testing

/// An echo server: every connection gets its bytes back until it half-closes, then is closed.
/// argv: port.
let echoServerScript = #"""
import socket, sys, threading
server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen(16)
def serve(conn):
    while True:
        data = conn.recv(65536)
        if not data: break
        conn.sendall(data)
    conn.close()
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""#

/// Through a SOCKS5 proxy to the echo server: sends 3 MiB of random bytes while reading; with
/// `half` then half-closes and reads to the end, else stops reading once all came back; prints
/// `ok` when every byte came back in order. argv: proxy port, echo port, `half` or `full`.
let echoClientScript = #"""
import os, socket, sys, threading
proxy, target = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", proxy), timeout=20)
s.sendall(b"\x05\x01\x00")
if s.recv(2) != b"\x05\x00": raise SystemExit("greeting")
s.sendall(b"\x05\x01\x00\x01\x7f\x00\x00\x01" + target.to_bytes(2, "big"))
reply = b""
while len(reply) < 10: reply += s.recv(10 - len(reply))
if reply[1] != 0: raise SystemExit("connect %d" % reply[1])
payload = os.urandom(3 << 20)
def send():
    for i in range(0, len(payload), 100000): s.sendall(payload[i:i + 100000])
    if sys.argv[3] == "half": s.shutdown(socket.SHUT_WR)
threading.Thread(target=send, daemon=True).start()
received = bytearray()
while True:
    chunk = s.recv(65536)
    if not chunk: break
    received += chunk
    if sys.argv[3] != "half" and len(received) >= len(payload): break
print("ok" if bytes(received) == payload else "differs: %d of %d bytes" % (len(received), len(payload)))
"""#

/// A python echo server on a free port.
final class EchoServer: @unchecked Sendable {
    let port: UInt16
    private let process: Spawned

    init(in work: TemporaryDirectory) throws {
        port = try freePort()
        let script = try work.write("echo-server.py", echoServerScript)
        process = try Spawned(Peers.python3, [script, String(port)], name: "echo-\(port)", directory: work)
        try waitForTCP(port: port, process: process)
    }

    func stop() { process.stop() }

    /// 3 MiB both ways at once through the SOCKS5 port (then a half-close when `halfClose`):
    /// `ok\n` when it all came back. Go's grpc and http clients drop what is still coming once
    /// their upload ends (Go → Go loses it too), so they are tested without the half-close.
    func exercise(via proxy: UInt16, work: TemporaryDirectory, halfClose: Bool = true) throws -> String {
        let script = try work.write("echo-client.py", echoClientScript)
        let result = try runTool(Peers.python3, [script, String(proxy), String(port), halfClose ? "half" : "full"], timeout: 30)
        return String(decoding: result.stdout, as: UTF8.self) + result.stderr
    }
}

@Suite(.serialized) struct V2RayHTTP2TransportInteropTests {
    /// The transports under test: grpc (h2c / h2 over TLS) and http (HTTP/1.1 / h2 over TLS).
    static let cases: [(name: String, transport: String, tls: Bool)] = [
        ("grpc", #"{"type":"grpc","service_name":"tun svc"}"#, false),
        ("grpc-tls", #"{"type":"grpc","service_name":"g","idle_timeout":"15s","ping_timeout":"5s"}"#, true),
        ("http", #"{"type":"http","path":"/h","method":"POST","host":["front.test"],"headers":{"X-Test":"1"}}"#, false),
        ("http-tls", #"{"type":"http","path":"/h2","host":["a.test","b.test"]}"#, true),
    ]

    /// Our trojan outbound → Go's trojan inbound with the same transport.
    @Test func trojanOursToGo() throws {
        let work = try TemporaryDirectory()
        let certificates = try InteropCertificates()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        var inbounds: [String] = [], outbounds: [String] = [], mixed: [String] = [], rules: [String] = []
        var ports: [(String, UInt16)] = []
        for item in Self.cases {
            let server = try freePort(), client = try freePort()
            ports.append((item.name, client))
            inbounds.append("{\"type\":\"trojan\",\"tag\":\"\(item.name)\",\"listen\":\"127.0.0.1\",\"listen_port\":\(server),"
                            + "\"users\":[{\"password\":\"pw\"}],\"transport\":\(item.transport)"
                            + (item.tls ? ",\"tls\":\(certificates.inboundTLS)}" : "}"))
            let tls = item.tls ? certificates.outboundTLS() : #"{"enabled":false}"#
            outbounds.append(TrojanInteropTests.trojanOut(port: server, password: "pw", tls: tls, tag: item.name, extra: ",\"transport\":\(item.transport)"))
            mixed.append(ConfigJSON.mixed(port: client, tag: "in-\(item.name)"))
            rules.append("{\"inbound\":[\"in-\(item.name)\"],\"outbound\":\"\(item.name)\"}")
        }
        let anchor = try freePort()
        let go = try SingBox(.go, config: ConfigJSON.box(inbounds: inbounds + [ConfigJSON.mixed(port: anchor, tag: "anchor")],
                                                         outbounds: [ConfigJSON.direct]),
                             waitPort: anchor, in: work, name: "go-server")
        defer { go.stop() }
        let box = try SingBox(.ours, config: ConfigJSON.box(inbounds: mixed, outbounds: outbounds + [ConfigJSON.direct],
                                                           rules: "[" + rules.joined(separator: ",") + "]"),
                              waitPort: ports[0].1, in: work)
        defer { box.stop() }
        let echo = try EchoServer(in: work)
        defer { echo.stop() }
        for (name, port) in ports {
            try waitForTCP(port: port, process: box.process)
            try exerciseTCPAndUDP(via: port, files: files, dns: dns, work: work, label: "ours → Go over \(name)", logs: [box, go])
            let echoed = try echo.exercise(via: port, work: work)
            #expect(echoed == "ok\n", "ours → Go over \(name): echo \(echoed)\n\(box.log)\n\(go.log)")
        }
        for item in Self.cases {
            #expect(go.log.contains("inbound/trojan[\(item.name)]: [0] inbound connection to 127.0.0.1:\(files.port)"), "\(item.name)\n\(go.log)")
        }
    }

    /// Go's trojan outbound → our trojan inbound with the same transport, and our own outbound → it.
    @Test(arguments: cases.map(\.name))
    func trojanGoToOurs(name: String) throws {
        let item = try #require(Self.cases.first { $0.name == name })
        let work = try TemporaryDirectory()
        let certificates = try InteropCertificates()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let server = try freePort(), viaGo = try freePort(), viaOurs = try freePort()
        let transport = ",\"transport\":\(item.transport)"
        let tls = item.tls ? certificates.outboundTLS() : #"{"enabled":false}"#
        let box = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [TrojanInboundInteropTests.trojanIn(port: server, tls: item.tls ? certificates.inboundTLS : nil, extra: transport),
                       ConfigJSON.mixed(port: viaOurs, tag: "m")],
            outbounds: [ConfigJSON.direct, TrojanInteropTests.trojanOut(port: server, password: "nameless", tls: tls, tag: "self", extra: transport)],
            rules: "[{\"inbound\":[\"m\"],\"outbound\":\"self\"}]"), waitPort: server, in: work)
        defer { box.stop() }
        let go = try SingBox(.go, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: viaGo)],
            outbounds: [TrojanInteropTests.trojanOut(port: server, password: "correct horse", tls: tls, extra: transport)]),
            waitPort: viaGo, in: work, name: "go-client")
        defer { go.stop() }
        try exerciseTCPAndUDP(via: viaGo, files: files, dns: dns, work: work, label: "Go → ours over \(name)", logs: [box, go])
        let echo = try EchoServer(in: work)
        defer { echo.stop() }
        let echoed = try echo.exercise(via: viaGo, work: work, halfClose: false)
        #expect(echoed == "ok\n", "Go → ours over \(name): echo \(echoed)\n\(box.log)\n\(go.log)")
        // Go's client pools its HTTP/2 connection: several downloads at once share it, each its own flow.
        if item.tls || name == "grpc" {
            let results = Mutex<[Bool]>([])
            DispatchQueue.concurrentPerform(iterations: 3) { _ in
                let intact = (try? curl(["--socks5-hostname", "127.0.0.1:\(viaGo)", files.blobURL])) == files.blob
                results.withLock { $0.append(intact) }
            }
            #expect(results.withLock { $0 } == [true, true, true], "\(name) parallel\n\(box.log)")
        }
        try waitForTCP(port: viaOurs, process: box.process)
        try exerciseTCPAndUDP(via: viaOurs, files: files, dns: dns, work: work, label: "ours → ours over \(name)", logs: [box])
        let selfEchoed = try echo.exercise(via: viaOurs, work: work)
        #expect(selfEchoed == "ok\n", "ours → ours over \(name): echo \(selfEchoed)\n\(box.log)")
        #expect(box.log.contains("inbound/trojan[trojan-in]: [alice] inbound connection to 127.0.0.1:\(files.port)"), "\(box.log)")
    }

    /// vmess both ways over grpc with TLS and http without: ours → Go, Go → ours.
    @Test(arguments: ["grpc-tls", "http"])
    func vmessBothWays(name: String) throws {
        let item = try #require(Self.cases.first { $0.name == name })
        for toGo in [true, false] {
            let work = try TemporaryDirectory()
            let certificates = try InteropCertificates()
            let files = try FileServer(in: work)
            defer { files.stop() }
            let dns = try Dnsmasq(in: work)
            defer { dns.stop() }
            let server = try freePort(), mixed = try freePort()
            let tlsIn = item.tls ? ",\"tls\":\(certificates.inboundTLS)" : ""
            let tlsOut = item.tls ? ",\"tls\":\(certificates.outboundTLS())" : ""
            let inbound = String(VMessConfig.inbound(port: server).dropLast()) + ",\"transport\":\(item.transport)\(tlsIn)}"
            let outbound = VMessConfig.outbound(port: server, security: "aes-128-gcm", extra: ",\"transport\":\(item.transport)\(tlsOut)")
            let serverBox = try SingBox(toGo ? .go : .ours, config: ConfigJSON.box(inbounds: [inbound], outbounds: [ConfigJSON.direct]),
                                        waitPort: server, in: work, name: "server")
            defer { serverBox.stop() }
            let clientBox = try SingBox(toGo ? .ours : .go, config: ConfigJSON.box(inbounds: [ConfigJSON.mixed(port: mixed)], outbounds: [outbound]),
                                        waitPort: mixed, in: work, name: "client")
            defer { clientBox.stop() }
            try exerciseTCPAndUDP(via: mixed, files: files, dns: dns, work: work,
                                  label: "vmess \(toGo ? "ours → Go" : "Go → ours") over \(name)", logs: [serverBox, clientBox])
            #expect(serverBox.log.contains("[alice] inbound connection to 127.0.0.1:\(files.port)"), "\(serverBox.log)")
        }
    }

    /// Our vless outbound → Go's vless inbound over grpc with TLS and http without.
    @Test(arguments: ["grpc-tls", "http"])
    func vlessToGo(name: String) throws {
        let item = try #require(Self.cases.first { $0.name == name })
        let work = try TemporaryDirectory()
        let certificates = try InteropCertificates()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let server = try freePort(), mixed = try freePort()
        let go = try SingBox(.go, config: ConfigJSON.box(
            inbounds: ["{\"type\":\"vless\",\"tag\":\"vless-in\",\"listen\":\"127.0.0.1\",\"listen_port\":\(server),"
                       + "\"users\":[{\"name\":\"alice\",\"uuid\":\"\(VLESSInteropTests.uuid)\"}],\"transport\":\(item.transport)"
                       + (item.tls ? ",\"tls\":\(certificates.inboundTLS)}" : "}")],
            outbounds: [ConfigJSON.direct]), waitPort: server, in: work, name: "go-vless")
        defer { go.stop() }
        let extra = ",\"transport\":\(item.transport)" + (item.tls ? ",\"tls\":\(certificates.outboundTLS())" : "")
        let ours = try SingBox(.ours, config: ConfigJSON.box(inbounds: [ConfigJSON.mixed(port: mixed)],
                                                            outbounds: [VLESSInteropTests.outbound(port: server, extra: extra)]),
                               waitPort: mixed, in: work)
        defer { ours.stop() }
        try exerciseTCPAndUDP(via: mixed, files: files, dns: dns, work: work, label: "vless ours → Go over \(name)", logs: [ours, go])
        #expect(go.log.contains("[alice] inbound connection to 127.0.0.1:\(files.port)"), "\(go.log)")
    }

    /// v2ray 4.34's `http` transport (HTTP/2 over TLS) under vmess, both ways: our outbound to its
    /// inbound, its outbound through ours.
    @Test func vmessHTTPAgainstV2Ray() throws {
        let work = try TemporaryDirectory()
        let certificates = try InteropCertificates()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let v2rayServer = try freePort(), oursServer = try freePort(), viaOurs = try freePort(), viaV2Ray = try freePort()
        let stream = #""network":"http","security":"tls","httpSettings":{"path":"/v2","host":["front.test"]}"#
        let config = """
        {"log":{"loglevel":"debug"},
         "inbounds":[{"listen":"127.0.0.1","port":\(v2rayServer),"protocol":"vmess","settings":{"clients":[{"id":"\(VMessConfig.uuid)","alterId":0}]},
                      "streamSettings":{\(stream),"tlsSettings":{"certificates":[{"certificateFile":"\(certificates.certificatePath)","keyFile":"\(certificates.keyPath)"}]}}},
                     {"listen":"127.0.0.1","port":\(viaV2Ray),"protocol":"socks","settings":{"auth":"noauth","udp":true,"ip":"127.0.0.1"}}],
         "outbounds":[{"protocol":"freedom","tag":"direct"},
                      {"protocol":"vmess","tag":"to-ours","settings":{"vnext":[{"address":"127.0.0.1","port":\(oursServer),
                        "users":[{"id":"\(VMessConfig.uuid)","alterId":0,"security":"aes-128-gcm"}]}]},
                       "streamSettings":{\(stream),"tlsSettings":{"serverName":"trojan.test",
                         "certificates":[{"usage":"verify","certificateFile":"\(certificates.caPath)"}]}}}],
         "routing":{"rules":[{"type":"field","inboundTag":["socks-in"],"outboundTag":"to-ours"}]}}
        """.replacingOccurrences(of: "\"protocol\":\"socks\"", with: "\"tag\":\"socks-in\",\"protocol\":\"socks\"")
        let v2ray = try Spawned(V2Ray.binary, ["-config", try work.write("v2ray-http.json", config)], name: "v2ray-http", directory: work)
        defer { v2ray.stop() }
        try waitForTCP(port: v2rayServer, process: v2ray)
        let transport = #","transport":{"type":"http","path":"/v2","host":["front.test"]}"#
        let inbound = String(VMessConfig.inbound(port: oursServer).dropLast()) + transport + ",\"tls\":\(certificates.inboundTLS)}"
        let ours = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [inbound, ConfigJSON.mixed(port: viaOurs, tag: "m")],
            outbounds: [ConfigJSON.direct, VMessConfig.outbound(port: v2rayServer, security: "aes-128-gcm",
                                                                extra: transport + ",\"tls\":\(certificates.outboundTLS())")],
            rules: "[{\"inbound\":[\"m\"],\"outbound\":\"vmess-out\"}]"), waitPort: viaOurs, in: work)
        defer { ours.stop() }
        try exerciseTCPAndUDP(via: viaOurs, files: files, dns: dns, work: work, label: "ours → v2ray over http", logs: [ours, v2ray])
        try waitForTCP(port: viaV2Ray, process: v2ray)
        try exerciseTCPAndUDP(via: viaV2Ray, files: files, dns: dns, work: work, label: "v2ray → ours over http", logs: [ours, v2ray])
        #expect(ours.log.contains("inbound/vmess[vmess-in]: [alice] inbound connection to 127.0.0.1:\(files.port)"), "\(ours.log)")
    }

    /// Our servers answer bad requests as Go's do: a wrong gRPC service name is 404 with
    /// `bad path: /<name>/Tun` (Go's client then fails with `v2ray-grpc: unexpected status: 404 Not
    /// Found`), a wrong http path 404, a wrong host 400, a GET to the gRPC path 404 `bad method`;
    /// garbage gRPC framing resets that stream and the server keeps serving.
    @Test func badRequestsOnOurServer() throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let grpcPort = try freePort(), httpPort = try freePort(), viaGo = try freePort()
        let box = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [TrojanInboundInteropTests.trojanIn(port: grpcPort, tag: "g", tls: nil, extra: #","transport":{"type":"grpc","service_name":"svc","idle_timeout":"1s"}"#),
                       TrojanInboundInteropTests.trojanIn(port: httpPort, tag: "h", tls: nil,
                                                          extra: #","transport":{"type":"http","path":"/p","host":["front.test"]}"#)],
            outbounds: [ConfigJSON.direct]), waitPort: grpcPort, in: work)
        defer { box.stop() }
        let go = try SingBox(.go, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: viaGo)],
            outbounds: [TrojanInteropTests.trojanOut(port: grpcPort, password: "correct horse", tls: #"{"enabled":false}"#,
                                                     extra: #","transport":{"type":"grpc","service_name":"wrong"}"#)]),
            waitPort: viaGo, in: work, name: "go-client")
        defer { go.stop() }
        #expect((try? curl(["--socks5-hostname", "127.0.0.1:\(viaGo)", files.blobURL])) == nil)
        #expect(box.log.contains("inbound/trojan[g]") && box.log.contains("process connection from 127.0.0.1:") && box.log.contains(": bad path: /wrong/Tun"),
                "\(box.log)")
        #expect(go.log.contains("v2ray-grpc: unexpected status: 404 Not Found"), "\(go.log)")

        func status(_ arguments: [String]) throws -> String {
            let result = try runTool(Peers.curl, ["--silent", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}"] + arguments)
            return String(decoding: result.stdout, as: UTF8.self)
        }
        // h2c prior knowledge, as Go's client without TLS.
        #expect(try status(["--http2-prior-knowledge", "-X", "GET", "http://127.0.0.1:\(grpcPort)/svc/Tun"]) == "404")
        #expect(box.log.contains(": bad method: GET"), "\(box.log)")
        #expect(try status(["--http2-prior-knowledge", "-X", "POST", "-H", "content-type: text/plain", "http://127.0.0.1:\(grpcPort)/svc/Tun"]) == "404")
        #expect(box.log.contains(": bad content type: text/plain"), "\(box.log)")
        // HTTP/1.1 to the http transport: host first (400), then the path (404).
        #expect(try status(["http://127.0.0.1:\(httpPort)/p"]) == "400")
        #expect(box.log.contains(": bad host: 127.0.0.1:\(httpPort)"), "\(box.log)")
        #expect(try status(["-H", "Host: front.test", "http://127.0.0.1:\(httpPort)/elsewhere"]) == "404")
        #expect(box.log.contains(": bad path: /elsewhere"), "\(box.log)")

        // Garbage framing: flag 1 (compressed) is not gun; the stream is reset and logged.
        let garbage = try work.write("garbage.bin", "\u{1}\u{0}\u{0}\u{0}\u{5}hello")
        let reset = try runTool(Peers.curl, ["--silent", "--max-time", "5", "--http2-prior-knowledge", "-X", "POST", "-H", "content-type: application/grpc",
                                             "--data-binary", "@\(garbage)", "http://127.0.0.1:\(grpcPort)/svc/Tun"])
        #expect(reset.status != 0)
        #expect(box.log.contains("grpc: bad message flag 1"), "\(box.log)")
        // idle_timeout: an h2c connection that opens no stream gets GOAWAY (NO_ERROR) and is closed.
        let idle = try work.write("idle.py", """
        import socket, struct, sys, time
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
        s.sendall(b"PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n" + b"\\x00\\x00\\x00\\x04\\x00\\x00\\x00\\x00\\x00")
        start, data = time.time(), b""
        while True:
            chunk = s.recv(4096)
            if not chunk: break
            data += chunk
        frames, offset = [], 0
        while offset + 9 <= len(data):
            length, kind = int.from_bytes(data[offset:offset + 3], "big"), data[offset + 3]
            frames.append((kind, data[offset + 9:offset + 9 + length]))
            offset += 9 + length
        goaway = [body for kind, body in frames if kind == 7]
        print("goaway %d after %.0fs" % (int.from_bytes(goaway[0][4:8], "big"), time.time() - start) if goaway else "no goaway")
        """)
        let idleRun = try runTool(Peers.python3, [idle, String(grpcPort)], timeout: 10)
        #expect(String(decoding: idleRun.stdout, as: UTF8.self) == "goaway 0 after 1s\n", "\(idleRun.stderr)")
        // Still serving: our own client through the same inbound.
        let viaOurs = try freePort()
        let client = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: viaOurs)],
            outbounds: [TrojanInteropTests.trojanOut(port: grpcPort, password: "correct horse", tls: #"{"enabled":false}"#,
                                                     extra: #","transport":{"type":"grpc","service_name":"svc"}"#)]),
            waitPort: viaOurs, in: work, name: "ours-client")
        defer { client.stop() }
        #expect((try? curl(["--socks5-hostname", "127.0.0.1:\(viaOurs)", files.blobURL])) == files.blob, "\(box.log)\n\(client.log)")
    }
}
