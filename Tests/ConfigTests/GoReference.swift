import Foundation
import Testing
@testable import Config

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
        let process = Process()
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
