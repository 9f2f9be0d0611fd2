// What the TLS tests share: certificates made with the `openssl` CLI in a temporary directory, and
// `openssl s_server` as the real peer on 127.0.0.1.
import Foundation
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A test failure in setup, with the tool's output.
struct SetupError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A temporary directory with a CA, a server certificate it signed (SANs `trojan.test` and
/// 127.0.0.1, P-256) and an unrelated second CA. Removed on deinit.
final class TestCertificates: @unchecked Sendable {
    let directory: String
    var caPath: String { directory + "/ca.pem" }
    var otherCAPath: String { directory + "/other-ca.pem" }
    var certificatePath: String { directory + "/server.pem" }
    var keyPath: String { directory + "/server.key" }

    init() throws {
        var template = Array("/tmp/sbx-tls-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw SetupError("mkdtemp failed") }
        directory = String(cString: made)
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try Self.openssl(["req", "-x509"] + ec + ["-keyout", directory + "/ca.key", "-out", caPath, "-days", "2", "-subj", "/CN=sing-box test CA"])
        try Self.openssl(["req", "-x509"] + ec + ["-keyout", directory + "/other-ca.key", "-out", otherCAPath, "-days", "2", "-subj", "/CN=other CA"])
        try Self.openssl(["req"] + ec + ["-keyout", keyPath, "-out", directory + "/server.csr", "-subj", "/CN=trojan.test"])
        try "subjectAltName=DNS:trojan.test,IP:127.0.0.1\n".write(toFile: directory + "/san.cnf", atomically: true, encoding: .utf8)
        try Self.openssl(["x509", "-req", "-in", directory + "/server.csr", "-CA", caPath, "-CAkey", directory + "/ca.key",
                          "-CAcreateserial", "-out", certificatePath, "-days", "2", "-extfile", directory + "/san.cnf"])
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    private static func openssl(_ arguments: [String]) throws {
        let result = try ProcessRunner.run("/usr/bin/openssl", arguments)
        guard result.status == 0 else { throw SetupError("openssl \(arguments.joined(separator: " ")): \(result.standardError)") }
    }
}

/// `openssl s_server -www` on 127.0.0.1 with the test certificate; `extra` adds flags (`-tls1_2`,
/// `-alpn`). Killed by `stop()` or on deinit.
final class OpenSSLServer: @unchecked Sendable {
    let port: UInt16
    private let process: ChildProcess
    private let input = Pipe()
    private let logPath: String

    init(_ certificates: TestCertificates, extra: [String] = []) throws {
        guard let port = freeLoopbackPort() else { throw SetupError("no free port") }
        self.port = port
        logPath = certificates.directory + "/s_server-\(port).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process = ChildProcess()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = ["s_server", "-accept", "127.0.0.1:\(port)", "-cert", certificates.certificatePath,
                             "-key", certificates.keyPath, "-www"] + extra
        process.standardOutput = log
        process.standardError = log
        process.standardInput = input  // kept open: s_server must not see EOF on stdin
        try process.run()
        try? log.close()
        // Ready once it accepts TCP.
        for _ in 0..<250 {
            if Self.accepts(port) { return }
            if !process.isRunning { break }
            usleep(20_000)
        }
        stop()
        throw SetupError("s_server did not start: \(self.log())")
    }

    func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func stop() {
        guard process.isRunning else { return }
        process.send(SIGKILL)
        process.waitUntilExit()
    }

    deinit { stop() }

    private static func accepts(_ port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = port.bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}
