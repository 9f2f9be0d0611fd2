// ProcessRunner: run a program to completion and capture its output (shared by the WireGuard test targets).
package import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs a program to completion and captures its output: for tests that drive the built `sing-box`,
/// `wg`, `openssl`, `ip` and friends.
package struct ProcessResult {
    package var status: Int32
    package var standardOutput: Data
    package var standardError: String
    package var output: String { String(decoding: standardOutput, as: UTF8.self) }
}

package enum ProcessRunner {
    /// The directory holding the test bundle, which is also where SwiftPM puts the `sing-box` executable.
    package static var buildDirectory: URL {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var url = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // swift-testing may run from inside the .xctest bundle directory on some layouts.
        while url.pathExtension == "xctest" || url.lastPathComponent == "MacOS" || url.lastPathComponent == "Contents" {
            url.deleteLastPathComponent()
        }
        return url
    }

    package static var singBox: String { buildDirectory.appendingPathComponent("sing-box").path }

    /// Finds `name` on PATH (and /usr/sbin, /sbin for `ip`).
    package static func which(_ name: String) -> String? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/sbin:/sbin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    @discardableResult
    package static func run(_ executable: String, _ arguments: [String], input: Data? = nil,
                    environment: [String: String]? = nil) throws -> ProcessResult {
        let process = ChildProcess()
        process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : (which(executable) ?? executable))
        process.arguments = arguments
        if let environment {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        // stderr goes to a temporary file so that reading stdout to the end cannot deadlock on a full pipe.
        let errPath = FileManager.default.temporaryDirectory.appendingPathComponent("wgtest-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: errPath.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: errPath) }
        let errHandle = try FileHandle(forWritingTo: errPath)
        defer { try? errHandle.close() }
        let out = Pipe()
        process.standardOutput = out
        process.standardError = errHandle
        let inPipe = Pipe()
        process.standardInput = inPipe
        try process.run()
        if let input { inPipe.fileHandleForWriting.write(input) }
        try? inPipe.fileHandleForWriting.close()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let errData = (try? Data(contentsOf: errPath)) ?? Data()
        return ProcessResult(status: process.terminationStatus, standardOutput: outData,
                             standardError: String(decoding: errData, as: UTF8.self))
    }
}

/// Runs `arguments` through /usr/bin/env to completion (killed after `timeout` seconds); returns the exit
/// status, stdout and stderr. Output goes to files, so a chatty command never blocks on a full pipe.
package func runFull(_ arguments: [String], timeout: Double = 20) throws -> (Int32, String, String) {
    let process = ChildProcess()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let base = NSTemporaryDirectory() + "sbt-run-\(UUID().uuidString)"
    _ = FileManager.default.createFile(atPath: base + ".out", contents: nil)
    _ = FileManager.default.createFile(atPath: base + ".err", contents: nil)
    defer {
        try? FileManager.default.removeItem(atPath: base + ".out")
        try? FileManager.default.removeItem(atPath: base + ".err")
    }
    let out = try FileHandle(forWritingTo: URL(fileURLWithPath: base + ".out"))
    let err = try FileHandle(forWritingTo: URL(fileURLWithPath: base + ".err"))
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(5_000) }
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
    try? out.close()
    try? err.close()
    let outText = (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? ""
    let errText = (try? String(contentsOfFile: base + ".err", encoding: .utf8)) ?? ""
    return (process.terminationStatus, outText, errText)
}
