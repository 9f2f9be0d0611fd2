import Testing
import NIOCore
import NIOPosix
import Adapter
import Net
@testable import DNS

@Suite struct ResolvConfTests {
    @Test func parsesLikeGo() {
        let text = """
        # comment
        ; also comment
        nameserver 10.0.0.1
        nameserver fd00::53
        nameserver not-an-address
        nameserver 10.0.0.2
        nameserver 10.0.0.3
        search corp.example lab.example .
        options ndots:3 timeout:0 attempts:4 rotate single-request-reopen use-vc trust-ad no-reload bogus
        """
        let conf = ResolvConf(parsing: Array(text.utf8), hostname: "box.home.example")
        #expect(conf.servers == ["10.0.0.1", "fd00::53", "10.0.0.2"])
        #expect(conf.search == ["corp.example.", "lab.example."])
        #expect(conf.ndots == 3 && conf.timeout == .seconds(1) && conf.attempts == 4)
        #expect(conf.rotate && conf.singleRequest && conf.useTCP && conf.trustAD && conf.noReload)
    }

    @Test func defaults() {
        let conf = ResolvConf(parsing: Array("domain a.example\noptions ndots:99\n".utf8), hostname: "box.home.example")
        #expect(conf.servers == ["127.0.0.1", "::1"])
        #expect(conf.search == ["a.example."])
        #expect(conf.ndots == 15 && conf.timeout == .seconds(5) && conf.attempts == 2)
        #expect(ResolvConf(parsing: [], hostname: "box.home.example").search == ["home.example."])
        #expect(ResolvConf(parsing: [], hostname: "box").search == [])
    }

    @Test func nameList() {
        var conf = ResolvConf(parsing: Array("search s1.test s2.test\n".utf8), hostname: nil)
        #expect(conf.nameList("a.b.") == ["a.b."])
        #expect(conf.nameList("a.b") == ["a.b.", "a.b.s1.test.", "a.b.s2.test."])
        #expect(conf.nameList("host") == ["host.s1.test.", "host.s2.test.", "host."])
        conf.ndots = 2
        #expect(conf.nameList("a.b") == ["a.b.s1.test.", "a.b.s2.test.", "a.b."])
        #expect(conf.nameList("hidden.onion.") == [])
        #expect(conf.nameList("x.onion") == ["x.onion.s1.test.", "x.onion.s2.test."])
        #expect(conf.nameList(String(repeating: "a", count: 254)) == [])
    }
}

@Suite(.serialized) struct LocalTransportTests {
    func transport(_ resolvConf: TemporaryFile, hosts: TemporaryFile, port: UInt16) -> LocalTransport {
        LocalTransport(tag: "local", dialer: SystemDialer(), eventLoop: testGroup.next(), resolvConfPath: resolvConf.path,
                       hostsPath: hosts.path, nameserverPort: port)
    }

    @Test func answersFromHostsThenNameservers() async throws {
        let dnsmasq = try await Dnsmasq()
        defer { dnsmasq.stop() }
        let resolv = TemporaryFile("nameserver 127.0.0.1\n")
        let hosts = TemporaryFile("10.7.7.7 x.test pinned.test\n")
        let local = transport(resolv, hosts: hosts, port: dnsmasq.port)
        let pinned = try await local.exchange(.query(id: 1, name: try DNSName("x.test"), type: .a))
        #expect(pinned.addresses == [ip("10.7.7.7")] && pinned.answers[0].ttl == 600)
        let remote = try await local.exchange(.query(id: 2, name: try DNSName("multi.test"), type: .a))
        #expect(Set(remote.addresses) == [ip("10.0.0.1"), ip("10.0.0.2")] && remote.id == 2)
        let txt = try await local.exchange(.query(id: 3, name: try DNSName("big.test"), type: .txt))
        #expect(txt.answers.count == 4)  // TC → TCP inside the UDP path
        let client = DNSClient()
        await #expect { try await client.lookup("gone.test", transport: local, options: DNSQueryOptions(strategy: .ipv4Only)) } throws: { error in
            String(describing: error) == "lookup gone.test: NXDOMAIN"
        }
        await local.close()
    }

    @Test func useVCGoesOverTCP() async throws {
        let dnsmasq = try await Dnsmasq()
        defer { dnsmasq.stop() }
        let resolv = TemporaryFile("nameserver 127.0.0.1\noptions use-vc\n")
        let hosts = TemporaryFile("")
        let local = transport(resolv, hosts: hosts, port: dnsmasq.port)
        let response = try await local.exchange(.query(name: try DNSName("x.test"), type: .a))
        #expect(response.addresses == [ip("10.1.2.3")])
        await local.close()
    }

    @Test func deadServerIsSkipped() async throws {
        let dnsmasq = try await Dnsmasq()
        defer { dnsmasq.stop() }
        // 127.0.0.2 has nothing on the port: one attempt there times out (1 s), then 127.0.0.1 answers.
        let resolv = TemporaryFile("nameserver 127.0.0.2\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        let hosts = TemporaryFile("")
        let local = transport(resolv, hosts: hosts, port: dnsmasq.port)
        let start = ContinuousClock.now
        let response = try await local.exchange(.query(name: try DNSName("x.test"), type: .a))
        #expect(response.addresses == [ip("10.1.2.3")])
        #expect(ContinuousClock.now - start < .seconds(30))
        await local.close()
    }

    @Test func reloadsAChangedResolvConf() async throws {
        let clock = TestClock()
        let resolv = TemporaryFile("nameserver 10.0.0.1\n")
        let local = LocalTransport(tag: "local", dialer: SystemDialer(), eventLoop: testGroup.next(), resolvConfPath: resolv.path, now: clock.now)
        #expect(local.configuration().servers == ["10.0.0.1"])
        resolv.write("nameserver 10.0.0.2\n")
        #expect(local.configuration().servers == ["10.0.0.1"])
        clock.advance(.seconds(6))
        #expect(local.configuration().servers == ["10.0.0.2"])
        let missing = LocalTransport(tag: "local", dialer: SystemDialer(), eventLoop: testGroup.next(), resolvConfPath: "/nonexistent/resolv.conf")
        #expect(missing.configuration().servers == ["127.0.0.1", "::1"])
    }
}
