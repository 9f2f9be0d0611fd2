// What the resolved tests share: our binary and the real peers, child processes (TestSupport's
// ChildProcess, never Foundation.Process), a private system bus, network namespaces and dnsmasq.
// Everything a test starts is owned by an object whose deinit stops or deletes it, so an early
// throw or a failed #require leaves nothing behind.
import Foundation
import Glibc
import TestSupport

/// Paths of the binaries under test and of the peers.
enum Tools {
    /// The package root (three levels above this file).
    static let packageRoot: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    /// Our `sing-box`, next to the test bundle.
    static var ours: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("sing-box").path
    }

    /// resolvectl and libnss_resolve from the systemd-resolved / libnss-resolve .debs
    /// (scripts/install-test-deps.sh unpacks them; systemd-resolved itself is never installed).
    static let resolvectl = packageRoot + "/.peers/resolved/usr/bin/resolvectl"
    static let nssLibraryDirectory = packageRoot + "/.peers/resolved/usr/lib/x86_64-linux-gnu"
    static let busPolicy = packageRoot + "/systemd/org.freedesktop.resolve1.conf"
    static let busctl = "/usr/bin/busctl"
    static let dbusDaemon = "/usr/bin/dbus-daemon"
    static let dnsmasq = "/usr/sbin/dnsmasq"
    static let kdig = "/usr/bin/kdig"
    static let ip = "/usr/sbin/ip"
    static let setpriv = "/usr/bin/setpriv"
    static let unshare = "/usr/bin/unshare"
    static var python3: String {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let path = "\(dir)/python3"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return "/usr/bin/python3"
    }

    static func require(_ paths: String...) throws {
        for path in paths where !FileManager.default.isExecutableFile(atPath: path) {
            throw HarnessError("missing \(path): run scripts/install-test-deps.sh and build the package")
        }
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A temporary directory, removed on deinit.
final class Scratch: @unchecked Sendable {
    let path: String
    init() throws {
        var template = Array("/tmp/sbx-resolved-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw HarnessError("mkdtemp failed") }
        path = String(cString: made)
        chmod(path, 0o755)
    }
    func file(_ name: String) -> String { path + "/" + name }
    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        try text.write(toFile: file(name), atomically: true, encoding: .utf8)
        return file(name)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// The outcome of a tool run to completion.
struct ToolResult: CustomStringConvertible {
    var status: Int32
    var stdout: String
    var stderr: String
    var description: String { "exit \(status)\nstdout: \(stdout)\nstderr: \(stderr)" }
}

/// Runs `executable` to completion (SIGKILL after `timeout` seconds) with `environment` added.
@discardableResult
func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:], timeout: Double = 20) throws -> ToolResult {
    let scratch = try Scratch()
    FileManager.default.createFile(atPath: scratch.file("out"), contents: nil)
    FileManager.default.createFile(atPath: scratch.file("err"), contents: nil)
    let out = try FileHandle(forWritingTo: URL(fileURLWithPath: scratch.file("out")))
    let err = try FileHandle(forWritingTo: URL(fileURLWithPath: scratch.file("err")))
    let child = ChildProcess()
    child.executableURL = URL(fileURLWithPath: executable)
    child.arguments = arguments
    child.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
    child.standardInput = FileHandle.nullDevice
    child.standardOutput = out
    child.standardError = err
    try child.run()
    try? out.close()
    try? err.close()
    let deadline = Date().addingTimeInterval(timeout)
    while child.isRunning && Date() < deadline { usleep(5_000) }
    if child.isRunning {
        child.send(SIGKILL)
        while child.isRunning { usleep(5_000) }
    }
    let stdout = (try? String(contentsOfFile: scratch.file("out"), encoding: .utf8)) ?? ""
    let stderr = (try? String(contentsOfFile: scratch.file("err"), encoding: .utf8)) ?? ""
    return ToolResult(status: child.isRunning ? -1 : child.terminationStatus, stdout: stdout, stderr: stderr)
}

/// A long-running child with its output in a log file; SIGTERM (then SIGKILL) on stop or deinit.
final class Daemon: @unchecked Sendable {
    let name: String
    let logPath: String
    let child = ChildProcess()

    init(_ executable: String, _ arguments: [String], name: String, in scratch: Scratch, environment: [String: String] = [:]) throws {
        try Tools.require(executable)
        self.name = name
        logPath = scratch.file("\(name).log")
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        child.executableURL = URL(fileURLWithPath: executable)
        child.arguments = arguments
        child.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        child.standardInput = FileHandle.nullDevice
        child.standardOutput = log
        child.standardError = log
        try child.run()
        try? log.close()
    }

    var isRunning: Bool { child.isRunning }
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func stop() {
        guard child.isRunning else { return }
        child.terminate()
        for _ in 0..<200 where child.isRunning { usleep(10_000) }
        if child.isRunning { child.send(SIGKILL) }
        while child.isRunning { usleep(5_000) }
    }

    /// Waits until `condition` holds, failing with the log if the process exits or time runs out.
    func wait(for what: String, timeout: Double = 15, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return }
            if !child.isRunning { throw HarnessError("\(name) exited while waiting for \(what):\n\(log)") }
            usleep(20_000)
        }
        throw HarnessError("timed out waiting for \(what):\n\(log)")
    }

    deinit { stop() }
}

/// A private dbus-daemon with a system-bus-like policy (Debian's defaults) plus our
/// systemd/org.freedesktop.resolve1.conf, listening on a socket in a temporary directory.
final class PrivateBus: @unchecked Sendable {
    let scratch: Scratch
    let address: String
    private let daemon: Daemon

    init() throws {
        try Tools.require(Tools.dbusDaemon, Tools.busctl)
        scratch = try Scratch()
        let socket = scratch.file("system_bus_socket")
        address = "unix:path=\(socket)"
        let config = """
        <!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
         "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
        <busconfig>
          <type>system</type>
          <listen>unix:path=\(socket)</listen>
          <auth>EXTERNAL</auth>
          <policy context="default">
            <allow user="*"/>
            <deny own="*"/>
            <deny send_type="method_call"/>
            <allow send_type="signal"/>
            <allow send_requested_reply="true" send_type="method_return"/>
            <allow send_requested_reply="true" send_type="error"/>
            <allow receive_type="method_call"/>
            <allow receive_type="method_return"/>
            <allow receive_type="error"/>
            <allow receive_type="signal"/>
            <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
            <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
            <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
          </policy>
          <include>\(Tools.busPolicy)</include>
        </busconfig>
        """
        let path = try scratch.write("system.conf", config)
        daemon = try Daemon(Tools.dbusDaemon, ["--config-file=\(path)", "--nofork", "--nopidfile"], name: "dbus-daemon", in: scratch)
        try daemon.wait(for: "the bus socket") { FileManager.default.fileExists(atPath: socket) }
        // Unprivileged callers (setpriv to nobody) must reach the socket.
        chmod(socket, 0o777)
    }

    /// The environment a client or our binary needs.
    var environment: [String: String] { ["DBUS_SYSTEM_BUS_ADDRESS": address] }

    deinit { daemon.stop() }
}

/// A network namespace of the test's own, deleted (with its processes) on deinit.
final class Namespace: @unchecked Sendable {
    let name: String
    nonisolated(unsafe) private static var counter = 0

    init(_ label: String) throws {
        Namespace.counter += 1
        name = "rsv\(label)\(getpid() % 100_000)\(Namespace.counter)"
        let result = try ResolvedTests.run(Tools.ip, ["netns", "add", name])
        guard result.status == 0 else { throw HarnessError("ip netns add \(name): \(result)") }
        try sh("ip link set lo up")
    }

    /// Runs `ip -n <ns> …`-style shell commands inside the namespace.
    @discardableResult
    func sh(_ command: String) throws -> ToolResult {
        let result = try run(Tools.ip, ["netns", "exec", name, "/bin/sh", "-c", command])
        guard result.status == 0 else { throw HarnessError("[\(name)] \(command): \(result)") }
        return result
    }

    /// The argument prefix that runs a program inside the namespace.
    func exec(_ executable: String, _ arguments: [String]) -> (String, [String]) {
        (Tools.ip, ["netns", "exec", name, executable] + arguments)
    }

    /// Runs a tool inside the namespace.
    @discardableResult
    func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:], timeout: Double = 20) throws -> ToolResult {
        try ResolvedTests.run(Tools.ip, ["netns", "exec", name, executable] + arguments, environment: environment, timeout: timeout)
    }

    /// The ifindex of `interface` inside the namespace.
    func ifindex(_ interface: String) throws -> Int32 {
        let text = try sh("cat /sys/class/net/\(interface)/ifindex").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let index = Int32(text) else { throw HarnessError("no ifindex for \(interface): \(text)") }
        return index
    }

    deinit {
        if let pids = try? ResolvedTests.run(Tools.ip, ["netns", "pids", name]) {
            for line in pids.stdout.split(separator: "\n") { if let pid = Int32(line) { kill(pid, SIGKILL) } }
        }
        _ = try? ResolvedTests.run(Tools.ip, ["netns", "del", name])
    }
}

/// dnsmasq inside a namespace on `address`:53 with `records` (dnsmasq options without the dashes).
func startDnsmasq(in namespace: Namespace, address: String, records: [String], scratch: Scratch, name: String) throws -> Daemon {
    let (executable, arguments) = namespace.exec(Tools.dnsmasq, ["--no-daemon", "--no-resolv", "--no-hosts", "--bind-interfaces",
                                                                 "--listen-address=\(address)", "--port=53", "--log-queries",
                                                                 "--pid-file=\(scratch.file("\(name).pid"))"] + records.map { "--\($0)" })
    let daemon = try Daemon(executable, arguments, name: name, in: scratch)
    try daemon.wait(for: "dnsmasq on \(address)") { daemon.log.contains("started, version") }
    usleep(100_000)
    return daemon
}

/// Our binary running `config` inside `namespace` with the private bus and a runtime directory in
/// `scratch`; returns once the service started (the varlink socket exists).
final class OurBox: @unchecked Sendable {
    let daemon: Daemon
    let runtimeDirectory: String
    let environment: [String: String]

    init(config: String, namespace: Namespace, bus: PrivateBus, scratch: Scratch, extraEnvironment: [String: String] = [:]) throws {
        try Tools.require(Tools.ours)
        runtimeDirectory = scratch.file("run")
        environment = bus.environment.merging(["SING_BOX_RESOLVED_DIRECTORY": runtimeDirectory]) { _, new in new }
            .merging(extraEnvironment) { _, new in new }
        let path = try scratch.write("config.json", config)
        let (executable, arguments) = namespace.exec(Tools.ours, ["run", "-c", path])
        daemon = try Daemon(executable, arguments, name: "sing-box", in: scratch, environment: environment)
        let socket = runtimeDirectory + "/io.systemd.Resolve"
        try daemon.wait(for: "the resolved service") { daemon.log.contains("sing-box started") && FileManager.default.fileExists(atPath: socket) }
    }

    var varlinkPath: String { runtimeDirectory + "/io.systemd.Resolve" }
    var log: String { daemon.log }
    var isRunning: Bool { daemon.isRunning }
}

/// `busctl --system call org.freedesktop.resolve1 /org/freedesktop/resolve1 org.freedesktop.resolve1.Manager …`.
func managerCall(_ namespace: Namespace, bus: PrivateBus, _ arguments: [String], asNobody: Bool = false) throws -> ToolResult {
    let call = [Tools.busctl, "--system", "call", "org.freedesktop.resolve1", "/org/freedesktop/resolve1",
                "org.freedesktop.resolve1.Manager"] + arguments
    if asNobody {
        return try namespace.run(Tools.setpriv, ["--reuid=65534", "--regid=65534", "--clear-groups"] + call, environment: bus.environment)
    }
    return try namespace.run(call[0], Array(call.dropFirst()), environment: bus.environment)
}

/// `resolvectl …` inside the namespace against the private bus.
func resolvectl(_ namespace: Namespace, bus: PrivateBus, _ arguments: [String]) throws -> ToolResult {
    try namespace.run(Tools.resolvectl, ["--no-pager"] + arguments, environment: bus.environment.merging(["SYSTEMD_COLORS": "0"]) { _, new in new })
}
