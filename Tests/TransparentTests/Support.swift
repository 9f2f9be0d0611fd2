// Namespaces, commands and the sing-box processes the transparent-gateway tests use. Every
// namespace and process is owned by an object that removes or kills it on deinit, so any early exit
// of a test cleans up. Traffic stays inside the namespaces the test made.
import Foundation
import Synchronization
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Whether the kernel tests can run here (root).
let isRoot = getuid() == 0

private let counter = Atomic<Int>(0)

/// A unique suffix per call in this process.
func uniqueSuffix() -> String { "\(getpid() % 100_000)-\(counter.add(1, ordering: .relaxed).newValue)" }

/// Where the binaries live.
enum Binaries {
    /// Our `sing-box`, built next to the test bundle.
    static var ours: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("sing-box").path
    }

    /// Go sing-box 1.12.12: `$SINGBOX_GO`, else `<package root>/.peers/bin/sing-box-go`.
    static var go: String {
        if let path = ProcessInfo.processInfo.environment["SINGBOX_GO"], !path.isEmpty { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.path + "/.peers/bin/sing-box-go"
    }
}

/// A command failed.
struct CommandError: Error, CustomStringConvertible {
    var command: [String]
    var status: Int32
    var stderr: String
    var description: String { "\(command.joined(separator: " ")) exited \(status): \(stderr)" }
}

@discardableResult
func run(_ arguments: [String]) throws -> String {
    let (status, output, errorText) = try runFull(arguments)
    guard status == 0 else { throw CommandError(command: arguments, status: status, stderr: errorText) }
    return output
}

/// A network namespace owned by one test; `ip netns del` on deinit.
final class TestNamespace: @unchecked Sendable {
    let name: String

    init(_ label: String) throws {
        name = "sbtp-\(label)-\(uniqueSuffix())"
        try run(["ip", "netns", "add", name])
        try exec("ip", "link", "set", "lo", "up")
    }

    deinit { _ = try? runFull(["ip", "netns", "del", name]) }

    @discardableResult
    func exec(_ arguments: String...) throws -> String { try run(["ip", "netns", "exec", name] + arguments) }

    /// Runs inside the namespace; returns (status, stdout) without throwing on failure.
    func status(_ arguments: [String], timeout: Double = 15) -> (Int32, String) {
        guard let (status, out, _) = try? runFull(["ip", "netns", "exec", name] + arguments, timeout: timeout) else { return (-1, "") }
        return (status, out)
    }
}

/// A long-running command inside a namespace, output to a log file; killed on `stop()` or deinit.
final class BackgroundCommand: @unchecked Sendable {
    let process = ChildProcess()
    let logPath: String

    init(_ namespace: TestNamespace, _ arguments: [String]) throws {
        logPath = NSTemporaryDirectory() + "sbt-tp-bg-\(uniqueSuffix()).log"
        FileManager.default.createFile(atPath: logPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ip", "netns", "exec", namespace.name] + arguments
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    /// What it printed so far.
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Waits until the log contains `text` (true) or `seconds` pass / the process exits (false).
    func waitFor(_ text: String, seconds: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if log.contains(text) { return true }
            if !process.isRunning { return log.contains(text) }
            usleep(20_000)
        }
        return false
    }

    /// SIGTERM, SIGKILL after a second; waits for the exit. Idempotent.
    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        for _ in 0..<100 where process.isRunning { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: logPath)
    }
}

/// lan ↔ gw ↔ srv: a LAN host whose default routes (v4 and v6) point at the gateway, and a server
/// one hop beyond it (Go bypasses the gateway's own connected subnets). Documentation prefixes.
final class GatewayTopology: @unchecked Sendable {
    let lan: TestNamespace
    let gateway: TestNamespace
    let server: TestNamespace
    static let server4 = "10.77.2.2"
    static let server6 = "2001:db8:772::2"
    let directory: String

    init() throws {
        lan = try TestNamespace("lan")
        gateway = try TestNamespace("gw")
        server = try TestNamespace("srv")
        directory = NSTemporaryDirectory() + "sbt-tp-\(uniqueSuffix())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try lan.exec("ip", "link", "add", "lan0", "type", "veth", "peer", "name", "gw0", "netns", gateway.name)
        try gateway.exec("ip", "link", "add", "gw1", "type", "veth", "peer", "name", "srv0", "netns", server.name)
        try lan.exec("ip", "addr", "add", "10.77.1.2/24", "dev", "lan0")
        try lan.exec("ip", "addr", "add", "2001:db8:771::2/64", "dev", "lan0", "nodad")
        try lan.exec("ip", "link", "set", "lan0", "up")
        try lan.exec("ip", "route", "add", "default", "via", "10.77.1.1")
        try lan.exec("ip", "-6", "route", "add", "default", "via", "2001:db8:771::1")
        try gateway.exec("ip", "addr", "add", "10.77.1.1/24", "dev", "gw0")
        try gateway.exec("ip", "addr", "add", "2001:db8:771::1/64", "dev", "gw0", "nodad")
        try gateway.exec("ip", "addr", "add", "10.77.2.1/24", "dev", "gw1")
        try gateway.exec("ip", "addr", "add", "2001:db8:772::1/64", "dev", "gw1", "nodad")
        try gateway.exec("ip", "link", "set", "gw0", "up")
        try gateway.exec("ip", "link", "set", "gw1", "up")
        try gateway.exec("sysctl", "-qw", "net.ipv4.ip_forward=1")
        try gateway.exec("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        try server.exec("ip", "addr", "add", "10.77.2.2/24", "dev", "srv0")
        try server.exec("ip", "addr", "add", "2001:db8:772::2/64", "dev", "srv0", "nodad")
        try server.exec("ip", "link", "set", "srv0", "up")
        try server.exec("ip", "route", "add", "default", "via", "10.77.2.1")
        try server.exec("ip", "-6", "route", "add", "default", "via", "2001:db8:772::1")
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    /// Writes `text` to a file in the test directory and returns its path.
    func write(_ name: String, _ text: String) throws -> String {
        let path = directory + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// nftables `tproxy` for LAN TCP and UDP (both families) to `port` with fwmark 1, and the policy
    /// rule that makes marked packets local (`fwmark 1 → table 100: local default dev lo`).
    func installTProxyRules(port: UInt16) throws {
        let rules = """
        table inet sbtest {
            chain prerouting {
                type filter hook prerouting priority mangle; policy accept;
                iifname "gw0" meta nfproto ipv4 meta l4proto { tcp, udp } tproxy ip to :\(port) meta mark set 1 accept
                iifname "gw0" meta nfproto ipv6 meta l4proto { tcp, udp } tproxy ip6 to :\(port) meta mark set 1 accept
            }
        }
        """
        try gateway.exec("nft", "-f", try write("tproxy.nft", rules))
        try gateway.exec("ip", "rule", "add", "fwmark", "1", "lookup", "100")
        try gateway.exec("ip", "route", "add", "local", "0.0.0.0/0", "dev", "lo", "table", "100")
        try gateway.exec("ip", "-6", "rule", "add", "fwmark", "1", "lookup", "100")
        try gateway.exec("ip", "-6", "route", "add", "local", "::/0", "dev", "lo", "table", "100")
    }

    /// nftables `redirect` of LAN TCP (both families) to `port`.
    func installRedirectRules(port: UInt16) throws {
        let rules = """
        table inet sbtest {
            chain prerouting {
                type nat hook prerouting priority dstnat; policy accept;
                iifname "gw0" meta l4proto tcp redirect to :\(port)
            }
        }
        """
        try gateway.exec("nft", "-f", try write("redirect.nft", rules))
    }

    /// An HTTP server in srv on port 8080 (both families) serving `index.txt` = `body`, and UDP echo
    /// servers on port 9000 (IPv4 and IPv6).
    func startServers(body: String) throws -> [BackgroundCommand] {
        try FileManager.default.createDirectory(atPath: directory + "/www", withIntermediateDirectories: true)
        _ = try write("www/index.txt", body)
        let http = try BackgroundCommand(server, ["python3", "-m", "http.server", "--bind", "::", "--directory", directory + "/www", "8080"])
        let echo4 = try BackgroundCommand(server, ["socat", "UDP4-RECVFROM:9000,fork", "EXEC:cat"])
        let echo6 = try BackgroundCommand(server, ["socat", "UDP6-RECVFROM:9000,fork,ipv6only=1", "EXEC:cat"])
        let greeter = try BackgroundCommand(server, ["socat", "TCP-LISTEN:2222,fork,reuseaddr", "SYSTEM:echo server-first"])
        // Ready when the ports are bound.
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            let (_, tcp) = server.status(["ss", "-Hltn", "sport = :8080"])
            let (_, udp) = server.status(["ss", "-Hlun", "sport = :9000"])
            let (_, greeting) = server.status(["ss", "-Hltn", "sport = :2222"])
            if !tcp.isEmpty && !greeting.isEmpty && udp.split(separator: "\n").count >= 2 { break }
            usleep(50_000)
        }
        return [http, echo4, echo6, greeter]
    }

    /// curl from the LAN; returns (exit status, body).
    func curl(_ url: String, host: String? = nil) -> (Int32, String) {
        var arguments = ["curl", "-sS", "-m", "5", "-g"]
        if let host { arguments += ["-H", "Host: \(host)"] }
        return lan.status(arguments + [url], timeout: 10)
    }

    /// A real QUIC client's (aioquic) first flight for `serverName`, sent from the LAN to the UDP
    /// echo server; returns how many datagrams came back within two seconds.
    func quicEcho(serverName: String, to address: String, extraALPN: Int = 0) -> Int {
        let script = """
        import socket, sys
        from aioquic.quic.configuration import QuicConfiguration
        from aioquic.quic.connection import QuicConnection
        alpn = ["h3"] + ["x-alpn-padding-%03d-abcdefghijklmnopqrstuv" % i for i in range(int(sys.argv[3]))]
        config = QuicConfiguration(is_client=True, server_name=sys.argv[1], alpn_protocols=alpn)
        conn = QuicConnection(configuration=config)
        conn.connect((sys.argv[2], 9000), now=0.0)
        s = socket.socket(socket.AF_INET6 if ":" in sys.argv[2] else socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(2)
        for data, addr in conn.datagrams_to_send(now=0.0):
            s.sendto(data, (sys.argv[2], 9000))
        count = 0
        try:
            while True:
                s.recv(65536)
                count += 1
        except socket.timeout:
            pass
        print(count)
        """
        let (_, out) = lan.status(["python3", "-c", script, serverName, address, String(extraALPN)], timeout: 10)
        return Int(out.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    /// A server-first TCP exchange: srv port 2222 greets, the client sends nothing; returns what
    /// the client read.
    func serverFirstGreeting(from address: String) -> String {
        lan.status(["socat", "-T", "3", "-u", "TCP:\(address):2222", "-"], timeout: 8).1
    }

    /// One UDP datagram from the LAN through socat; returns the echoed reply ("" if none).
    func udpEcho(_ text: String, to address: String) -> String {
        let target = address.contains(":") ? "UDP6:[\(address)]:9000" : "UDP4:\(address):9000"
        let script = "printf '%s' \"$0\" | socat -T 3 - \(target)"
        return lan.status(["sh", "-c", script, text], timeout: 8).1
    }
}

/// A sing-box process (ours or Go's) in the gateway namespace with `config`.
func startBox(_ binary: String, in topology: GatewayTopology, config: String) throws -> BackgroundCommand {
    let path = try topology.write("config-\(uniqueSuffix()).json", config)
    let box = try BackgroundCommand(topology.gateway, [binary, "run", "-c", path])
    guard box.waitFor("sing-box started", seconds: 15) else {
        let log = box.log
        box.stop()
        throw CommandError(command: [binary, "run"], status: -1, stderr: "did not start: \(log)")
    }
    return box
}
