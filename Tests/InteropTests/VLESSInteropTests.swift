// The vless outbound against Go sing-box 1.12.12's vless inbound (plain, TLS, ws) and v2ray 4.34's:
// a byte-exact download and a DNS query over UDP (xudp, Go's default, and plain UDP) through our
// mixed inbound; a wrong UUID fails the flow.
import Foundation
import Testing

@Suite(.serialized) struct VLESSInteropTests {
    static let uuid = "d1f7a3b2-5c4e-4a8f-9b6d-2e1c0f3a4b5c"

    static func outbound(port: UInt16, uuid: String = uuid, extra: String = "", tag: String = "vless-out") -> String {
        "{\"type\":\"vless\",\"tag\":\"\(tag)\",\"server\":\"127.0.0.1\",\"server_port\":\(port),\"uuid\":\"\(uuid)\"\(extra)}"
    }

    @Test(arguments: ["", #","packet_encoding":"""#, #","transport":{"type":"ws","path":"/vl"}"#, "tls"])
    func againstGoSingBox(extra: String) throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let certificates = try InteropCertificates()
        let server = try freePort(), mixed = try freePort(), wrong = try freePort()
        let tls = extra == "tls"
        let inboundExtra = tls ? ",\"tls\":\(certificates.inboundTLS)" : (extra.contains("transport") ? extra : "")
        let outboundExtra = tls ? ",\"tls\":\(certificates.outboundTLS())" : extra
        let go = try SingBox(.go, config: ConfigJSON.box(
            inbounds: ["{\"type\":\"vless\",\"tag\":\"vless-in\",\"listen\":\"127.0.0.1\",\"listen_port\":\(server),"
                       + "\"users\":[{\"name\":\"alice\",\"uuid\":\"\(Self.uuid)\"}]\(inboundExtra)}"],
            outbounds: [ConfigJSON.direct]), waitPort: server, in: work, name: "go-vless")
        defer { go.stop() }
        let ours = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: mixed, tag: "good"), ConfigJSON.mixed(port: wrong, tag: "bad")],
            outbounds: [Self.outbound(port: server, extra: outboundExtra),
                        Self.outbound(port: server, uuid: "00000000-0000-4000-8000-000000000001", extra: outboundExtra, tag: "stranger")],
            rules: "[{\"inbound\":[\"bad\"],\"outbound\":\"stranger\"}]"), waitPort: mixed, in: work)
        defer { ours.stop() }
        try exerciseTCPAndUDP(via: mixed, files: files, dns: dns, work: work, label: "ours → Go \(extra)", logs: [ours, go])
        #expect(go.log.contains("[alice] inbound connection to 127.0.0.1:\(files.port)"), "\(go.log)")
        try waitForTCP(port: wrong, process: ours.process)
        #expect(throws: PeerError.self) { try curl(["--socks5-hostname", "127.0.0.1:\(wrong)", files.blobURL]) }
    }

    /// v2ray 4.34 as the vless server (TCP and plain UDP; v2ray's XUDP differs from sing's).
    @Test func againstV2Ray() throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let server = try freePort(), mixed = try freePort()
        let config = """
        {"log":{"loglevel":"debug"},
         "inbounds":[{"listen":"127.0.0.1","port":\(server),"protocol":"vless","settings":{"clients":[{"id":"\(Self.uuid)"}],"decryption":"none"}}],
         "outbounds":[{"protocol":"freedom"}]}
        """
        let v2ray = try Spawned(V2Ray.binary, ["-config", try work.write("v2ray-vless.json", config)], name: "v2ray-vless", directory: work)
        defer { v2ray.stop() }
        try waitForTCP(port: server, process: v2ray)
        let ours = try SingBox(.ours, config: ConfigJSON.box(
            inbounds: [ConfigJSON.mixed(port: mixed)], outbounds: [Self.outbound(port: server, extra: #","packet_encoding":"""#)]),
            waitPort: mixed, in: work)
        defer { ours.stop() }
        try exerciseTCPAndUDP(via: mixed, files: files, dns: dns, work: work, label: "ours → v2ray", logs: [ours, v2ray])
    }

    @Test func unsupportedFieldsFailTheStart() throws {
        let work = try TemporaryDirectory()
        for (extra, expected) in [(#","flow":"xtls-rprx-vision""#, "not implemented: flow xtls-rprx-vision on vless outbound"),
                                  (#","multiplex":{"enabled":true,"brutal":{"enabled":true,"up_mbps":100,"down_mbps":100}}"#, "not implemented: multiplex brutal"),
                                  (#","tls":{"enabled":true,"server_name":"q.test"},"transport":{"type":"quic"}"#, "not implemented: transport quic on vless outbound")] {
            let config = try work.write("bad.json", ConfigJSON.box(inbounds: [ConfigJSON.mixed(port: try freePort())],
                                                                  outbounds: [Self.outbound(port: 1, extra: extra)]))
            let run = try runTool(Peers.ours, ["run", "-c", config], timeout: 10)
            #expect(run.status != 0 && run.stderr.contains("initialize outbound[0]: \(expected)"), "\(run.stderr)")
        }
    }
}
