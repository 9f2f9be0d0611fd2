// The decision table cross-checked against Go sing-box 1.12.12 itself: each group's route runs in
// Go behind a mixed inbound with `block` outbounds a…f; a SOCKS5 CONNECT per case, and Go's log
// says which outbound blocked it (or that a reject rule matched). Cases that need a source address,
// user, sniffed protocol, another inbound or DNS are checked in-process only.
import Config
import Foundation
import Glibc
import Testing

@Suite(.serialized) struct GoRouteCrossCheckTests {
    /// Cases Go can be probed with from a loopback client: destination (and TCP) only.
    static func probeable(_ flow: JSONValue, expect: String) -> String? {
        guard case .object(let o) = flow, expect.hasPrefix("route:") || expect.hasPrefix("reject:") else { return nil }
        guard o.entries.allSatisfy({ $0.key == "destination" || ($0.key == "network" && $0.value == .string("tcp")) }) else { return nil }
        if case .string(let destination)? = o["destination"] { return destination }
        return nil
    }

    /// A SOCKS5 CONNECT to `destination` through 127.0.0.1:`port`; the socket is returned open
    /// (Go's reply may wait on the outbound), and the caller closes it.
    static func connect(port: UInt16, destination: String) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return fd }
        var reply = [UInt8](repeating: 0, count: 2)
        let hello: [UInt8] = [5, 1, 0]  // version 5, one method: no authentication
        _ = send(fd, hello, hello.count, 0)
        _ = recv(fd, &reply, 2, 0)
        let colon = destination.lastIndex(of: ":")!
        var host = String(destination[..<colon])
        let targetPort = UInt16(destination[destination.index(after: colon)...])!
        var request: [UInt8] = [5, 1, 0]
        if host.hasPrefix("[") { host = String(host.dropFirst().dropLast()) }
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            request += [1] + withUnsafeBytes(of: v4) { Array($0) }
        } else if inet_pton(AF_INET6, host, &v6) == 1 {
            request += [4] + withUnsafeBytes(of: v6) { Array($0) }
        } else {
            request += [3, UInt8(host.utf8.count)] + Array(host.utf8)
        }
        request += [UInt8(targetPort >> 8), UInt8(targetPort & 0xff)]
        _ = send(fd, request, request.count, 0)
        return fd
    }

    /// What Go's log says about the newest case: `route:<tag>` from the block outbound's line, or
    /// `reject:<method>` from the match line.
    static func decision(in log: String) -> String? {
        for line in log.split(separator: "\n") {
            if let range = line.range(of: "=> reject") {
                let rest = line[range.upperBound...]
                return rest.hasPrefix("(") ? "reject:" + rest.dropFirst().prefix { $0 != ")" } : "reject:default"
            }
            if let range = line.range(of: "outbound/block["), line.contains("blocked connection") {
                return "route:" + line[range.upperBound...].prefix { $0 != "]" }
            }
        }
        return nil
    }

    @Test func goDecidesTheTableLikeUs() throws {
        var checked = 0
        var mismatches: [String] = []
        for group in try DecisionGroup.load() where group.hosts.isEmpty {
            let cases = group.cases.compactMap { item in Self.probeable(item.flow, expect: item.expect).map { ($0, item.expect) } }
            if cases.isEmpty { continue }
            let dir = try GoPeer.scratch("route-go")
            defer { try? FileManager.default.removeItem(at: dir) }
            let port = try #require(freeLoopbackPort())
            guard case .object(let route) = group.route else { continue }
            let outbounds = ["a", "b", "c", "d", "e", "f"].map { #"{"type":"block","tag":"\#($0)"}"# }.joined(separator: ",")
            let config = """
                {"log":{"level":"debug"},"inbounds":[{"type":"mixed","tag":"in","listen":"127.0.0.1","listen_port":\(port)}],
                 "outbounds":[\(outbounds)],"route":\(JSONValue.object(route).serialized(indent: ""))}
                """
            try config.write(to: dir.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
            let logURL = dir.appendingPathComponent("go.log")
            FileManager.default.createFile(atPath: logURL.path, contents: nil)
            let logHandle = try FileHandle(forWritingTo: logURL)
            let go = ChildProcessLauncher.start(GoPeer.binary, ["run", "-c", "config.json", "--disable-color"], in: dir, output: logHandle)
            defer { go?.terminate(); go?.waitUntilExit(); try? logHandle.close() }
            try #require(go != nil)
            // Wait for the inbound.
            var ready = false
            for _ in 0..<50 where !ready {
                let fd = Self.connect(port: port, destination: "ready.invalid:1")
                ready = (try? String(contentsOf: logURL, encoding: .utf8))?.contains("ready.invalid") ?? false
                close(fd)
                if !ready { usleep(100_000) }
            }
            try #require(ready, "Go did not start: \((try? String(contentsOf: logURL, encoding: .utf8)) ?? "")")
            usleep(200_000)
            for (destination, expect) in cases {
                let before = (try? Data(contentsOf: logURL).count) ?? 0
                let fd = Self.connect(port: port, destination: destination)
                var got: String?
                for _ in 0..<40 where got == nil {
                    let data = (try? Data(contentsOf: logURL)) ?? Data()
                    got = Self.decision(in: String(decoding: data.dropFirst(before), as: UTF8.self))
                    if got == nil { usleep(50_000) }
                }
                close(fd)
                usleep(20_000)
                checked += 1
                if got != expect { mismatches.append("\(group.name): \(destination): go \(got ?? "nothing"), table \(expect)") }
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches)")
        #expect(checked >= 75)  // 81 of the table's cases need only a destination
    }
}

import TestSupport

/// Starts a child with stdout and stderr into one file handle.
enum ChildProcessLauncher {
    static func start(_ path: String, _ arguments: [String], in directory: URL, output: FileHandle) -> ChildProcess? {
        let child = ChildProcess()
        child.executableURL = URL(fileURLWithPath: path)
        child.arguments = arguments
        child.currentDirectoryURL = directory
        child.standardOutput = output
        child.standardError = output
        do { try child.run() } catch { return nil }
        return child
    }
}
