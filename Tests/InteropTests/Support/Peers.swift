// Where the binaries under test and the real peers live, and small process/socket helpers.
// Every spawned process is owned by a `Spawned` that kills it on `stop()` or deinit, so an early
// `throw` or a failed `#require` cannot leave one behind.
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

/// A child process with its output in a log file. Killed by `stop()` or on deinit.
final class Spawned: @unchecked Sendable {
    let name: String
    let process = Process()
    let logPath: String
    private var stopped = false
    private let lock = NSLock()

    init(_ executable: String, _ arguments: [String], name: String, directory: TemporaryDirectory,
         environment: [String: String]? = nil) throws {
        try Peers.require(executable)
        self.name = name
        logPath = directory.file("\(name).log")
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        if let environment { process.environment = environment }
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    /// What the process wrote so far.
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// SIGTERM, then SIGKILL after a second; waits for the exit.
    func stop() {
        lock.lock()
        defer { lock.unlock() }
        guard !stopped else { return }
        stopped = true
        guard process.isRunning else { return }
        kill(pid, SIGTERM)
        for _ in 0..<100 where process.isRunning { usleep(10_000) }
        if process.isRunning { kill(pid, SIGKILL) }
        process.waitUntilExit()
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
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    // Drain both pipes while waiting, so a large output cannot block the child.
    nonisolated(unsafe) var stdout = Data()
    nonisolated(unsafe) var stderr = Data()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async { stdout = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    group.enter()
    DispatchQueue.global().async { stderr = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning, Date() < deadline { usleep(5_000) }
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
    group.wait()
    return (process.terminationStatus, stdout, String(decoding: stderr, as: UTF8.self))
}

/// A port the kernel just handed out on 127.0.0.1 (bound, then released) for `type`
/// (SOCK_STREAM or SOCK_DGRAM). Random and ephemeral, so parallel tests do not collide.
func freePort(udp: Bool = false) throws -> UInt16 {
    let fd = socket(AF_INET, Int32(udp ? SOCK_DGRAM.rawValue : SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw PeerError("socket failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    guard bound == 0 else { throw PeerError("bind failed") }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return UInt16(bigEndian: address.sin_port)
}

/// Opens a TCP connection to 127.0.0.1:`port`; returns the fd or -1.
func connectTCP(port: UInt16) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return -1 }
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
