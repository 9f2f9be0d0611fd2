// VMess against real peers: Go sing-box 1.12.12 (sing-vmess both ways) and v2ray 4.34 (Debian's
// golang-v2ray-core, AEAD header with alterId 0) both ways. Each pairing carries a byte-exact
// download over TCP and a DNS query over UDP to dnsmasq through a mixed inbound. Bad clients
// (garbage, short first reads, a wrong UUID) are refused as Go refuses them, with Go's words.
// Every process is owned by a `Spawned`/fixture stopped in a `defer`.
import Foundation
import Synchronization
import Testing

enum VMessConfig {
    static let uuid = "b831381d-6324-4d53-ad4f-8cda48b30811"

    static func inbound(port: UInt16, uuid: String = uuid, name: String = "alice", alterID: Int = 0, tag: String = "vmess-in") -> String {
        "{\"type\":\"vmess\",\"tag\":\"\(tag)\",\"listen\":\"127.0.0.1\",\"listen_port\":\(port),"
            + "\"users\":[{\"name\":\"\(name)\",\"uuid\":\"\(uuid)\",\"alterId\":\(alterID)}]}"
    }

    static func outbound(port: UInt16, security: String, uuid: String = uuid, extra: String = "", tag: String = "vmess-out") -> String {
        "{\"type\":\"vmess\",\"tag\":\"\(tag)\",\"server\":\"127.0.0.1\",\"server_port\":\(port),"
            + "\"uuid\":\"\(uuid)\",\"security\":\"\(security)\"\(extra)}"
    }

    /// A box serving vmess on `serverPort` (to direct) and relaying its mixed inbound on `mixedPort`
    /// through a vmess outbound to `peerPort`.
    static func both(mixedPort: UInt16, serverPort: UInt16, peerPort: UInt16, security: String, extra: String = "", alterID: Int = 0) -> String {
        ConfigJSON.box(inbounds: [ConfigJSON.mixed(port: mixedPort, tag: "m"), inbound(port: serverPort, alterID: alterID)],
                       outbounds: [ConfigJSON.direct, outbound(port: peerPort, security: security, extra: extra)],
                       rules: "[{\"inbound\":[\"m\"],\"outbound\":\"vmess-out\"}]")
    }
}

/// v2ray 4.34 (`v2ray -config`), as a VMess server to freedom or as a SOCKS5 → VMess client.
final class V2Ray: @unchecked Sendable {
    static let binary = "/usr/bin/v2ray"
    let port: UInt16
    private let process: Spawned

    init(server port: UInt16, uuid: String, alterID: Int = 0, in work: TemporaryDirectory) throws {
        self.port = port
        let config = """
        {"log":{"loglevel":"debug"},
         "inbounds":[{"listen":"127.0.0.1","port":\(port),"protocol":"vmess","settings":{"clients":[{"id":"\(uuid)","alterId":\(alterID)}]}}],
         "outbounds":[{"protocol":"freedom"}]}
        """
        process = try Spawned(Self.binary, ["-config", try work.write("v2ray-server-\(port).json", config)], name: "v2ray-server", directory: work)
        try waitForTCP(port: port, process: process)
    }

    /// `mux`: v2ray's mux.cool multiplexing (TCP and UDP sessions inside one vmess connection).
    init(socks port: UInt16, vmessPort: UInt16, uuid: String, security: String, alterID: Int = 0, mux: Bool = false,
         in work: TemporaryDirectory) throws {
        self.port = port
        let config = """
        {"log":{"loglevel":"debug"},
         "inbounds":[{"listen":"127.0.0.1","port":\(port),"protocol":"socks","settings":{"auth":"noauth","udp":true,"ip":"127.0.0.1"}}],
         "outbounds":[{"protocol":"vmess","settings":{"vnext":[{"address":"127.0.0.1","port":\(vmessPort),
           "users":[{"id":"\(uuid)","alterId":\(alterID),"security":"\(security)"}]}]}\(mux ? #","mux":{"enabled":true,"concurrency":8}"# : "")}]}
        """
        process = try Spawned(Self.binary, ["-config", try work.write("v2ray-client-\(port).json", config)], name: "v2ray-client", directory: work)
        try waitForTCP(port: port, process: process)
    }

    var log: String { process.log }
    func stop() { process.stop() }
}

extension V2Ray: SingBoxOrProcess {}

@Suite(.serialized) struct VMessInteropTests {
    static let securities = ["aes-128-gcm", "chacha20-poly1305", "none", "zero", "aes-128-cfb"]

    /// Ours (mixed → vmess out) → Go (vmess in → direct), and Go (mixed → vmess out) → ours.
    @Test(arguments: securities)
    func againstGoSingBox(security: String) throws {
        try pairWithGo(security: security, extra: "")
    }

    /// `global_padding` and `authenticated_length` (each and both) change the chunk framing: both
    /// ways against Go.
    @Test(arguments: [",\"global_padding\":true", ",\"authenticated_length\":true", ",\"global_padding\":true,\"authenticated_length\":true"])
    func framingOptionsAgainstGoSingBox(extra: String) throws {
        try pairWithGo(security: "aes-128-gcm", extra: extra)
        try pairWithGo(security: "chacha20-poly1305", extra: extra)
    }

    /// A client that sends its request and half-closes (FIN) at once still gets the whole response:
    /// ours → Go, and ours → ours (one box whose vmess outbound dials its own vmess inbound). Go as
    /// the client is left out: Go → Go loses such a response too (its early conn), so it is no oracle.
    @Test(arguments: ["aes-128-gcm", "none"])
    func halfCloseGetsTheWholeResponse(security: String) throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let ourMixed = try freePort(), ourServer = try freePort(), selfMixed = try freePort(), selfServer = try freePort()
        let goMixed = try freePort(), goServer = try freePort()
        let go = try SingBox(.go, config: VMessConfig.both(mixedPort: goMixed, serverPort: goServer, peerPort: ourServer,
                                                           security: security), waitPort: goMixed, in: work)
        defer { go.stop() }
        let ours = try SingBox(.ours, config: VMessConfig.both(mixedPort: ourMixed, serverPort: ourServer, peerPort: goServer,
                                                               security: security), waitPort: ourMixed, in: work)
        defer { ours.stop() }
        let loop = try SingBox(.ours, config: VMessConfig.both(mixedPort: selfMixed, serverPort: selfServer, peerPort: selfServer,
                                                               security: security), waitPort: selfMixed, in: work, name: "ours-self")
        defer { loop.stop() }
        try waitForTCP(port: selfServer, process: loop.process)
        let halfClose = try work.write("half-close.py", halfCloseDownloadScript)
        for (port, label, box) in [(ourMixed, "ours → Go", ours), (selfMixed, "ours → ours", loop)] {
            let download = try runTool(Peers.python3, [halfClose, String(port), String(files.port)])
            let intact = download.stdout == files.blob  // a Bool: #expect would diff 2 MiB on failure
            #expect(intact, "\(label): \(download.stdout.count) bytes: \(download.stderr)\n\(box.log)\n----\n\(go.log)")
        }
        #expect(loop.log.contains("inbound/vmess[vmess-in]: [alice] inbound connection to 127.0.0.1:\(files.port)"), "\(loop.log)")
    }

    /// `packet_encoding: "xudp"`: UDP sessions in mux.cool frames over the mux command, both ways
    /// against Go (our outbound's frames to Go's mux server, Go's XUDP client to our inbound).
    @Test(arguments: ["aes-128-gcm", "none"])
    func xudpAgainstGoSingBox(security: String) throws {
        try pairWithGo(security: security, extra: ",\"packet_encoding\":\"xudp\"")
    }

    /// `packet_encoding: "packetaddr"`: UDP to any IP over one stream, both ways against Go.
    @Test func packetAddressAgainstGoSingBox() throws {
        try pairWithGo(security: "aes-128-gcm", extra: ",\"packet_encoding\":\"packetaddr\"")
    }

    /// `alter_id` > 0: the legacy header (HMAC-MD5 auth, AES-CFB header and response) with the same
    /// bodies, both ways against Go; the inbound's users have alter IDs too.
    @Test(arguments: ["aes-128-gcm", "none", "aes-128-cfb"])
    func legacyHeaderAgainstGoSingBox(security: String) throws {
        try pairWithGo(security: security, extra: ",\"alter_id\":4", alterID: 4)
    }

    private func pairWithGo(security: String, extra: String, alterID: Int = 0) throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let ourMixed = try freePort(), ourServer = try freePort(), goMixed = try freePort(), goServer = try freePort()
        let go = try SingBox(.go, config: VMessConfig.both(mixedPort: goMixed, serverPort: goServer, peerPort: ourServer,
                                                           security: security, extra: extra, alterID: alterID), waitPort: goMixed, in: work)
        defer { go.stop() }
        let ours = try SingBox(.ours, config: VMessConfig.both(mixedPort: ourMixed, serverPort: ourServer, peerPort: goServer,
                                                               security: security, extra: extra, alterID: alterID), waitPort: ourMixed, in: work)
        defer { ours.stop() }
        try exerciseTCPAndUDP(via: ourMixed, files: files, dns: dns, work: work, label: "ours → Go \(security)\(extra)", logs: [ours, go])
        #expect(go.log.contains("inbound/vmess[vmess-in]: [alice] inbound connection to 127.0.0.1:\(files.port)"), "\(go.log)")
        let packetLine = extra.contains("packetaddr") ? "[alice] inbound packet addr connection" : "[alice] inbound packet connection to 127.0.0.1:\(dns.port)"
        #expect(go.log.contains(packetLine), "\(go.log)")
        try exerciseTCPAndUDP(via: goMixed, files: files, dns: dns, work: work, label: "Go → ours \(security)\(extra)", logs: [ours, go])
        #expect(ours.log.contains("inbound/vmess[vmess-in]: [alice] inbound connection to 127.0.0.1:\(files.port)"), "\(ours.log)")
        #expect(ours.log.contains("inbound/vmess[vmess-in]: \(packetLine)"), "\(ours.log)")
        #expect(ours.log.contains("outbound/vmess[vmess-out]: outbound packet connection to 127.0.0.1:\(dns.port)"), "\(ours.log)")
    }

    /// v2ray as the server for our outbound, and as a client (SOCKS5 in, vmess out) of our inbound;
    /// alterId 4 on both sides selects the legacy header.
    @Test(arguments: [("aes-128-gcm", 0), ("chacha20-poly1305", 0), ("none", 0), ("aes-128-gcm", 4), ("aes-128-cfb", 4)])
    func againstV2Ray(security: String, alterID: Int) throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let ourMixed = try freePort(), ourServer = try freePort()
        let server = try V2Ray(server: try freePort(), uuid: VMessConfig.uuid, alterID: alterID, in: work)
        defer { server.stop() }
        let extra = alterID > 0 ? ",\"alter_id\":\(alterID)" : ""
        let ours = try SingBox(.ours, config: VMessConfig.both(mixedPort: ourMixed, serverPort: ourServer, peerPort: server.port,
                                                               security: security, extra: extra, alterID: alterID), waitPort: ourMixed, in: work)
        defer { ours.stop() }
        try waitForTCP(port: ourServer, process: ours.process)
        let client = try V2Ray(socks: try freePort(), vmessPort: ourServer, uuid: VMessConfig.uuid, security: security, alterID: alterID, in: work)
        defer { client.stop() }
        try exerciseTCPAndUDP(via: ourMixed, files: files, dns: dns, work: work, label: "ours → v2ray \(security)", logs: [ours, server])
        try exerciseTCPAndUDP(via: client.port, files: files, dns: dns, work: work, label: "v2ray → ours \(security)", logs: [ours, client])
        #expect(ours.log.contains("inbound/vmess[vmess-in]: [alice] inbound connection to 127.0.0.1:\(files.port)"), "\(ours.log)")
    }

    /// v2ray with `mux` on: its TCP and UDP sessions ride mux.cool inside one vmess connection to
    /// our inbound and to Go's (side by side). Parallel downloads stay byte-exact through ours, each
    /// routed as its own flow; Go 1.12.12 is no oracle there: v2ray resets its mux connections and
    /// most of six parallel downloads fail.
    @Test(arguments: [Implementation.ours, .go])
    func v2rayMuxClient(implementation: Implementation) throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let serverPort = try freePort()
        let server = try SingBox(implementation, config: ConfigJSON.box(inbounds: [VMessConfig.inbound(port: serverPort)], outbounds: [ConfigJSON.direct]),
                                 waitPort: serverPort, in: work, name: "vmess-\(implementation)")
        defer { server.stop() }
        let client = try V2Ray(socks: try freePort(), vmessPort: serverPort, uuid: VMessConfig.uuid, security: "aes-128-gcm", mux: true, in: work)
        defer { client.stop() }
        try exerciseTCPAndUDP(via: client.port, files: files, dns: dns, work: work, label: "v2ray mux → \(implementation)", logs: [server, client])
        guard implementation == .ours else { return }
        let results = Mutex<[Bool]>([])
        DispatchQueue.concurrentPerform(iterations: 6) { _ in
            let body = try? curl(["--socks5-hostname", "127.0.0.1:\(client.port)", files.blobURL])
            results.withLock { $0.append(body == files.blob) }
        }
        #expect(results.withLock { $0 } == Array(repeating: true, count: 6), "\(implementation)\n\(server.log)\n----\n\(client.log)")
        let flows = server.log.components(separatedBy: "[alice] inbound connection to 127.0.0.1:\(files.port)").count - 1
        #expect(flows >= 7, "\(implementation): \(flows) flows\n\(server.log)")
        // One vmess connection carried them (v2ray keeps the mux connection open).
        let connections = server.log.components(separatedBy: "inbound connection from 127.0.0.1:").count - 1
        #expect(connections < flows, "\(implementation): \(connections) connections for \(flows) flows")
    }

    /// Through v2ray's mux to our inbound, 16 MiB uploaded to a server that waits a second before
    /// reading: the session's reader falls behind, our side stops reading the mux connection until
    /// it catches up, and every byte arrives (the server answers with the SHA-256 it read).
    @Test func v2rayMuxSlowReaderUpload() throws {
        let work = try TemporaryDirectory()
        let serverPort = try freePort(), sinkPort = try freePort()
        let sink = try Spawned(Peers.python3, ["-c", """
            import hashlib, socket, struct, sys, time
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(4)
            while True:  # the readiness probe connects and leaves first
                c, _ = s.accept(); time.sleep(1)
                head = c.recv(8, socket.MSG_WAITALL)
                if len(head) == 8: break
            size = struct.unpack("!Q", head)[0]
            h = hashlib.sha256(); left = size
            while left:
                d = c.recv(min(left, 65536))
                if not d: break
                h.update(d); left -= len(d)
            c.sendall(h.hexdigest().encode()); time.sleep(1)
            """, String(sinkPort)], name: "slow-sink", directory: work)
        defer { sink.stop() }
        try waitForTCP(port: sinkPort, process: sink)
        let server = try SingBox(.ours, config: ConfigJSON.box(inbounds: [VMessConfig.inbound(port: serverPort)], outbounds: [ConfigJSON.direct]),
                                 waitPort: serverPort, in: work)
        defer { server.stop() }
        let client = try V2Ray(socks: try freePort(), vmessPort: serverPort, uuid: VMessConfig.uuid, security: "aes-128-gcm", mux: true, in: work)
        defer { client.stop() }
        let result = try runTool(Peers.python3, ["-c", """
            import hashlib, os, socket, struct, sys
            c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
            c.sendall(b"\\x05\\x01\\x00"); c.recv(2)
            c.sendall(b"\\x05\\x01\\x00\\x01\\x7f\\x00\\x00\\x01" + struct.pack("!H", int(sys.argv[2]))); c.recv(10)
            data = os.urandom(16 << 20)
            c.sendall(struct.pack("!Q", len(data)) + data)
            got = b""
            while len(got) < 64:
                d = c.recv(64 - len(got))
                if not d: break
                got += d
            print("ok" if got.decode() == hashlib.sha256(data).hexdigest() else "mismatch %r" % got)
            """, String(client.port), String(sinkPort)], timeout: 60)
        #expect(String(decoding: result.stdout, as: UTF8.self) == "ok\n", "\(result.stderr)\n\(server.log)\n----\n\(client.log)")
    }

    /// A wrong UUID both ways: the client's download fails and the server logs Go's `bad request`.
    @Test func wrongUUIDFailsCleanly() throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let ourMixed = try freePort(), ourServer = try freePort(), goMixed = try freePort(), goServer = try freePort()
        let wrong = "00000000-0000-4000-8000-000000000001"
        func config(mixed: UInt16, server: UInt16, peer: UInt16) -> String {
            ConfigJSON.box(inbounds: [ConfigJSON.mixed(port: mixed, tag: "m"), VMessConfig.inbound(port: server)],
                           outbounds: [ConfigJSON.direct, VMessConfig.outbound(port: peer, security: "aes-128-gcm", uuid: wrong)],
                           rules: "[{\"inbound\":[\"m\"],\"outbound\":\"vmess-out\"}]")
        }
        let go = try SingBox(.go, config: config(mixed: goMixed, server: goServer, peer: ourServer), waitPort: goMixed, in: work)
        defer { go.stop() }
        let ours = try SingBox(.ours, config: config(mixed: ourMixed, server: ourServer, peer: goServer), waitPort: ourMixed, in: work)
        defer { ours.stop() }
        #expect(throws: PeerError.self) { try curl(["--socks5-hostname", "127.0.0.1:\(ourMixed)", files.blobURL]) }
        #expect(throws: PeerError.self) { try curl(["--socks5-hostname", "127.0.0.1:\(goMixed)", files.blobURL]) }
        let needle = "process connection from 127.0.0.1:"
        #expect(waitForLog(go, needle) && go.log.contains(": bad request"), "\(go.log)")
        #expect(waitForLog(ours, needle) && ours.log.contains(": bad request"), "\(ours.log)")
    }

    /// Garbage and a short first read against our inbound and Go's: both reset the connection without
    /// an answer and log the same cause (`bad request` for 200 random bytes, `bad header` for 10).
    @Test(arguments: [Implementation.ours, .go])
    func badClientsAreRefusedAsGoRefusesThem(implementation: Implementation) throws {
        let work = try TemporaryDirectory()
        let server = try freePort()
        let box = try SingBox(implementation, config: ConfigJSON.box(inbounds: [VMessConfig.inbound(port: server)], outbounds: [ConfigJSON.direct]),
                              waitPort: server, in: work, name: "server-\(implementation)")
        defer { box.stop() }
        var generator = SystemRandomNumberGenerator()
        for (count, cause) in [(200, ": bad request"), (10, ": bad header")] {
            let fd = connectTCP(port: server)
            #expect(fd >= 0)
            defer { close(fd) }
            #expect(writeAll(fd, (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }))
            #expect(readOutcome(fd) == "reset", "\(implementation): \(count) garbage bytes")
            #expect(waitForLog(box, cause), "\(implementation) \(count): \(box.log)")
        }
    }

    /// Our outbound over TLS to Go's vmess inbound with TLS: `auto` becomes `zero` under TLS as in
    /// Go (no body framing on TCP, plain chunks for UDP).
    @Test(arguments: ["auto", "aes-128-gcm"])
    func overTLSToGo(security: String) throws {
        let work = try TemporaryDirectory()
        let certificates = try InteropCertificates()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let goServer = try freePort(), mixed = try freePort()
        let inbound = String(VMessConfig.inbound(port: goServer).dropLast()) + ",\"tls\":\(certificates.inboundTLS)}"
        let go = try SingBox(.go, config: ConfigJSON.box(inbounds: [inbound], outbounds: [ConfigJSON.direct]),
                             waitPort: goServer, in: work, name: "go-vmess-tls")
        defer { go.stop() }
        let outbound = VMessConfig.outbound(port: goServer, security: security, extra: ",\"tls\":\(certificates.outboundTLS())")
        let ours = try SingBox(.ours, config: ConfigJSON.box(inbounds: [ConfigJSON.mixed(port: mixed)], outbounds: [outbound]),
                               waitPort: mixed, in: work)
        defer { ours.stop() }
        try exerciseTCPAndUDP(via: mixed, files: files, dns: dns, work: work, label: "ours → Go over TLS \(security)", logs: [ours, go])
        #expect(go.log.contains("[alice] inbound connection to 127.0.0.1:\(files.port)"), "\(go.log)")
    }

    /// v2ray transports under vmess: our outbound to Go's vmess inbound with the same transport.
    @Test(arguments: [#"{"type":"ws","path":"/v"}"#, #"{"type":"ws","path":"/v","max_early_data":2048,"early_data_header_name":"Sec-WebSocket-Protocol"}"#,
                      #"{"type":"httpupgrade","path":"/u"}"#])
    func transportsToGo(transport: String) throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let goServer = try freePort(), mixed = try freePort()
        let inbound = String(VMessConfig.inbound(port: goServer).dropLast()) + ",\"transport\":\(transport)}"
        let go = try SingBox(.go, config: ConfigJSON.box(inbounds: [inbound], outbounds: [ConfigJSON.direct]), waitPort: goServer, in: work)
        defer { go.stop() }
        let outbound = VMessConfig.outbound(port: goServer, security: "aes-128-gcm", extra: ",\"transport\":\(transport)")
        let ours = try SingBox(.ours, config: ConfigJSON.box(inbounds: [ConfigJSON.mixed(port: mixed)], outbounds: [outbound]),
                               waitPort: mixed, in: work)
        defer { ours.stop() }
        try exerciseTCPAndUDP(via: mixed, files: files, dns: dns, work: work, label: "ours → Go over \(transport)", logs: [ours, go])
        #expect(go.log.contains("[alice] inbound connection to 127.0.0.1:\(files.port)"), "\(go.log)")
    }

    /// v2ray transports on our vmess inbound: Go's vmess outbound with the same transport through it,
    /// and ours; a request for another path gets Go's 404.
    @Test(arguments: [#"{"type":"ws","path":"/v"}"#, #"{"type":"ws","path":"/v","max_early_data":2048,"early_data_header_name":"Sec-WebSocket-Protocol"}"#,
                      #"{"type":"ws","path":"/v","max_early_data":64}"#, #"{"type":"httpupgrade","path":"/u","host":"front.test"}"#])
    func transportsFromGo(transport: String) throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let server = try freePort(), viaGo = try freePort(), viaOurs = try freePort()
        let inbound = String(VMessConfig.inbound(port: server).dropLast()) + ",\"transport\":\(transport)}"
        let box = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [inbound, ConfigJSON.mixed(port: viaOurs, tag: "m")],
            outbounds: [ConfigJSON.direct, VMessConfig.outbound(port: server, security: "chacha20-poly1305", extra: ",\"transport\":\(transport)")],
            rules: "[{\"inbound\":[\"m\"],\"outbound\":\"vmess-out\"}]"), waitPort: server, in: work)
        defer { box.stop() }
        let go = try SingBox(.go, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: viaGo)],
            outbounds: [VMessConfig.outbound(port: server, security: "aes-128-gcm", extra: ",\"transport\":\(transport)")]),
            waitPort: viaGo, in: work)
        defer { go.stop() }
        try exerciseTCPAndUDP(via: viaGo, files: files, dns: dns, work: work, label: "Go → ours over \(transport)", logs: [box, go])
        try waitForTCP(port: viaOurs, process: box.process)
        try exerciseTCPAndUDP(via: viaOurs, files: files, dns: dns, work: work, label: "ours → ours over \(transport)", logs: [box])
        let stray = try runTool(Peers.curl, ["--silent", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(server)/elsewhere"])
        // Go checks a configured host before the path (400), then the path (404).
        let expected = transport.contains("front.test") ? "400" : "404"
        #expect(String(decoding: stray.stdout, as: UTF8.self) == expected, "\(transport)")
    }

    /// Our vmess inbound over TLS (alone and under ws): Go's vmess outbound through it.
    @Test(arguments: ["", #","transport":{"type":"ws","path":"/t"}"#])
    func tlsInboundFromGo(transport: String) throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let certificates = try InteropCertificates()
        let server = try freePort(), viaGo = try freePort()
        let inbound = String(VMessConfig.inbound(port: server).dropLast()) + ",\"tls\":\(certificates.inboundTLS)\(transport)}"
        let box = try SingBox(.ours, config: ConfigJSON.box(inbounds: [inbound], outbounds: [ConfigJSON.direct]), waitPort: server, in: work)
        defer { box.stop() }
        let go = try SingBox(.go, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: viaGo)],
            outbounds: [VMessConfig.outbound(port: server, security: "auto", extra: ",\"tls\":\(certificates.outboundTLS())\(transport)")]),
            waitPort: viaGo, in: work)
        defer { go.stop() }
        try exerciseTCPAndUDP(via: viaGo, files: files, dns: dns, work: work, label: "Go → ours over TLS \(transport)", logs: [box, go])
        #expect(box.log.contains("[alice] inbound connection to 127.0.0.1:\(files.port)"), "\(box.log)")
    }

    /// What this build does not carry fails the start with `not implemented` naming the field.
    @Test func unsupportedFieldsFailTheStart() throws {
        let work = try TemporaryDirectory()
        let outbounds: [(String, String)] = [
            (",\"multiplex\":{\"enabled\":true,\"brutal\":{\"enabled\":true,\"up_mbps\":100,\"down_mbps\":100}}", "not implemented: multiplex brutal"),
            (",\"tls\":{\"enabled\":true,\"server_name\":\"q.test\"},\"transport\":{\"type\":\"quic\"}", "not implemented: transport quic on vmess outbound"),
        ]
        for (extra, expected) in outbounds {
            let config = try work.write("bad-out.json", ConfigJSON.box(
                inbounds: [ConfigJSON.mixed(port: try freePort())],
                outbounds: [VMessConfig.outbound(port: 1, security: "aes-128-gcm", extra: extra)]))
            let run = try runTool(Peers.ours, ["run", "-c", config], timeout: 10)
            #expect(run.status != 0)
            #expect(run.stderr.contains("initialize outbound[0]: \(expected)"), "\(run.stderr)")
        }
        // quic needs TLS (Go's "TLS required" comes first otherwise).
        let certificates = try InteropCertificates()
        for (extra, expected) in [(",\"multiplex\":{\"enabled\":true,\"brutal\":{\"enabled\":true,\"up_mbps\":100,\"down_mbps\":100}}", "not implemented: multiplex brutal"),
                                  (",\"tls\":\(certificates.inboundTLS),\"transport\":{\"type\":\"quic\"}", "not implemented: transport quic on vmess inbound")] {
            let inbound = String(VMessConfig.inbound(port: try freePort()).dropLast()) + extra + "}"
            let config = try work.write("bad-in.json", ConfigJSON.box(inbounds: [inbound], outbounds: [ConfigJSON.direct]))
            let run = try runTool(Peers.ours, ["run", "-c", config], timeout: 10)
            #expect(run.status != 0)
            #expect(run.stderr.contains(expected), "\(run.stderr)")
        }
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
