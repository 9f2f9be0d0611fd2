// Where the binaries under test and the real peers live, and small process/socket helpers.
// Every spawned process is owned by a `Spawned` that kills it on `stop()` or deinit, so an early
// `throw` or a failed `#require` cannot leave one behind.
import TestSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Paths of our binary, Go's reference binary and the Debian peers.
enum Peers {
    /// Our `sing-box`, built next to the test bundle (`dirname /proc/self/exe`).
    static var ours: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("sing-box").path
    }

    /// The package root (three levels above this file).
    static var packageRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().path
    }

    /// Go sing-box 1.12.12: `$SINGBOX_GO`, else `<package root>/.peers/bin/sing-box-go`.
    static var go: String {
        if let path = ProcessInfo.processInfo.environment["SINGBOX_GO"], !path.isEmpty { return path }
        return packageRoot + "/.peers/bin/sing-box-go"
    }

    static let curl = "/usr/bin/curl"
    static let dnsmasq = "/usr/sbin/dnsmasq"
    static let kdig = "/usr/bin/kdig"

    /// python3 from PATH.
    static var python3: String {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let path = "\(dir)/python3"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return "/usr/bin/python3"
    }

    /// Fails loudly when a binary the test needs is missing.
    static func require(_ path: String) throws {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw PeerError("missing \(path): run scripts/install-test-deps.sh (and build the package)")
        }
    }
}

/// A test setup failure with a readable message.
struct PeerError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A temporary directory removed on deinit.
final class TemporaryDirectory: @unchecked Sendable {
    let path: String
    init() throws {
        var template = Array("/tmp/sbx-interop-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw PeerError("mkdtemp failed") }
        path = String(cString: made)
    }
    func file(_ name: String) -> String { path + "/" + name }
    func write(_ name: String, _ text: String) throws -> String {
        let target = file(name)
        try text.write(toFile: target, atomically: true, encoding: .utf8)
        return target
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// Starts `executable` with stdin from /dev/null and stdout+stderr (or just stderr when `stdout`
/// is given) appended to `log`. posix_spawn + waitpid, not Foundation's Process: its reaping
/// raced with ours and hung `waitUntilExit` on an already dead child.
private func spawn(_ executable: String, _ arguments: [String], log: String, stdout: String? = nil) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, stdout ?? log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    if stdout == nil {
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
    } else {
        posix_spawn_file_actions_addopen(&actions, 2, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    }
    let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { for arg in argv { free(arg) } }
    // The test runner's threads may block or ignore signals; a child must start clean, or it
    // would ignore our SIGTERM (dnsmasq did).
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var empty = sigset_t(), defaults = sigset_t()
    sigemptyset(&empty)
    sigemptyset(&defaults)
    for signal in [SIGTERM, SIGINT, SIGPIPE, SIGHUP, SIGCHLD] { sigaddset(&defaults, signal) }
    posix_spawnattr_setsigmask(&attributes, &empty)
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
    guard rc == 0 else { throw PeerError("posix_spawn \(executable): \(rc)") }
    return pid
}

/// Reaps `pid` if it exited; returns its exit status then, nil while it runs.
private func reap(_ pid: pid_t) -> Int32? {
    var status: Int32 = 0
    let result = waitpid(pid, &status, WNOHANG)
    guard result == pid else { return result < 0 ? -1 : nil }
    // WIFEXITED/WEXITSTATUS are macros; decode by hand.
    return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
}

/// A child process with its output in a log file. Killed by `stop()` or on deinit.
final class Spawned: @unchecked Sendable {
    let name: String
    let logPath: String
    let pid: pid_t
    private var exitStatus: Int32?
    private let lock = NSLock()

    init(_ executable: String, _ arguments: [String], name: String, directory: TemporaryDirectory) throws {
        try Peers.require(executable)
        self.name = name
        logPath = directory.file("\(name).log")
        pid = try spawn(executable, arguments, log: logPath)
    }

    var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        if exitStatus == nil { exitStatus = reap(pid) }
        return exitStatus == nil
    }

    /// What the process wrote so far.
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// SIGTERM, then SIGKILL after a second; waits for the exit.
    func stop() {
        guard isRunning else { return }
        kill(pid, SIGTERM)
        for _ in 0..<100 where isRunning { usleep(10_000) }
        if isRunning { kill(pid, SIGKILL) }
        while isRunning { usleep(5_000) }
    }

    /// Open file descriptors of the process (from /proc/<pid>/fd).
    var openFileCount: Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    /// Resident set size in KiB (VmRSS from /proc/<pid>/status).
    var residentKiB: Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return -1 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
        }
        return -1
    }

    deinit { stop() }
}

/// Runs a tool to completion (killed after `timeout`) and returns its exit status and output.
@discardableResult
func runTool(_ executable: String, _ arguments: [String], timeout: Double = 20) throws -> (status: Int32, stdout: Data, stderr: String) {
    try Peers.require(executable)
    let directory = try TemporaryDirectory()
    let out = directory.file("stdout"), err = directory.file("stderr")
    let pid = try spawn(executable, arguments, log: err, stdout: out)
    let deadline = Date().addingTimeInterval(timeout)
    var status = reap(pid)
    while status == nil, Date() < deadline {
        usleep(2_000)
        status = reap(pid)
    }
    if status == nil {
        kill(pid, SIGKILL)
        while status == nil { usleep(2_000); status = reap(pid) }
    }
    let stdout = (try? Data(contentsOf: URL(fileURLWithPath: out))) ?? Data()
    let stderr = (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
    return (status ?? -1, stdout, stderr)
}

/// Whether 127.0.0.1:`port` can be bound now for TCP or UDP.
/// A random port free on 127.0.0.1 for TCP (or UDP), below the ephemeral range (TestSupport).
func freePort(udp: Bool = false) throws -> UInt16 {
    guard let port = freeLoopbackPort(udp: udp, tcp: !udp) else { throw PeerError("no free port below the ephemeral range") }
    return port
}

/// A port free on 127.0.0.1 for both UDP and TCP (DNS servers listen on both).
func freeDualPort() throws -> UInt16 {
    guard let port = freeLoopbackPort(udp: true, tcp: true) else { throw PeerError("no port free for both UDP and TCP") }
    return port
}

/// Opens a TCP connection to 127.0.0.1:`port`; returns the fd or -1. With `source` the socket is
/// bound to that loopback address first, so its ephemeral port cannot collide with ports other
/// tests bind on 127.0.0.1 (the 5,000-connection flood uses 127.0.0.2).
func connectTCP(port: UInt16, source: String? = nil) -> Int32 {
    connectLoopback(port: port, type: SOCK_STREAM, source: source)
}

/// A socket of `type` connected to 127.0.0.1:`port` (bound to `source` first if given); the fd or -1.
func connectLoopback(port: UInt16, type: __socket_type, source: String? = nil) -> Int32 {
    let fd = socket(AF_INET, Int32(type.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return -1 }
    if let source {
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_addr.s_addr = inet_addr(source)
        local.sin_port = 0
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if bound != 0 { close(fd); return -1 }
    }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = port.bigEndian
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    if result != 0 { close(fd); return -1 }
    return fd
}

/// Waits until something accepts TCP on 127.0.0.1:`port`, or fails with `process`'s log.
func waitForTCP(port: UInt16, process: Spawned? = nil, timeout: Double = 10) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        let fd = connectTCP(port: port)
        if fd >= 0 { close(fd); return }
        if let process, !process.isRunning { throw PeerError("\(process.name) exited:\n\(process.log)") }
        usleep(20_000)
    }
    throw PeerError("nothing listens on 127.0.0.1:\(port)\n\(process?.log ?? "")")
}

/// Writes all of `bytes` to `fd`; false on error.
@discardableResult
func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
    var offset = 0
    while offset < bytes.count {
        let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n <= 0 { return false }
        offset += n
    }
    return true
}

/// Reads until EOF, error or `timeout` seconds; returns what came.
func readAll(_ fd: Int32, timeout: Double = 5, limit: Int = 1 << 20) -> [UInt8] {
    var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1_000_000))
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while out.count < limit {
        let n = read(fd, &chunk, chunk.count)
        if n <= 0 { break }
        out += chunk[..<n]
    }
    return out
}
