// Our inbound TLS server against real clients: curl through our http and mixed inbounds over TLS
// (`--proxy https://`), a python SOCKS5-over-TLS client, `openssl s_client` for versions and ALPN
// with Go sing-box 1.12.12 as the oracle for the same `tls` object, bad input (plaintext HTTP,
// garbage, a truncated record), and the option errors compared with Go's `check`.
// Certificates come from the openssl CLI per test; every process is stopped on every exit path.
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// True when the peer closes `fd` (EOF or reset) within `timeout` seconds, reading away what it sends.
func closesWithin(_ fd: Int32, timeout: Double) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    var chunk = [UInt8](repeating: 0, count: 4096)
    while Date() < deadline {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, 100) >= 0 else { return false }
        guard poller.revents != 0 else { continue }
        let n = read(fd, &chunk, chunk.count)
        if n <= 0 { return true }
    }
    return false
}

/// A SOCKS5 client over TLS in python (its ssl module trusts only argv's CA): CONNECT to the
/// file server, GET /blob.bin, print the body. argv: proxy port, file server port, CA path.
let socksOverTLSScript = #"""
import socket, ssl, sys
proxy, target, ca = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
context = ssl.create_default_context(cafile=ca)
s = context.wrap_socket(socket.create_connection(("127.0.0.1", proxy), timeout=10), server_hostname="127.0.0.1")
def exact(n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk: raise SystemExit("closed")
        data += chunk
    return data
s.sendall(b"\x05\x01\x00")
if exact(2) != b"\x05\x00": raise SystemExit("greeting")
s.sendall(b"\x05\x01\x00\x01\x7f\x00\x00\x01" + target.to_bytes(2, "big"))
if exact(10)[1] != 0: raise SystemExit("connect")
s.sendall(b"GET /blob.bin HTTP/1.0\r\n\r\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk: break
    data += chunk
sys.stdout.buffer.write(data.split(b"\r\n\r\n", 1)[1])
"""#

@Suite(.serialized) struct TLSInboundInteropTests {
    static func inbound(_ type: String, port: UInt16, tag: String, tls: String, extra: String = "") -> String {
        "{\"type\":\"\(type)\",\"tag\":\"\(tag)\",\"listen\":\"127.0.0.1\",\"listen_port\":\(port),\"tls\":\(tls)\(extra)}"
    }

    /// curl `--proxy https://` to our http and mixed inbounds (byte-exact), SOCKS5 over TLS to the
    /// mixed one; a plaintext proxy client, garbage and a truncated ClientHello are closed and the
    /// port keeps serving.
    @Test func httpAndMixedOverTLS() throws {
        let work = try TemporaryDirectory()
        let certificates = try InteropCertificates()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let httpPort = try freePort(), mixedPort = try freePort()
        let box = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [Self.inbound("http", port: httpPort, tag: "https-in", tls: certificates.inboundTLS),
                       Self.inbound("mixed", port: mixedPort, tag: "mixed-tls", tls: certificates.inboundTLS)],
            outbounds: [ConfigJSON.direct]), waitPort: httpPort, in: work)
        defer { box.stop() }
        try waitForTCP(port: mixedPort, process: box.process)

        for port in [httpPort, mixedPort] {
            do {
                let body = try curl(["--proxy", "https://127.0.0.1:\(port)", "--proxy-cacert", certificates.caPath, files.blobURL])
                let intact = body == files.blob
                #expect(intact, "\(port): \(body.count) bytes")
            } catch {
                Issue.record("\(port): \(error)\n\(box.log)")
            }
        }
        let script = try work.write("socks-tls.py", socksOverTLSScript)
        let socks = try runTool(Peers.python3, [script, String(mixedPort), String(files.port), certificates.caPath])
        let intact = socks.stdout == files.blob
        #expect(intact, "\(socks.stdout.count) bytes: \(socks.stderr)\n\(box.log)")
        #expect(box.log.contains("inbound/http[https-in]: inbound connection to 127.0.0.1:\(files.port)"), "\(box.log)")
        #expect(box.log.contains("inbound/mixed[mixed-tls]: inbound connection to 127.0.0.1:\(files.port)"), "\(box.log)")

        // A plaintext HTTP proxy client on the TLS port: refused, in Go's words.
        #expect(throws: PeerError.self) { try curl(["-x", "http://127.0.0.1:\(httpPort)", files.blobURL]) }
        #expect(box.log.contains("TLS handshake: tls: first record does not look like a TLS handshake"), "\(box.log)")
        // Garbage instead of a ClientHello, and a ClientHello cut off mid-record: both closed.
        var generator = SystemRandomNumberGenerator()
        let garbage = (0..<600).map { _ in UInt8.random(in: 0...255, using: &generator) }
        // TLS 1.0 record header announcing 512 bytes of handshake, then 4 bytes of a ClientHello.
        let truncated: [UInt8] = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc]
        for (name, bytes, halfClose) in [("garbage", garbage, false), ("truncated", truncated, true)] {
            for port in [httpPort, mixedPort] {
                let fd = connectTCP(port: port)
                #expect(fd >= 0)
                guard fd >= 0 else { continue }
                defer { close(fd) }
                writeAll(fd, bytes)
                if halfClose { shutdown(fd, Int32(SHUT_WR)) }
                #expect(closesWithin(fd, timeout: 5), "\(name) on \(port) left open")
            }
        }
        let again = try curl(["--proxy", "https://127.0.0.1:\(mixedPort)", "--proxy-cacert", certificates.caPath, files.blobURL]) == files.blob
        #expect(again, "\(box.log)")
        #expect(box.process.isRunning)
    }

    /// A `direct` inbound whose listen `detour` is the TLS http inbound: the TLS server runs on
    /// the handed-over connection, as Go injects it (curl `--proxy https://` to the direct port).
    @Test func listenDetourIntoTLSInbound() throws {
        let work = try TemporaryDirectory()
        let certificates = try InteropCertificates()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let entry = try freePort(), httpsPort = try freePort()
        let box = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: ["{\"type\":\"direct\",\"tag\":\"entry\",\"listen\":\"127.0.0.1\",\"listen_port\":\(entry),\"detour\":\"https-in\"}",
                       Self.inbound("http", port: httpsPort, tag: "https-in", tls: certificates.inboundTLS)],
            outbounds: [ConfigJSON.direct]), waitPort: entry, in: work)
        defer { box.stop() }
        do {
            let body = try curl(["--proxy", "https://127.0.0.1:\(entry)", "--proxy-cacert", certificates.caPath, files.blobURL])
            let intact = body == files.blob
            #expect(intact, "\(body.count) bytes")
        } catch {
            Issue.record("\(error)\n\(box.log)")
        }
        #expect(box.log.contains("inbound/http[https-in]: inbound connection to 127.0.0.1:\(files.port)"), "\(box.log)")
    }

    /// `openssl s_client` against ours and Go's http inbound with the same `tls` object: the same
    /// versions and ALPN outcomes (server preference; no overlap refused).
    @Test func versionsAndALPNMatchGo() throws {
        let work = try TemporaryDirectory()
        let certificates = try InteropCertificates()
        let tls = "{\"enabled\":true,\"certificate_path\":\"\(certificates.certificatePath)\",\"key_path\":\"\(certificates.keyPath)\","
            + "\"alpn\":[\"h2\",\"http/1.1\"],\"max_version\":\"1.2\"}"
        let tls13 = "{\"enabled\":true,\"certificate_path\":\"\(certificates.certificatePath)\",\"key_path\":\"\(certificates.keyPath)\","
            + "\"min_version\":\"1.3\"}"
        var servers: [(String, UInt16, UInt16)] = []
        var boxes: [SingBox] = []
        defer { for box in boxes { box.stop() } }
        for implementation in [Implementation.ours, .go] {
            let port = try freePort(), port13 = try freePort()
            let box = try SingBox(implementation, config: ConfigJSON.box(
                inbounds: [Self.inbound("http", port: port, tag: "a", tls: tls), Self.inbound("http", port: port13, tag: "b", tls: tls13)],
                outbounds: [ConfigJSON.direct]), waitPort: port, in: work)
            boxes.append(box)
            try waitForTCP(port: port13, process: box.process)
            servers.append(("\(implementation)", port, port13))
        }
        func probe(_ port: UInt16, _ arguments: [String]) throws -> String {
            let result = try runTool("/usr/bin/openssl", ["s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", certificates.caPath] + arguments,
                                     timeout: 10)
            let text = String(decoding: result.stdout, as: UTF8.self)
            let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            // `New, TLSv1.2, Cipher is …`, or `New, (NONE), Cipher is (NONE)` when the handshake failed.
            guard let summary = lines.first(where: { $0.hasPrefix("New, ") }), !summary.contains("(NONE)") else { return "failed" }
            let version = summary.split(separator: ",").dropFirst().first.map { $0.trimmingCharacters(in: .whitespaces) } ?? "?"
            let alpn = lines.first { $0.hasPrefix("ALPN protocol:") || $0.hasPrefix("No ALPN negotiated") } ?? "-"
            let verified = lines.contains("Verify return code: 0 (ok)")
            return "\(verified ? "ok" : "unverified") \(version) \(alpn)"
        }
        let cases: [(port: (UInt16, UInt16) -> UInt16, arguments: [String], expected: String)] = [
            ({ a, _ in a }, ["-alpn", "http/1.1,h2"], "ok TLSv1.2 ALPN protocol: h2"),
            ({ a, _ in a }, ["-alpn", "http/1.1"], "ok TLSv1.2 ALPN protocol: http/1.1"),
            ({ a, _ in a }, [], "ok TLSv1.2 No ALPN negotiated"),
            ({ a, _ in a }, ["-alpn", "spdy/1"], "failed"),
            ({ a, _ in a }, ["-tls1_3"], "failed"),
            ({ _, b in b }, ["-tls1_2"], "failed"),
            ({ _, b in b }, [], "ok TLSv1.3 No ALPN negotiated"),
        ]
        for item in cases {
            for (name, port, port13) in servers {
                let outcome = try probe(item.port(port, port13), item.arguments)
                #expect(outcome == item.expected, "\(name) \(item.arguments)")
            }
        }
    }

    /// `insecure` without certificate and key: ours and Go both serve a self-signed RSA 2048
    /// certificate made for the client's server name, and curl `--proxy-insecure` works through it.
    @Test func insecureServesSelfSignedForTheServerName() throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        var boxes: [SingBox] = []
        defer { for box in boxes { box.stop() } }
        var outcomes: [String: String] = [:]
        for implementation in [Implementation.ours, .go] {
            let port = try freePort()
            let box = try SingBox(implementation, config: ConfigJSON.box(
                inbounds: [Self.inbound("http", port: port, tag: "in", tls: "{\"enabled\":true,\"insecure\":true}")],
                outbounds: [ConfigJSON.direct]), waitPort: port, in: work)
            boxes.append(box)
            let probe = try runTool("/usr/bin/openssl", ["s_client", "-connect", "127.0.0.1:\(port)", "-servername", "proxy.test"], timeout: 10)
            let lines = String(decoding: probe.stdout, as: UTF8.self).split(separator: "\n").map(String.init)
            let summary = lines.filter { $0.hasPrefix("subject=") || $0.hasPrefix("issuer=") || $0.hasPrefix("Server public key is") }
            outcomes["\(implementation)"] = summary.joined(separator: "; ")
            do {
                let body = try curl(["--proxy", "https://127.0.0.1:\(port)", "--proxy-insecure", files.blobURL])
                let intact = body == files.blob
                #expect(intact, "\(implementation)")
            } catch {
                Issue.record("\(implementation): \(error)\n\(box.log)")
            }
        }
        #expect(outcomes["ours"] == "subject=CN = proxy.test; issuer=CN = proxy.test; Server public key is 2048 bit", "\(outcomes)")
        #expect(outcomes["ours"] == outcomes["go"], "\(outcomes)")
    }

    /// The certificate and key files are reloaded when they change, as Go's fswatch does: the next
    /// handshake serves the new pair; a broken key is reported in Go's words and the pair kept.
    @Test func certificateFilesReloadOnChange() throws {
        let work = try TemporaryDirectory()
        let first = try InteropCertificates(), second = try InteropCertificates()
        func install(_ certificates: InteropCertificates) throws {
            try Data(contentsOf: URL(fileURLWithPath: certificates.certificatePath)).write(to: URL(fileURLWithPath: work.file("live.pem")))
            try Data(contentsOf: URL(fileURLWithPath: certificates.keyPath)).write(to: URL(fileURLWithPath: work.file("live.key")))
        }
        try install(first)
        let port = try freePort()
        let tls = "{\"enabled\":true,\"certificate_path\":\"\(work.file("live.pem"))\",\"key_path\":\"\(work.file("live.key"))\"}"
        let box = try SingBox(.ours, config: ConfigJSON.box(inbounds: [Self.inbound("http", port: port, tag: "in", tls: tls)],
                                                            outbounds: [ConfigJSON.direct]), waitPort: port, in: work)
        defer { box.stop() }
        func trusted(by certificates: InteropCertificates) throws -> Bool {
            let probe = try runTool("/usr/bin/openssl", ["s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", certificates.caPath], timeout: 10)
            return String(decoding: probe.stdout, as: UTF8.self).contains("Verify return code: 0 (ok)")
        }
        #expect(try trusted(by: first))
        #expect(try !trusted(by: second))
        try install(second)
        usleep(1_200_000)  // stamps are looked at once a second at most
        #expect(try trusted(by: second), "\(box.log)")
        #expect(box.log.contains("inbound/http[in]: reloaded TLS certificate"), "\(box.log)")
        _ = try work.write("live.key", "not a key\n")
        usleep(1_200_000)
        #expect(try trusted(by: second), "\(box.log)")
        #expect(box.log.contains("reload certificate: reload key pair: tls: failed to find any PEM data in key input"), "\(box.log)")
    }

    /// Bad `tls` objects fail the start with Go's words (Go's `check` is the oracle); the features
    /// neither release build has name their build tags; ech is ours to refuse.
    @Test func optionErrorsMatchGo() throws {
        let work = try TemporaryDirectory()
        let certificates = try InteropCertificates()
        let other = try InteropCertificates()
        let (cert, key) = (certificates.certificatePath, certificates.keyPath)
        let cases: [(String, String)] = [
            ("{\"enabled\":true,\"certificate_path\":\"/nonexistent.pem\",\"key_path\":\"\(key)\"}",
             "read certificate: open /nonexistent.pem: no such file or directory"),
            ("{\"enabled\":true,\"certificate_path\":\"\(cert)\",\"key_path\":\"/nonexistent.key\"}",
             "read key: open /nonexistent.key: no such file or directory"),
            ("{\"enabled\":true,\"certificate_path\":\"\(cert)\",\"key_path\":\"\(other.keyPath)\"}",
             "parse x509 key pair: tls: private key does not match public key"),
            ("{\"enabled\":true,\"certificate\":[\"garbage\"],\"key_path\":\"\(key)\"}",
             "parse x509 key pair: tls: failed to find any PEM data in certificate input"),
            ("{\"enabled\":true,\"certificate_path\":\"\(key)\",\"key_path\":\"\(key)\"}",
             "parse x509 key pair: tls: failed to find certificate PEM data in certificate input, but did find a private key; PEM inputs may have been switched"),
            ("{\"enabled\":true,\"certificate_path\":\"\(cert)\",\"key_path\":\"\(cert)\"}",
             "parse x509 key pair: tls: found a certificate rather than a key in the PEM for the private key"),
            ("{\"enabled\":true,\"certificate_path\":\"\(cert)\",\"key_path\":\"\(key)\",\"min_version\":\"1.4\"}",
             "parse min_version: unknown tls version:1.4"),
            ("{\"enabled\":true,\"certificate_path\":\"\(cert)\",\"key_path\":\"\(key)\",\"cipher_suites\":[\"TLS_FOO\"]}",
             "unknown cipher_suite: TLS_FOO"),
            ("{\"enabled\":true,\"acme\":{\"domain\":[\"example.com\"]}}",
             "ACME is not included in this build, rebuild with -tags with_acme"),
            ("{\"enabled\":true,\"certificate_path\":\"\(cert)\",\"key_path\":\"\(key)\",\"reality\":{\"enabled\":true}}",
             "uTLS, which is required by reality is not included in this build, rebuild with -tags with_utls"),
        ]
        for (index, (tls, expected)) in cases.enumerated() {
            let config = try work.write("bad-\(index).json", ConfigJSON.box(
                inbounds: [Self.inbound("http", port: try freePort(), tag: "in", tls: tls)], outbounds: [ConfigJSON.direct]))
            let go = try runTool(Peers.go, ["check", "-c", config], timeout: 10)
            #expect(go.status != 0, "\(tls)")
            #expect(go.stderr.contains("initialize inbound[0]: \(expected)"), "go: \(go.stderr)")
            // Ours says the same, after the config check's JSON path when that check caught it first.
            let ours = try runTool(Peers.ours, ["check", "-c", config], timeout: 10)
            #expect(ours.status != 0, "\(tls)")
            #expect(ours.stderr.contains("initialize inbound[0]: \(expected)") || ours.stderr.contains("inbounds[0].tls.") && ours.stderr.contains(": \(expected)"),
                    "ours: \(ours.stderr)")
        }
        let ech = try work.write("ech.json", ConfigJSON.box(
            inbounds: [Self.inbound("http", port: try freePort(), tag: "in",
                                    tls: "{\"enabled\":true,\"certificate_path\":\"\(cert)\",\"key_path\":\"\(key)\",\"ech\":{\"enabled\":true,\"key\":[\"x\"]}}")],
            outbounds: [ConfigJSON.direct]))
        let run = try runTool(Peers.ours, ["check", "-c", ech], timeout: 10)
        #expect(run.status != 0)
        #expect(run.stderr.contains("initialize inbound[0]: not implemented: tls.ech"), "\(run.stderr)")
    }
}
