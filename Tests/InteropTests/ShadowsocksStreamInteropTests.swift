// The shadowsocks outbound's legacy stream ciphers against shadowsocks-libev's `ss-server -u`
// (TCP and UDP), ours and Go sing-box 1.12.12's outbound side by side on the same server.
// XChaCha20 has no libev peer (libev's xchacha20 is the AEAD): ShadowsocksStreamCipherTests checks
// it against libsodium.
import Foundation
import Testing

@Suite(.serialized) struct ShadowsocksStreamInteropTests {
    @Test(arguments: ["rc4-md5", "aes-128-cfb", "aes-192-cfb", "aes-256-cfb", "aes-128-ctr", "aes-192-ctr", "aes-256-ctr", "chacha20-ietf"])
    func outboundAgainstShadowsocksLibev(method: String) throws {
        let password = "stream-interop"
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(in: work)
        defer { dns.stop() }
        let libevServer = try freeDualPort()
        let server = try Spawned(ShadowsocksPeerPaths.ssServer, ["-s", "127.0.0.1", "-p", String(libevServer), "-k", password, "-m", method, "-u", "-v"],
                                 name: "ss-server", directory: work)
        defer { server.stop() }
        try waitForTCP(port: libevServer, process: server)
        for implementation in [Implementation.ours, .go] {
            let mixed = try freePort()
            let box = try SingBox(implementation, config: ConfigJSON.box(
                inbounds: [ConfigJSON.mixed(port: mixed)],
                outbounds: [ShadowsocksConfig.outbound(port: libevServer, method: method, password: password)]),
                waitPort: mixed, in: work, name: "\(implementation)-\(method)")
            defer { box.stop() }
            try exerciseTCPAndUDP(via: mixed, files: files, dns: dns, work: work, label: "\(implementation) → ss-server \(method)", logs: [box, server])
        }
    }

    /// A wrong password: libev cannot parse the request and drops the connection; the download fails.
    @Test func wrongPasswordFails() throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let libevServer = try freeDualPort(), mixed = try freePort()
        let server = try Spawned(ShadowsocksPeerPaths.ssServer, ["-s", "127.0.0.1", "-p", String(libevServer), "-k", "right", "-m", "aes-256-cfb", "-v"],
                                 name: "ss-server", directory: work)
        defer { server.stop() }
        try waitForTCP(port: libevServer, process: server)
        let box = try SingBox(.ours, config: ConfigJSON.box(inbounds: [ConfigJSON.mixed(port: mixed)],
                                                            outbounds: [ShadowsocksConfig.outbound(port: libevServer, method: "aes-256-cfb", password: "wrong")]),
                              waitPort: mixed, in: work)
        defer { box.stop() }
        #expect((try? curl(["--max-time", "5", "--socks5-hostname", "127.0.0.1:\(mixed)", files.blobURL])) != files.blob)
    }
}
