// Remote rule-sets against real peers: a python3 HTTP server (ETag, 304, chunked, huge bodies),
// openssl s_server for HTTPS, Go sing-box as the socks hop, the `.srs` compiler and the oracle.
@testable import Box
import Adapter
import Config
import Foundation
import NIOCore
import Router
import Rules
import Synchronization
import Testing
import TestSupport

/// A python3 HTTP/1.1 file server in a scratch directory: serves `files/<path>` with a strong ETag
/// (304 on a matching If-None-Match), `?chunked` as chunked, `/huge` as an endless close-delimited
/// body, `?slow=<ms>` after a delay, `?gzip` gzip-encoded (406 unless the client accepts gzip) (`?gzip-bad`: a broken gzip body), `/redirect?<target>` as a 302, `/truncated` as a body shorter than its Content-Length; logs each request (path, User-Agent, If-None-Match) as a JSON line in `requests.log`.
final class RuleSetHTTPServer: @unchecked Sendable {
    static let script = #"""
    import hashlib, json, os, sys, http.server
    root = sys.argv[1]
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def log_message(self, *a): pass
        def do_GET(self):
            with open(os.path.join(root, "requests.log"), "a") as log:
                log.write(json.dumps({"path": self.path, "ua": self.headers.get("User-Agent"),
                                      "inm": self.headers.get("If-None-Match")}) + "\n")
            path, _, query = self.path.partition("?")
            if query.startswith("slow="):
                import time
                time.sleep(int(query[5:]) / 1000); query = ""
            if path == "/redirect":
                self.send_response(302); self.send_header("Location", query); self.send_header("Content-Length", "0")
                self.end_headers(); return
            if path == "/truncated":
                self.send_response(200); self.send_header("Content-Length", "1000"); self.end_headers()
                self.wfile.write(b"0123456789"); self.wfile.flush(); self.close_connection = True; return
            if path == "/huge":
                self.send_response(200); self.send_header("Connection", "close"); self.end_headers()
                try:
                    for _ in range(400): self.wfile.write(b"\x00" * 262144)
                except Exception: pass
                self.close_connection = True
                return
            try:
                data = open(os.path.join(root, "files", path.lstrip("/")), "rb").read()
            except OSError:
                self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers(); return
            etag = '"' + hashlib.sha1(data).hexdigest()[:16] + '"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304); self.send_header("ETag", etag); self.end_headers(); return
            if query == "gzip" and "gzip" not in (self.headers.get("Accept-Encoding") or ""):
                self.send_response(406); self.send_header("Content-Length", "0"); self.end_headers(); return
            if query == "gzip":
                import gzip
                body = gzip.compress(data)
                self.send_response(200); self.send_header("ETag", etag)
                self.send_header("Content-Encoding", "gzip"); self.send_header("Content-Length", str(len(body)))
                self.end_headers(); self.wfile.write(body); return
            if query == "gzip-bad":
                self.send_response(200); self.send_header("Content-Encoding", "gzip"); self.send_header("Content-Length", "4")
                self.end_headers(); self.wfile.write(b"\x1f\x8bXX"); return
            self.send_response(200); self.send_header("ETag", etag)
            if query == "chunked":
                self.send_header("Transfer-Encoding", "chunked"); self.end_headers()
                for i in range(0, len(data), 100):
                    part = data[i:i + 100]
                    self.wfile.write(b"%x\r\n" % len(part) + part + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    open(os.path.join(root, "port.tmp"), "w").write(str(server.server_address[1]))
    os.rename(os.path.join(root, "port.tmp"), os.path.join(root, "port"))
    server.serve_forever()
    """#
    let root: String
    let process = ChildProcess()
    private(set) var port = 0

    init(root: String) throws {
        self.root = root
        try FileManager.default.createDirectory(atPath: root + "/files", withIntermediateDirectories: true)
        try Self.script.write(toFile: root + "/server.py", atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", root + "/server.py", root]
        try process.run()
    }

    func waitReady() async throws {
        // The port file may exist before its digits are in it: wait until it reads as a number.
        let path = root + "/port"
        let ready = await waitUntil(.seconds(20)) {
            (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } != nil
        }
        guard ready, let text = try? String(contentsOfFile: path, encoding: .utf8), let port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw DownloadError("python http server did not start")
        }
        self.port = port
    }

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)/\(path)" }

    func put(_ name: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: root + "/files/" + name + ".tmp"))
        rename(root + "/files/" + name + ".tmp", root + "/files/" + name)
    }

    /// The logged requests: (path, user agent, if-none-match).
    func requests() -> [(path: String, ua: String?, inm: String?)] {
        guard let text = try? String(contentsOfFile: root + "/requests.log", encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
            return (object["path"] as? String ?? "", object["ua"] as? String, object["inm"] as? String)
        }
    }

    func stop() async {
        process.terminate()
        await waitForExit(process)
    }

    /// For `defer`: terminates and waits (python exits at once on SIGTERM).
    func stopNow() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    /// A ready server in a fresh scratch directory `dir` (its files under `dir/www`); pair it with
    /// `defer { server.stopAndRemove(dir) }`.
    static func inScratch() async throws -> (dir: String, server: RuleSetHTTPServer) {
        let dir = try scratch()
        do {
            let server = try RuleSetHTTPServer(root: dir + "/www")
            do { try await server.waitReady() } catch { server.stopAndRemove(dir); throw error }
            return (dir, server)
        } catch {
            try? FileManager.default.removeItem(atPath: dir)
            throw error
        }
    }

    /// Stops the server and removes the scratch directory it was made in.
    func stopAndRemove(_ dir: String) {
        stopNow()
        try? FileManager.default.removeItem(atPath: dir)
    }
}

/// Compiles a source rule-set with Go's `rule-set compile` into `.srs` bytes.
func compileWithGo(_ json: String, in directory: String) async throws -> [UInt8] {
    let go = try #require(goSingBox, "Go sing-box is not installed (scripts/install-test-deps.sh)")
    let name = "rs-\(UInt32.random(in: 0 ... .max))"
    try json.write(toFile: "\(directory)/\(name).json", atomically: true, encoding: .utf8)
    let result = try await run(go, ["rule-set", "compile", "--output", "\(directory)/\(name).srs", "\(directory)/\(name).json"])
    #expect(result.status == 0, "\(result.stderr)")
    return Array(try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(name).srs")))
}

/// The outbound tag the box's router picks for a TCP flow to `domain:443`.
func routedOutbound(_ box: SingBox, _ domain: String) async -> String {
    var metadata = FlowMetadata(inbound: "test", inboundType: "direct", network: .tcp, source: nil,
                                destination: Destination(domain: domain, port: 443))
    switch await box.router.match(&metadata) {
    case .outbound(let outbound): return outbound.tag
    default: return "?"
    }
}

let exampleSet = #"{"version":3,"rules":[{"domain_suffix":["example.com"]}]}"#
let otherSet = #"{"version":3,"rules":[{"domain_suffix":["other.org"]}]}"#

func remoteConfig(url: String, format: String, detour: String = "A", interval: String = "1d", cache: String?,
                  extraOutbounds: String = "") -> String {
    let cacheJSON = cache.map { #","experimental":{"cache_file":{"enabled":true,"path":"\#($0)"}}"# } ?? ""
    return """
        {"log":{"level":"error"},
         "outbounds":[{"type":"direct","tag":"A"},{"type":"direct","tag":"B"}\(extraOutbounds)],
         "route":{"rule_set":[{"type":"remote","tag":"geo","format":"\(format)","url":"\(url)",
                               "download_detour":"\(detour)","update_interval":"\(interval)"}],
                  "rules":[{"rule_set":"geo","outbound":"A"}],"final":"B"}\(cacheJSON)}
        """
}

@Suite(.serialized) struct RemoteRuleSetTests {
    /// Download through `direct`, ETag + 304, a short update_interval picking up a changed file,
    /// garbage keeping the old set, and a restart with the server gone using the cache.
    @Test func binarySetUpdatesAndSurvivesRestartFromCache() async throws {
        let (dir, server) = try await RuleSetHTTPServer.inScratch()
        defer { server.stopAndRemove(dir) }
        try server.put("geo.srs", try await compileWithGo(exampleSet, in: dir))
        let config = remoteConfig(url: server.url("geo.srs"), format: "binary", interval: "1s", cache: dir + "/cache.db")

        let box = try SingBox(options: try loadOptions(config))
        try await box.start()
        #expect(await routedOutbound(box, "www.example.com") == "A")
        #expect(await routedOutbound(box, "other.org") == "B")
        let first = server.requests()
        #expect(first.count == 1)
        #expect(first.first?.ua == RuleSetDownloader.userAgent)
        #expect(first.first?.inm == nil)

        // The next fetch carries the ETag and gets 304: rules unchanged.
        #expect(await waitUntil(.seconds(20)) { server.requests().count >= 2 })
        #expect(server.requests()[1].inm?.hasPrefix("\"") == true)
        #expect(await routedOutbound(box, "www.example.com") == "A")

        // A changed file is picked up by a later tick, for new flows.
        try server.put("geo.srs", try await compileWithGo(otherSet, in: dir))
        #expect(await waitUntil(.seconds(20)) { await routedOutbound(box, "other.org") == "A" })
        #expect(await routedOutbound(box, "www.example.com") == "B")

        // Garbage is refused (logged); the set in force stays.
        let before = server.requests().count
        try server.put("geo.srs", Array("this is not a rule-set".utf8))
        #expect(await waitUntil(.seconds(20)) { server.requests().count >= before + 2 })
        #expect(await routedOutbound(box, "other.org") == "A")
        await box.close()

        // Restart with the server gone: the cached copy (the last good one) serves.
        await server.stop()
        let again = try SingBox(options: try loadOptions(config))
        try await again.start()
        #expect(await routedOutbound(again, "other.org") == "A")
        #expect(await routedOutbound(again, "www.example.com") == "B")
        await again.close()
        let cacheBytes = Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/cache.db")))
        #expect(cacheBytes.starts(with: CacheFile.magic))
    }

    /// Source format, chunked, downloaded through our socks outbound to a Go sing-box socks inbound.
    @Test func sourceSetThroughSocksToGo() async throws {
        let go = try #require(goSingBox, "Go sing-box is not installed (scripts/install-test-deps.sh)")
        let (dir, server) = try await RuleSetHTTPServer.inScratch()
        defer { server.stopAndRemove(dir) }
        try server.put("geo.json", Array(exampleSet.utf8))
        let socksPort = try await freePort()
        try """
            {"log":{"level":"info","output":"\(dir)/go.log"},
             "inbounds":[{"type":"socks","tag":"s-in","listen":"127.0.0.1","listen_port":\(socksPort)}],
             "outbounds":[{"type":"direct","tag":"direct"}]}
            """.write(toFile: dir + "/go.json", atomically: true, encoding: .utf8)
        let peer = ChildProcess()
        peer.executableURL = URL(fileURLWithPath: go)
        peer.arguments = ["run", "-c", dir + "/go.json"]
        try peer.run()
        defer { peer.terminate(); peer.waitUntilExit() }
        #expect(await waitUntil { await isListening(socksPort) })

        let config = remoteConfig(url: server.url("geo.json?chunked"), format: "source", detour: "proxy", cache: nil,
                                  extraOutbounds: #",{"type":"socks","tag":"proxy","server":"127.0.0.1","server_port":\#(socksPort)}"#)
        let box = try SingBox(options: try loadOptions(config))
        try await box.start()
        #expect(await routedOutbound(box, "a.example.com") == "A")
        #expect(await routedOutbound(box, "example.org") == "B")
        await box.close()
        let goLog = (try? String(contentsOfFile: dir + "/go.log", encoding: .utf8)) ?? ""
        #expect(goLog.contains("inbound connection to 127.0.0.1:\(server.port)"), "\(goLog)")
        #expect(server.requests().count == 1)
    }

    /// No cache and nothing listening: the start fails naming the rule-set, in Go's words; a 404
    /// fails it with exactly Go's line (Go as oracle).
    @Test func unreachableWithoutCacheFailsStartLikeGo() async throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let port = try await freePort()
        let url = "http://127.0.0.1:\(port)/geo.srs"
        let box = try SingBox(options: try loadOptions(remoteConfig(url: url, format: "binary", cache: dir + "/cache.db")))
        var ours = ""
        do { try await box.start() } catch { ours = error.runDescription }
        #expect(ours.hasPrefix("start service: initialize rule-set[0]: initial rule-set: geo: Get \"\(url)\": dial tcp 127.0.0.1:\(port): "), "\(ours)")
        #expect(ours.hasSuffix("connection refused"), "\(ours)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/cache.db"))

        let server = try RuleSetHTTPServer(root: dir + "/www")
        defer { server.stopNow() }
        try await server.waitReady()
        let missing = remoteConfig(url: server.url("missing.srs"), format: "binary", cache: nil)
        let box404 = try SingBox(options: try loadOptions(missing))
        var ours404 = ""
        do { try await box404.start() } catch { ours404 = error.runDescription }
        #expect(ours404 == "start service: initialize rule-set[0]: initial rule-set: geo: unexpected status: 404 Not Found")
        let go = try #require(goSingBox, "Go sing-box is not installed (scripts/install-test-deps.sh)")
        try missing.write(toFile: dir + "/go.json", atomically: true, encoding: .utf8)
        let result = try await run(go, ["run", "-c", dir + "/go.json"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("] " + ours404), "\(result.stderr)")
        // Go and we sent the same request line and User-Agent.
        let requests = server.requests()
        #expect(requests.count == 2)
        #expect(Set(requests.map(\.ua)) == [RuleSetDownloader.userAgent])
    }

    /// Go starts up to 5 rule-sets at once and fails fast: three sets whose server answers after 1.5 s
    /// start together (one after another would take 4.5 s), and a 404 ends start at once with that
    /// set's error while another set is still downloading (its download is cancelled).
    @Test func setsStartTogetherAndTheFirstFailureEndsStart() async throws {
        let (dir, server) = try await RuleSetHTTPServer.inScratch()
        defer { server.stopAndRemove(dir) }
        try server.put("a.json", Array(exampleSet.utf8))
        try server.put("b.json", Array(otherSet.utf8))
        func config(_ urls: [String]) -> String {
            let sets = urls.enumerated().map { #"{"type":"remote","tag":"s\#($0.offset)","format":"source","url":"\#($0.element)","download_detour":"A"}"# }
            let rules = urls.indices.map { #"{"rule_set":"s\#($0)","outbound":"A"}"# }
            return #"{"log":{"level":"error"},"outbounds":[{"type":"direct","tag":"A"},{"type":"direct","tag":"B"}],"#
                + #""route":{"rule_set":[\#(sets.joined(separator: ","))],"rules":[\#(rules.joined(separator: ","))],"final":"B"}}"#
        }
        let clock = ContinuousClock()
        let box = try SingBox(options: try loadOptions(config([server.url("a.json?slow=1500"), server.url("b.json?slow=1500"),
                                                                server.url("a.json?slow=1500")])))
        let started = clock.now
        try await box.start()
        let took = clock.now - started
        #expect(took < .milliseconds(3500), "three 1.5 s downloads took \(took)")
        #expect(await routedOutbound(box, "www.example.com") == "A")
        #expect(await routedOutbound(box, "x.other.org") == "A")
        #expect(await routedOutbound(box, "nothing.net") == "B")
        await box.close()

        let failing = try SingBox(options: try loadOptions(config([server.url("a.json?slow=8000"), server.url("missing.json")])))
        let failStarted = clock.now
        var ours = ""
        do { try await failing.start() } catch { ours = error.runDescription }
        let failTook = clock.now - failStarted
        #expect(ours == "start service: initialize rule-set[1]: initial rule-set: s1: unexpected status: 404 Not Found", "\(ours)")
        #expect(failTook < .seconds(5), "the 404 came after \(failTook)")
    }

    /// Go decides on process lookups after the rule-sets start: a remote set whose first download
    /// has a `process_path_regex` rule turns the lookup on (no cache, no `find_process`), and a flow
    /// owned by a python3 child here is routed by it; a set without process rules leaves it off.
    @Test func remoteSetWithProcessRulesTurnsTheLookupOn() async throws {
        let (dir, server) = try await RuleSetHTTPServer.inScratch()
        defer { server.stopAndRemove(dir) }
        try server.put("process.json", Array(#"{"version":3,"rules":[{"process_path_regex":["python3"]}]}"#.utf8))
        try server.put("plain.json", Array(exampleSet.utf8))

        let plain = try SingBox(options: try loadOptions(remoteConfig(url: server.url("plain.json"), format: "source", cache: nil)))
        try await plain.start()
        #expect(plain.router.processFinder == nil)
        await plain.close()

        // A python3 child connected to its own listener: the router must find it and the set match.
        let child = ChildProcess()
        child.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        child.arguments = ["-c", "import socket,sys,time,os\nl=socket.socket(); l.bind(('127.0.0.1',0)); l.listen(1)\n"
                           + "c=socket.create_connection(l.getsockname())\n"
                           + "open(sys.argv[1]+'.tmp','w').write('%d %d' % (c.getsockname()[1], l.getsockname()[1])); os.rename(sys.argv[1]+'.tmp', sys.argv[1])\n"
                           + "time.sleep(20)", dir + "/ports"]
        try child.run()
        defer { child.terminate(); child.waitUntilExit() }
        #expect(await waitUntil(.seconds(10)) { FileManager.default.fileExists(atPath: dir + "/ports") })
        let ports = try String(contentsOfFile: dir + "/ports", encoding: .utf8).split(separator: " ")
        try #require(ports.count == 2)
        var metadata = FlowMetadata(inbound: "test", inboundType: "mixed", network: .tcp,
                                    source: Destination("127.0.0.1:\(ports[0])"), destination: Destination("127.0.0.1:\(ports[1])")!)

        let box = try SingBox(options: try loadOptions(remoteConfig(url: server.url("process.json"), format: "source", cache: nil)))
        #expect(box.router.processFinder == nil, "nothing is known before the download")
        try await box.start()
        #expect(box.router.processFinder != nil)
        let decision = await box.router.match(&metadata)
        if case .outbound(let chosen) = decision {
            #expect(chosen.tag == "A", "process \(String(describing: metadata.process))")
        } else {
            Issue.record("no outbound: \(decision)")
        }
        #expect(metadata.process?.path.contains("python3") == true)
        await box.close()
    }

    /// A local `.srs` file rewritten while the box runs is reloaded (Go's fswatch); garbage is not.
    @Test func localSetReloadsWhenTheFileChanges() async throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func put(_ bytes: [UInt8]) throws {
            try Data(bytes).write(to: URL(fileURLWithPath: dir + "/geo.srs.tmp"))
            rename(dir + "/geo.srs.tmp", dir + "/geo.srs")
        }
        try put(try await compileWithGo(exampleSet, in: dir))
        let config = """
            {"log":{"level":"error"},"outbounds":[{"type":"direct","tag":"A"},{"type":"direct","tag":"B"}],
             "route":{"rule_set":[{"type":"local","tag":"geo","format":"binary","path":"\(dir)/geo.srs"}],
                      "rules":[{"rule_set":"geo","outbound":"A"}],"final":"B"}}
            """
        let box = try SingBox(options: try loadOptions(config))
        try await box.start()
        #expect(await routedOutbound(box, "www.example.com") == "A")
        try put(try await compileWithGo(otherSet, in: dir))
        #expect(await waitUntil(.seconds(5)) { await routedOutbound(box, "other.org") == "A" })
        #expect(await routedOutbound(box, "www.example.com") == "B")
        try put(Array("garbage".utf8))
        try await Task.sleep(for: .milliseconds(2500))
        #expect(await routedOutbound(box, "other.org") == "A")
        await box.close()
    }

    /// Go as oracle on real traffic: the same config (a remote set of `ip_cidr` 127.0.0.1/32 → direct,
    /// final block) in Go and in ours, curl through each one's `mixed` inbound: same outcomes.
    @Test func decisionsMatchGoOnRealTraffic() async throws {
        let go = try #require(goSingBox, "Go sing-box is not installed (scripts/install-test-deps.sh)")
        let (dir, server) = try await RuleSetHTTPServer.inScratch()
        defer { server.stopAndRemove(dir) }
        try server.put("ip.srs", try await compileWithGo(#"{"version":3,"rules":[{"ip_cidr":["127.0.0.1/32"]}]}"#, in: dir))
        try server.put("hello.txt", Array("hello".utf8))
        // A second web server on another loopback address, outside the set.
        let otherPort = try await freePort()
        let other = ChildProcess()
        other.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        other.arguments = ["python3", "-m", "http.server", "--bind", "127.0.0.3", "--directory", dir + "/www/files", String(otherPort)]
        other.standardError = FileHandle.nullDevice
        try other.run()
        defer { other.terminate(); other.waitUntilExit() }
        let direct = await waitUntil {
            (try? await run("/usr/bin/curl", ["-s", "-o", "/dev/null", "--max-time", "2", "http://127.0.0.3:\(otherPort)/hello.txt"]))?.status == 0
        }
        #expect(direct, "the 127.0.0.3 server answers without a proxy")

        func config(_ port: Int) -> String {
            """
            {"log":{"level":"error"},
             "inbounds":[{"type":"mixed","tag":"in","listen":"127.0.0.1","listen_port":\(port)}],
             "outbounds":[{"type":"direct","tag":"direct"},{"type":"block","tag":"block"}],
             "route":{"rule_set":[{"type":"remote","tag":"geo","format":"binary","url":"\(server.url("ip.srs"))","download_detour":"direct"}],
                      "rules":[{"rule_set":"geo","outbound":"direct"}],"final":"block"}}
            """
        }
        func outcomes(proxy port: Int) async throws -> [Bool] {
            var out: [Bool] = []
            for url in [server.url("hello.txt"), "http://127.0.0.3:\(otherPort)/hello.txt"] {
                let result = try await run("/usr/bin/curl", ["-s", "--max-time", "5", "--socks5", "127.0.0.1:\(port)", url])
                out.append(result.status == 0 && result.stdout == "hello")
            }
            return out
        }
        let goPort = try await freePort()
        try config(goPort).write(toFile: dir + "/go.json", atomically: true, encoding: .utf8)
        let peer = ChildProcess()
        peer.executableURL = URL(fileURLWithPath: go)
        peer.arguments = ["run", "-c", dir + "/go.json"]
        try peer.run()
        defer { peer.terminate(); peer.waitUntilExit() }
        #expect(await waitUntil { await isListening(goPort) })
        let goOutcomes = try await outcomes(proxy: goPort)

        let ourPort = try await freePort()
        let box = try SingBox(options: try loadOptions(config(ourPort)))
        try await box.start()
        let ourOutcomes = try await outcomes(proxy: ourPort)
        await box.close()
        #expect(goOutcomes == [true, false])
        #expect(ourOutcomes == goOutcomes)
    }

    /// `check` builds the box but never downloads: it passes offline and writes no cache.
    @Test func checkStaysOffline() async throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let port = try await freePort()
        let config = remoteConfig(url: "http://127.0.0.1:\(port)/geo.srs", format: "binary", cache: dir + "/cache.db")
        try config.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        let result = try await run(singBoxPath, ["check", "-c", dir + "/config.json"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/cache.db"))
    }

    /// Go's own bbolt cache.db at the configured path is kept byte for byte; ours goes next to it.
    @Test func goCacheFileIsKeptAndASiblingUsed() async throws {
        let go = try #require(goSingBox, "Go sing-box is not installed (scripts/install-test-deps.sh)")
        let (dir, server) = try await RuleSetHTTPServer.inScratch()
        defer { server.stopAndRemove(dir) }
        try server.put("geo.srs", try await compileWithGo(exampleSet, in: dir))
        let config = remoteConfig(url: server.url("geo.srs"), format: "binary", cache: dir + "/cache.db")
        // Go writes its bbolt cache with the set in it.
        try config.write(toFile: dir + "/go.json", atomically: true, encoding: .utf8)
        let peer = ChildProcess()
        peer.executableURL = URL(fileURLWithPath: go)
        peer.arguments = ["run", "-c", dir + "/go.json"]
        try peer.run()
        #expect(await waitUntil { server.requests().count == 1 && FileManager.default.fileExists(atPath: dir + "/cache.db") })
        try await Task.sleep(for: .milliseconds(300))
        peer.terminate()
        await waitForExit(peer)
        let goCache = Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/cache.db")))
        #expect(CacheFile.isBbolt(goCache))

        let box = try SingBox(options: try loadOptions(config))
        try await box.start()
        #expect(await routedOutbound(box, "www.example.com") == "A")
        await box.close()
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/cache.db"))) == goCache)
        let ours = Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/cache.db.swift-rule-sets")))
        #expect(CacheFile.parse(ours)?.ruleSets["geo"] != nil)
    }

    /// A body past the limit is refused, not buffered without end; a 404 is returned for Go's
    /// `unexpected status`; a short body is `unexpected EOF`; redirects are followed.
    @Test func hugeBodyIsBoundedAndBadResponsesAreErrors() async throws {
        let (dir, server) = try await RuleSetHTTPServer.inScratch()
        defer { server.stopAndRemove(dir) }
        let box = try SingBox(options: try loadOptions(#"{"log":{"disabled":true},"outbounds":[{"type":"direct","tag":"A"}]}"#))
        try await box.start()
        let outbound = try #require(box.outbounds.outbound("A"))
        let downloader = RuleSetDownloader(outbound: outbound, group: testGroup, maximumBodySize: 1 << 20)
        await #expect {
            _ = try await downloader.get(server.url("huge"), etag: nil)
        } throws: { error in
            "\(error)".contains("response too large")
        }
        let missing = try await downloader.get(server.url("nothing.srs"), etag: nil)
        #expect(missing.status == 404)
        #expect(missing.statusText == "Not Found")
        await #expect {
            _ = try await downloader.get(server.url("truncated"), etag: nil)
        } throws: { error in
            "\(error)" == "Get \"\(server.url("truncated"))\": unexpected EOF"
        }
        // A redirect is followed (Go's http.Client does), to a chunked body.
        try server.put("geo.json", Array(exampleSet.utf8))
        let redirected = try await downloader.get(server.url("redirect?/geo.json?chunked"), etag: nil)
        #expect(redirected.status == 200)
        #expect(redirected.body == Array(exampleSet.utf8))
        // gzip is asked for and inflated, as Go's transport does; a broken gzip body is an error.
        let compressed = try await downloader.get(server.url("geo.json?gzip"), etag: nil)
        #expect(compressed.body == Array(exampleSet.utf8))
        await #expect {
            _ = try await downloader.get(server.url("geo.json?gzip-bad"), etag: nil)
        } throws: { error in
            "\(error)".contains("gzip")
        }
        await box.close()
    }

    /// HTTPS to openssl s_server: verified against a test CA given by SSL_CERT_FILE; without it the
    /// certificate is refused.
    @Test func httpsVerifiesTheCertificate() async throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A CA and a server certificate for 127.0.0.1.
        for arguments in [
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test CA"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"],
        ] {
            let result = try await run("/usr/bin/openssl", arguments, in: dir)
            #expect(result.status == 0, "\(result.stderr)")
        }
        try "subjectAltName=IP:127.0.0.1\n".write(toFile: dir + "/ext.cnf", atomically: true, encoding: .utf8)
        let sign = try await run("/usr/bin/openssl", ["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                                                      "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf"], in: dir)
        #expect(sign.status == 0, "\(sign.stderr)")
        try Data(try await compileWithGo(exampleSet, in: dir)).write(to: URL(fileURLWithPath: dir + "/geo.srs"))
        let port = try await freePort()
        let tls = ChildProcess()
        tls.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        tls.arguments = ["s_server", "-quiet", "-accept", "127.0.0.1:\(port)", "-cert", "server.pem", "-key", "server.key", "-WWW"]
        tls.currentDirectoryURL = URL(fileURLWithPath: dir)
        tls.standardOutput = FileHandle.nullDevice
        try tls.run()
        defer { tls.terminate(); tls.waitUntilExit() }
        #expect(await waitUntil { await isListening(port) })

        let config = remoteConfig(url: "https://127.0.0.1:\(port)/geo.srs", format: "binary", cache: nil)
        // Without the test CA: refused.
        unsetenv("SSL_CERT_FILE")
        let refused = try SingBox(options: try loadOptions(config))
        var failure = ""
        do { try await refused.start() } catch { failure = error.runDescription }
        #expect(failure.contains("initial rule-set: geo: Get \"https://127.0.0.1:\(port)/geo.srs\": tls: failed to verify certificate"), "\(failure)")

        setenv("SSL_CERT_FILE", dir + "/ca.pem", 1)
        defer { unsetenv("SSL_CERT_FILE") }
        let box = try SingBox(options: try loadOptions(config))
        try await box.start()
        #expect(await routedOutbound(box, "www.example.com") == "A")
        #expect(await routedOutbound(box, "example.net") == "B")
        await box.close()
    }
}

@Suite struct RemoteRuleSetUnitTests {
    @Test func updateSwapsRulesAndRunsCallbacks() throws {
        let set = RuleSet(tag: "t", rules: [])
        let calls = Mutex(0)
        set.onUpdate { updated in calls.withLock { $0 += updated.rules.count } }
        #expect(!set.matches(flow("10.0.0.1:443")))
        let plain = try PlainRuleSetOptions(json: try JSONParser.parse(Array(#"{"version":3,"rules":[{"ip_cidr":["10.0.0.0/8"]}]}"#.utf8)), path: "")
        set.update(try RuleSet.compile(plain.rules))
        #expect(set.matches(flow("10.0.0.1:443")))
        #expect(set.destinationPrefixes.map(\.description) == ["10.0.0.0/8"])
        #expect(calls.withLock { $0 } == 1)
    }

    @Test func cacheRoundTripsAndRejectsEveryTruncation() {
        let entries = ["a": SavedRuleSet(content: [1, 2, 3], lastUpdated: 1_700_000_000_123, etag: "\"x\""),
                       "b": SavedRuleSet(content: [], lastUpdated: -1, etag: "")]
        let contents = CacheFile.Contents(ruleSets: entries, fakeIP: [9, 8, 7])
        let bytes = CacheFile.serialize(contents)
        #expect(CacheFile.parse(bytes) == contents)
        for length in 0..<bytes.count where length != CacheFile.magic.count {
            // Every cut inside a record (or the magic) is refused; cuts between records are valid files.
            let parsed = CacheFile.parse(Array(bytes.prefix(length)))
            #expect(parsed == nil || (parsed?.ruleSets.count ?? 0) + (parsed?.fakeIP == nil ? 0 : 1) < 3, "length \(length)")
        }
        #expect(!CacheFile.isBbolt(bytes))
        // The first version of the file (rule-set records without kind bytes) is still read.
        var first = CacheFile.firstMagic
        first += [0, 0, 0, 1] + Array("a".utf8) + [0, 0, 0, 0] + [0, 0, 0, 0, 0, 0, 0, 5] + [0, 0, 0, 2, 1, 2]
        #expect(CacheFile.parse(first)?.ruleSets["a"] == SavedRuleSet(content: [1, 2], lastUpdated: 5, etag: ""))
    }

    @Test(arguments: [
        ("http://127.0.0.1:8080/a/b.srs?x=1#f", false, "127.0.0.1", 8080, "/a/b.srs?x=1", "127.0.0.1:8080"),
        ("https://Example.com/geo.json", true, "Example.com", 443, "/geo.json", "Example.com"),
        ("https://[::1]:8443", true, "::1", 8443, "/", "[::1]:8443"),
        ("http://h?q", false, "h", 80, "/?q", "h"),
    ])
    func parsesURLs(text: String, tls: Bool, host: String, port: Int, target: String, hostHeader: String) throws {
        let url = try DownloadURL(text)
        #expect(url.isTLS == tls && url.host == host && Int(url.port) == port && url.target == target && url.hostHeader == hostHeader)
    }

    @Test func refusesOtherSchemesWithGosWording() {
        #expect(throws: BoxError.self) { try DownloadURL("ftp://h/x") }
        do { _ = try DownloadURL("ftp://h/x") } catch { #expect(error.message == #"Get "ftp://h/x": unsupported protocol scheme "ftp""#) }
    }
}
