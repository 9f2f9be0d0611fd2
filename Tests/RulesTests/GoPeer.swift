// The reference Go sing-box 1.12.12 as an oracle for rule-set files and matching.
import Foundation
import TestSupport

/// Runs `.peers/bin/sing-box-go` (or `SINGBOX_GO`) and a scratch directory per test.
enum GoPeer {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["SINGBOX_GO"], !path.isEmpty { return path }
        return packageRoot.appendingPathComponent(".peers/bin/sing-box-go").path
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    struct Missing: Error, CustomStringConvertible {
        var description: String { "Go sing-box not found at \(GoPeer.binary): run scripts/install-test-deps.sh" }
    }

    /// Runs Go sing-box with `arguments` in `directory`; stdout and stderr go to files so neither
    /// pipe can fill while the other is read.
    static func run(_ arguments: [String], in directory: URL) throws -> Result {
        guard FileManager.default.isExecutableFile(atPath: binary) else { throw Missing() }
        let out = directory.appendingPathComponent(".go-stdout"), err = directory.appendingPathComponent(".go-stderr")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        let outHandle = try FileHandle(forWritingTo: out), errHandle = try FileHandle(forWritingTo: err)
        let process = ChildProcess()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments + ["--disable-color"]
        process.currentDirectoryURL = directory
        process.standardOutput = outHandle
        process.standardError = errHandle
        try process.run()
        process.waitUntilExit()
        try outHandle.close()
        try errHandle.close()
        return Result(status: process.terminationStatus,
                      stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
                      stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    }

    /// A fresh directory under /tmp, removed by the caller's `defer`.
    static func scratch(_ name: String) throws -> URL {
        let url = URL(fileURLWithPath: "/tmp/rules-\(name)-\(UInt32.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// SplitMix64 (TestSupport), seeded so random tests reproduce.
typealias SeededGenerator = SplitMix
