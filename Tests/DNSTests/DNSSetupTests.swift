import Testing
import NIOCore
import NIOPosix
import Adapter
import Config
import Net
@testable import DNS

/// A router that takes no flows (DNSSetup never hands any over).
final class NoRouter: FlowHandler {
    func handleTCP(_ channel: any Channel, metadata: FlowMetadata, responder: (any HandshakeResponder)?) { channel.close(promise: nil) }
    func handleUDP(_ connection: any PacketConnection, metadata: FlowMetadata) { connection.close() }
}

func setupContext() -> AdapterContext {
    let outbounds = OutboundManager()
    let resolver = SystemResolver()
    return AdapterContext(group: testGroup, logCore: .disabled, router: NoRouter(), outbounds: outbounds, resolver: resolver,
                          dialerFactory: DefaultDialerFactory(resolver: resolver, outbounds: outbounds))
}

func dnsOptions(_ json: String) throws -> Config.DNSOptions {
    try Config.DNSOptions(json: try JSONParser.parse(json), path: "dns")
}

@Suite(.serialized) struct DNSSetupTests {
    @Test func buildsServersFromOptions() async throws {
        let dnsmasq = try await Dnsmasq()
        defer { dnsmasq.stop() }
        let options = try dnsOptions("""
        {"servers": [
            {"type": "udp", "tag": "dm", "server": "127.0.0.1", "server_port": \(dnsmasq.port)},
            {"type": "fakeip", "tag": "fake", "inet4_range": "198.18.0.0/15", "inet6_range": "fc00::/18"},
            {"type": "hosts", "tag": "hosts", "predefined": {"pinned.test": ["10.9.9.9", "fd00::9"]}}
         ],
         "final": "dm", "strategy": "ipv4_only", "client_subnet": "198.51.100.0/24"}
        """)
        let setup = try DNSSetup(options: options, context: setupContext())
        #expect(setup.transports.map(\.type) == ["udp", "fakeip", "hosts"])
        #expect(setup.client.options.clientSubnet?.description == "198.51.100.0/24")
        let multi = try await setup.resolver.lookup("multi.test", options: DNSLookupOptions())
        #expect(Set(multi) == [ip("10.0.0.1"), ip("10.0.0.2")])
        #expect(try await setup.resolver.lookup("pinned.test", options: DNSLookupOptions(server: "hosts")) == [ip("10.9.9.9")])
        #expect(try await setup.resolver.lookup("a.test", options: DNSLookupOptions(server: "fake", strategy: .preferIPv6))
                == [ip("fc00::3"), ip("198.18.0.3")])
        try await setup.lifecycle.close()
    }

    @Test(arguments: [
        (#"{"servers": [{"type": "udp", "tag": "a", "server": "127.0.0.1"}], "final": "nope"}"#, "default DNS server not found: nope"),
        (#"{"servers": [{"type": "fakeip", "tag": "f", "inet4_range": "198.18.0.0/15"}], "final": "f"}"#, "default server cannot be fakeip"),
        (#"{"servers": [{"type": "fakeip", "tag": "f"}, {"type": "fakeip", "tag": "g"}]}"#, "multiple fakeip server are not supported"),
        (#"{"servers": [{"type": "tailscale", "tag": "t"}]}"#, "not implemented: tailscale"),
        (#"{"servers": [{"type": "udp", "tag": "a", "server": "127.0.0.1"}], "rules": [{"domain": "x.test"}]}"#,
         "parse dns rule[0]: missing server field"),
        (#"{"servers": [{"type": "udp", "tag": "a", "server": "127.0.0.1"}], "rules": [{"domain": "x.test", "action": "predefined", "answer": ["x.test. IN HINFO a b"]}]}"#,
         "parse dns rule[0]: predefined: answer[0]: record type HINFO in text form: not implemented (give it as base64 wire form)"),
    ])
    func refusesWhatSingBoxRefuses(json: String, message: String) throws {
        #expect { try DNSSetup(options: try dnsOptions(json), context: setupContext()) } throws: { error in
            String(describing: error) == message
        }
    }

    @Test func defaultsToLocalWithoutServers() throws {
        let setup = try DNSSetup(options: try dnsOptions("{}"), context: setupContext())
        #expect(setup.transports.map(\.type) == ["local"])
    }
}
