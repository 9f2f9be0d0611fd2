// Our vless inbound against real clients: Go sing-box 1.12.12's vless outbound (xudp, plain and
// packetaddr packet encoding, TLS, ws, grpc, http, multiplex) and v2ray 4.34's (TCP and plain UDP), then our own outbound. Each
// carries a byte-exact download and a DNS query over UDP to dnsmasq through a mixed inbound. A
// wrong UUID, garbage and a cut request are refused as Go refuses them (reset, Go's words, side by
// side with Go's inbound). Every process is stopped on every exit path.
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct VLESSInboundInteropTests {
    static let uuid = VLESSInteropTests.uuid
    static let stranger = "00000000-0000-4000-8000-000000000001"

    static func inbound(port: UInt16, tag: String = "vless-in", extra: String = "") -> String {
        "{\"type\":\"vless\",\"tag\":\"\(tag)\",\"listen\":\"127.0.0.1\",\"listen_port\":\(port),"
            + "\"users\":[{\"name\":\"alice\",\"uuid\":\"\(uuid)\"},{\"name\":\"\",\"uuid\":\"nameless\"}]\(extra)}"
    }

    /// Go's mixed → Go's vless outbound → our vless inbound → direct; a wrong UUID is refused with
    /// Go's `unknown UUID: …` and the client's download fails.
    @Test(arguments: ["", #","packet_encoding":"""#, #","packet_encoding":"packetaddr""#, #","transport":{"type":"ws","path":"/vl"}"#, "tls",
                      #","transport":{"type":"grpc","service_name":"vl"}"#, #","transport":{"type":"http","path":"/vl"}"#,
                      #","multiplex":{"enabled":true}"#])
    func fromGoSingBox(extra: String) throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let certificates = try InteropCertificates()
        let server = try freePort(), mixed = try freePort(), wrong = try freePort(), nameless = try freePort()
        let tls = extra == "tls"
        let inboundExtra = tls ? ",\"tls\":\(certificates.inboundTLS)" : (extra.contains("transport") || extra.contains("multiplex") ? extra : "")
        let outboundExtra = tls ? ",\"tls\":\(certificates.outboundTLS())" : extra
        let ours = try SingBox(.ours, config: ConfigJSON.box(inbounds: [Self.inbound(port: server, extra: inboundExtra)],
                                                             outbounds: [ConfigJSON.direct]), waitPort: server, in: work)
        defer { ours.stop() }
        let go = try SingBox(.go, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: mixed, tag: "good"), ConfigJSON.mixed(port: wrong, tag: "bad"),
                       ConfigJSON.mixed(port: nameless, tag: "nameless")],
            outbounds: [VLESSInteropTests.outbound(port: server, extra: outboundExtra),
                        VLESSInteropTests.outbound(port: server, uuid: Self.stranger, extra: outboundExtra, tag: "stranger"),
                        VLESSInteropTests.outbound(port: server, uuid: "nameless", extra: outboundExtra, tag: "nameless")],
            rules: "[{\"inbound\":[\"bad\"],\"outbound\":\"stranger\"},{\"inbound\":[\"nameless\"],\"outbound\":\"nameless\"}]"),
            waitPort: mixed, in: work, name: "go-client")
        defer { go.stop() }
        try exerciseTCPAndUDP(via: mixed, files: files, dns: dns, work: work, label: "Go → ours \(extra)", logs: [ours, go])
        // With multiplex the vless stream goes to the mux magic name and each flow is a mux stream.
        let multiplex = extra.contains("multiplex")
        let target = multiplex ? "sp.mux.sing-box.arpa:444" : "127.0.0.1:\(files.port)"
        #expect(ours.log.contains("inbound/vless[vless-in]: [alice] inbound connection to \(target)"), "\(ours.log)")
        if multiplex {
            #expect(ours.log.contains("inbound/vless[vless-in]: inbound multiplex connection to 127.0.0.1:\(files.port)"), "\(ours.log)")
            #expect(ours.log.contains("inbound/vless[vless-in]: inbound multiplex packet connection"), "\(ours.log)")
        } else {
            let packetLine = extra.contains("packetaddr") ? "[alice] inbound packet addr connection" : "[alice] inbound packet connection to 127.0.0.1:\(dns.port)"
            #expect(ours.log.contains(packetLine), "\(ours.log)")
        }
        try waitForTCP(port: nameless, process: go.process)
        let namelessBody = try curl(["--socks5-hostname", "127.0.0.1:\(nameless)", files.blobURL]) == files.blob
        #expect(namelessBody)
        #expect(ours.log.contains("[1] inbound connection to \(target)"), "\(ours.log)")
        try waitForTCP(port: wrong, process: go.process)
        #expect(throws: PeerError.self) { try curl(["--socks5-hostname", "127.0.0.1:\(wrong)", files.blobURL]) }
        #expect(waitForLog(ours, ": unknown UUID: \(Self.stranger)"), "\(ours.log)")
        #expect(ours.process.isRunning)
    }

    /// v2ray 4.34 as the client (SOCKS5 in, vless out): TCP and plain UDP (command 2).
    @Test func fromV2Ray() throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let server = try freePort(), socks = try freePort()
        let ours = try SingBox(.ours, config: ConfigJSON.box(inbounds: [Self.inbound(port: server)], outbounds: [ConfigJSON.direct]),
                               waitPort: server, in: work)
        defer { ours.stop() }
        let config = """
        {"log":{"loglevel":"debug"},
         "inbounds":[{"listen":"127.0.0.1","port":\(socks),"protocol":"socks","settings":{"auth":"noauth","udp":true,"ip":"127.0.0.1"}}],
         "outbounds":[{"protocol":"vless","settings":{"vnext":[{"address":"127.0.0.1","port":\(server),
           "users":[{"id":"\(Self.uuid)","encryption":"none"}]}]}}]}
        """
        let v2ray = try Spawned(V2Ray.binary, ["-config", try work.write("v2ray-vless-client.json", config)], name: "v2ray-vless-client", directory: work)
        defer { v2ray.stop() }
        try waitForTCP(port: socks, process: v2ray)
        try exerciseTCPAndUDP(via: socks, files: files, dns: dns, work: work, label: "v2ray → ours", logs: [ours, v2ray])
        #expect(ours.log.contains("[alice] inbound connection to 127.0.0.1:\(files.port)"), "\(ours.log)")
    }

    /// Our mixed → our vless outbound → our vless inbound, xudp and plain UDP, plain and over TLS.
    @Test(arguments: ["", #","packet_encoding":"""#])
    func selfToSelf(packetEncoding: String) throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let certificates = try InteropCertificates()
        let plain = try freePort(), tlsPort = try freePort(), viaPlain = try freePort(), viaTLS = try freePort()
        let box = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [Self.inbound(port: plain, tag: "v-plain"), Self.inbound(port: tlsPort, tag: "v-tls", extra: ",\"tls\":\(certificates.inboundTLS)"),
                       ConfigJSON.mixed(port: viaPlain, tag: "via-plain"), ConfigJSON.mixed(port: viaTLS, tag: "via-tls")],
            outbounds: [ConfigJSON.direct, VLESSInteropTests.outbound(port: plain, extra: packetEncoding, tag: "out-plain"),
                        VLESSInteropTests.outbound(port: tlsPort, extra: packetEncoding + ",\"tls\":\(certificates.outboundTLS())", tag: "out-tls")],
            rules: "[{\"inbound\":[\"via-plain\"],\"outbound\":\"out-plain\"},{\"inbound\":[\"via-tls\"],\"outbound\":\"out-tls\"}]"),
            waitPort: plain, in: work)
        defer { box.stop() }
        for (port, tag) in [(viaPlain, "v-plain"), (viaTLS, "v-tls")] {
            try waitForTCP(port: port, process: box.process)
            try exerciseTCPAndUDP(via: port, files: files, dns: dns, work: work, label: "ours → ours \(tag) \(packetEncoding)", logs: [box])
            #expect(box.log.contains("inbound/vless[\(tag)]: [alice] inbound connection to 127.0.0.1:\(files.port)"), "\(box.log)")
            #expect(box.log.contains("inbound/vless[\(tag)]: [alice] inbound packet connection to 127.0.0.1:\(dns.port)"), "\(box.log)")
        }
    }

    /// Garbage, a cut request and a wrong UUID against our inbound and Go's: both reset the
    /// connection without an answer and log the same cause.
    @Test(arguments: [Implementation.ours, .go])
    func badClientsAreRefusedAsGoRefusesThem(implementation: Implementation) throws {
        let work = try TemporaryDirectory()
        let server = try freePort()
        let box = try SingBox(implementation, config: ConfigJSON.box(inbounds: [Self.inbound(port: server)], outbounds: [ConfigJSON.direct]),
                              waitPort: server, in: work, name: "server-\(implementation)")
        defer { box.stop() }
        var generator = SystemRandomNumberGenerator()
        let stranger: [UInt8] = [0, 0, 0, 0, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0, 0, 0, 1]
        let cases: [([UInt8], Bool, String)] = [
            ([7] + (0..<200).map { _ in UInt8.random(in: 0...255, using: &generator) }, false, ": unknown version: 7"),
            ([0] + stranger + [0, 1, 0x1f], true, ": read port: unexpected EOF"),
            ([0] + stranger + [0, 1, 0x1f, 0x90, 1, 127, 0, 0, 1], false, ": unknown UUID: \(Self.stranger)"),
            ([0] + stranger + [0, 1, 0x1f, 0x90, 9], false, ": unknown address family: 9"),
        ]
        for (bytes, endWrite, cause) in cases {
            let fd = connectTCP(port: server)
            #expect(fd >= 0)
            defer { close(fd) }
            #expect(writeAll(fd, bytes))
            if endWrite { shutdown(fd, Int32(SHUT_WR)) }
            #expect(readOutcome(fd) == "reset", "\(implementation): \(cause)")
            #expect(waitForLog(box, cause), "\(implementation) \(cause): \(box.log)")
        }
        #expect(box.process.isRunning)
    }

    /// What this build does not carry fails the start with `not implemented` naming the field.
    @Test func unsupportedFieldsFailTheStart() throws {
        let work = try TemporaryDirectory()
        let certificates = try InteropCertificates()
        let vision = "{\"type\":\"vless\",\"listen_port\":\(try freePort()),\"users\":[{\"uuid\":\"\(Self.uuid)\",\"flow\":\"xtls-rprx-vision\"}]}"
        for (inbound, expected) in [(vision, "not implemented: flow xtls-rprx-vision on vless inbound"),
                                    (Self.inbound(port: try freePort(), extra: ",\"multiplex\":{\"enabled\":true,\"brutal\":{\"enabled\":true,\"up_mbps\":100,\"down_mbps\":100}}"),
                                     "not implemented: multiplex brutal"),
                                    (Self.inbound(port: try freePort(), extra: ",\"tls\":\(certificates.inboundTLS),\"transport\":{\"type\":\"quic\"}"),
                                     "not implemented: transport quic on vless inbound")] {
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
