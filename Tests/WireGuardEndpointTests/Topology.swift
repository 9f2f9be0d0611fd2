import Foundation
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Two network namespaces joined by a veth pair: `ours` runs our `sing-box` with a wireguard endpoint,
/// `peer` runs the real peer (wireguard-go or Go sing-box) and an HTTP server on its tunnel address.
/// Everything is removed by `tearDown()` (call it with `defer`), also after a partial setup.
///
/// Addresses (slot S keeps tests apart): outer 10.252.S.1 (ours) ↔ 10.252.S.2 (peer); tunnel
/// 10.79.S.1/fd79:S::1 (ours) ↔ 10.79.S.2/fd79:S::2 (peer).
final class EndpointTopology {
    let ours: String
    let peer: String
    let slot: Int
    /// wireguard-go's interface (unique: its UAPI socket path is shared by all namespaces).
    let interface: String
    let directory: String
    var children: [ChildProcess] = []

    var ourOuter: String { "10.252.\(slot).1" }
    var peerOuter: String { "10.252.\(slot).2" }
    var ourOuter6: String { "fd52:\(slot)::1" }
    var peerOuter6: String { "fd52:\(slot)::2" }
    var ourTunnel4: String { "10.79.\(slot).1" }
    var peerTunnel4: String { "10.79.\(slot).2" }
    var ourTunnel6: String { "fd79:\(slot)::1" }
    var peerTunnel6: String { "fd79:\(slot)::2" }

    init(slot: Int) throws {
        let tag = "\(getpid() % 100000)\(slot)"
        self.slot = slot
        ours = "wgeo\(tag)"
        peer = "wgep\(tag)"
        interface = "wgei\(tag)"
        directory = NSTemporaryDirectory() + "wgep-\(tag)"
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    // MARK: Commands

    @discardableResult
    func sh(_ arguments: [String], input: Data? = nil) throws -> ProcessResult {
        let result = try ProcessRunner.run(arguments[0], Array(arguments.dropFirst()), input: input)
        guard result.status == 0 else {
            throw TopologyError("\(arguments.joined(separator: " ")) → \(result.status): \(result.standardError)")
        }
        return result
    }

    @discardableResult
    func run(in namespace: String, _ arguments: [String]) throws -> ProcessResult {
        try sh(["ip", "netns", "exec", namespace] + arguments)
    }

    /// Runs without checking the status.
    func attempt(in namespace: String, _ arguments: [String]) -> ProcessResult? {
        try? ProcessRunner.run("ip", ["netns", "exec", namespace] + arguments)
    }

    /// Starts a long-lived child in `namespace`, output to `log` in the test directory; stopped by tearDown.
    @discardableResult
    func spawn(in namespace: String, _ arguments: [String], log: String, environment: [String: String] = [:]) throws -> ChildProcess {
        let process = ChildProcess()
        process.executableURL = URL(fileURLWithPath: ProcessRunner.which("ip")!)
        process.arguments = ["netns", "exec", namespace] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let path = directory + "/" + log
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        children.append(process)
        return process
    }

    func log(_ name: String) -> String {
        (try? String(contentsOfFile: directory + "/" + name, encoding: .utf8)) ?? ""
    }

    func write(_ name: String, _ text: String) throws -> String {
        let path = directory + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    // MARK: Setup

    /// The two namespaces and the veth pair between them (both families on the outer link).
    func setUp() throws {
        tearDownQuietly()
        try sh(["ip", "netns", "add", ours])
        try sh(["ip", "netns", "add", peer])
        try sh(["ip", "-n", ours, "link", "add", "veth0", "type", "veth", "peer", "name", "veth0", "netns", peer])
        try sh(["ip", "-n", ours, "addr", "add", "\(ourOuter)/24", "dev", "veth0"])
        try sh(["ip", "-n", peer, "addr", "add", "\(peerOuter)/24", "dev", "veth0"])
        try sh(["ip", "-n", ours, "-6", "addr", "add", "\(ourOuter6)/64", "dev", "veth0", "nodad"])
        try sh(["ip", "-n", peer, "-6", "addr", "add", "\(peerOuter6)/64", "dev", "veth0", "nodad"])
        for namespace in [ours, peer] {
            try sh(["ip", "-n", namespace, "link", "set", "veth0", "up"])
            try sh(["ip", "-n", namespace, "link", "set", "lo", "up"])
        }
    }

    /// A key pair from `wg genkey` / `wg pubkey`.
    func keyPair() throws -> (privateKey: String, publicKey: String) {
        let privateKey = try sh(["wg", "genkey"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        let publicKey = try sh(["wg", "pubkey"], input: Data((privateKey + "\n").utf8)).output
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return (privateKey, publicKey)
    }

    /// wireguard-go in the peer namespace with the tunnel addresses, our key as its only peer.
    func startWireGuardGo(privateKey: String, ourPublicKey: String, presharedKey: String?, ourEndpoint: String?,
                          listenPort: UInt16 = 51820) throws {
        try spawn(in: peer, ["wireguard-go", "-f", interface], log: "wireguard-go.log",
                  environment: ["WG_PROCESS_FOREGROUND": "1", "LOG_LEVEL": "error"])
        var ready = false
        for _ in 0..<100 {
            if attempt(in: peer, ["wg", "show", interface])?.status == 0 { ready = true; break }
            usleep(50_000)
        }
        guard ready else { throw TopologyError("wireguard-go did not create \(interface): \(log("wireguard-go.log"))") }
        let keyPath = try write("peer.key", privateKey + "\n")
        var arguments = ["wg", "set", interface, "private-key", keyPath, "listen-port", "\(listenPort)",
                         "peer", ourPublicKey, "allowed-ips", "\(ourTunnel4)/32,\(ourTunnel6)/128"]
        if let presharedKey { arguments += ["preshared-key", try write("psk", presharedKey + "\n")] }
        if let ourEndpoint { arguments += ["endpoint", ourEndpoint] }
        try run(in: peer, arguments)
        try run(in: peer, ["ip", "addr", "add", "\(peerTunnel4)/24", "dev", interface])
        try run(in: peer, ["ip", "-6", "addr", "add", "\(peerTunnel6)/64", "dev", interface, "nodad"])
        try run(in: peer, ["ip", "link", "set", interface, "up"])
    }

    /// `wg show dump`'s peer line: public key, psk, endpoint, allowed ips, latest handshake, rx, tx, keepalive.
    func peerDump() throws -> [String] {
        let lines = try run(in: peer, ["wg", "show", interface, "dump"]).output.split(separator: "\n")
        guard lines.count >= 2 else { return [] }
        return lines[1].split(separator: "\t").map(String.init)
    }

    /// A python HTTP server on [::]:port (dual-stack) in `namespace`, serving the test directory.
    func startHTTPServer(in namespace: String, port: UInt16, bind: String = "::") throws {
        try spawn(in: namespace, [ProcessRunner.which("python3") ?? "/usr/bin/python3", "-m", "http.server", "\(port)",
                                  "--bind", bind, "--directory", directory], log: "http-\(namespace)-\(port).log")
        try waitForTCP(in: namespace, port: port)
    }

    /// Waits until something listens on TCP `port` in `namespace`.
    func waitForTCP(in namespace: String, port: UInt16, timeout: Int = 100) throws {
        for _ in 0..<timeout {
            if let result = attempt(in: namespace, ["ss", "-Htln", "sport = :\(port)"]), !result.output.isEmpty { return }
            usleep(100_000)
        }
        throw TopologyError("nothing listens on \(namespace) tcp/\(port)")
    }

    /// A socat UDP echo server on `bind:port` in `namespace`.
    func startUDPEcho(in namespace: String, bind: String, port: UInt16) throws {
        try spawn(in: namespace, ["socat", "UDP4-LISTEN:\(port),bind=\(bind),fork,reuseaddr", "PIPE"], log: "udp-\(namespace)-\(port).log")
        for _ in 0..<50 {
            if let result = attempt(in: namespace, ["ss", "-Huln", "sport = :\(port)"]), !result.output.isEmpty { return }
            usleep(100_000)
        }
        throw TopologyError("no udp echo on \(namespace) \(bind):\(port)")
    }

    /// Sends `text` as one UDP datagram from `namespace` to `target` (host:port) and returns the first reply.
    func udpExchange(in namespace: String, to target: String, _ text: String) throws -> String {
        let result = try ProcessRunner.run("ip", ["netns", "exec", namespace, "socat", "-t", "2", "-T", "4", "-", "UDP4:\(target)"],
                                           input: Data(text.utf8))
        return result.output
    }

    /// Our sing-box (or Go's, with `binary`) with `config` in `namespace`.
    func startSingBox(in namespace: String, config: String, binary: String, log: String,
                      environment: [String: String] = [:]) throws {
        let path = try write(log + ".json", config)
        try spawn(in: namespace, [binary, "run", "-c", path], log: log + ".log", environment: environment)
    }

    /// curl inside `namespace`; returns the body or throws with curl's error.
    func curl(in namespace: String, _ arguments: [String]) throws -> String {
        try run(in: namespace, ["curl", "-sS", "--max-time", "10"] + arguments).output
    }

    // MARK: Teardown

    func tearDownQuietly() {
        for child in children where child.isRunning {
            kill(child.processIdentifier, SIGTERM)
        }
        for child in children {
            for _ in 0..<40 where child.isRunning { usleep(25_000) }
            if child.isRunning { kill(child.processIdentifier, SIGKILL) }
            child.waitUntilExit()
        }
        children.removeAll()
        _ = try? ProcessRunner.run("ip", ["netns", "del", ours])
        _ = try? ProcessRunner.run("ip", ["netns", "del", peer])
    }

    func tearDown() {
        tearDownQuietly()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

struct TopologyError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Where our binary and Go's live.
enum Binaries {
    static var ours: String { ProcessRunner.singBox }

    /// `$SINGBOX_GO`, else `<package root>/.peers/bin/sing-box-go`.
    static var go: String {
        if let path = ProcessInfo.processInfo.environment["SINGBOX_GO"], !path.isEmpty { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        return root + "/.peers/bin/sing-box-go"
    }
}
