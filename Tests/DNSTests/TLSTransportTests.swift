// The `tls` DNS server (DNS over TLS) against a real TLS peer: socat's OpenSSL listener with a
// certificate the test makes (openssl req), relaying to dnsmasq's TCP port. kdig +tls checks the
// peer first, so a failure points at our side. Verification: certificate_path, inline certificate,
// server_name, system roots (must fail), insecure.
import Foundation
import Testing
import Adapter
import Config
@testable import DNS
import TestSupport

/// A self-signed certificate for `dns.test` and 127.0.0.1, and socat terminating TLS in front of a
/// dnsmasq TCP port.
final class DoTServer: @unchecked Sendable {
    let directory: String
    let port: UInt16
    private let socat: ChildProcess

    var certificatePath: String { directory + "/cert.pem" }
    var certificate: String { (try? String(contentsOfFile: certificatePath, encoding: .utf8)) ?? "" }

    init(upstreamTCPPort: UInt16) async throws {
        directory = "/tmp/dot-test-\(UInt32.random(in: 0 ... .max))"
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
        guard openssl.terminationStatus == 0 else { throw DNSTLSError("openssl req failed") }
        var lastError: (any Error)? = nil
        for _ in 0..<10 {
            guard let port = freeLoopbackPort() else { continue }
            let socat = ChildProcess()
            socat.executableURL = URL(fileURLWithPath: "/usr/bin/socat")
            socat.arguments = ["OPENSSL-LISTEN:\(port),bind=127.0.0.1,reuseaddr,fork,verify=0,cert=\(directory)/cert.pem,key=\(directory)/key.pem",
                               "TCP:127.0.0.1:\(upstreamTCPPort)"]
            socat.standardOutput = FileHandle.nullDevice
            socat.standardError = FileHandle.nullDevice
            do { try socat.run() } catch { lastError = error; continue }
            for _ in 0..<100 where socat.isRunning {
                if Self.kdigAnswers(port: port) {
                    self.port = port
                    self.socat = socat
                    return
                }
                try await Task.sleep(for: .milliseconds(30))
            }
            kill(socat.processIdentifier, SIGKILL)
        }
        throw lastError ?? DNSTLSError("socat did not start")
    }

    /// kdig over TLS (no certificate check) gets x.test's address: the peer works.
    static func kdigAnswers(port: UInt16) -> Bool {
        let kdig = ChildProcess()
        kdig.executableURL = URL(fileURLWithPath: "/usr/bin/kdig")
        kdig.arguments = ["@127.0.0.1", "-p", String(port), "+tls", "+short", "+timeout=1", "+retry=0", "x.test", "A"]
        let pipe = Pipe()
        kdig.standardOutput = pipe
        kdig.standardError = FileHandle.nullDevice
        guard (try? kdig.run()) != nil else { return false }
        kdig.waitUntilExit()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return output.contains("10.1.2.3")
    }

    func stop() {
        if socat.isRunning { kill(socat.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    deinit { stop() }
}

@Suite(.serialized) struct TLSTransportTests {
    /// A `tls` server built from config JSON (the `tls` object as given).
    static func transport(_ server: DoTServer, tls: String) throws -> any DNSTransport {
        let options = try dnsOptions("""
        {"servers": [{"type": "tls", "tag": "dot", "server": "127.0.0.1", "server_port": \(server.port), "tls": \(tls)}]}
        """)
        return try DNSSetup.makeTransport(options.servers[0], context: setupContext())
    }

    static func ask(_ transport: any DNSTransport, _ name: String = "x.test") async throws -> [IPAddress] {
        let response = try await transport.exchange(DNSMessage.query(id: 7, name: try DNSName(name), type: .a))
        #expect(response.id == 7)
        return response.addresses
    }

    @Test func verifiesAgainstConfiguredCertificates() async throws {
        let dnsmasq = try await Dnsmasq()
        defer { dnsmasq.stop() }
        let server = try await DoTServer(upstreamTCPPort: dnsmasq.port)
        defer { server.stop() }
        // certificate_path, name defaulting to the server's IP (the certificate has IP:127.0.0.1).
        let byPath = try Self.transport(server, tls: #"{"enabled": true, "certificate_path": "\#(server.certificatePath)"}"#)
        #expect(try await Self.ask(byPath) == [ip("10.1.2.3")])
        // Pipelined on one connection: several queries at once all come back.
        try await withThrowingTaskGroup(of: [IPAddress].self) { group in
            for _ in 0..<16 { group.addTask { try await Self.ask(byPath) } }
            for try await answer in group { #expect(answer == [ip("10.1.2.3")]) }
        }
        await byPath.close()
        // Inline certificate and a server_name in the certificate.
        let pem = server.certificate.split(separator: "\n").map { "\"\($0)\"" }.joined(separator: ",")
        let inline = try Self.transport(server, tls: #"{"enabled": true, "server_name": "dns.test", "certificate": [\#(pem)]}"#)
        #expect(try await Self.ask(inline) == [ip("10.1.2.3")])
        await inline.close()
        // insecure skips verification.
        let insecure = try Self.transport(server, tls: #"{"enabled": true, "insecure": true}"#)
        #expect(try await Self.ask(insecure) == [ip("10.1.2.3")])
        await insecure.close()
    }

    @Test func refusesUntrustedOrMisnamedServers() async throws {
        let dnsmasq = try await Dnsmasq()
        defer { dnsmasq.stop() }
        let server = try await DoTServer(upstreamTCPPort: dnsmasq.port)
        defer { server.stop() }
        // System roots do not know the test's certificate.
        let untrusted = try Self.transport(server, tls: #"{"enabled": true}"#)
        await #expect { try await Self.ask(untrusted) } throws: { error in
            "\(error)".contains("certificate verify failed")
        }
        await untrusted.close()
        // Trusted certificate, wrong name.
        let misnamed = try Self.transport(server, tls: #"{"enabled": true, "server_name": "other.test", "certificate_path": "\#(server.certificatePath)"}"#)
        await #expect { try await Self.ask(misnamed) } throws: { error in
            "\(error)".contains("certificate verify failed")
        }
        await misnamed.close()
    }

    @Test func badTLSOptionsFailAtBuild() throws {
        let options = try dnsOptions(#"{"servers": [{"type": "tls", "tag": "dot", "server": "127.0.0.1", "tls": {"certificate_path": "/nonexistent/ca.pem"}}]}"#)
        #expect { _ = try DNSSetup.makeTransport(options.servers[0], context: setupContext()) } throws: { error in
            "\(error)".contains("dns server[dot]: tls: read certificate: open /nonexistent/ca.pem")
        }
        let quic = try dnsOptions(#"{"servers": [{"type": "quic", "tag": "q", "server": "127.0.0.1"}]}"#)
        #expect { _ = try DNSSetup.makeTransport(quic.servers[0], context: setupContext()) } throws: { error in
            "\(error)".contains("QUIC is not included in this build")
        }
    }
}
