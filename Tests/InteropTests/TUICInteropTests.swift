// tuic against Go sing-box 1.12.12 both ways (quic-go on Go's side), and ours to ours: through a
// SOCKS5 port, a 2 MiB byte-exact download and a DNS query (native UDP), four downloads at once
// sharing the client's QUIC connections (with Go), a 3000-byte UDP datagram echoed back byte-exact in each relay mode (native:
// fragmented into several DATAGRAM frames both ways; quic: unidirectional streams; udp_over_stream:
// UoT in a Connect stream), and a wrong password refused with Go's wording.
import Foundation
import Testing

/// A SOCKS5 UDP client with its own UDP echo server: sends `count` datagrams of `size` random bytes
/// to the echo server through the proxy and checks each comes back intact. argv: proxy port, size, count.
/// Prints `ok` or why not.
private let udpEchoScript = #"""
import os, socket, struct, sys, threading
proxy_port, size, count = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
echo.bind(("127.0.0.1", 0))
def serve():
    while True:
        data, peer = echo.recvfrom(70000)
        echo.sendto(data, peer)
threading.Thread(target=serve, daemon=True).start()
tcp = socket.create_connection(("127.0.0.1", proxy_port), timeout=5)
def recv_exact(n):
    data = b""
    while len(data) < n:
        chunk = tcp.recv(n - len(data))
        if not chunk: raise SystemExit("proxy closed during handshake")
        data += chunk
    return data
tcp.sendall(b"\x05\x01\x00")
recv_exact(2)
tcp.sendall(b"\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00")
head = recv_exact(4)
if head[1] != 0: raise SystemExit("associate rejected %d" % head[1])
bind_ip = socket.inet_ntoa(recv_exact(4)) if head[3] == 1 else socket.inet_ntop(socket.AF_INET6, recv_exact(16))
bind_port = struct.unpack("!H", recv_exact(2))[0]
if bind_ip in ("0.0.0.0", "::"): bind_ip = "127.0.0.1"
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.settimeout(2)
header = b"\x00\x00\x00\x01\x7f\x00\x00\x01" + struct.pack("!H", echo.getsockname()[1])
sent = set()
for i in range(count):
    payload = os.urandom(size)
    done = False
    for attempt in range(4):
        udp.sendto(header + payload, (bind_ip, bind_port))
        try:
            while True:
                data, _ = udp.recvfrom(70000)
                if data[10:] == payload:
                    done = True
                    break
                # A late echo of an earlier datagram (its first try timed out) is not an error.
                if data[10:] not in sent:
                    raise SystemExit("datagram %d came back different (%d bytes)" % (i, len(data) - 10))
        except socket.timeout:
            continue
        if done: break
    if not done:
        raise SystemExit("datagram %d: no answer" % i)
    sent.add(payload)
print("ok")
"""#

@Suite(.serialized) struct TUICInteropTests {
    static let uuid = "059032a9-7d40-4a96-9bb1-36823d848068"

    static func tuicIn(port: UInt16, certificates: InteropCertificates) -> String {
        "{\"type\":\"tuic\",\"tag\":\"tuic-in\",\"listen\":\"127.0.0.1\",\"listen_port\":\(port),"
            + "\"users\":[{\"name\":\"alice\",\"uuid\":\"\(uuid)\",\"password\":\"correct horse\"}],"
            + "\"tls\":{\"enabled\":true,\"alpn\":[\"h3\"],\"certificate_path\":\"\(certificates.certificatePath)\",\"key_path\":\"\(certificates.keyPath)\"}}"
    }

    static func tuicOut(port: UInt16, certificates: InteropCertificates, tag: String, password: String = "correct horse",
                        extra: String = "") -> String {
        "{\"type\":\"tuic\",\"tag\":\"\(tag)\",\"server\":\"127.0.0.1\",\"server_port\":\(port),\"uuid\":\"\(uuid)\","
            + "\"password\":\"\(password)\"\(extra),\"tls\":{\"enabled\":true,\"server_name\":\"trojan.test\",\"alpn\":[\"h3\"],"
            + "\"certificate_path\":\"\(certificates.caPath)\"}}"
    }

    /// Polls `condition` for up to 3 s (log lines land after the flow ends).
    static func eventually(_ condition: () -> Bool) -> Bool {
        for _ in 0..<30 {
            if condition() { return true }
            usleep(100_000)
        }
        return condition()
    }

    /// A client box with SOCKS ports `native`, `quic`, `uot`, `bad` routed to tuic outbounds to
    /// `serverPort` (the first is the default).
    static func clientConfig(serverPort: UInt16, ports: [UInt16], certificates: InteropCertificates) -> String {
        ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: ports[0], tag: "native"), ConfigJSON.mixed(port: ports[1], tag: "quic"),
                       ConfigJSON.mixed(port: ports[2], tag: "uot"), ConfigJSON.mixed(port: ports[3], tag: "bad")],
            outbounds: [tuicOut(port: serverPort, certificates: certificates, tag: "tuic-native", extra: ",\"udp_relay_mode\":\"native\",\"congestion_control\":\"bbr\""),
                        tuicOut(port: serverPort, certificates: certificates, tag: "tuic-quic", extra: ",\"udp_relay_mode\":\"quic\""),
                        tuicOut(port: serverPort, certificates: certificates, tag: "tuic-uot", extra: ",\"udp_over_stream\":true"),
                        tuicOut(port: serverPort, certificates: certificates, tag: "tuic-bad", password: "wrong")],
            rules: "[{\"inbound\":[\"quic\"],\"outbound\":\"tuic-quic\"},{\"inbound\":[\"uot\"],\"outbound\":\"tuic-uot\"},"
                + "{\"inbound\":[\"bad\"],\"outbound\":\"tuic-bad\"}]")
    }

    /// The whole exercise through a client whose SOCKS ports are `ports` (see `clientConfig`).
    static func exercise(ports: [UInt16], files: FileServer, dns: Dnsmasq, work: TemporaryDirectory, label: String,
                         logs: [any SingBoxOrProcess], concurrent: Bool = true) throws {
        var all: String { logs.map(\.log).joined(separator: "\n----\n") }
        try exerciseTCPAndUDP(via: ports[0], files: files, dns: dns, work: work, label: label, logs: logs)
        // Four downloads at once share the QUIC connection (several concurrent streams). Ours to ours
        // skips it: TUICTests runs concurrent streams between our two ends in process.
        if concurrent {
            let intact = NSLock()
            nonisolated(unsafe) var good = 0
            DispatchQueue.concurrentPerform(iterations: 4) { _ in
                let body = try? curl(["--socks5-hostname", "127.0.0.1:\(ports[0])", files.blobURL])
                intact.withLock { if body == files.blob { good += 1 } }
            }
            #expect(good == 4, "\(label): \(good) of 4 concurrent downloads intact\n\(all)")
        }
        let script = try work.write("udp-echo.py", udpEchoScript)
        for (port, mode) in zip(ports.prefix(3), ["native", "quic", "udp_over_stream"]) {
            let result = try runTool(Peers.python3, [script, String(port), "3000", "3"])
            #expect(String(decoding: result.stdout, as: UTF8.self) == "ok\n", "\(label) \(mode): \(result.stderr)\n\(all)")
            let small = try runTool(Peers.python3, [script, String(port), "100", "2"])
            #expect(String(decoding: small.stdout, as: UTF8.self) == "ok\n", "\(label) \(mode) small: \(small.stderr)\n\(all)")
        }
        #expect(throws: PeerError.self) { try curl(["--socks5-hostname", "127.0.0.1:\(ports[3])", files.blobURL]) }
    }

    /// A tuic server of `server` and a client of `client` (mixed inbounds → tuic outbounds) in front of
    /// a file server, dnsmasq and the UDP echo; runs `exercise` through them, then `check` with both
    /// boxes and the servers' ports.
    static func pair(server: Implementation, client: Implementation, label: String, concurrent: Bool = true,
                     check: (_ server: SingBox, _ client: SingBox, _ files: FileServer, _ dns: Dnsmasq) -> Void) throws {
        let work = try TemporaryDirectory()
        let certificates = try InteropCertificates()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let serverPort = try freePort(udp: true), ready = try freePort()
        let serverBox = try SingBox(server, config: ConfigJSON.box(inbounds: [tuicIn(port: serverPort, certificates: certificates),
                                                                             ConfigJSON.mixed(port: ready, tag: "ready")],
                                                                  outbounds: [ConfigJSON.direct]),
                                    waitPort: ready, in: work, name: "\(server)-server")
        defer { serverBox.stop() }
        let ports = try (0..<4).map { _ in try freePort() }
        let clientBox = try SingBox(client, config: clientConfig(serverPort: serverPort, ports: ports, certificates: certificates),
                                    waitPort: ports[0], in: work, name: "\(client)-client")
        defer { clientBox.stop() }
        try waitForTCP(port: ports[3], process: clientBox.process)
        try exercise(ports: ports, files: files, dns: dns, work: work, label: label, logs: [clientBox, serverBox], concurrent: concurrent)
        check(serverBox, clientBox, files, dns)
    }

    /// Our mixed inbounds → our tuic outbounds → Go's tuic inbound → file server / dnsmasq / echo.
    @Test func ourOutboundToGoInbound() throws {
        try Self.pair(server: .go, client: .ours, label: "ours → Go") { go, box, files, dns in
            #expect(go.log.contains("[alice] inbound connection to 127.0.0.1:\(files.port)"), "\(go.log)")
            #expect(go.log.contains("[alice] inbound packet connection to 127.0.0.1:\(dns.port)"), "\(go.log)")
            #expect(Self.eventually { go.log.contains("connection failed: handle uni stream: authentication: token mismatch") }, "\(go.log)")
            #expect(box.log.contains("outbound/tuic[tuic-native]: outbound connection to 127.0.0.1:\(files.port)"), "\(box.log)")
            #expect(box.log.contains("congestion_control bbr is not implemented: using new_reno"), "\(box.log)")
        }
    }

    /// Go's mixed inbounds → Go's tuic outbounds → our tuic inbound → file server / dnsmasq / echo.
    @Test func goOutboundToOurInbound() throws {
        try Self.pair(server: .ours, client: .go, label: "Go → ours") { box, _, files, dns in
            #expect(box.log.contains("inbound/tuic[tuic-in]: [alice] inbound connection to 127.0.0.1:\(files.port)"), "\(box.log)")
            #expect(box.log.contains("inbound/tuic[tuic-in]: [alice] inbound packet connection to 127.0.0.1:\(dns.port)"), "\(box.log)")
            #expect(Self.eventually { box.log.contains("inbound/tuic[tuic-in]: connection failed: handle uni stream: authentication: token mismatch") },
                    "\(box.log)")
        }
    }

    /// Ours on both ends.
    @Test func oursToOurs() throws {
        try Self.pair(server: .ours, client: .ours, label: "ours → ours", concurrent: false) { server, _, _, _ in
            #expect(Self.eventually { server.log.contains("connection failed: handle uni stream: authentication: token mismatch") }, "\(server.log)")
        }
    }
}
