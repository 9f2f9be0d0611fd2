// fakeip with `experimental.cache_file.store_fakeip`: the mappings outlive a restart, ours and Go
// 1.12.12's alike (Go as the oracle), and without `store_fakeip` they do not. kdig asks through a
// `direct` inbound whose flows go to hijack-dns; a DNS rule sends A and AAAA to the fakeip server.
import Foundation
import Testing

@Suite(.serialized) struct FakeIPPersistenceInteropTests {
    static func config(dnsPort: UInt16, cachePath: String, store: Bool) -> String {
        """
        {"log": {"level": "warn", "timestamp": false},
         "dns": {"servers": [{"type": "local", "tag": "local"},
                             {"type": "fakeip", "tag": "fake", "inet4_range": "198.18.0.0/15", "inet6_range": "fc00::/18"}],
                 "rules": [{"query_type": ["A", "AAAA"], "server": "fake"}]},
         "inbounds": [{"type": "direct", "tag": "dns-in", "listen": "127.0.0.1", "listen_port": \(dnsPort)}],
         "outbounds": [{"type": "direct", "tag": "direct"}],
         "route": {"rules": [{"inbound": "dns-in", "action": "hijack-dns"}]},
         "experimental": {"cache_file": {"enabled": true, "path": "\(cachePath)", "store_fakeip": \(store)}}}
        """
    }

    /// The one address kdig gets for `name`.
    func ask(_ name: String, _ type: String, port: UInt16) throws -> String {
        let result = try runTool(Peers.kdig, ["@127.0.0.1", "-p", String(port), "+timeout=2", "+retry=2", "+short", name, type], timeout: 15)
        return String(decoding: result.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test(arguments: [Implementation.ours, .go])
    func mappingsSurviveARestartWithStoreFakeIP(kind: Implementation) throws {
        let work = try TemporaryDirectory()
        let cache = work.file("cache.db")
        var port = try freeDualPort()
        var box = try SingBox(kind, config: Self.config(dnsPort: port, cachePath: cache, store: true), waitPort: port, in: work, name: "\(kind)-1")
        let a4 = try ask("a.example", "A", port: port), b4 = try ask("b.example", "A", port: port)
        let a6 = try ask("a.example", "AAAA", port: port)
        #expect(a4.hasPrefix("198.18.") && b4.hasPrefix("198.18.") && a4 != b4, "\(kind): \(a4) \(b4)")
        #expect(a6.hasPrefix("fc00:"), "\(kind): \(a6)")
        box.stop()

        port = try freeDualPort()
        box = try SingBox(kind, config: Self.config(dnsPort: port, cachePath: cache, store: true), waitPort: port, in: work, name: "\(kind)-2")
        defer { box.stop() }
        // A new name first: it must not take an address the first run handed out.
        let c4 = try ask("c.example", "A", port: port)
        #expect(c4.hasPrefix("198.18.") && c4 != a4 && c4 != b4, "\(kind): c.example got \(c4) after a restart (a \(a4), b \(b4))")
        #expect(try ask("a.example", "A", port: port) == a4, "\(kind)")
        #expect(try ask("b.example", "A", port: port) == b4, "\(kind)")
        #expect(try ask("a.example", "AAAA", port: port) == a6, "\(kind)")
    }

    /// Without `store_fakeip` nothing is kept: the first name after a restart gets the first address again.
    @Test func withoutStoreFakeIPMappingsStartOver() throws {
        let work = try TemporaryDirectory()
        let cache = work.file("cache.db")
        var port = try freeDualPort()
        var box = try SingBox(.ours, config: Self.config(dnsPort: port, cachePath: cache, store: false), waitPort: port, in: work, name: "ours-1")
        let first = try ask("a.example", "A", port: port)
        box.stop()
        port = try freeDualPort()
        box = try SingBox(.ours, config: Self.config(dnsPort: port, cachePath: cache, store: false), waitPort: port, in: work, name: "ours-2")
        defer { box.stop() }
        #expect(try ask("other.example", "A", port: port) == first)
    }
}
