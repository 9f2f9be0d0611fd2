// The Clash API's live parts, ours and Go sing-box 1.12.12 asked the same things: `/connections`
// (snapshot shape and values for live SOCKS flows, byte counts growing with the bytes moved,
// DELETE of one flow closing that client's TCP connection), `/traffic` and `/memory` as chunked
// JSON lines, `/logs` delivering a new flow's line, and the WebSocket forms of `/traffic` and
// `/connections` through a raw RFC 6455 client (python3 has no `websockets` here). The secret guards
// all of them (`token` for WebSockets).
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension ClashAPIInteropTests {
    /// A TCP echo server on 127.0.0.1 (python3, a thread per connection).
    private static func echoServer(in work: TemporaryDirectory) throws -> (Spawned, UInt16) {
        let port = try freePort()
        let script = """
            import socket, sys, threading
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
            def serve(c):
                while True:
                    d = c.recv(65536)
                    if not d: break
                    c.sendall(d)
                c.close()
            while True:
                c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
            """
        let process = try Spawned(Peers.python3, ["-c", script, String(port)], name: "echo-\(port)", directory: work)
        try waitForTCP(port: port, process: process)
        return (process, port)
    }

    /// Reads exactly `count` bytes (nil on EOF, error or 5 s without data).
    private static func readExactly(_ fd: Int32, _ count: Int) -> [UInt8]? {
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: count)
        while out.count < count {
            let n = read(fd, &chunk, count - out.count)
            if n <= 0 { return nil }
            out += chunk[..<n]
        }
        return out
    }

    /// Reads whatever arrives within `seconds`.
    private static func readFor(_ fd: Int32, seconds: Double) -> [UInt8] {
        var tv = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let deadline = Date().addingTimeInterval(seconds)
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while Date() < deadline {
            let n = read(fd, &chunk, chunk.count)
            if n == 0 { break }
            if n > 0 { out += chunk[..<n] }
        }
        return out
    }

    /// Whether the peer closed `fd` (EOF or reset) within `seconds`.
    private static func closedByPeer(_ fd: Int32, within seconds: Double) -> Bool {
        var tv = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let deadline = Date().addingTimeInterval(seconds)
        var byte: UInt8 = 0
        while Date() < deadline {
            let n = read(fd, &byte, 1)
            if n == 0 { return true }
            if n < 0 && errno != EAGAIN && errno != EWOULDBLOCK { return true }
        }
        return false
    }

    /// A SOCKS5 CONNECT to 127.0.0.1:`port` through the inbound at `proxy`; the fd, or -1.
    private static func socksConnect(proxy: UInt16, to port: UInt16) -> Int32 {
        let fd = connectTCP(port: proxy)
        guard fd >= 0 else { return -1 }
        guard writeAll(fd, [5, 1, 0]), readExactly(fd, 2) == [5, 0],
              writeAll(fd, [5, 1, 0, 1, 127, 0, 0, 1, UInt8(port >> 8), UInt8(port & 0xFF)]),
              let reply = readExactly(fd, 10), reply[1] == 0 else {
            close(fd)
            return -1
        }
        return fd
    }

    /// Sends `count` bytes and reads the echo back; true when all came back.
    private static func echo(_ fd: Int32, count: Int) -> Bool {
        let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        return writeAll(fd, bytes) && readExactly(fd, count) == bytes
    }

    private static func localPort(_ fd: Int32) -> UInt16 {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return UInt16(bigEndian: address.sin_port)
    }

    /// An HTTP request on a raw socket whose answer is a stream; the fd, or -1.
    private static func openStream(api: UInt16, _ target: String, headers: [String]) -> Int32 {
        let fd = connectTCP(port: api)
        guard fd >= 0 else { return -1 }
        let request = "GET \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(api)\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n"
        guard writeAll(fd, Array(request.utf8)) else { close(fd); return -1 }
        return fd
    }

    /// The JSON objects on separate lines of a chunked body (chunk sizes are skipped: only lines that
    /// start with `{` count).
    private static func jsonLines(_ bytes: [UInt8]) -> [[String: Any]] {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { return [] }
        return text[split.upperBound...].split(whereSeparator: { $0 == "\r\n" || $0 == "\n" })
            .filter { $0.hasPrefix("{") }.compactMap { json(String($0)) }
    }

    /// The text frames a server sent after its 101 (frames from the server are not masked).
    private static func webSocketTexts(_ bytes: [UInt8]) -> (head: String, texts: [String]) {
        let marker: [UInt8] = [13, 10, 13, 10]
        guard let end = (0...max(0, bytes.count - 4)).first(where: { Array(bytes[$0..<min($0 + 4, bytes.count)]) == marker }) else {
            return (String(decoding: bytes, as: UTF8.self), [])
        }
        let head = String(decoding: bytes[..<end], as: UTF8.self)
        var index = end + 4
        var texts: [String] = []
        while index + 2 <= bytes.count {
            let opcode = bytes[index] & 0x0F
            var length = Int(bytes[index + 1] & 0x7F)
            var offset = index + 2
            if length == 126 {
                guard offset + 2 <= bytes.count else { break }
                length = Int(bytes[offset]) << 8 | Int(bytes[offset + 1])
                offset += 2
            } else if length == 127 {
                guard offset + 8 <= bytes.count else { break }
                length = bytes[offset..<offset + 8].reduce(0) { $0 << 8 | Int($1) }
                offset += 8
            }
            guard offset + length <= bytes.count else { break }
            if opcode == 1 { texts.append(String(decoding: bytes[offset..<offset + length], as: UTF8.self)) }
            index = offset + length
        }
        return (head, texts)
    }

    private static func json(_ text: String) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
    }

    private static func curlStatus(_ method: String, _ url: String, secret: String? = "s3") throws -> (Int, String) {
        var arguments = ["--silent", "--max-time", "5", "-X", method, "-o", "-", "-w", "\n%{http_code}", url]
        if let secret { arguments += ["-H", "Authorization: Bearer \(secret)"] }
        let text = String(decoding: try runTool(Peers.curl, arguments, timeout: 10).stdout, as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }


    /// A SOCKS5 UDP flow that stays open: python3 associates through the proxy, sends one 300-byte
    /// datagram to its own UDP echo through it, prints `ready` with its TCP port, the echo's port and its UDP port once the echo came back, then waits.
    private static let udpFlowScript = #"""
import socket, struct, sys, threading, time
proxy_port = int(sys.argv[1])
echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); echo.bind(("127.0.0.1", 0))
def serve():
    while True:
        data, peer = echo.recvfrom(65535); echo.sendto(data, peer)
threading.Thread(target=serve, daemon=True).start()
tcp = socket.create_connection(("127.0.0.1", proxy_port), timeout=5)
tcp.sendall(b"\x05\x01\x00"); tcp.recv(2)
tcp.sendall(b"\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00")
reply = tcp.recv(10)
if reply[1] != 0 or reply[3] != 1: raise SystemExit("associate failed")
bind = (socket.inet_ntoa(reply[4:8]), struct.unpack("!H", reply[8:10])[0])
if bind[0] == "0.0.0.0": bind = ("127.0.0.1", bind[1])
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.settimeout(5)
header = b"\x00\x00\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack("!H", echo.getsockname()[1])
udp.sendto(header + bytes(300), bind)
udp.recvfrom(65535)
print("ready", tcp.getsockname()[1], echo.getsockname()[1], udp.getsockname()[1], flush=True)
time.sleep(30)
"""#

    @Test(arguments: [Implementation.ours, .go])
    func connectionsTrafficLogsAsGo(implementation: Implementation) throws {
        let work = try TemporaryDirectory()
        let (echoProcess, echoPort) = try Self.echoServer(in: work)
        defer { echoProcess.stop() }
        let api = try freePort(), proxy = try freePort()
        let config = """
            {"log":{"level":"info","timestamp":false},
             "experimental":{"clash_api":{"external_controller":"127.0.0.1:\(api)","secret":"s3"}},
             "inbounds":[\(ConfigJSON.mixed(port: proxy))],
             "outbounds":[{"type":"selector","tag":"sel","outbounds":["direct"]},\(ConfigJSON.direct)],
             "route":{"rules":[{"inbound":"in","outbound":"sel"}]}}
            """
        let box = try SingBox(implementation, config: config, waitPort: api, in: work)
        defer { box.stop() }
        let base = "http://127.0.0.1:\(api)"
        let auth = "Authorization: Bearer s3"

        // The secret guards the new endpoints too; a WebSocket may carry it as `token`.
        #expect(try Self.curlStatus("GET", "\(base)/connections", secret: nil).0 == 401)
        #expect(try Self.curlStatus("DELETE", "\(base)/connections", secret: "wrong").0 == 401)
        let wsHeaders = ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="]
        let badToken = Self.openStream(api: api, "/traffic?token=nope", headers: wsHeaders)
        defer { close(badToken) }
        #expect(String(decoding: Self.readFor(badToken, seconds: 0.5), as: UTF8.self).hasPrefix("HTTP/1.1 401"))

        // Streams opened before any traffic: /traffic and /memory (chunked), /traffic and /connections (WebSocket).
        let traffic = Self.openStream(api: api, "/traffic", headers: [auth])
        let memory = Self.openStream(api: api, "/memory", headers: [auth])
        let trafficSocket = Self.openStream(api: api, "/traffic?token=s3", headers: wsHeaders)
        let connectionsSocket = Self.openStream(api: api, "/connections?token=s3&interval=300", headers: wsHeaders)
        let logs = Self.openStream(api: api, "/logs?level=info", headers: [auth])
        let logsSocket = Self.openStream(api: api, "/logs?token=s3", headers: wsHeaders)
        let warnSocket = Self.openStream(api: api, "/logs?token=s3&level=warn", headers: wsHeaders)
        defer { for fd in [traffic, memory, trafficSocket, connectionsSocket, logs, logsSocket, warnSocket] { close(fd) } }
        #expect(traffic >= 0 && memory >= 0 && trafficSocket >= 0 && connectionsSocket >= 0 && logs >= 0 && logsSocket >= 0 && warnSocket >= 0)
        usleep(300_000)  // the streams are served before the flows start

        // Three live flows moving different amounts.
        let sizes = [1000, 5000, 20000]
        var flows: [Int32] = []
        defer { for fd in flows { close(fd) } }
        for size in sizes {
            let fd = Self.socksConnect(proxy: proxy, to: echoPort)
            #expect(fd >= 0, "\(implementation): SOCKS connect failed\n\(box.log)")
            guard fd >= 0 else { return }
            flows.append(fd)
            #expect(Self.echo(fd, count: size))
        }
        usleep(200_000)

        // The snapshot: Go's keys, types and values.
        let (status, body) = try Self.curlStatus("GET", "\(base)/connections")
        #expect(status == 200)
        let snapshot = Self.json(body) ?? [:]
        #expect(Set(snapshot.keys) == ["connections", "downloadTotal", "uploadTotal", "memory"], "\(implementation): \(body)")
        #expect((snapshot["uploadTotal"] as? Int ?? 0) >= sizes.reduce(0, +) && (snapshot["downloadTotal"] as? Int ?? 0) >= sizes.reduce(0, +))
        let connections = snapshot["connections"] as? [[String: Any]] ?? []
        #expect(connections.count == 3, "\(implementation): \(body)")
        var ids: [UInt16: String] = [:]
        for connection in connections {
            #expect(Set(connection.keys) == ["id", "metadata", "upload", "download", "start", "chains", "rule", "rulePayload"], "\(connection)")
            let metadata = connection["metadata"] as? [String: String] ?? [:]
            #expect(Set(metadata.keys) == ["network", "type", "sourceIP", "destinationIP", "sourcePort", "destinationPort", "host",
                                           "dnsMode", "processPath"], "\(implementation): \(connection)")
            #expect(metadata["network"] == "tcp" && metadata["type"] == "mixed/in" && metadata["sourceIP"] == "127.0.0.1")
            #expect(metadata["destinationIP"] == "127.0.0.1" && metadata["destinationPort"] == String(echoPort) && metadata["host"] == "")
            #expect(metadata["dnsMode"] == "normal" && metadata["processPath"] == "")
            #expect(connection["chains"] as? [String] == ["direct", "sel"] && connection["rulePayload"] as? String == "")
            #expect(connection["rule"] as? String == "inbound=in => route(sel)", "\(implementation): \(connection)")
            let id = connection["id"] as? String ?? ""
            #expect(id.range(of: "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", options: .regularExpression) != nil, "\(id)")
            let start = connection["start"] as? String ?? ""
            #expect(start.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"#, options: .regularExpression) != nil, "\(start)")
            // Bytes moved so far: each flow's echo, both ways.
            let port = UInt16(metadata["sourcePort"] ?? "") ?? 0
            guard let index = flows.firstIndex(where: { Self.localPort($0) == port }) else {
                Issue.record("\(implementation): no flow with source port \(port)")
                continue
            }
            ids[port] = id
            #expect(connection["upload"] as? Int == sizes[index] && connection["download"] as? Int == sizes[index], "\(implementation): \(connection)")
        }

        // Counts grow with the bytes moved.
        #expect(Self.echo(flows[0], count: 3000))
        usleep(100_000)
        let again = (Self.json(try Self.curlStatus("GET", "\(base)/connections").1)?["connections"] as? [[String: Any]]) ?? []
        let first = again.first { ($0["metadata"] as? [String: String])?["sourcePort"] == String(Self.localPort(flows[0])) }
        #expect(first?["upload"] as? Int == sizes[0] + 3000 && first?["download"] as? Int == sizes[0] + 3000, "\(implementation): \(again)")

        // DELETE of one flow closes that client's connection and no other.
        let victim = ids[Self.localPort(flows[1])] ?? ""
        #expect(try Self.curlStatus("DELETE", "\(base)/connections/\(victim)").0 == 204)
        #expect(Self.closedByPeer(flows[1], within: 3), "\(implementation): flow not closed")
        #expect(Self.echo(flows[0], count: 100) && Self.echo(flows[2], count: 100))
        usleep(200_000)
        let remaining = (Self.json(try Self.curlStatus("GET", "\(base)/connections").1)?["connections"] as? [[String: Any]]) ?? []
        #expect(remaining.count == 2 && !remaining.contains { $0["id"] as? String == victim }, "\(implementation): \(remaining)")
        // An unknown id is not an error.
        #expect(try Self.curlStatus("DELETE", "\(base)/connections/not-a-uuid").0 == 204)

        // The streams: per-second traffic deltas adding up to what moved, memory (0 first), a log line
        // for a new flow, snapshots over WebSocket.
        let late = Self.socksConnect(proxy: proxy, to: echoPort)
        if late >= 0 { flows.append(late) }
        let trafficBytes = Self.readFor(traffic, seconds: 1.5)
        let trafficHead = String(decoding: trafficBytes.prefix(400), as: UTF8.self)
        #expect(trafficHead.hasPrefix("HTTP/1.1 200") && trafficHead.lowercased().contains("transfer-encoding: chunked")
                && trafficHead.contains("Content-Type: application/json"), "\(implementation): \(trafficHead)")
        let trafficLines = Self.jsonLines(trafficBytes)
        #expect(trafficLines.count >= 1 && trafficLines.allSatisfy { Set($0.keys) == ["up", "down"] }, "\(implementation): \(trafficLines)")
        let moved = trafficLines.reduce(0) { $0 + ($1["up"] as? Int ?? 0) }
        #expect(moved >= sizes.reduce(0, +) + 3000, "\(implementation): \(trafficLines)")

        let memoryLines = Self.jsonLines(Self.readFor(memory, seconds: 0.5))
        #expect(memoryLines.count >= 2 && memoryLines.allSatisfy { Set($0.keys) == ["inuse", "oslimit"] }, "\(implementation): \(memoryLines)")
        #expect(memoryLines.first?["inuse"] as? Int == 0 && (memoryLines.dropFirst().first?["inuse"] as? Int ?? 0) > 0
                && memoryLines.first?["oslimit"] as? Int == 0)

        let logLines = Self.jsonLines(Self.readFor(logs, seconds: 0.3))
        let newFlow = logLines.first { ($0["payload"] as? String ?? "").contains("inbound connection to 127.0.0.1:\(echoPort)") }
        #expect(newFlow?["type"] as? String == "info" && logLines.allSatisfy { Set($0.keys) == ["type", "payload"] },
                "\(implementation): \(logLines)")

        // Over WebSocket (level info by default) the same lines come as text frames; at `warn` they are filtered out.
        let (logsUpgrade, logFrames) = Self.webSocketTexts(Self.readFor(logsSocket, seconds: 0.1))
        let logFrame = logFrames.compactMap(Self.json).first { ($0["payload"] as? String ?? "").contains("inbound connection to 127.0.0.1:\(echoPort)") }
        #expect(logsUpgrade.hasPrefix("HTTP/1.1 101") && logFrame?["type"] as? String == "info", "\(implementation): \(logFrames)")
        let (warnUpgrade, warnings) = Self.webSocketTexts(Self.readFor(warnSocket, seconds: 0.1))
        #expect(warnUpgrade.hasPrefix("HTTP/1.1 101") && !warnings.contains { $0.contains("inbound connection") }, "\(implementation): \(warnings)")

        let (trafficUpgrade, trafficFrames) = Self.webSocketTexts(Self.readFor(trafficSocket, seconds: 0.3))
        #expect(trafficUpgrade.hasPrefix("HTTP/1.1 101") && trafficUpgrade.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
                "\(implementation): \(trafficUpgrade)")
        let trafficMessages = trafficFrames.compactMap(Self.json)
        #expect(trafficMessages.count >= 2 && trafficMessages.allSatisfy { Set($0.keys) == ["up", "down"] } && trafficFrames.allSatisfy { $0.hasSuffix("\n") },
                "\(implementation): \(trafficFrames)")
        #expect(trafficMessages.reduce(0) { $0 + ($1["down"] as? Int ?? 0) } >= sizes.reduce(0, +) + 3000)

        let (connectionsUpgrade, snapshots) = Self.webSocketTexts(Self.readFor(connectionsSocket, seconds: 0.1))
        #expect(connectionsUpgrade.hasPrefix("HTTP/1.1 101"))
        let parsed = snapshots.compactMap(Self.json)
        // The snapshot at once, then every 300 ms: over ~6 s, well over 5.
        #expect(parsed.count >= 5 && parsed.allSatisfy { Set($0.keys) == ["connections", "downloadTotal", "uploadTotal", "memory"] },
                "\(implementation): \(snapshots.count) frames")
        #expect(parsed.contains { ($0["connections"] as? [Any])?.count == 3 }, "\(implementation)")

        // A UDP flow shows too, with the datagrams' payload bytes.
        let udpClient = try Spawned(Peers.python3, ["-c", Self.udpFlowScript, String(proxy)], name: "udp-client-\(implementation)",
                                    directory: work)
        defer { udpClient.stop() }
        var ready: [Substring] = []
        for _ in 0..<100 where ready.isEmpty {
            usleep(50_000)
            ready = udpClient.log.split(separator: "\n").first { $0.hasPrefix("ready ") }?.split(separator: " ") ?? []
        }
        #expect(ready.count == 4, "\(implementation): \(udpClient.log)")
        let withUDP = (Self.json(try Self.curlStatus("GET", "\(base)/connections").1)?["connections"] as? [[String: Any]]) ?? []
        let udpFlow = withUDP.first { ($0["metadata"] as? [String: String])?["network"] == "udp" }
        #expect(udpFlow?["upload"] as? Int == 300 && udpFlow?["download"] as? Int == 300 && udpFlow?["chains"] as? [String] == ["direct", "sel"]
                && udpFlow?["rule"] as? String == "inbound=in => route(sel)", "\(implementation): \(withUDP)")
        let udpMetadata = udpFlow?["metadata"] as? [String: String] ?? [:]
        // The source is the client's TCP control connection (its association), the destination the first
        // datagram's (the echo), in Go as in ours.
        #expect(udpMetadata["type"] == "mixed/in" && udpMetadata["sourceIP"] == "127.0.0.1" && udpMetadata["destinationIP"] == "127.0.0.1"
                && udpMetadata["sourcePort"] == ready.dropFirst().first.map(String.init) && udpMetadata["destinationPort"] == ready.dropFirst(2).first.map(String.init),
                "\(implementation): \(udpMetadata) \(ready)")
        // DELETE of the UDP flow ends it too.
        #expect(try Self.curlStatus("DELETE", "\(base)/connections/\(udpFlow?["id"] as? String ?? "")").0 == 204)
        usleep(300_000)
        let afterUDP = (Self.json(try Self.curlStatus("GET", "\(base)/connections").1)?["connections"] as? [[String: Any]]) ?? []
        #expect(!afterUDP.contains { ($0["metadata"] as? [String: String])?["network"] == "udp" }, "\(implementation): \(afterUDP)")
        udpClient.stop()

        // DELETE of all flows closes every client.
        #expect(try Self.curlStatus("DELETE", "\(base)/connections").0 == 204)
        for fd in [flows[0], flows[2]] { #expect(Self.closedByPeer(fd, within: 3), "\(implementation)") }
        usleep(200_000)
        let none = Self.json(try Self.curlStatus("GET", "\(base)/connections").1)
        #expect((none?["connections"] as? [Any])?.isEmpty == true, "\(implementation): \(String(describing: none))")

        // Bad input: a level or an interval that is not one is Go's "Body invalid".
        let badLevel = try Self.curlStatus("GET", "\(base)/logs?level=loud")
        #expect(badLevel.0 == 400 && Self.json(badLevel.1)?["message"] as? String == "Body invalid", "\(badLevel)")
        // A WebSocket handshake without its key is refused; garbage frames from a client do not hurt the server.
        let keyless = Self.openStream(api: api, "/traffic?token=s3", headers: Array(wsHeaders.dropLast()))
        defer { close(keyless) }
        let refused = String(decoding: Self.readFor(keyless, seconds: 0.5), as: UTF8.self)
        #expect(refused.hasPrefix("HTTP/1.1 400"), "\(implementation): \(refused)")
        let garbage = Self.openStream(api: api, "/memory?token=s3", headers: wsHeaders)
        defer { close(garbage) }
        #expect(String(decoding: Self.readFor(garbage, seconds: 0.2), as: UTF8.self).hasPrefix("HTTP/1.1 101"))
        writeAll(garbage, [0x81, 0xFF] + [UInt8](repeating: 0xFF, count: 8) + Array("junk".utf8))
        usleep(200_000)
        #expect(try Self.curlStatus("GET", "\(base)/version").0 == 200, "\(implementation)\n\(box.log)")

        // A reload (SIGHUP) closes the old box's HTTP streams (Go's `http.Server.Close`); the new box serves.
        let beforeReload = Self.openStream(api: api, "/traffic", headers: [auth])
        defer { close(beforeReload) }
        usleep(300_000)
        kill(box.process.pid, SIGHUP)
        #expect(Self.closedByPeer(beforeReload, within: 5), "\(implementation): stream survived the reload")
        var reloaded = false
        for _ in 0..<50 where !reloaded {
            usleep(100_000)
            reloaded = (try? Self.curlStatus("GET", "\(base)/version").0) == 200
        }
        #expect(reloaded, "\(implementation)\n\(box.log)")
    }
}
