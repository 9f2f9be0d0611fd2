import Foundation
import Testing
@testable import Config
import TestSupport

/// Runs the reference Go sing-box 1.12.12 (`SINGBOX_GO`, else `<package root>/.peers/bin/sing-box-go`).
enum GoReference {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Corpus")

    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["SINGBOX_GO"], !path.isEmpty { return path }
        return packageRoot.appendingPathComponent(".peers/bin/sing-box-go").path
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs the Go binary with `arguments` in `directory`, without any ENABLE_DEPRECATED_* switch.
    static func run(_ arguments: [String], in directory: URL = corpus) throws -> Result {
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw GoMissing(path: binary)
        }
        let process = ChildProcess()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments + ["--disable-color"]
        process.currentDirectoryURL = directory
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("ENABLE_DEPRECATED_") }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self))
    }

    struct GoMissing: Error, CustomStringConvertible {
        var path: String
        var description: String { "Go sing-box not found at \(path): set SINGBOX_GO or provide .peers/bin/sing-box-go" }
    }

    /// The corpus file names, sorted.
    static var corpusFiles: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: corpus.path)) ?? []
        return names.filter { $0.hasSuffix(".json") }.sorted()
    }
}

/// Where two JSON values first differ semantically, as "path: ours vs go"; nil when equal.
func jsonDifference(_ ours: JSONValue, _ go: JSONValue, path: String = "") -> String? {
    switch (ours, go) {
    case let (.object(a), .object(b)):
        for entry in a.entries {
            guard let other = b[entry.key] else { return "\(path).\(entry.key): only in ours: \(entry.value.serialized(indent: ""))" }
            if let difference = jsonDifference(entry.value, other, path: "\(path).\(entry.key)") { return difference }
        }
        for entry in b.entries where a[entry.key] == nil {
            return "\(path).\(entry.key): only in go: \(entry.value.serialized(indent: ""))"
        }
        return nil
    case let (.array(a), .array(b)) where a.count == b.count:
        for (i, (x, y)) in zip(a, b).enumerated() {
            if let difference = jsonDifference(x, y, path: "\(path)[\(i)]") { return difference }
        }
        return nil
    default:
        return ours.semanticallyEquals(go) ? nil : "\(path): ours \(ours.serialized(indent: "")) vs go \(go.serialized(indent: ""))"
    }
}
