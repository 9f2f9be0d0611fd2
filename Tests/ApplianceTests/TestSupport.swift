// Kernel tests run as root inside network namespaces they create (unique names with our pid and a
// counter) and always delete. Commands (`ip`, `nft`, `ping`, `socat`) are oracles and traffic sources,
// run inside the namespace with `ip netns exec`; they never touch the host's own namespace.
import Foundation
import Synchronization
import TestSupport

/// Whether kernel tests can run here (root).
let isRoot = getuid() == 0

private let namespaceCounter = Atomic<Int>(0)

/// A network namespace owned by one test; `ip netns del` on deinit.
final class TestNamespace: @unchecked Sendable {
    let name: String

    init(_ label: String) throws {
        name = "sbt-\(label.prefix(6))-\(getpid())-\(namespaceCounter.add(1, ordering: .relaxed).newValue)"
        try run("ip", "netns", "add", name)
        // Loopback up, so that local traffic inside the namespace works.
        try exec("ip", "link", "set", "lo", "up")
    }

    deinit {
        _ = try? run("ip", "netns", "del", name)
    }

    /// Runs a command inside the namespace; throws on a non-zero exit with its stderr.
    @discardableResult
    func exec(_ arguments: String...) throws -> String {
        try run(["ip", "netns", "exec", name] + arguments)
    }

    /// Runs a command inside the namespace and returns (status, stdout).
    func status(_ arguments: [String], timeout: Double = 10) -> (Int32, String) {
        (try? runStatus(["ip", "netns", "exec", name] + arguments, timeout: timeout)) ?? (-1, "")
    }

    /// `ip -j <arguments>` inside the namespace, parsed.
    func ipJSON(_ arguments: String...) throws -> [[String: Any]] {
        let text = try run(["ip", "-n", name, "-j"] + arguments)
        guard let data = text.data(using: .utf8), !text.isEmpty,
              let array = try JSONSerialization.jsonObject(with: data) as? [[String: Any]] else { return [] }
        return array
    }
}

struct CommandError: Error, CustomStringConvertible {
    var command: [String]
    var status: Int32
    var stderr: String
    var description: String { "\(command.joined(separator: " ")) exited \(status): \(stderr)" }
}

@discardableResult
func run(_ arguments: String...) throws -> String { try run(arguments) }

@discardableResult
func run(_ arguments: [String]) throws -> String {
    let (status, output, errorText) = try runFull(arguments, timeout: 20)
    guard status == 0 else { throw CommandError(command: arguments, status: status, stderr: errorText) }
    return output
}

func runStatus(_ arguments: [String], timeout: Double) throws -> (Int32, String) {
    let (status, output, _) = try runFull(arguments, timeout: timeout)
    return (status, output)
}

/// Starts a background command inside a namespace; `stop()` terminates it (tests call it on every path).
/// Output goes to a file, so a command whose children outlive it can never block the reader.
final class BackgroundCommand: @unchecked Sendable {
    let process = ChildProcess()
    private let outputPath: String

    init(_ namespace: TestNamespace, _ arguments: [String]) throws {
        outputPath = NSTemporaryDirectory() + "sbt-bg-\(getpid())-\(namespaceCounter.add(1, ordering: .relaxed).newValue).out"
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ip", "netns", "exec", namespace.name] + arguments
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    /// Waits up to `seconds` for the command to exit by itself; true if it did.
    func wait(_ seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        return !process.isRunning
    }

    /// Terminates the command (if still running) and returns what it printed.
    /// SIGKILL, not SIGTERM: commands spawned from the test runner's threads inherit a signal mask that
    /// blocks SIGTERM, so `terminate()` would leave them running.
    @discardableResult
    func stop() -> String {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        try? FileManager.default.removeItem(atPath: outputPath)
    }
}

/// Polls `condition` every 20 ms until it holds or `seconds` pass.
func eventually(_ seconds: Double = 5, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return true }
        usleep(20_000)
    }
    return try condition()
}
