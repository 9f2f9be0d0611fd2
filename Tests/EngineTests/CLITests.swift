// The built `sing-box` binary: exit codes, FATAL lines, SIGTERM and SIGHUP, format/merge/version.
import Foundation
import NIOCore
import NIOPosix
import Testing
import TestSupport

/// The executable next to the test bundle (`swift build --build-tests` builds it).
let singBoxPath: String = {
    let bundle = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var directory = (bundle as NSString).deletingLastPathComponent
    while !directory.isEmpty && directory != "/" && !FileManager.default.fileExists(atPath: directory + "/sing-box") {
        directory = (directory as NSString).deletingLastPathComponent
    }
    return directory + "/sing-box"
}()

/// The Go reference, when installed.
let goSingBox: String? = {
    let candidates = [ProcessInfo.processInfo.environment["SINGBOX_GO"], FileManager.default.currentDirectoryPath + "/.peers/bin/sing-box-go"]
    return candidates.compactMap { $0 }.first { FileManager.default.isExecutableFile(atPath: $0) }
}()

struct Run {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a binary to completion on a Dispatch thread: blocking reads and waits must not occupy the
/// cooperative pool (two threads on this machine), or parallel suites stall behind them.
func run(_ path: String, _ arguments: [String], in directory: String? = nil) async throws -> Run {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            continuation.resume(with: Result { try runBlocking(path, arguments, in: directory) })
        }
    }
}

/// Waits for a process to exit on a Dispatch thread.
func waitForExit(_ process: ChildProcess) async {
    await withCheckedContinuation { continuation in
        DispatchQueue.global().async {
            process.waitUntilExit()
            continuation.resume()
        }
    }
}

func runBlocking(_ path: String, _ arguments: [String], in directory: String? = nil) throws -> Run {
    let process = ChildProcess()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Run(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
               stderr: String(decoding: errData, as: UTF8.self))
}

/// A scratch directory removed by the caller.
func scratch() throws -> String {
    let path = NSTemporaryDirectory() + "engine-cli-\(UInt32.random(in: 0 ... .max))"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// True once something accepts TCP on 127.0.0.1:`port`.
func isListening(_ port: Int) async -> Bool {
    guard let channel = try? await ClientBootstrap(group: testGroup).connect(host: "127.0.0.1", port: port).get() else { return false }
    try? await channel.close()
    return true
}

func waitUntil(_ timeout: Duration = .seconds(10), _ condition: () async -> Bool) async -> Bool {
    let clock = ContinuousClock()
    let end = clock.now + timeout
    while clock.now < end {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return false
}

@Suite(.serialized) struct CLITests {
    @Test func versionPrintsGosFirstLine() async throws {
        let result = try await run(singBoxPath, ["version"])
        #expect(result.status == 0)
        #expect(result.stdout.hasPrefix("sing-box version 1.12.12\n\nEnvironment: "))
        let nameOnly = try await run(singBoxPath, ["version", "-n"]).stdout
        #expect(nameOnly == "1.12.12\n")
    }

    @Test(arguments: [
        (#"{"inbounds":[{"type":"direct","listen_port":1080,"override_port":1}]}"#, Int32(0), ""),
        (#"{"inbounds":[{"type":"mixed","listen_port":"x"}]}"#, Int32(1),
         "FATAL[0000] decode config at config.json: inbounds[0].listen_port: json: cannot unmarshal string into Go value of type uint16\n"),
        (#"{"log":{"level":"loud"}}"#, Int32(1), ""),
        (#"{"route":{"rules":[{"port_range":"abc","outbound":"direct"}]}}"#, Int32(1), ""),
        (#"{"inbounds":[{"type":"tun","tag":"t","address":["172.19.0.1/30"]}]}"#, Int32(0), ""),
    ])
    func checkExitCodesMatchGo(config: String, status: Int32, stderr: String) async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try config.write(toFile: directory + "/config.json", atomically: true, encoding: .utf8)
        let ours = try await run(singBoxPath, ["check", "--disable-color", "-D", directory])
        #expect(ours.status == status, "\(ours.stderr)")
        if !stderr.isEmpty { #expect(ours.stderr == stderr) }
        if status != 0 { #expect(ours.stderr.hasPrefix("FATAL[0000] ")) }
        if let go = goSingBox {
            let theirs = try await run(go, ["check", "--disable-color", "-D", directory])
            #expect(theirs.status == ours.status, "Go said: \(theirs.stderr)")
        }
    }

    @Test func missingConfigAndUnknownCommand() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let missing = try await run(singBoxPath, ["check", "--disable-color"], in: directory)
        #expect(missing.status == 1)
        #expect(missing.stderr == "FATAL[0000] read config at config.json: open config.json: no such file or directory\n")
        let unknown = try await run(singBoxPath, ["frobnicate", "--disable-color"])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("Error: unknown command \"frobnicate\" for \"sing-box\""))
        #expect(unknown.stderr.hasSuffix("FATAL[0000] unknown command \"frobnicate\" for \"sing-box\"\n"))
    }

    @Test func formatWriteRewritesOnlyWhatChanged() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/c.json"
        try #"{"outbounds":[{"tag":"d","type":"direct"}]}"#.write(toFile: path, atomically: true, encoding: .utf8)
        let printed = try await run(singBoxPath, ["format", "-c", path])
        #expect(printed.status == 0)
        #expect(printed.stdout == "{\n  \"outbounds\": [\n    {\n      \"type\": \"direct\",\n      \"tag\": \"d\"\n    }\n  ]\n}\n")
        let written = try await run(singBoxPath, ["format", "-w", "-c", path])
        #expect(written.stderr == path + "\n")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == printed.stdout)
        let again = try await run(singBoxPath, ["format", "-w", "-c", path])
        #expect(again.stderr.isEmpty, "an already formatted file is left alone")
    }

    @Test func mergeWritesTheMergedConfig() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try #"{"log":{"level":"warn"}}"#.write(toFile: directory + "/a.json", atomically: true, encoding: .utf8)
        try #"{"outbounds":[{"type":"direct","tag":"d"}]}"#.write(toFile: directory + "/b.json", atomically: true, encoding: .utf8)
        let result = try await run(singBoxPath, ["merge", directory + "/out.json", "-c", directory + "/a.json", "-c", directory + "/b.json"])
        #expect(result.status == 0, "\(result.stderr)")
        let merged = try String(contentsOfFile: directory + "/out.json", encoding: .utf8)
        #expect(merged.contains("\"level\": \"warn\""))
        #expect(merged.contains("\"tag\": \"d\""))
        let usage = try await run(singBoxPath, ["merge", "--disable-color"])
        #expect(usage.status == 1)
        #expect(usage.stderr.hasSuffix("FATAL[0000] accepts 1 arg(s), received 0\n"))
    }

    @Test func sigtermClosesAndExitsZeroSighupReloads() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try await freePort(), second = try await freePort()
        func config(_ port: Int) -> String {
            #"{"log":{"level":"info"},"inbounds":[{"type":"direct","tag":"d","listen":"127.0.0.1","listen_port":\#(port),"network":"tcp","override_port":9}]}"#
        }
        let path = directory + "/config.json"
        try config(first).write(toFile: path, atomically: true, encoding: .utf8)
        let process = ChildProcess()
        process.executableURL = URL(fileURLWithPath: singBoxPath)
        process.arguments = ["run", "-c", path, "--disable-color"]
        let err = Pipe()
        process.standardError = err
        try process.run()
        #expect(await waitUntil { await isListening(first) })

        // A bad config on SIGHUP: keep serving the old one.
        try #"{"inbounds":[{"type":"direct","listen_port":"bad"}]}"#.write(toFile: path, atomically: true, encoding: .utf8)
        kill(process.processIdentifier, SIGHUP)
        try await Task.sleep(for: .milliseconds(300))
        #expect(process.isRunning)
        #expect(await isListening(first))

        // A good new config: the box is rebuilt on the new port.
        try config(second).write(toFile: path, atomically: true, encoding: .utf8)
        kill(process.processIdentifier, SIGHUP)
        #expect(await waitUntil { await isListening(second) })
        #expect(await waitUntil { !(await isListening(first)) })

        kill(process.processIdentifier, SIGTERM)
        await waitForExit(process)
        #expect(process.terminationStatus == 0)
        #expect(process.terminationReason == .exit)
        #expect(!(await isListening(second)))
        let log = String(decoding: try err.fileHandleForReading.readToEnd() ?? Data(), as: UTF8.self)
        #expect(log.contains("INFO[0000] inbound/direct[d]: tcp server started at 127.0.0.1:\(first)"))
        #expect(log.contains("ERROR[") && log.contains("reload service: decode config at \(path): inbounds[0].listen_port"))
        #expect(log.contains("sing-box started ("))
    }

    @Test func runFailsWithGosStartServicePrefix() async throws {
        let busy = try await ServerBootstrap(group: testGroup).bind(host: "127.0.0.1", port: 0).get()
        defer { busy.close(promise: nil) }
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try #"{"inbounds":[{"type":"direct","tag":"m","listen":"127.0.0.1","listen_port":\#(busy.boundPort),"override_port":9}]}"#
            .write(toFile: directory + "/config.json", atomically: true, encoding: .utf8)
        let result = try await run(singBoxPath, ["run", "-D", directory, "--disable-color"])
        #expect(result.status == 1)
        #expect(result.stderr.hasSuffix(
            "FATAL[0000] start service: start inbound/direct[m]: listen tcp 127.0.0.1:\(busy.boundPort): bind: address already in use\n"))
    }
}
