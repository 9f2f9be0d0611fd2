// Shadowsocks against real peers: Go sing-box 1.12.12 (every AEAD and 2022 method; it uses
// sing-shadowsocks2 as client and sing-shadowsocks as server) and shadowsocks-libev (`ss-server`,
// `ss-local`; legacy AEAD only). Each way: our outbound → their server and their client → our
// inbound, with a byte-exact 2 MiB download over TCP and a DNS query over UDP to dnsmasq.
// Every process is owned by a `Spawned`/fixture stopped in a `defer`.
import Foundation
import Testing

/// The peer the test pairs us with.
enum ShadowsocksPeer: String, Sendable, CustomStringConvertible {
    case go, libev
    var description: String { rawValue }
}

enum ShadowsocksConfig {
    static func inbound(port: UInt16, method: String, password: String, tag: String = "ss-in") -> String {
        "{\"type\":\"shadowsocks\",\"tag\":\"\(tag)\",\"listen\":\"127.0.0.1\",\"listen_port\":\(port),"
            + "\"method\":\"\(method)\",\"password\":\"\(password)\"}"
    }

    static func outbound(port: UInt16, method: String, password: String, tag: String = "ss-out") -> String {
        "{\"type\":\"shadowsocks\",\"tag\":\"\(tag)\",\"server\":\"127.0.0.1\",\"server_port\":\(port),"
            + "\"method\":\"\(method)\",\"password\":\"\(password)\"}"
    }

    /// A box that serves shadowsocks on `serverPort` (to direct) and relays its mixed inbound on
    /// `mixedPort` through a shadowsocks outbound to `peerPort`.
    static func both(mixedPort: UInt16, serverPort: UInt16, peerPort: UInt16, method: String, password: String) -> String {
        ConfigJSON.box(inbounds: [ConfigJSON.mixed(port: mixedPort, tag: "m"), inbound(port: serverPort, method: method, password: password)],
                       outbounds: [ConfigJSON.direct, outbound(port: peerPort, method: method, password: password)],
                       rules: "[{\"inbound\":[\"m\"],\"outbound\":\"ss-out\"}]")
    }
}

@Suite(.serialized) struct ShadowsocksInteropTests {
    static let passwords: [String: String] = [
        "2022-blake3-aes-128-gcm": "AAECAwQFBgcICQoLDA0ODw==",
        "2022-blake3-aes-256-gcm": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        "2022-blake3-chacha20-poly1305": "ZWxGc2Vjb25kS2V5Rm9yQ2hhQ2hhMjAtUG9seTEzMDU=",
    ]

    static let goCases: [String] = ["aes-128-gcm", "chacha20-ietf-poly1305", "xchacha20-ietf-poly1305", "none",
                                    "2022-blake3-aes-128-gcm", "2022-blake3-aes-256-gcm", "2022-blake3-chacha20-poly1305"]
    static let libevCases: [String] = ["aes-256-gcm", "aes-192-gcm", "chacha20-ietf-poly1305", "xchacha20-ietf-poly1305"]

    /// Both directions against Go sing-box: ours (mixed → shadowsocks out) → Go (shadowsocks in → direct),
    /// and Go (mixed → shadowsocks out) → ours (shadowsocks in → direct).
    @Test(arguments: goCases)
    func againstGoSingBox(method: String) throws {
        let password = Self.passwords[method] ?? "interop-pw"
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let ourMixed = try freePort(), ourServer = try freeDualPort(), goMixed = try freePort(), goServer = try freeDualPort()
        let go = try SingBox(.go, config: ShadowsocksConfig.both(mixedPort: goMixed, serverPort: goServer, peerPort: ourServer,
                                                                 method: method, password: password),
                             waitPort: goMixed, in: work)
        defer { go.stop() }
        let ours = try SingBox(.ours, config: ShadowsocksConfig.both(mixedPort: ourMixed, serverPort: ourServer, peerPort: goServer,
                                                                     method: method, password: password),
                               waitPort: ourMixed, in: work)
        defer { ours.stop() }
        try exerciseTCPAndUDP(via: ourMixed, files: files, dns: dns, work: work, label: "ours → Go \(method)", logs: [ours, go])
        #expect(go.log.contains("inbound/shadowsocks[ss-in]: inbound connection to 127.0.0.1:\(files.port)"), "\(go.log)")
        try exerciseTCPAndUDP(via: goMixed, files: files, dns: dns, work: work, label: "Go → ours \(method)", logs: [ours, go])
        #expect(ours.log.contains("inbound/shadowsocks[ss-in]: inbound connection to 127.0.0.1:\(files.port)"), "\(ours.log)")
        #expect(ours.log.contains("inbound/shadowsocks[ss-in]: inbound packet connection to 127.0.0.1:\(dns.port)"), "\(ours.log)")
        #expect(ours.log.contains("outbound/shadowsocks[ss-out]: outbound packet connection to 127.0.0.1:\(dns.port)"), "\(ours.log)")
    }

    /// Both directions against shadowsocks-libev: our outbound → `ss-server -u`, and `ss-local -u`
    /// (its SOCKS5 port, UDP ASSOCIATE included) → our inbound.
    @Test(arguments: libevCases)
    func againstShadowsocksLibev(method: String) throws {
        let password = "libev-interop"
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let ourMixed = try freePort(), ourServer = try freeDualPort(), libevServer = try freeDualPort(), libevLocal = try freeDualPort()
        let server = try Spawned(ShadowsocksPeerPaths.ssServer, ["-s", "127.0.0.1", "-p", String(libevServer), "-k", password, "-m", method, "-u", "-v"],
                                 name: "ss-server", directory: work)
        defer { server.stop() }
        try waitForTCP(port: libevServer, process: server)
        let ours = try SingBox(.ours, config: ShadowsocksConfig.both(mixedPort: ourMixed, serverPort: ourServer, peerPort: libevServer,
                                                                     method: method, password: password),
                               waitPort: ourMixed, in: work)
        defer { ours.stop() }
        try waitForTCP(port: ourServer, process: ours.process)
        let local = try Spawned(ShadowsocksPeerPaths.ssLocal, ["-s", "127.0.0.1", "-p", String(ourServer), "-l", String(libevLocal),
                                                               "-b", "127.0.0.1", "-k", password, "-m", method, "-u", "-v"],
                                name: "ss-local", directory: work)
        defer { local.stop() }
        try waitForTCP(port: libevLocal, process: local)
        try exerciseTCPAndUDP(via: ourMixed, files: files, dns: dns, work: work, label: "ours → ss-server \(method)", logs: [ours, server])
        try exerciseTCPAndUDP(via: libevLocal, files: files, dns: dns, work: work, label: "ss-local → ours \(method)", logs: [ours, local])
        #expect(ours.log.contains("inbound/shadowsocks[ss-in]: inbound connection to 127.0.0.1:\(files.port)"), "\(ours.log)")
    }

    /// A server that speaks first (a banner): the client sends nothing, so the request header goes out
    /// alone after the early-payload wait (Go's 300 ms `ReadPayloadTimeout`) and the banner comes back.
    /// Ours → Go and Go → ours.
    @Test(arguments: ["2022-blake3-aes-128-gcm", "aes-256-gcm"])
    func serverFirstProtocolsWork(method: String) throws {
        let password = Self.passwords[method] ?? "banner-pw"
        let work = try TemporaryDirectory()
        let banner = try freePort()
        let server = try Spawned("/usr/bin/socat", ["TCP-LISTEN:\(banner),bind=127.0.0.1,reuseaddr,fork", "SYSTEM:echo hello-first; sleep 2"],
                                 name: "banner", directory: work)
        defer { server.stop() }
        try waitForTCP(port: banner, process: server)
        let ourMixed = try freePort(), ourServer = try freeDualPort(), goMixed = try freePort(), goServer = try freeDualPort()
        let go = try SingBox(.go, config: ShadowsocksConfig.both(mixedPort: goMixed, serverPort: goServer, peerPort: ourServer,
                                                                 method: method, password: password), waitPort: goMixed, in: work)
        defer { go.stop() }
        let ours = try SingBox(.ours, config: ShadowsocksConfig.both(mixedPort: ourMixed, serverPort: ourServer, peerPort: goServer,
                                                                     method: method, password: password), waitPort: ourMixed, in: work)
        defer { ours.stop() }
        let script = try work.write("first.py", #"""
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"\x05\x01\x00")
assert s.recv(2) == b"\x05\x00"
s.sendall(b"\x05\x01\x00\x01\x7f\x00\x00\x01" + int(sys.argv[2]).to_bytes(2, "big"))
reply = b""
while len(reply) < 10: reply += s.recv(10 - len(reply))
data = b""
while not data.endswith(b"\n"):
    chunk = s.recv(100)
    if not chunk: break
    data += chunk
print(data.decode().strip())
"""#)
        for (port, label) in [(ourMixed, "ours → Go"), (goMixed, "Go → ours")] {
            let result = try runTool(Peers.python3, [script, String(port), String(banner)], timeout: 10)
            #expect(String(decoding: result.stdout, as: UTF8.self) == "hello-first\n", "\(label) \(method): \(result.stderr)\n\(ours.log)")
        }
    }

    /// `udp_over_tcp` (sing's UoT, versions 2 and 1) both ways against Go: UDP flows ride a shadowsocks
    /// TCP stream to the magic destination, and the inbound turns that stream back into a UDP flow.
    @Test(arguments: [2, 1])
    func udpOverTCPAgainstGoSingBox(version: Int) throws {
        let method = "2022-blake3-aes-256-gcm", password = Self.passwords[method]!
        let work = try TemporaryDirectory()
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let ourMixed = try freePort(), ourServer = try freeDualPort(), goMixed = try freePort(), goServer = try freeDualPort()
        func config(mixed: UInt16, server: UInt16, peer: UInt16) -> String {
            let outbound = String(ShadowsocksConfig.outbound(port: peer, method: method, password: password).dropLast())
                + ",\"udp_over_tcp\":{\"enabled\":true,\"version\":\(version)}}"
            // Only TCP is served: UDP must not take the direct path by accident.
            let inbound = String(ShadowsocksConfig.inbound(port: server, method: method, password: password).dropLast()) + ",\"network\":\"tcp\"}"
            return ConfigJSON.box(inbounds: [ConfigJSON.mixed(port: mixed, tag: "m"), inbound],
                                  outbounds: [ConfigJSON.direct, outbound], rules: "[{\"inbound\":[\"m\"],\"outbound\":\"ss-out\"}]")
        }
        let go = try SingBox(.go, config: config(mixed: goMixed, server: goServer, peer: ourServer), waitPort: goMixed, in: work)
        defer { go.stop() }
        let ours = try SingBox(.ours, config: config(mixed: ourMixed, server: ourServer, peer: goServer), waitPort: ourMixed, in: work)
        defer { ours.stop() }
        let script = try work.write("udp.py", socksUDPClientScript)
        for (port, label) in [(ourMixed, "ours → Go"), (goMixed, "Go → ours")] {
            let result = try runTool(Peers.python3, [script, String(port), String(dns.port)])
            #expect(String(decoding: result.stdout, as: UTF8.self) == "127.0.0.1:\(dns.port) 10.1.2.3\n",
                    "UoT v\(version) \(label): \(result.stderr)\n\(ours.log)\n----\n\(go.log)")
        }
        #expect(ours.log.contains("outbound/shadowsocks[ss-out]: outbound UoT packet connection to 127.0.0.1:\(dns.port)"), "\(ours.log)")
        let expected = version == 2 ? "inbound UoT connection to 127.0.0.1:\(dns.port)" : "inbound legacy UoT connection"
        #expect(ours.log.contains("inbound/shadowsocks[ss-in]: \(expected)"), "\(ours.log)")
        #expect(go.log.contains(expected), "\(go.log)")
    }

    /// Multi-user inbounds (`users`), both ways against Go: SIP022 clients send `iPSK:uPSK` and are
    /// told apart by their identity headers (TCP and UDP); legacy clients by which user's key opens
    /// their first chunk. The inbound logs the user as Go does (`[alice] inbound connection to …`).
    @Test(arguments: ["2022-blake3-aes-128-gcm", "2022-blake3-aes-256-gcm", "aes-128-gcm"])
    func multiUserAgainstGoSingBox(method: String) throws {
        let is2022 = method.hasPrefix("2022")
        let keyLength = method.contains("128") ? 16 : 32
        func psk(_ seed: UInt8) -> String { Data((0..<keyLength).map { UInt8($0) &+ seed }).base64EncodedString() }
        let serverPassword = is2022 ? psk(100) : ""
        let alice = is2022 ? psk(1) : "alice-pw", bob = is2022 ? psk(2) : "bob-pw"
        let clientPassword = is2022 ? "\(serverPassword):\(bob)" : "bob-pw"
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let ourMixed = try freePort(), ourServer = try freeDualPort(), goMixed = try freePort(), goServer = try freeDualPort()
        func config(mixed: UInt16, server: UInt16, peer: UInt16) -> String {
            let users = "[{\"name\":\"alice\",\"password\":\"\(alice)\"},{\"name\":\"bob\",\"password\":\"\(bob)\"}]"
            let inbound = "{\"type\":\"shadowsocks\",\"tag\":\"ss-in\",\"listen\":\"127.0.0.1\",\"listen_port\":\(server),"
                + "\"method\":\"\(method)\"," + (is2022 ? "\"password\":\"\(serverPassword)\"," : "") + "\"users\":\(users)}"
            return ConfigJSON.box(inbounds: [ConfigJSON.mixed(port: mixed, tag: "m"), inbound],
                                  outbounds: [ConfigJSON.direct, ShadowsocksConfig.outbound(port: peer, method: method, password: clientPassword)],
                                  rules: "[{\"inbound\":[\"m\"],\"outbound\":\"ss-out\"}]")
        }
        let go = try SingBox(.go, config: config(mixed: goMixed, server: goServer, peer: ourServer), waitPort: goMixed, in: work)
        defer { go.stop() }
        let ours = try SingBox(.ours, config: config(mixed: ourMixed, server: ourServer, peer: goServer), waitPort: ourMixed, in: work)
        defer { ours.stop() }
        try exerciseTCPAndUDP(via: ourMixed, files: files, dns: dns, work: work, label: "ours → Go multi-user \(method)", logs: [ours, go])
        #expect(go.log.contains("[bob] inbound connection to 127.0.0.1:\(files.port)"), "\(go.log)")
        try exerciseTCPAndUDP(via: goMixed, files: files, dns: dns, work: work, label: "Go → ours multi-user \(method)", logs: [ours, go])
        #expect(ours.log.contains("inbound/shadowsocks[ss-in]: [bob] inbound connection to 127.0.0.1:\(files.port)"), "\(ours.log)")
        #expect(ours.log.contains("[bob] inbound packet connection to 127.0.0.1:\(dns.port)"), "\(ours.log)")
    }

    /// What an inbound does with bad clients: garbage, a wrong key, a replayed SIP022 request. Each
    /// is reset without an answer (Go closes with SO_LINGER 0) and logged once; a good client still
    /// works. Go's inbound is the oracle: both must behave and log alike.
    @Test(arguments: [Implementation.ours, .go])
    func badClientsAreResetWithoutAnAnswer(implementation: Implementation) throws {
        let method = "2022-blake3-aes-128-gcm", password = Self.passwords[method]!
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let server = try freeDualPort(), goMixed = try freePort(), wrongMixed = try freePort()
        let ours = try SingBox(implementation, config: ConfigJSON.box(
            inbounds: [ShadowsocksConfig.inbound(port: server, method: method, password: password)], outbounds: [ConfigJSON.direct]),
            waitPort: server, in: work, name: "server-\(implementation)")
        defer { ours.stop() }
        // Go as a client with the right key and with another key.
        let go = try SingBox(.go, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: goMixed, tag: "good"), ConfigJSON.mixed(port: wrongMixed, tag: "wrong")],
            outbounds: [ShadowsocksConfig.outbound(port: server, method: method, password: password, tag: "right"),
                        ShadowsocksConfig.outbound(port: server, method: method, password: "AQECAwQFBgcICQoLDA0ODw==", tag: "other")],
            rules: "[{\"inbound\":[\"wrong\"],\"outbound\":\"other\"}]"),
            waitPort: goMixed, in: work)
        defer { go.stop() }

        // Garbage: 200 random bytes, then silence. The server closes without sending anything.
        let fd = connectTCP(port: server)
        #expect(fd >= 0)
        defer { close(fd) }
        var generator = SystemRandomNumberGenerator()
        #expect(writeAll(fd, (0..<200).map { _ in UInt8.random(in: 0...255, using: &generator) }))
        #expect(readOutcome(fd) == "reset", "\(implementation) garbage")

        #expect(throws: PeerError.self) { try curl(["--socks5-hostname", "127.0.0.1:\(wrongMixed)", files.blobURL]) }
        #expect(try curl(["--socks5-hostname", "127.0.0.1:\(goMixed)", files.blobURL]) == files.blob)

        // A replay: record what a Go client sends, then send those bytes again ourselves.
        let recorder = try TCPRecorder(upstream: server)
        defer { recorder.stop() }
        let replayMixed = try freePort()
        let goRecorded = try SingBox(.go, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: replayMixed)],
            outbounds: [ShadowsocksConfig.outbound(port: recorder.port, method: method, password: password)]),
            waitPort: replayMixed, in: work, name: "go-recorded")
        defer { goRecorded.stop() }
        #expect(try curl(["--socks5-hostname", "127.0.0.1:\(replayMixed)", files.blobURL]) == files.blob)
        let captured = recorder.firstUpload()
        #expect(captured.count > 32)
        let replay = connectTCP(port: server)
        #expect(replay >= 0)
        defer { close(replay) }
        #expect(writeAll(replay, captured))
        #expect(readOutcome(replay) == "reset", "\(implementation) replay")

        // The server logs each refusal as it closes; the line may land just after our read saw the reset.
        var log = ours.log
        for _ in 0..<40 where !(log.contains(": salt not unique") && log.contains("cipher: message authentication failed")) {
            usleep(50_000)
            log = ours.log
        }
        #expect(log.contains(": salt not unique"), "\(log)")
        #expect(log.contains("process connection from 127.0.0.1:") && log.contains("shadowsocks: serve TCP from 127.0.0.1:"), "\(log)")
        #expect(log.contains("cipher: message authentication failed"), "\(log)")
    }

    /// How the server ended a connection we wrote to: "reset", "eof", or "data" if it answered.
    private func readOutcome(_ fd: Int32) -> String {
        var tv = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var byte: UInt8 = 0
        let n = read(fd, &byte, 1)
        if n > 0 { return "data" }
        if n == 0 { return "eof" }
        return errno == ECONNRESET ? "reset" : "error \(errno)"
    }

}

/// Anything with a log to show when a check fails.

enum ShadowsocksPeerPaths {
    static let ssServer = "/usr/bin/ss-server"
    static let ssLocal = "/usr/bin/ss-local"
}

/// A TCP forwarder on 127.0.0.1 that relays to `upstream` and keeps the first connection's client bytes.
final class TCPRecorder: @unchecked Sendable {
    let port: UInt16
    private let process: Spawned
    private let capture: String

    init(upstream: UInt16) throws {
        let work = try TemporaryDirectory()
        directory = work
        port = try freePort()
        capture = work.file("first-upload.bin")
        let script = try work.write("recorder.py", Self.script)
        process = try Spawned(Peers.python3, [script, String(port), String(upstream), capture], name: "recorder", directory: work)
        try waitForTCP(port: port, process: process)
    }

    private let directory: TemporaryDirectory

    /// What the first client sent before it closed (empty until then).
    func firstUpload() -> [UInt8] {
        for _ in 0..<100 {
            if let data = FileManager.default.contents(atPath: capture + ".done") { _ = data; break }
            usleep(20_000)
        }
        return [UInt8](FileManager.default.contents(atPath: capture) ?? Data())
    }

    func stop() { process.stop() }

    static let script = #"""
import socket, sys, threading
listen_port, upstream, capture = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", listen_port))
server.listen(16)
first = [True]
def pump(src, dst, record):
    data = b""
    try:
        while True:
            chunk = src.recv(65536)
            if not chunk: break
            if record is not None: data += chunk
            dst.sendall(chunk)
    except OSError:
        pass
    try: dst.shutdown(socket.SHUT_WR)
    except OSError: pass
    if record is not None:
        with open(record, "wb") as f: f.write(data)
        open(record + ".done", "wb").close()
def serve(client):
    upstream_sock = socket.create_connection(("127.0.0.1", upstream))
    record = capture if first[0] else None
    first[0] = False
    threading.Thread(target=pump, args=(upstream_sock, client, None), daemon=True).start()
    pump(client, upstream_sock, record)
while True:
    # The readiness probe connects and closes at once: it is not a client.
    conn, _ = server.accept()
    conn.settimeout(None)
    peek = b""
    try:
        conn.settimeout(2)
        peek = conn.recv(65536, socket.MSG_PEEK)
        conn.settimeout(None)
    except OSError:
        pass
    if not peek:
        conn.close()
        continue
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""#
}
