import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

// Our `sing-box` with a `wireguard` endpoint in one namespace, a real peer in another (wireguard-go, or
// Go sing-box 1.12.12's endpoint): traffic both ways through the tunnel, both sides initiating the handshake.
// Our box: a mixed inbound on 127.0.0.1:1080 whose flows go to the endpoint (`final`), and a rule sending flows
// that arrive FROM the endpoint to `direct` (Go rewrites a flow to the endpoint's own address to loopback, where
// an HTTP server of ours listens on port 9090). The peer namespace serves HTTP on its tunnel address, port 8080.

/// Our box's config: mixed in → endpoint, endpoint in → direct.
private func ourConfig(_ topology: EndpointTopology, privateKey: String, peerPublicKey: String, presharedKey: String?,
                       listenPort: UInt16?, peerEndpoint: Bool, keepalive: Int?, udpForward: Bool = false,
                       outerIPv6: Bool = false, system: String? = nil) -> String {
    var peer = """
    "public_key": "\(peerPublicKey)", "allowed_ips": ["\(topology.peerTunnel4)/32", "\(topology.peerTunnel6)/128"]
    """
    if peerEndpoint { peer += ", \"address\": \"\(outerIPv6 ? topology.peerOuter6 : topology.peerOuter)\", \"port\": 51820" }
    if let presharedKey { peer += ", \"pre_shared_key\": \"\(presharedKey)\"" }
    if let keepalive { peer += ", \"persistent_keepalive_interval\": \(keepalive)" }
    let listen = (listenPort.map { "\"listen_port\": \($0)," } ?? "") + (system.map { "\"system\": true, \"name\": \"\($0)\"," } ?? "")
    // UDP to 127.0.0.1:5300 is forwarded through the endpoint to the peer's echo server on port 7000.
    // TCP and UDP to 127.0.0.1:5202 are forwarded to the peer's iperf3 on port 5201.
    let udpInbound = !udpForward ? "" : """
    , {"type": "direct", "tag": "udp-in", "network": "udp", "listen": "127.0.0.1", "listen_port": 5300,
       "override_address": "\(topology.peerTunnel4)", "override_port": 7000},
      {"type": "direct", "tag": "iperf-in", "listen": "127.0.0.1", "listen_port": 5202,
       "override_address": "\(topology.peerTunnel4)", "override_port": 5201}
    """
    return """
    {
      "log": {"level": "debug"},
      "inbounds": [{"type": "mixed", "tag": "mixed-in", "listen": "127.0.0.1", "listen_port": 1080}\(udpInbound)],
      "endpoints": [{"type": "wireguard", "tag": "wg-ep", \(listen)
                     "address": ["\(topology.ourTunnel4)/32", "\(topology.ourTunnel6)/128"],
                     "private_key": "\(privateKey)", "mtu": 1408, "peers": [{\(peer)}]}],
      "outbounds": [{"type": "direct", "tag": "direct"}],
      "route": {"rules": [{"inbound": ["wg-ep"], "outbound": "direct"}], "final": "wg-ep"}
    }
    """
}

private let helloBody = "hello through wireguard\n"

/// Common setup: namespaces, keys, the HTTP servers (peer 8080 on its tunnel side, ours 9090 on loopback).
private func prepare(_ topology: EndpointTopology) throws {
    try topology.setUp()
    _ = try topology.write("hello.txt", helloBody)
    try topology.startHTTPServer(in: topology.peer, port: 8080)
    try topology.startHTTPServer(in: topology.ours, port: 9090)
}

private func waitForOurBox(_ topology: EndpointTopology) throws {
    do { try topology.waitForTCP(in: topology.ours, port: 1080, timeout: 150) } catch {
        throw TopologyError("our sing-box did not start: \(topology.log("ours.log"))")
    }
}

/// Retries `body` for up to `seconds` (the first packets wait for a handshake; curl may time out once).
private func eventually<T>(_ seconds: Double = 10, _ body: () throws -> T) throws -> T {
    let deadline = Date().addingTimeInterval(seconds)
    while true {
        do { return try body() } catch {
            if Date() > deadline { throw error }
            usleep(200_000)
        }
    }
}

/// Go sing-box's config: mixed on 1081 → its endpoint (`final`), flows from the endpoint → direct; a `direct`
/// UDP inbound on 127.0.0.1:5301 forwarded to our echo (our tunnel address, port 7001). With `system` (an
/// interface name) the endpoint is a kernel TUN of that name.
/// curl in `namespace`, retried for up to 10 s, must fetch the peer's (or our) hello.txt.
private func expectHello(_ topology: EndpointTopology, in namespace: String, _ arguments: [String],
                         _ comment: @autoclosure () -> String = "") throws {
    let body = try eventually { try topology.curl(in: namespace, arguments) }
    #expect(body == helloBody, "\(comment())")
}

private func goConfig(_ topology: EndpointTopology, privateKey: String, ourPublicKey: String, presharedKey: String?,
                      system: String? = nil) -> String {
    let psk = presharedKey.map { "\"pre_shared_key\": \"\($0)\"," } ?? ""
    let systemFields = system.map { "\"system\": true, \"name\": \"\($0)\"," } ?? ""
    return """
    {
      "log": {"level": "debug"},
      "inbounds": [{"type": "mixed", "tag": "mixed-in", "listen": "127.0.0.1", "listen_port": 1081},
                   {"type": "direct", "tag": "udp-in", "network": "udp", "listen": "127.0.0.1", "listen_port": 5301,
                    "override_address": "\(topology.ourTunnel4)", "override_port": 7001}],
      "endpoints": [{"type": "wireguard", "tag": "wg-ep", \(systemFields) "listen_port": 51820, "mtu": 1408,
                     "address": ["\(topology.peerTunnel4)/32", "\(topology.peerTunnel6)/128"],
                     "private_key": "\(privateKey)",
                     "peers": [{"address": "\(topology.ourOuter)", "port": 51821, "public_key": "\(ourPublicKey)", \(psk)
                                "allowed_ips": ["\(topology.ourTunnel4)/32", "\(topology.ourTunnel6)/128"]}]}],
      "outbounds": [{"type": "direct", "tag": "direct"}],
      "route": {"rules": [{"inbound": ["wg-ep"], "outbound": "direct"}], "final": "wg-ep"}
    }
    """
}

/// One UDP datagram from `namespace` to `target` comes back unchanged (retried while the handshake settles).
private func expectUDPEcho(_ topology: EndpointTopology, in namespace: String, to target: String, _ text: String) throws {
    let reply = try eventually { () throws -> String in
        let reply = try topology.udpExchange(in: namespace, to: target, text)
        guard reply == text else { throw TopologyError("udp \(target) reply: \(reply)") }
        return reply
    }
    #expect(reply == text)
}

/// iperf3 from our namespace to 127.0.0.1:5202 (our `iperf-in`, forwarded through the endpoint to the peer's
/// iperf3), 2 s per run: every TCP run moves more than 5 MB, every UDP run (20 Mbit/s) loses under a quarter.
private func expectIperf3(_ topology: EndpointTopology, _ runs: [[String]]) throws {
    for arguments in runs {
        // One retry when iperf3 itself reports no result (its control connection through the peer's
        // stack now and then fails to start a test: "end" comes back without sums).
        var end: [String: Any] = [:]
        var output = ""
        for attempt in 0..<2 {
            let result = try topology.run(in: topology.ours, ["iperf3", "-c", "127.0.0.1", "-p", "5202", "-t", "2", "-J"] + arguments)
            output = result.output
            let json = try JSONSerialization.jsonObject(with: result.standardOutput) as? [String: Any]
            end = json?["end"] as? [String: Any] ?? [:]
            if end[arguments.contains("-u") ? "sum" : "sum_received"] != nil { break }
            if attempt == 0 { print("iperf3 \(arguments): no result, once more: \(output.suffix(200))"); sleep(1) }
        }
        #expect(!end.isEmpty, "iperf3 \(arguments): \(output.suffix(300))")
        if arguments.contains("-u") {
            let sum = try #require(end["sum"] as? [String: Any])
            let bytes = sum["bytes"] as? Int ?? 0, lost = sum["lost_percent"] as? Double ?? 100
            #expect(bytes > 1_000_000 && lost < 25, "iperf3 \(arguments): \(bytes) bytes, \(lost) % lost")
        } else {
            let received = try #require(end["sum_received"] as? [String: Any])
            #expect((received["bytes"] as? Int ?? 0) > 5_000_000, "iperf3 \(arguments): \(received)")
        }
    }
}

@Suite(.serialized) struct WireGuardEndpointInteropTests {
    /// wireguard-go initiates (its first ping), with a pre-shared key; IPv4 and IPv6 inner addresses; ping to our
    /// address, curl both ways; `wg show` sees the handshake and bytes.
    @Test func wireguardGoInitiatesWithPresharedKey() throws {
        let topology = try EndpointTopology(slot: 1)
        defer { topology.tearDown() }
        try prepare(topology)
        let ourKeys = try topology.keyPair(), peerKeys = try topology.keyPair()
        let psk = try topology.sh(["wg", "genpsk"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        try topology.startWireGuardGo(privateKey: peerKeys.privateKey, ourPublicKey: ourKeys.publicKey, presharedKey: psk,
                                      ourEndpoint: "\(topology.ourOuter):51821")
        try topology.startSingBox(in: topology.ours, config: ourConfig(topology, privateKey: ourKeys.privateKey,
                                                                       peerPublicKey: peerKeys.publicKey, presharedKey: psk,
                                                                       listenPort: 51821, peerEndpoint: true, keepalive: nil),
                                  binary: Binaries.ours, log: "ours")
        try waitForOurBox(topology)

        // The peer's ping starts the handshake; our stack answers echo for its own addresses.
        let ping4 = topology.attempt(in: topology.peer, ["ping", "-c", "5", "-i", "0.2", "-W", "3", topology.ourTunnel4])
        #expect(ping4?.status == 0, "ping \(topology.ourTunnel4): \(ping4?.output ?? "") \(topology.log("ours.log"))")
        let ping6 = topology.attempt(in: topology.peer, ["ping", "-6", "-c", "3", "-i", "0.2", "-W", "3", topology.ourTunnel6])
        #expect(ping6?.status == 0, "ping \(topology.ourTunnel6): \(ping6?.output ?? "")")

        // Outbound: mixed → endpoint → the peer's HTTP server, over IPv4 and IPv6 inner addresses.
        try expectHello(topology, in: topology.ours, ["--socks5-hostname", "127.0.0.1:1080", "http://\(topology.peerTunnel4):8080/hello.txt"])
        try expectHello(topology, in: topology.ours, ["-x", "http://127.0.0.1:1080", "http://[\(topology.peerTunnel6)]:8080/hello.txt"])

        // Inbound: the peer connects to our tunnel address; the flow enters our router, goes to loopback, direct.
        try expectHello(topology, in: topology.peer, ["http://\(topology.ourTunnel4):9090/hello.txt"])
        try expectHello(topology, in: topology.peer, ["http://[\(topology.ourTunnel6)]:9090/hello.txt"])
        #expect(topology.log("ours.log").contains("inbound connection to 127.0.0.1:9090"))

        let dump = try topology.peerDump()
        try #require(dump.count >= 8, "wg show dump: \(dump)")
        #expect(dump[1] == psk)
        #expect((Int(dump[4]) ?? 0) > 0, "latest handshake")
        #expect((Int(dump[5]) ?? 0) > 2000 && (Int(dump[6]) ?? 0) > 2000, "rx/tx bytes \(dump[5]) \(dump[6])")
    }

    /// We initiate: no listen port (the dialer's socket), a persistent keepalive of 1 s, and wireguard-go knows no
    /// endpoint for us (it learns ours from the handshake). The handshake happens before any traffic.
    @Test func endpointInitiatesWithPersistentKeepalive() throws {
        let topology = try EndpointTopology(slot: 2)
        defer { topology.tearDown() }
        try prepare(topology)
        let ourKeys = try topology.keyPair(), peerKeys = try topology.keyPair()
        try topology.startWireGuardGo(privateKey: peerKeys.privateKey, ourPublicKey: ourKeys.publicKey, presharedKey: nil,
                                      ourEndpoint: nil)
        try topology.startSingBox(in: topology.ours, config: ourConfig(topology, privateKey: ourKeys.privateKey,
                                                                       peerPublicKey: peerKeys.publicKey, presharedKey: nil,
                                                                       listenPort: nil, peerEndpoint: true, keepalive: 1),
                                  binary: Binaries.ours, log: "ours")
        try waitForOurBox(topology)

        let first = try eventually(8) { () throws -> [String] in
            let dump = try topology.peerDump()
            guard dump.count >= 8, (Int(dump[4]) ?? 0) > 0 else { throw TopologyError("no handshake yet: \(dump)") }
            return dump
        }
        #expect(first[2].hasPrefix(topology.ourOuter + ":"), "peer learned our endpoint: \(first[2])")
        // Keepalives keep arriving with no traffic at all (each one is 32 bytes on the wire).
        sleep(3)
        let later = try topology.peerDump()
        #expect((Int(later[5]) ?? 0) >= (Int(first[5]) ?? 0) + 64, "keepalives: rx \(first[5]) → \(later[5])")

        try expectHello(topology, in: topology.ours, ["--socks5-hostname", "127.0.0.1:1080", "http://\(topology.peerTunnel4):8080/hello.txt"])
        let ping = topology.attempt(in: topology.peer, ["ping", "-c", "3", "-i", "0.2", "-W", "3", topology.ourTunnel4])
        #expect(ping?.status == 0, "ping: \(ping?.output ?? "")")
    }

    /// Go sing-box 1.12.12's wireguard endpoint (its gVisor stack) as the peer, with a pre-shared key: our mixed →
    /// our endpoint → Go's endpoint → (loopback) its HTTP server, and Go's mixed → Go's endpoint → ours → (loopback)
    /// our server; UDP both ways (Go's `direct` UDP inbound → its endpoint → ours → our echo, and ours → Go's
    /// loopback echo); iperf3 TCP both directions to Go's loopback iperf3.
    @Test func goSingBoxEndpointPeer() throws {
        guard FileManager.default.isExecutableFile(atPath: Binaries.go) else {
            Issue.record("missing \(Binaries.go): run scripts/install-test-deps.sh")
            return
        }
        let topology = try EndpointTopology(slot: 3)
        defer { topology.tearDown() }
        try prepare(topology)
        let ourKeys = try topology.keyPair(), peerKeys = try topology.keyPair()
        let psk = try topology.sh(["wg", "genpsk"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        // Go rewrites flows to its endpoint's own address to loopback: its echo and iperf3 listen there.
        try topology.startUDPEcho(in: topology.peer, bind: "127.0.0.1", port: 7000)
        try topology.startUDPEcho(in: topology.ours, bind: "127.0.0.1", port: 7001)
        try topology.spawn(in: topology.peer, ["iperf3", "-s", "-B", "127.0.0.1", "-p", "5201"], log: "iperf3-server.log")
        try topology.waitForTCP(in: topology.peer, port: 5201)
        try topology.startSingBox(in: topology.peer, config: goConfig(topology, privateKey: peerKeys.privateKey,
                                                                      ourPublicKey: ourKeys.publicKey, presharedKey: psk),
                                  binary: Binaries.go, log: "go")
        try topology.waitForTCP(in: topology.peer, port: 1081, timeout: 100)
        try topology.startSingBox(in: topology.ours, config: ourConfig(topology, privateKey: ourKeys.privateKey,
                                                                       peerPublicKey: peerKeys.publicKey, presharedKey: psk,
                                                                       listenPort: 51821, peerEndpoint: true, keepalive: nil,
                                                                       udpForward: true),
                                  binary: Binaries.ours, log: "ours")
        try waitForOurBox(topology)

        try expectHello(topology, in: topology.ours, ["--socks5-hostname", "127.0.0.1:1080", "http://\(topology.peerTunnel4):8080/hello.txt"], "\(topology.log("go.log"))")
        try expectHello(topology, in: topology.ours, ["--socks5-hostname", "127.0.0.1:1080", "http://[\(topology.peerTunnel6)]:8080/hello.txt"])
        try expectHello(topology, in: topology.peer, ["--socks5-hostname", "127.0.0.1:1081", "http://\(topology.ourTunnel4):9090/hello.txt"], "\(topology.log("ours.log"))")
        try expectHello(topology, in: topology.peer, ["--socks5-hostname", "127.0.0.1:1081", "http://[\(topology.ourTunnel6)]:9090/hello.txt"])

        try expectUDPEcho(topology, in: topology.ours, to: "127.0.0.1:5300", "ping over udp")
        try expectUDPEcho(topology, in: topology.peer, to: "127.0.0.1:5301", "pong over udp")
        #expect(topology.log("ours.log").contains("inbound packet connection to \(topology.ourTunnel4):7001"),
                "\(topology.log("ours.log").suffix(2000))")
        try expectIperf3(topology, [[], ["-R"]])
    }

    /// Go sing-box 1.12.12's endpoint with `system: true` as the peer: a kernel TUN in the peer namespace, so the
    /// peer's own tools reach us through it, as with wireguard-go. Go initiates (the peer's ping); ping of both our
    /// addresses (our stack answers), curl both ways, UDP both ways, iperf3 TCP both directions.
    @Test func goSingBoxSystemEndpointPeer() throws {
        guard FileManager.default.isExecutableFile(atPath: Binaries.go) else {
            Issue.record("missing \(Binaries.go): run scripts/install-test-deps.sh")
            return
        }
        let topology = try EndpointTopology(slot: 11)
        defer { topology.tearDown() }
        try prepare(topology)
        let ourKeys = try topology.keyPair(), peerKeys = try topology.keyPair()
        try topology.startSingBox(in: topology.peer, config: goConfig(topology, privateKey: peerKeys.privateKey,
                                                                      ourPublicKey: ourKeys.publicKey, presharedKey: nil,
                                                                      system: topology.interface),
                                  binary: Binaries.go, log: "go")
        try topology.waitForTCP(in: topology.peer, port: 1081, timeout: 100)
        _ = try eventually(5) { try topology.run(in: topology.peer, ["ip", "link", "show", topology.interface]) }
        // Go puts the addresses on its TUN; routes to our addresses make the peer's sockets use it.
        try topology.run(in: topology.peer, ["ip", "route", "replace", "\(topology.ourTunnel4)/32", "dev", topology.interface])
        try topology.run(in: topology.peer, ["ip", "-6", "route", "replace", "\(topology.ourTunnel6)/128", "dev", topology.interface])
        try topology.startUDPEcho(in: topology.peer, bind: topology.peerTunnel4, port: 7000)
        try topology.startUDPEcho(in: topology.ours, bind: "127.0.0.1", port: 7001)
        try topology.spawn(in: topology.peer, ["iperf3", "-s", "-B", topology.peerTunnel4, "-p", "5201"], log: "iperf3-server.log")
        try topology.waitForTCP(in: topology.peer, port: 5201)
        try topology.startSingBox(in: topology.ours, config: ourConfig(topology, privateKey: ourKeys.privateKey,
                                                                       peerPublicKey: peerKeys.publicKey, presharedKey: nil,
                                                                       listenPort: 51821, peerEndpoint: true, keepalive: nil,
                                                                       udpForward: true),
                                  binary: Binaries.ours, log: "ours")
        try waitForOurBox(topology)

        let ping4 = try eventually(8) { () throws -> ProcessResult in
            try topology.run(in: topology.peer, ["ping", "-c", "3", "-i", "0.2", "-W", "2", topology.ourTunnel4])
        }
        #expect(ping4.output.contains(" 0% packet loss") || ping4.output.contains(" 3 received"), "\(ping4.output)")
        let ping6 = topology.attempt(in: topology.peer, ["ping", "-6", "-c", "3", "-i", "0.2", "-W", "3", topology.ourTunnel6])
        #expect(ping6?.status == 0, "ping \(topology.ourTunnel6): \(ping6?.output ?? "") \(topology.log("go.log").suffix(1500))")

        try expectHello(topology, in: topology.ours, ["--socks5-hostname", "127.0.0.1:1080", "http://\(topology.peerTunnel4):8080/hello.txt"])
        try expectHello(topology, in: topology.ours, ["-x", "http://127.0.0.1:1080", "http://[\(topology.peerTunnel6)]:8080/hello.txt"])
        // The peer's kernel socket, and Go's mixed inbound (Go dials bound to its TUN in system mode).
        try expectHello(topology, in: topology.peer, ["http://\(topology.ourTunnel4):9090/hello.txt"])
        try expectHello(topology, in: topology.peer, ["--socks5-hostname", "127.0.0.1:1081", "http://[\(topology.ourTunnel6)]:9090/hello.txt"], "\(topology.log("go.log").suffix(1500))")

        try expectUDPEcho(topology, in: topology.ours, to: "127.0.0.1:5300", "ping over udp")
        try expectUDPEcho(topology, in: topology.peer, to: "\(topology.ourTunnel4):7001", "pong over udp")
        try expectIperf3(topology, [[], ["-R"]])
    }

    /// UDP both ways through the tunnel with wireguard-go: our `direct` UDP inbound → endpoint → the peer's socat
    /// echo; and the peer's datagrams to our tunnel address → our router (loopback) → direct → our echo.
    @Test func udpBothWays() throws {
        let topology = try EndpointTopology(slot: 5)
        defer { topology.tearDown() }
        try prepare(topology)
        let ourKeys = try topology.keyPair(), peerKeys = try topology.keyPair()
        try topology.startWireGuardGo(privateKey: peerKeys.privateKey, ourPublicKey: ourKeys.publicKey, presharedKey: nil,
                                      ourEndpoint: "\(topology.ourOuter):51821")
        try topology.startUDPEcho(in: topology.peer, bind: topology.peerTunnel4, port: 7000)
        try topology.startUDPEcho(in: topology.ours, bind: "127.0.0.1", port: 7001)
        try topology.startSingBox(in: topology.ours, config: ourConfig(topology, privateKey: ourKeys.privateKey,
                                                                       peerPublicKey: peerKeys.publicKey, presharedKey: nil,
                                                                       listenPort: 51821, peerEndpoint: true, keepalive: nil,
                                                                       udpForward: true),
                                  binary: Binaries.ours, log: "ours")
        try waitForOurBox(topology)

        let out = try eventually { () throws -> String in
            let reply = try topology.udpExchange(in: topology.ours, to: "127.0.0.1:5300", "ping over udp")
            guard reply == "ping over udp" else { throw TopologyError("udp reply: \(reply)") }
            return reply
        }
        #expect(out == "ping over udp")
        let back = try eventually { () throws -> String in
            let reply = try topology.udpExchange(in: topology.peer, to: "\(topology.ourTunnel4):7001", "pong over udp")
            guard reply == "pong over udp" else { throw TopologyError("udp reply: \(reply)") }
            return reply
        }
        #expect(back == "pong over udp")
        #expect(topology.log("ours.log").contains("inbound packet connection to \(topology.ourTunnel4):7001"))
    }

    /// iperf3 through the tunnel against wireguard-go, TCP both directions and UDP both directions (2 s each):
    /// every run moves data and UDP at 20 Mbit/s loses less than a quarter (the machine's 2 cores are shared
    /// with other builds, so this checks the path, not its speed; bench/wireguard.sh measures that).
    @Test func iperf3ThroughTheTunnel() throws {
        let topology = try EndpointTopology(slot: 7)
        defer { topology.tearDown() }
        try prepare(topology)
        let ourKeys = try topology.keyPair(), peerKeys = try topology.keyPair()
        try topology.startWireGuardGo(privateKey: peerKeys.privateKey, ourPublicKey: ourKeys.publicKey, presharedKey: nil,
                                      ourEndpoint: "\(topology.ourOuter):51821")
        try topology.spawn(in: topology.peer, ["iperf3", "-s", "-B", topology.peerTunnel4, "-p", "5201"], log: "iperf3-server.log")
        try topology.waitForTCP(in: topology.peer, port: 5201)
        try topology.startSingBox(in: topology.ours, config: ourConfig(topology, privateKey: ourKeys.privateKey,
                                                                       peerPublicKey: peerKeys.publicKey, presharedKey: nil,
                                                                       listenPort: 51821, peerEndpoint: true, keepalive: nil,
                                                                       udpForward: true),
                                  binary: Binaries.ours, log: "ours")
        try waitForOurBox(topology)
        _ = try eventually { try topology.curl(in: topology.ours, ["--socks5-hostname", "127.0.0.1:1080",
                                                                   "http://\(topology.peerTunnel4):8080/hello.txt"]) }
        try expectIperf3(topology, [[], ["-R"], ["-u", "-b", "20M"], ["-u", "-b", "20M", "-R"]])
    }

    /// Roaming: while the peer downloads from us, its datagrams start arriving from another address and port (stateless nftables
    /// rewriting in the peer's namespace, so wireguard-go itself is unaware) and the old address stops taking
    /// datagrams; our endpoint follows the source of authenticated packets, its replies reach the new address,
    /// and the transfer completes byte for byte.
    @Test func peerRoamsMidTransfer() throws {
        let topology = try EndpointTopology(slot: 6)
        defer { topology.tearDown() }
        try prepare(topology)
        let blob = String(repeating: "0123456789abcdef", count: 12 * 65536)  // 12 MiB
        _ = try topology.write("blob.txt", blob)
        let ourKeys = try topology.keyPair(), peerKeys = try topology.keyPair()
        try topology.startWireGuardGo(privateKey: peerKeys.privateKey, ourPublicKey: ourKeys.publicKey, presharedKey: nil,
                                      ourEndpoint: "\(topology.ourOuter):51821")
        let newAddress = "10.252.\(topology.slot).3"
        try topology.run(in: topology.peer, ["ip", "addr", "add", "\(newAddress)/24", "dev", "veth0"])
        try topology.startSingBox(in: topology.ours, config: ourConfig(topology, privateKey: ourKeys.privateKey,
                                                                       peerPublicKey: peerKeys.publicKey, presharedKey: nil,
                                                                       listenPort: 51821, peerEndpoint: true, keepalive: nil),
                                  binary: Binaries.ours, log: "ours")
        try waitForOurBox(topology)
        _ = try eventually { try topology.curl(in: topology.ours, ["--socks5-hostname", "127.0.0.1:1080",
                                                                   "http://\(topology.peerTunnel4):8080/hello.txt"]) }
        // The peer downloads from us at 3 MB/s: its reading pace (not our buffers) sets how far the transfer is.
        let download = try topology.spawn(in: topology.peer, ["curl", "-sS", "--max-time", "30", "--limit-rate", "3M",
                                                              "-o", topology.directory + "/got.txt",
                                                              "http://\(topology.ourTunnel4):9090/blob.txt"], log: "download.log")
        usleep(1_000_000)
        let receivedBefore = Int(try topology.peerDump()[5]) ?? 0
        let ruleset = """
        table ip roam {
          chain old { type filter hook prerouting priority -310; ip daddr \(topology.peerOuter) udp dport 51820 drop; }
          chain out { type filter hook output priority raw; udp sport 51820 ip daddr \(topology.ourOuter) ip saddr set \(newAddress) udp sport set 40000 notrack; }
          chain in { type filter hook prerouting priority raw; ip daddr \(newAddress) udp dport 40000 ip daddr set \(topology.peerOuter) udp dport set 51820 notrack; }
        }
        """
        try topology.run(in: topology.peer, ["nft", "-f", try topology.write("roam.nft", ruleset)])
        download.waitUntilExit()
        #expect(receivedBefore < blob.count, "the move happened mid-transfer (peer had \(receivedBefore) bytes)")
        #expect(download.terminationStatus == 0, "curl: \(topology.log("download.log"))")
        let got = (try? String(contentsOfFile: topology.directory + "/got.txt", encoding: .utf8)) ?? ""
        #expect(got.count == blob.count && got == blob)
        // Still flowing after the move, both ways: the peer pings our address.
        let ping = topology.attempt(in: topology.peer, ["ping", "-c", "2", "-W", "3", topology.ourTunnel4])
        #expect(ping?.status == 0)
    }

    /// The deprecated `wireguard` outbound: both binaries refuse it without the env variable, with Go's message.
    @Test func legacyOutboundDeprecation() throws {
        let topology = try EndpointTopology(slot: 4)
        defer { topology.tearDown() }
        let keys = try topology.keyPair()
        let config = """
        {"outbounds": [{"type": "wireguard", "tag": "wg", "server": "127.0.0.1", "server_port": 51820,
                        "local_address": ["10.79.4.1/32"], "private_key": "\(keys.privateKey)",
                        "peer_public_key": "\(keys.publicKey)"}]}
        """
        let path = try topology.write("legacy.json", config)
        let expected = "legacy wireguard outbound is deprecated in sing-box 1.11.0 and will be removed in sing-box 1.13.0"
        for binary in [Binaries.ours] + (FileManager.default.isExecutableFile(atPath: Binaries.go) ? [Binaries.go] : []) {
            let result = try ProcessRunner.run(binary, ["check", "-c", path])
            #expect(result.status != 0, "\(binary) accepted the legacy outbound")
            #expect(result.standardError.contains(expected), "\(binary): \(result.standardError)")
            #expect(result.standardError.contains("ENABLE_DEPRECATED_WIREGUARD_OUTBOUND=true"))
        }
        let allowed = try ProcessRunner.run(Binaries.ours, ["check", "-c", path],
                                            environment: ["ENABLE_DEPRECATED_WIREGUARD_OUTBOUND": "true"])
        #expect(allowed.status == 0, "\(allowed.standardError)")
    }

    /// The deprecated outbound, allowed by its env variable, carries traffic to wireguard-go: `server`,
    /// `peer_public_key` and `local_address` map onto one endpoint peer routing everything (Go 1.12's mapping).
    @Test func legacyOutboundCarriesTraffic() throws {
        let topology = try EndpointTopology(slot: 9)
        defer { topology.tearDown() }
        try prepare(topology)
        let ourKeys = try topology.keyPair(), peerKeys = try topology.keyPair()
        try topology.startWireGuardGo(privateKey: peerKeys.privateKey, ourPublicKey: ourKeys.publicKey, presharedKey: nil,
                                      ourEndpoint: nil)
        let config = """
        {"inbounds": [{"type": "mixed", "tag": "mixed-in", "listen": "127.0.0.1", "listen_port": 1080}],
         "outbounds": [{"type": "wireguard", "tag": "wg-out", "server": "\(topology.peerOuter)", "server_port": 51820,
                        "local_address": ["\(topology.ourTunnel4)/32"], "private_key": "\(ourKeys.privateKey)",
                        "peer_public_key": "\(peerKeys.publicKey)", "mtu": 1408}]}
        """
        try topology.startSingBox(in: topology.ours, config: config, binary: Binaries.ours, log: "ours",
                                  environment: ["ENABLE_DEPRECATED_WIREGUARD_OUTBOUND": "true"])
        try waitForOurBox(topology)
        try expectHello(topology, in: topology.ours, ["--socks5-hostname", "127.0.0.1:1080", "http://\(topology.peerTunnel4):8080/hello.txt"])
        #expect(topology.log("ours.log").contains("legacy wireguard outbound is deprecated"), "\(topology.log("ours.log"))")
    }

    /// The tunnel itself over IPv6 (the outer UDP between the endpoint and wireguard-go), both sides initiating.
    @Test func ipv6OuterTransport() throws {
        let topology = try EndpointTopology(slot: 10)
        defer { topology.tearDown() }
        try prepare(topology)
        let ourKeys = try topology.keyPair(), peerKeys = try topology.keyPair()
        try topology.startWireGuardGo(privateKey: peerKeys.privateKey, ourPublicKey: ourKeys.publicKey, presharedKey: nil,
                                      ourEndpoint: "[\(topology.ourOuter6)]:51821")
        try topology.startSingBox(in: topology.ours, config: ourConfig(topology, privateKey: ourKeys.privateKey,
                                                                       peerPublicKey: peerKeys.publicKey, presharedKey: nil,
                                                                       listenPort: 51821, peerEndpoint: true, keepalive: nil,
                                                                       outerIPv6: true),
                                  binary: Binaries.ours, log: "ours")
        try waitForOurBox(topology)
        try expectHello(topology, in: topology.ours, ["--socks5-hostname", "127.0.0.1:1080", "http://\(topology.peerTunnel4):8080/hello.txt"])
        try expectHello(topology, in: topology.peer, ["http://[\(topology.ourTunnel6)]:9090/hello.txt"])
        let dump = try topology.peerDump()
        #expect(dump.count >= 3 && dump[2] == "[\(topology.ourOuter6)]:51821", "\(dump)")
    }

    /// Our endpoint with `system: true` against wireguard-go: a kernel TUN of the configured name in our namespace
    /// with the endpoint's addresses and MTU; the peer's ping and curl reach our kernel through it (our python
    /// server), our mixed inbound's flows leave as kernel sockets bound to it, and our kernel pings the peer.
    @Test func systemInterface() throws {
        let topology = try EndpointTopology(slot: 12)
        defer { topology.tearDown() }
        try prepare(topology)
        let ourKeys = try topology.keyPair(), peerKeys = try topology.keyPair()
        try topology.startWireGuardGo(privateKey: peerKeys.privateKey, ourPublicKey: ourKeys.publicKey, presharedKey: nil,
                                      ourEndpoint: "\(topology.ourOuter):51821")
        try topology.startUDPEcho(in: topology.peer, bind: topology.peerTunnel4, port: 7000)
        try topology.spawn(in: topology.peer, ["iperf3", "-s", "-B", topology.peerTunnel4, "-p", "5201"], log: "iperf3-server.log")
        try topology.waitForTCP(in: topology.peer, port: 5201)
        let name = "wgsys\(topology.slot)"
        try topology.startSingBox(in: topology.ours, config: ourConfig(topology, privateKey: ourKeys.privateKey,
                                                                       peerPublicKey: peerKeys.publicKey, presharedKey: nil,
                                                                       listenPort: 51821, peerEndpoint: true, keepalive: nil,
                                                                       udpForward: true, system: name),
                                  binary: Binaries.ours, log: "ours")
        try waitForOurBox(topology)
        #expect(topology.log("ours.log").contains("started at \(name)"), "\(topology.log("ours.log"))")
        // As with Go's system mode (tested above), the kernel needs a route to the peer's address through the TUN.
        try topology.run(in: topology.ours, ["ip", "route", "replace", "\(topology.peerTunnel4)/32", "dev", name])
        try topology.run(in: topology.ours, ["ip", "-6", "route", "replace", "\(topology.peerTunnel6)/128", "dev", name])
        let link = try topology.run(in: topology.ours, ["ip", "addr", "show", "dev", name]).output
        #expect(link.contains("mtu 1408") && link.contains("\(topology.ourTunnel4)/32") && link.contains("\(topology.ourTunnel6)/128"),
                "\(link)")

        let ping = try eventually(8) { try topology.run(in: topology.peer, ["ping", "-c", "3", "-i", "0.2", "-W", "2", topology.ourTunnel4]) }
        #expect(ping.output.contains("3 received"), "\(ping.output)")
        try expectHello(topology, in: topology.peer, ["http://\(topology.ourTunnel4):9090/hello.txt"])
        try expectHello(topology, in: topology.ours, ["--socks5-hostname", "127.0.0.1:1080", "http://\(topology.peerTunnel4):8080/hello.txt"], "\(topology.log("ours.log").suffix(1500))")
        let ourPing = topology.attempt(in: topology.ours, ["ping", "-I", name, "-c", "2", "-i", "0.2", "-W", "2", topology.peerTunnel4])
        #expect(ourPing?.status == 0, "\(ourPing?.output ?? "")")
        let ping6 = topology.attempt(in: topology.peer, ["ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", topology.ourTunnel6])
        #expect(ping6?.status == 0, "\(ping6?.output ?? "")")
        try expectHello(topology, in: topology.peer, ["http://[\(topology.ourTunnel6)]:9090/hello.txt"])
        try expectUDPEcho(topology, in: topology.ours, to: "127.0.0.1:5300", "ping over udp")
        try expectIperf3(topology, [[], ["-R"]])
        let dump = try topology.peerDump()
        #expect(dump.count >= 7 && (Int(dump[5]) ?? 0) > 1000 && (Int(dump[6]) ?? 0) > 1000, "\(dump)")
    }

    /// `system: true` without `name`: Go's default, `wg` and one more than the highest `wgN` present (a veth
    /// `wg3` in our namespace makes it `wg4`).
    @Test func systemInterfaceDefaultName() throws {
        let topology = try EndpointTopology(slot: 13)
        defer { topology.tearDown() }
        try topology.setUp()
        try topology.run(in: topology.ours, ["ip", "link", "add", "wg3", "type", "veth", "peer", "name", "other3"])
        let keys = try topology.keyPair()
        try topology.startSingBox(in: topology.ours, config: """
        {"log": {"level": "info"},
         "inbounds": [{"type": "mixed", "tag": "mixed-in", "listen": "127.0.0.1", "listen_port": 1080}],
         "endpoints": [{"type": "wireguard", "tag": "wg", "system": true, "address": ["10.79.13.1/24"],
                        "private_key": "\(keys.privateKey)",
                        "peers": [{"public_key": "\(keys.publicKey)", "allowed_ips": ["10.79.13.0/24"]}]}]}
        """, binary: Binaries.ours, log: "ours")
        try waitForOurBox(topology)
        #expect(topology.log("ours.log").contains("started at wg4"), "\(topology.log("ours.log"))")
        let link = try topology.run(in: topology.ours, ["ip", "addr", "show", "dev", "wg4"]).output
        #expect(link.contains("10.79.13.1/24"), "\(link)")
    }

    /// `system: true` with a name the kernel refuses (longer than IFNAMSIZ) fails at start with a clear error.
    @Test func systemInterfaceBadName() throws {
        let topology = try EndpointTopology(slot: 8)
        defer { topology.tearDown() }
        let keys = try topology.keyPair()
        let path = try topology.write("system.json", """
        {"endpoints": [{"type": "wireguard", "tag": "wg", "system": true, "name": "a-name-far-too-long-for-linux",
                        "address": ["10.79.8.1/32"], "private_key": "\(keys.privateKey)",
                        "peers": [{"public_key": "\(keys.publicKey)", "allowed_ips": ["10.79.8.0/24"]}]}]}
        """)
        try topology.setUp()
        // In the test's namespace, under `timeout`: a build that took the name would not touch the host or hang.
        let result = try #require(topology.attempt(in: topology.ours, ["timeout", "10", Binaries.ours, "run", "-c", path]))
        #expect(result.status == 1)
        #expect(result.standardError.contains("invalid interface name: a-name-far-too-long-for-linux"), "\(result.standardError)")
    }
}
