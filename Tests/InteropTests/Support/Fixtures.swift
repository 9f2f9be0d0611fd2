// Test fixtures: a file server, dnsmasq, sing-box instances (ours or Go's) from JSON configs.
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A directory served over HTTP by `python3 -m http.server` on 127.0.0.1, holding `blob.bin`
/// (2 MiB of random bytes) for byte-exact downloads.
final class FileServer: @unchecked Sendable {
    let directory: TemporaryDirectory
    let port: UInt16
    let blob: Data
    private let process: Spawned

    init(in work: TemporaryDirectory) throws {
        directory = try TemporaryDirectory()
        var bytes = [UInt8](repeating: 0, count: 2 << 20)
        var generator = SystemRandomNumberGenerator()
        for i in stride(from: 0, to: bytes.count, by: 8) {
            withUnsafeBytes(of: generator.next() as UInt64) { raw in
                for j in 0..<8 { bytes[i + j] = raw[j] }
            }
        }
        blob = Data(bytes)
        try blob.write(to: URL(fileURLWithPath: directory.file("blob.bin")))
        port = try freePort()
        process = try Spawned(Peers.python3, ["-m", "http.server", "--bind", "127.0.0.1", "--directory", directory.path, String(port)],
                              name: "http-server-\(port)", directory: work)
        try waitForTCP(port: port, process: process)
    }

    var blobURL: String { "http://127.0.0.1:\(port)/blob.bin" }

    func stop() { process.stop() }
}

/// dnsmasq on 127.0.0.1 (UDP and TCP) with `answers` (its own flags: `--address=…`, `--txt-record=…`,
/// `--local-ttl=…`), nothing else: no resolv.conf, no hosts file.
final class Dnsmasq: @unchecked Sendable {
    let port: UInt16
    private let process: Spawned

    init(_ answers: [String], in work: TemporaryDirectory) throws {
        // Another test may take the port between our probe and dnsmasq's bind: try a few.
        var attempt = 0
        while true {
            let port = try freeDualPort()
            let process = try Spawned(Peers.dnsmasq, ["--no-resolv", "--no-hosts"] + answers
                                      + ["--port=\(port)", "--listen-address=127.0.0.1", "--bind-interfaces", "--no-daemon",
                                         "--pid-file=\(work.file("dnsmasq-\(port).pid"))"],
                                      name: "dnsmasq-\(port)", directory: work)
            do {
                try waitForTCP(port: port, process: process)
                self.port = port
                self.process = process
                return
            } catch {
                process.stop()
                attempt += 1
                if attempt == 5 { throw error }
            }
        }
    }

    /// dnsmasq answering `test.example` with 10.1.2.3.
    convenience init(in work: TemporaryDirectory) throws {
        try self.init(["--address=/test.example/10.1.2.3"], in: work)
    }

    /// dnsmasq answering every name with `address` (TTL 300), plus `extra` flags.
    convenience init(answer address: String, extra: [String] = [], in work: TemporaryDirectory) throws {
        try self.init(["--address=/#/\(address)", "--local-ttl=300"] + extra, in: work)
    }

    func stop() { process.stop() }
}

/// Which implementation runs a config.
enum Implementation: String, Sendable, CustomStringConvertible {
    case ours, go
    var binary: String { self == .ours ? Peers.ours : Peers.go }
    var description: String { rawValue }
}

/// A sing-box process (ours or Go's) running `config`.
final class SingBox: @unchecked Sendable {
    let process: Spawned
    let implementation: Implementation

    /// Starts `run -c config.json` and waits until `waitPort` accepts TCP.
    init(_ implementation: Implementation, config: String, waitPort: UInt16, in work: TemporaryDirectory,
         name: String? = nil) throws {
        self.implementation = implementation
        let label = name ?? "\(implementation)-\(waitPort)"
        let path = try work.write("\(label).json", config)
        process = try Spawned(implementation.binary, ["run", "-c", path], name: label, directory: work)
        try waitForTCP(port: waitPort, process: process)
    }

    var log: String { process.log }
    func stop() { process.stop() }
}

/// JSON for sing-box configs, written by hand so the tests show exactly what both sides read.
enum ConfigJSON {
    /// `[{"username":…,"password":…}]`.
    static func users(_ users: [(String, String)]) -> String {
        "[" + users.map { "{\"username\":\"\($0.0)\",\"password\":\"\($0.1)\"}" }.joined(separator: ",") + "]"
    }

    /// A config with one inbound, the given outbounds (the first is the default) and debug logs.
    static func box(inbounds: [String], outbounds: [String], rules: String = "[]") -> String {
        """
        {"log":{"level":"debug","timestamp":false},
         "inbounds":[\(inbounds.joined(separator: ","))],
         "outbounds":[\(outbounds.joined(separator: ","))],
         "route":{"rules":\(rules)}}
        """
    }

    static func mixed(port: UInt16, users: [(String, String)] = [], type: String = "mixed", tag: String = "in") -> String {
        "{\"type\":\"\(type)\",\"tag\":\"\(tag)\",\"listen\":\"127.0.0.1\",\"listen_port\":\(port)"
            + (users.isEmpty ? "" : ",\"users\":\(self.users(users))") + "}"
    }

    static let direct = "{\"type\":\"direct\",\"tag\":\"direct\"}"
    static let block = "{\"type\":\"block\",\"tag\":\"block\"}"

    static func socksOut(port: UInt16, version: String = "5", username: String? = nil, password: String? = nil, tag: String = "proxy") -> String {
        var fields = "\"type\":\"socks\",\"tag\":\"\(tag)\",\"server\":\"127.0.0.1\",\"server_port\":\(port),\"version\":\"\(version)\""
        if let username { fields += ",\"username\":\"\(username)\"" }
        if let password { fields += ",\"password\":\"\(password)\"" }
        return "{\(fields)}"
    }

    static func httpOut(port: UInt16, username: String? = nil, password: String? = nil, tag: String = "proxy") -> String {
        var fields = "\"type\":\"http\",\"tag\":\"\(tag)\",\"server\":\"127.0.0.1\",\"server_port\":\(port)"
        if let username { fields += ",\"username\":\"\(username)\"" }
        if let password { fields += ",\"password\":\"\(password)\"" }
        return "{\(fields)}"
    }
}

/// curl with `arguments`; returns the body bytes. Throws with curl's stderr on failure.
func curl(_ arguments: [String]) throws -> Data {
    let result = try runTool(Peers.curl, ["--silent", "--show-error", "--max-time", "20"] + arguments, timeout: 25)
    guard result.status == 0 else { throw PeerError("curl \(arguments.joined(separator: " ")) exited \(result.status): \(result.stderr)") }
    return result.stdout
}

/// Anything with a log to show when an expectation fails (a box or a spawned peer).
protocol SingBoxOrProcess { var log: String { get } }
extension SingBox: SingBoxOrProcess {}
extension Spawned: SingBoxOrProcess {}

/// One byte-exact TCP download from `files` and one UDP DNS query to `dns` (answer 10.1.2.3)
/// through the SOCKS5 port `port`; failures name `label` and show `logs`.
func exerciseTCPAndUDP(via port: UInt16, files: FileServer, dns: Dnsmasq, work: TemporaryDirectory, label: String,
                       logs: [any SingBoxOrProcess]) throws {
    do {
        let body = try curl(["--socks5-hostname", "127.0.0.1:\(port)", files.blobURL])
        #expect(body == files.blob, "\(label): TCP body differs (\(body.count) bytes)")
    } catch {
        Issue.record("\(label): TCP: \(error)\n\(logs.map(\.log).joined(separator: "\n----\n"))")
    }
    let script = try work.write("udp.py", socksUDPClientScript)
    let result = try runTool(Peers.python3, [script, String(port), String(dns.port)])
    #expect(String(decoding: result.stdout, as: UTF8.self) == "127.0.0.1:\(dns.port) 10.1.2.3\n",
            "\(label): UDP: \(result.stderr)\n\(logs.map(\.log).joined(separator: "\n----\n"))")
}
