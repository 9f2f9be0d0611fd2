// The `https` DNS server (DNS over HTTPS on HTTP/2, and HTTP/1.1 when ALPN picks it) against a
// real DoH server: dnsdist (h2o) with a certificate the test makes, forwarding to dnsmasq. kdig
// +https checks the peer first; dnsdist's web API counts connections and queries per HTTP version.
import Foundation
import Testing
import Adapter
import Config
@testable import DNS
import TestSupport

/// dnsdist serving DoH on 127.0.0.1 in front of a dnsmasq.
final class DoHServer: @unchecked Sendable {
    let directory: String
    let port: UInt16
    private let dnsdist: ChildProcess

    var certificatePath: String { directory + "/cert.pem" }

    /// `idleTimeout` (seconds) makes dnsdist close idle DoH connections sooner than its 30 s.
    init(upstreamPort: UInt16, idleTimeout: Int? = nil) async throws {
        directory = "/tmp/doh-test-\(UInt32.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let openssl = ChildProcess()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                             "-subj", "/CN=dns.test", "-addext", "subjectAltName=DNS:dns.test,IP:127.0.0.1",
                             "-keyout", directory + "/key.pem", "-out", directory + "/cert.pem"]
        openssl.standardOutput = FileHandle.nullDevice
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        while openssl.isRunning { try await Task.sleep(for: .milliseconds(10)) }
        var lastError: (any Error)? = nil
        for _ in 0..<10 {
            guard let port = freeLoopbackPort() else { continue }
            let config = """
            setLocal("127.0.0.1:\(port &+ 1)")
            newServer({address="127.0.0.1:\(upstreamPort)"})
            addDOHLocal("127.0.0.1:\(port)", "\(directory)/cert.pem", "\(directory)/key.pem", "/dns-query"\(idleTimeout.map { ", {idleTimeout=\($0)}" } ?? ""))
            setSecurityPollSuffix("")
            webserver("127.0.0.1:\(port &+ 2)")
            setWebserverConfig({apiKey="doh-test", acl="127.0.0.0/8"})
            """
            try config.write(toFile: directory + "/dnsdist.conf", atomically: true, encoding: .utf8)
            let dnsdist = ChildProcess()
            dnsdist.executableURL = URL(fileURLWithPath: "/usr/bin/dnsdist")
            dnsdist.arguments = ["--supervised", "--disable-syslog", "-C", directory + "/dnsdist.conf"]
            dnsdist.standardOutput = FileHandle.nullDevice
            dnsdist.standardError = FileHandle.nullDevice
            do { try dnsdist.run() } catch { lastError = error; continue }
            for _ in 0..<100 where dnsdist.isRunning {
                if Self.kdigAnswers(port: port) {
                    self.port = port
                    self.dnsdist = dnsdist
                    return
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            kill(dnsdist.processIdentifier, SIGKILL)
        }
        throw lastError ?? DNSTLSError("dnsdist did not start")
    }

    /// kdig over HTTPS (HTTP/2, no certificate check) gets x.test's address: the peer works.
    static func kdigAnswers(port: UInt16) -> Bool {
        let kdig = ChildProcess()
        kdig.executableURL = URL(fileURLWithPath: "/usr/bin/kdig")
        kdig.arguments = ["@127.0.0.1", "-p", String(port), "+https", "+short", "+timeout=1", "+retry=0", "x.test", "A"]
        let pipe = Pipe()
        kdig.standardOutput = pipe
        kdig.standardError = FileHandle.nullDevice
        guard (try? kdig.run()) != nil else { return false }
        kdig.waitUntilExit()
        return String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).contains("10.1.2.3")
    }

    /// The DoH frontend's counters from dnsdist's web API (`http-connects`, `http1-queries`,
    /// `http2-queries`, ...); empty when the API did not answer.
    func stats() -> [String: Int] {
        let curl = ChildProcess()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = ["-s", "--max-time", "2", "-H", "X-API-Key: doh-test", "http://127.0.0.1:\(port &+ 2)/api/v1/servers/localhost"]
        let pipe = Pipe()
        curl.standardOutput = pipe
        curl.standardError = FileHandle.nullDevice
        guard (try? curl.run()) != nil else { return [:] }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        curl.waitUntilExit()
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let frontends = root["dohFrontends"] as? [[String: Any]], let frontend = frontends.first else { return [:] }
        return frontend.compactMapValues { $0 as? Int }
    }

    func stop() {
        if dnsdist.isRunning { kill(dnsdist.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    deinit { stop() }
}

@Suite(.serialized) struct HTTPSTransportTests {
    static func transport(_ server: DoHServer, alpn: String? = nil, extra: String = "") throws -> any DNSTransport {
        let alpnOption = alpn.map { #", "alpn": \#($0)"# } ?? ""
        let options = try dnsOptions("""
        {"servers": [{"type": "https", "tag": "doh", "server": "127.0.0.1", "server_port": \(server.port),
                      "tls": {"enabled": true, "server_name": "dns.test", "certificate_path": "\(server.certificatePath)"\(alpnOption)}\(extra)}]}
        """)
        return try DNSSetup.makeTransport(options.servers[0], context: setupContext())
    }

    @Test func postsQueriesOverHTTP1() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/dnsdist") else {
            Issue.record("dnsdist missing: run scripts/install-test-deps.sh")
            return
        }
        let dnsmasq = try await Dnsmasq()
        defer { dnsmasq.stop() }
        let server = try await DoHServer(upstreamPort: dnsmasq.port)
        defer { server.stop() }
        let before = server.stats()
        // The client offers only http/1.1, so the server cannot pick h2: the HTTP/1.1 path.
        let doh = try Self.transport(server, alpn: #"["http/1.1"]"#, extra: #", "headers": {"X-Test": "1"}"#)
        let response = try await doh.exchange(DNSMessage.query(id: 0x5151, name: try DNSName("x.test"), type: .a))
        #expect(response.id == 0x5151)
        #expect(response.addresses == [ip("10.1.2.3")])
        // Concurrent queries: the idle pool and fresh connections both carry them.
        try await withThrowingTaskGroup(of: [IPAddress].self) { group in
            for index in 0..<12 {
                group.addTask {
                    try await doh.exchange(DNSMessage.query(id: UInt16(index), name: try DNSName("x.test"), type: .a)).addresses
                }
            }
            for try await addresses in group { #expect(addresses == [ip("10.1.2.3")]) }
        }
        // Sequential queries reuse a kept-alive connection.
        for _ in 0..<5 {
            #expect(try await doh.exchange(DNSMessage.query(id: 1, name: try DNSName("x.test"), type: .a)).addresses == [ip("10.1.2.3")])
        }
        await doh.close()
        let after = server.stats()
        #expect(after["http1-queries", default: -1] - before["http1-queries", default: 0] == 18)
        #expect(after["http2-queries"] == before["http2-queries"])
        // A path the server does not serve: Go's wording.
        let wrongPath = try Self.transport(server, alpn: #"["http/1.1"]"#, extra: #", "path": "/nope""#)
        await #expect { _ = try await wrongPath.exchange(DNSMessage.query(id: 2, name: try DNSName("x.test"), type: .a)) } throws: { error in
            "\(error)".contains("unexpected status: 404")
        }
        await wrongPath.close()
    }

    @Test func multiplexesQueriesOverHTTP2() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/dnsdist") else {
            Issue.record("dnsdist missing: run scripts/install-test-deps.sh")
            return
        }
        let dnsmasq = try await Dnsmasq()
        defer { dnsmasq.stop() }
        let server = try await DoHServer(upstreamPort: dnsmasq.port)
        defer { server.stop() }
        let before = server.stats()
        #expect(before["http-connects"] != nil, "dnsdist's web API answers")
        // Default ALPN (h2, http/1.1): the server picks h2.
        let doh = try Self.transport(server, extra: #", "headers": {"X-Test": "1"}"#)
        let response = try await doh.exchange(DNSMessage.query(id: 0x2222, name: try DNSName("x.test"), type: .a))
        #expect(response.id == 0x2222)
        #expect(response.addresses == [ip("10.1.2.3")])
        // Concurrent queries are streams of the one connection.
        try await withThrowingTaskGroup(of: (UInt16, DNSMessage).self) { group in
            for index in 0..<24 {
                group.addTask {
                    (UInt16(index), try await doh.exchange(DNSMessage.query(id: UInt16(index), name: try DNSName("x.test"), type: .a)))
                }
            }
            for try await (id, answer) in group {
                #expect(answer.id == id)
                #expect(answer.addresses == [ip("10.1.2.3")])
            }
        }
        let after = server.stats()
        #expect(after["http2-queries", default: -1] - before["http2-queries", default: 0] == 25)
        #expect(after["http1-queries"] == before["http1-queries"])
        #expect(after["http-connects", default: -1] - before["http-connects", default: 0] == 1)
        await doh.close()
        // A 404 over h2 has no reason phrase on the wire; Go's text is from its status table.
        let wrongPath = try Self.transport(server, extra: #", "path": "/nope""#)
        await #expect { _ = try await wrongPath.exchange(DNSMessage.query(id: 2, name: try DNSName("x.test"), type: .a)) } throws: { error in
            "\(error)".contains("unexpected status: 404 Not Found")
        }
        await wrongPath.close()
    }

    @Test func redialsWhenTheServerClosesTheHTTP2Connection() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/dnsdist") else {
            Issue.record("dnsdist missing: run scripts/install-test-deps.sh")
            return
        }
        let dnsmasq = try await Dnsmasq()
        defer { dnsmasq.stop() }
        let server = try await DoHServer(upstreamPort: dnsmasq.port, idleTimeout: 1)
        defer { server.stop() }
        let before = server.stats()
        let doh = try Self.transport(server)
        #expect(try await doh.exchange(DNSMessage.query(id: 7, name: try DNSName("x.test"), type: .a)).addresses == [ip("10.1.2.3")])
        // dnsdist closes the idle connection after a second; the next query dials a new one.
        try await Task.sleep(for: .milliseconds(2_500))
        #expect(try await doh.exchange(DNSMessage.query(id: 8, name: try DNSName("x.test"), type: .a)).addresses == [ip("10.1.2.3")])
        #expect(try await doh.exchange(DNSMessage.query(id: 9, name: try DNSName("x.test"), type: .a)).addresses == [ip("10.1.2.3")])
        let after = server.stats()
        #expect(after["http-connects", default: -1] - before["http-connects", default: 0] == 2)
        #expect(after["http2-queries", default: -1] - before["http2-queries", default: 0] == 3)
        await doh.close()
    }

    @Test func parsesChunkedAndRejectsBrokenResponses() throws {
        let chunked = Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n".utf8)
        let parsed = try DoHResponseHandler.parse(chunked)
        #expect(parsed?.0.body == Array("abcde".utf8))
        #expect(parsed?.1 == chunked.count)
        let closing = Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nxy".utf8)
        #expect(try DoHResponseHandler.parse(closing)?.0.keepAlive == false)
        for length in 0..<closing.count { #expect(try DoHResponseHandler.parse(Array(closing.prefix(length))) == nil) }
        #expect(throws: (any Error).self) { try DoHResponseHandler.parse(Array("SMTP 220 hi\r\n\r\n".utf8)) }
        #expect(throws: (any Error).self) { try DoHResponseHandler.parse(Array("HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n".utf8)) }
        #expect(throws: (any Error).self) { try DoHResponseHandler.parse(Array("HTTP/1.1 200 OK\r\n\r\n".utf8)) }
    }

    /// A response with a 15 KiB head and a 4 KiB body arriving one byte per read: the head's end
    /// is searched from where the last read stopped and kept while the body comes, so the bytes
    /// looked at stay linear (a search from the start on every read looks at ~n²/2). Counted.
    @Test func byteByByteResponseScansLinearly() throws {
        var head = "HTTP/1.1 200 OK\r\nContent-Type: application/dns-message\r\nContent-Length: 4096\r\n"
        for index in 0..<150 { head += "X-Pad-\(index): \(String(repeating: "p", count: 90))\r\n" }
        head += "\r\n"
        let body = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let response = Array(head.utf8) + body
        #expect(head.utf8.count > 15 * 1024 && head.utf8.count < 16_384)
        var bytes: [UInt8] = []
        var search = DoHHeadSearch()
        var parsed: (DoHResponse, Int)?
        for (index, byte) in response.enumerated() {
            bytes.append(byte)
            parsed = try DoHResponseHandler.parse(bytes, headSearch: &search)
            if parsed != nil { #expect(index == response.count - 1) }
        }
        #expect(parsed?.0.body == body && parsed?.1 == response.count)
        #expect(search.examinedByteCount <= 4 * head.utf8.count + 16, "looked at \(search.examinedByteCount) bytes for a \(head.utf8.count)-byte head")
    }
}
