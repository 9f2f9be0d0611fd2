// Our naive inbound against the naive client in Support/NaiveClient.swift, which is first proven
// against Go sing-box 1.12.12's naive inbound: every test runs the same client against Go and ours
// side by side. HTTP/2 over TLS (several concurrent streams on one connection), HTTP/1.1 plain and
// over TLS: byte-exact 1 MiB downloads and echoes through the padded first frames; the three
// rejects with the same answer and the same log line; Go's start-time errors; garbage.
import Foundation
import Testing

@Suite(.serialized) struct NaiveInboundInteropTests {
    static func naiveIn(port: UInt16, tls: String?, network: String? = "tcp", users: String = #"[{"username":"alice","password":"correct horse"}]"#) -> String {
        "{\"type\":\"naive\",\"tag\":\"naive-in\",\"listen\":\"127.0.0.1\",\"listen_port\":\(port),\"users\":\(users)"
            + (network.map { ",\"network\":\"\($0)\"" } ?? "") + (tls.map { ",\"tls\":\($0)" } ?? "") + "}"
    }

    /// Runs the client; its stdout lines.
    static func client(_ work: TemporaryDirectory, _ arguments: [String]) throws -> [String] {
        let script = try work.write("naive_client.py", naiveClientScript)
        let result = try runTool(Peers.python3, [script] + arguments, timeout: 60)
        #expect(result.status == 0, "\(arguments): \(result.stderr)")
        return String(decoding: result.stdout, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    /// The reasons of the inbound's `process connection from 127.0.0.1:…: <reason>` lines, in order.
    static func rejectReasons(_ log: String) -> [String] {
        log.split(separator: "\n").compactMap { line -> String? in
            guard let range = line.range(of: "inbound/naive[naive-in]: process connection from 127.0.0.1:") else { return nil }
            let rest = line[range.upperBound...]
            guard let colon = rest.firstIndex(of: ":") else { return nil }
            return String(rest[rest.index(after: colon)...].drop { $0 == " " })
        }
    }

    enum Mode: String, CaseIterable, Sendable { case h2, h1tls, h1 }

    /// Go's inbound, then ours, with the same client: HTTP/2 with four concurrent streams on one
    /// connection (1 MiB down, 1 MiB echoed, 64 KiB echoed, 5 bytes down), HTTP/1.1 plain and over
    /// TLS (1 MiB down, 1 MiB echoed, one connection each). Every answer carries Go's `Padding`; the
    /// source logged is the request's X-Forwarded-For address.
    @Test(arguments: Mode.allCases)
    func transfers(mode: Mode) throws {
        let work = try TemporaryDirectory()
        let certificates = try InteropCertificates()
        let jobs = mode == .h2 ? "send:1048576,echo:1048576,echo:65536,send:5" : "send:1048576,echo:1048576"
        let count = jobs.split(separator: ",").count
        for implementation in [Implementation.go, .ours] {
            let port = try freePort()
            let box = try SingBox(implementation, config: ConfigJSON.box(
                inbounds: [Self.naiveIn(port: port, tls: mode == .h1 ? nil : certificates.inboundTLS)], outbounds: [ConfigJSON.direct]),
                waitPort: port, in: work)
            defer { box.stop() }
            // The X-Forwarded-For address is only a header: it names the source in the log (sing's SourceAddress).
            let lines = try Self.client(work, [mode.rawValue, String(port), "--ca", certificates.caPath, "--auth", "alice:correct horse",
                                               "--xff", "garbage,10.9.8.7", "--jobs", jobs])
            let oks = lines.filter { $0.contains(" ok ") }
            #expect(oks.count == count, "\(implementation) \(mode): \(lines)\n\(box.log)")
            #expect(lines.contains("send 0 ok 1048576") && lines.contains("echo 1 ok 1048576"), "\(implementation) \(mode): \(lines)")
            if mode == .h2 {
                #expect(lines.first == "alpn h2")
                #expect(lines.contains("echo 2 ok 65536") && lines.contains("send 3 ok 5"), "\(implementation): \(lines)")
            }
            let statuses = lines.filter { $0.hasPrefix("status ") }
            #expect(statuses.count == count && statuses.allSatisfy { $0.hasPrefix("status 200") }, "\(implementation) \(mode): \(lines)")
            let paddings = lines.compactMap { $0.hasPrefix("padding-header ") ? Int($0.dropFirst(15)) : nil }
            #expect(paddings.count == count && paddings.allSatisfy { (30...61).contains($0) }, "\(implementation) \(mode): \(lines)")
            let log = box.log
            let accepted = log.split(separator: "\n").filter { $0.contains("inbound/naive[naive-in]: [alice] inbound connection to 127.0.0.1:") }
            #expect(accepted.count == count, "\(implementation) \(mode): \(log)")
            #expect(log.contains("inbound/naive[naive-in]: [alice] inbound connection from 10.9.8.7:"), "\(log)")
            #expect(Self.rejectReasons(log).isEmpty, "\(log)")
        }
    }

    /// Not CONNECT, no `Padding`, a wrong password, no credentials: Go and ours answer alike (HTTP/2:
    /// 400, 400, 407, 407; HTTP/1.1: no answer, a reset on plain TCP and a close over TLS) and log
    /// the same reasons in the same order. The connection or box survives each.
    @Test(arguments: Mode.allCases)
    func rejects(mode: Mode) throws {
        let work = try TemporaryDirectory()
        let certificates = try InteropCertificates()
        var outcomes: [Implementation: [String]] = [:]
        for implementation in [Implementation.go, .ours] {
            let port = try freePort()
            let box = try SingBox(implementation, config: ConfigJSON.box(
                inbounds: [Self.naiveIn(port: port, tls: mode == .h1 ? nil : certificates.inboundTLS)], outbounds: [ConfigJSON.direct]),
                waitPort: port, in: work)
            defer { box.stop() }
            let base = [mode.rawValue, String(port), "--ca", certificates.caPath, "--jobs", "send:5"]
            var lines: [String] = []
            for extra in [["--auth", "alice:correct horse", "--method", "GET"], ["--auth", "alice:correct horse", "--no-padding"],
                          ["--auth", "alice:wrong"], []] {
                lines += try Self.client(work, base + extra).filter { $0 != "alpn h2" }
            }
            let expected: [String] = switch mode {
            case .h2: ["status 400 0", "status 400 0", "status 407 0", "status 407 0"]
            case .h1tls: ["closed", "closed", "closed", "closed"]
            case .h1: ["reset", "reset", "reset", "reset"]
            }
            #expect(lines == expected, "\(implementation) \(mode): \(lines)\n\(box.log)")
            // The box logs its reason only after answering: wait for the last line.
            let deadline = Date().addingTimeInterval(5)
            while Self.rejectReasons(box.log).count < 4, Date() < deadline { usleep(50_000) }
            #expect(Self.rejectReasons(box.log) == ["not CONNECT request", "missing naive padding", "authorization failed", "authorization failed"],
                    "\(implementation) \(mode): \(box.log)")
            #expect(box.process.isRunning)
            outcomes[implementation] = lines
        }
        #expect(outcomes[.go] == outcomes[.ours])
    }

    /// Go's start-time errors in Go's words; QUIC alone is not in this build (`not implemented`),
    /// the default network (tcp and udp) serves TCP with Go's `naive http3 disabled` warning; a
    /// garbage request head gets Go's plain-text 400 and the box keeps serving.
    @Test func startErrorsAndGarbage() throws {
        let work = try TemporaryDirectory()
        let certificates = try InteropCertificates()
        let noUsers = try work.write("no-users.json", ConfigJSON.box(
            inbounds: [Self.naiveIn(port: try freePort(), tls: nil, users: "[]")], outbounds: [ConfigJSON.direct]))
        let udpPlain = try work.write("udp-plain.json", ConfigJSON.box(
            inbounds: [Self.naiveIn(port: try freePort(), tls: nil, network: nil)], outbounds: [ConfigJSON.direct]))
        for (config, expected) in [(noUsers, "missing users"), (udpPlain, "TLS is required for QUIC server")] {
            let go = try runTool(Peers.go, ["run", "-c", config], timeout: 10)
            #expect(go.status != 0)
            #expect(go.stderr.contains(expected), "go: \(go.stderr)")
            let ours = try runTool(Peers.ours, ["run", "-c", config], timeout: 10)
            #expect(ours.status != 0)
            #expect(ours.stderr.contains(expected), "ours: \(ours.stderr)")
        }
        let quicOnly = try work.write("quic.json", ConfigJSON.box(
            inbounds: [Self.naiveIn(port: try freePort(), tls: certificates.inboundTLS, network: "udp")], outbounds: [ConfigJSON.direct]))
        let ours = try runTool(Peers.ours, ["run", "-c", quicOnly], timeout: 10)
        #expect(ours.status != 0)
        #expect(ours.stderr.contains("not implemented: naive QUIC (network udp)"), "ours: \(ours.stderr)")

        let port = try freePort()
        let box = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [Self.naiveIn(port: port, tls: certificates.inboundTLS, network: nil)], outbounds: [ConfigJSON.direct]),
            waitPort: port, in: work)
        defer { box.stop() }
        #expect(box.log.contains("naive http3 disabled: not implemented: naive QUIC (network udp)"), "\(box.log)")
        let garbage = try work.write("garbage.py", """
            import socket, ssl, sys
            context = ssl.create_default_context(cafile=sys.argv[2])
            s = context.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5), server_hostname="127.0.0.1")
            s.sendall(b"\\x00\\x01 garbage\\r\\n\\xff: x\\r\\n\\r\\n")
            out = b""
            while True:
                b = s.recv(1000)
                if not b: break
                out += b
            print(out.split(b"\\r\\n")[0].decode())
            """)
        let result = try runTool(Peers.python3, [garbage, String(port), certificates.caPath])
        #expect(String(decoding: result.stdout, as: UTF8.self) == "HTTP/1.1 400 Bad Request\n", "\(result.stderr)\n\(box.log)")
        let lines = try Self.client(work, ["h2", String(port), "--ca", certificates.caPath, "--auth", "alice:correct horse", "--jobs", "echo:70000"])
        #expect(lines.contains("echo 0 ok 70000"), "\(lines)\n\(box.log)")
        #expect(box.process.isRunning)
    }

    /// Request heads Go's HTTP/1 server refuses before (or instead of) the naive checks, sent to Go
    /// and to ours on plain TCP: garbage and a bad URI get Go's plain-text 400, another HTTP version
    /// 505, a head over 1 MiB 431, the h2c preface the handler's reset (`not CONNECT request`).
    @Test func malformedHeadsLikeGo() throws {
        let work = try TemporaryDirectory()
        let script = try work.write("heads.py", """
            import socket, sys
            payloads = [b"\\x00\\x01 garbage\\r\\n\\xff: x\\r\\n\\r\\n", b"GET 127.0.0.1:1 HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n",
                        b"GET / HTTP/3.0\\r\\nHost: x\\r\\n\\r\\n", b"CONNECT a:1 HTTP/1.1\\r\\nA: " + b"x" * 1100000 + b"\\r\\n\\r\\n",
                        b"PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n"]
            for payload in payloads:
                s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
                try:
                    s.sendall(payload)
                    out = b""
                    while True:
                        b = s.recv(65536)
                        if not b: break
                        out += b
                    print(out.decode(errors="replace").replace("\\r\\n", "|"))
                except ConnectionResetError:
                    print("reset")
                s.close()
            """)
        var outcomes: [String] = []
        for implementation in [Implementation.go, .ours] {
            let port = try freePort()
            let box = try SingBox(implementation, config: ConfigJSON.box(inbounds: [Self.naiveIn(port: port, tls: nil)], outbounds: [ConfigJSON.direct]),
                                  waitPort: port, in: work)
            defer { box.stop() }
            let result = try runTool(Peers.python3, [script, String(port)], timeout: 30)
            let text = String(decoding: result.stdout, as: UTF8.self)
            #expect(text.hasPrefix("HTTP/1.1 400 Bad Request|"), "\(implementation): \(text) \(result.stderr)")
            #expect(text.contains("505 HTTP Version Not Supported: unsupported protocol version") && text.contains("431 Request Header Fields Too Large")
                    && text.hasSuffix("reset\n"), "\(implementation): \(text)")
            #expect(box.process.isRunning)
            outcomes.append(text)
        }
        #expect(outcomes.count == 2 && outcomes[0] == outcomes[1])
    }

    /// HTTP/1.1 with the first padded frame in the same write as the CONNECT head: ours passes it
    /// into the tunnel. (Go's inbound drops bytes its server read before the hijack, so its target
    /// sees a broken first frame; the other tests wait for Go's hijack before sending.)
    @Test func earlyBytesAfterTheHeadReachTheTarget() throws {
        let work = try TemporaryDirectory()
        let certificates = try InteropCertificates()
        for tls in [false, true] {
            let port = try freePort()
            let box = try SingBox(.ours, config: ConfigJSON.box(
                inbounds: [Self.naiveIn(port: port, tls: tls ? certificates.inboundTLS : nil)], outbounds: [ConfigJSON.direct]),
                waitPort: port, in: work)
            defer { box.stop() }
            let lines = try Self.client(work, [tls ? "h1tls" : "h1", String(port), "--ca", certificates.caPath, "--auth", "alice:correct horse",
                                               "--early", "--jobs", "echo:100000,send:100000"])
            #expect(lines.contains("echo 0 ok 100000") && lines.contains("send 1 ok 100000"), "tls \(tls): \(lines)\n\(box.log)")
        }
    }

    /// A target that sends 5 bytes and closes ends the HTTP/2 tunnel as Go ends it: the bytes (in a
    /// padded frame), END_STREAM, then RST_STREAM NO_ERROR for the client's open half (Go's tunnel
    /// cannot half-close over HTTP/2).
    @Test func targetCloseEndsTheHTTP2StreamLikeGo() throws {
        let work = try TemporaryDirectory()
        let certificates = try InteropCertificates()
        let script = try work.write("end.py", """
            import base64, socket, ssl, sys, threading, h2.config, h2.connection, h2.events
            srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(5)
            def serve():
                while True:
                    c, _ = srv.accept(); c.sendall(b"hello"); c.close()
            threading.Thread(target=serve, daemon=True).start()
            s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
            ctx = ssl.create_default_context(cafile=sys.argv[2]); ctx.set_alpn_protocols(["h2"])
            s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
            conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
            conn.initiate_connection()
            conn.send_headers(1, [(":method", "CONNECT"), (":authority", "127.0.0.1:%d" % srv.getsockname()[1]), ("padding", "x"),
                                  ("proxy-authorization", "Basic " + base64.b64encode(b"alice:correct horse").decode())])
            s.sendall(conn.data_to_send())
            events, data = [], b""
            while not events or events[-1] not in ("reset 0", "reset 8"):
                chunk = s.recv(65536)
                if not chunk: events.append("closed"); break
                for e in conn.receive_data(chunk):
                    if isinstance(e, h2.events.ResponseReceived): events.append("status " + dict(e.headers)[":status"])
                    elif isinstance(e, h2.events.DataReceived): data += e.data; conn.acknowledge_received_data(e.flow_controlled_length, 1)
                    elif isinstance(e, h2.events.StreamEnded): events.append("ended")
                    elif isinstance(e, h2.events.StreamReset): events.append("reset %d" % e.error_code)
                s.sendall(conn.data_to_send())
            length, padding = int.from_bytes(data[:2], "big"), data[2]
            print(" ".join(events), data[3:3 + length].decode(), len(data) == 3 + length + padding)
            """)
        for implementation in [Implementation.go, .ours] {
            let port = try freePort()
            let box = try SingBox(implementation, config: ConfigJSON.box(
                inbounds: [Self.naiveIn(port: port, tls: certificates.inboundTLS)], outbounds: [ConfigJSON.direct]), waitPort: port, in: work)
            defer { box.stop() }
            let result = try runTool(Peers.python3, [script, String(port), certificates.caPath])
            #expect(String(decoding: result.stdout, as: UTF8.self) == "status 200 ended reset 0 hello True\n", "\(implementation): \(result.stderr)\n\(box.log)")
        }
    }
}
