// The `resolved` DNS server's choices, without sockets: which link a name goes to (per-link
// domains, `~.` only with accept_default_resolvers, the default-route fallback), which names it
// tries (search domains), and sing-box's errors. The wire path is covered by ResolvedTests against
// real dnsmasq upstreams.
import Adapter
import Config
@testable import DNS
import Synchronization
import Testing

/// Links as a test states them.
final class FixedLinkSource: ResolvedLinkSource {
    let links: [ResolvedLink]
    let defaultRouteOrder: [Int32]
    init(_ links: [ResolvedLink], defaultRouteOrder: [Int32] = []) {
        self.links = links
        self.defaultRouteOrder = defaultRouteOrder
    }
}

@Suite struct ResolvedTransportTests {
    static let server = ResolvedLinkServer(address: IPAddress("192.0.2.53")!)

    static func link(_ index: Int32, _ domains: [(String, Bool)], servers: [ResolvedLinkServer] = [server]) -> ResolvedLink {
        ResolvedLink(index: index, name: "l\(index)", servers: servers,
                     domains: domains.map { ResolvedLinkDomain(name: $0.0, routingOnly: $0.1) })
    }

    func transport(_ source: FixedLinkSource, acceptDefault: Bool = false) -> ResolvedTransport {
        ResolvedTransport(tag: "r", source: source, acceptDefaultResolvers: acceptDefault, context: setupContext())
    }

    @Test func longestMatchingDomainWins() {
        let source = FixedLinkSource([Self.link(1, [("example", true)]), Self.link(2, [("corp.example", false)])])
        let resolved = transport(source)
        #expect(resolved.selectLink(for: "host.corp.example")?.index == 2)
        #expect(resolved.selectLink(for: "www.example")?.index == 1)
        #expect(resolved.selectLink(for: "example")?.index == 1)
        // Label boundaries: "notexample" is not under "example".
        #expect(resolved.selectLink(for: "notexample") == nil)
    }

    @Test func rootRouteAndDefaultLinksNeedAcceptDefaultResolvers() {
        let source = FixedLinkSource([Self.link(1, [("", true)]), Self.link(2, []), Self.link(3, [], servers: [])],
                                     defaultRouteOrder: [2, 1])
        #expect(transport(source).selectLink(for: "anything.test") == nil)
        // `~.` matches everything once default resolvers are accepted.
        #expect(transport(source, acceptDefault: true).selectLink(for: "anything.test")?.index == 1)
        let noRoot = FixedLinkSource([Self.link(1, [("corp", true)]), Self.link(2, []), Self.link(3, [], servers: [])],
                                     defaultRouteOrder: [2, 3])
        // The most recent default-route link with servers (link 3 has none; link 1 routes only corp).
        #expect(transport(noRoot, acceptDefault: true).selectLink(for: "anything.test")?.index == 2)
    }

    @Test func searchDomainsApplyToSingleLabelNames() {
        let link = Self.link(1, [("corp.example", false), ("routed", true), ("lab.example", false)])
        #expect(ResolvedTransport.nameList(link: link, ndots: 1, name: "printer")
                == ["printer.corp.example.", "printer.lab.example.", "printer."])
        #expect(ResolvedTransport.nameList(link: link, ndots: 1, name: "www.example.com")
                == ["www.example.com.", "www.example.com.corp.example.", "www.example.com.lab.example."])
        #expect(ResolvedTransport.nameList(link: link, ndots: 1, name: "hidden.onion") == ["hidden.onion.corp.example.", "hidden.onion.lab.example."])
    }

    @Test func noLinkAnswersNXDOMAIN() async throws {
        let resolved = transport(FixedLinkSource([]))
        let query = DNSMessage.query(id: 7, name: try DNSName("host.test"), type: .a)
        let response = try await resolved.exchange(query)
        #expect(response.rcode == .nameError && response.id == 7)
    }

    @Test func missingServiceIsSingBoxsError() throws {
        var options = ResolvedDNSServerOptions()
        options.service = "nowhere"
        #expect { try ResolvedTransport(tag: "r", options: options, context: setupContext()) } throws: { error in
            "\(error)".contains("service not found: nowhere")
        }
    }
}
