// Router decisions: first final match wins, non-final actions modify and continue, final outbound.
import Adapter
import Config
import NIOCore
import Router
import Rules
import Testing

/// An outbound that records nothing and dials nothing: decisions only.
final class FakeOutbound: Outbound {
    let type = "fake"
    let tag: String
    let networks: Set<NetworkKind>
    init(_ tag: String, networks: Set<NetworkKind> = [.tcp, .udp]) {
        self.tag = tag
        self.networks = networks
    }
    func dialTCP(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any Channel {
        throw AdapterError(.other, "fake")
    }
    func listenPacket(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any PacketConnection {
        throw AdapterError(.other, "fake")
    }
}

/// A resolver with a fixed table.
struct TableResolver: DNSResolver {
    let table: [String: [Adapter.IPAddress]]
    func lookup(_ domain: String, options: DNSLookupOptions) async throws -> [Adapter.IPAddress] {
        guard let found = table[domain] else { throw AdapterError(.notFound, "lookup \(domain): no such host") }
        return options.strategy.apply(found)
    }
}

func makeRouter(_ rulesJSON: String, final: String? = nil, outbounds tags: [FakeOutbound] = [FakeOutbound("a"), FakeOutbound("b")],
                resolver: (any DNSResolver)? = nil) throws -> (FlowRouter, CapturingSink) {
    let options = try ConfigLoader.decode(json: "{\"route\":{\"rules\":[\(rulesJSON)]}}").options
    let rules = try options.route!.rules.map { try RouteRule(options: $0) }
    let manager = OutboundManager()
    for outbound in tags { manager.add(outbound) }
    manager.setDefault(tag: final)
    let sink = CapturingSink()
    let router = FlowRouter(rules: rules, outbounds: manager, logger: ContextLogger(core: LogCore(level: .trace, sink: sink), name: ""),
                            resolver: resolver)
    return (router, sink)
}

func tag(_ decision: RouteDecision) -> String {
    switch decision {
    case .outbound(let outbound): "route:\(outbound.tag)"
    case .reject(let method): "reject:\(method.rawValue)"
    case .hijackDNS: "hijack-dns"
    case .failure(let error): "failure:\(error.message)"
    }
}

@Suite struct RouterTests {
    @Test func firstFinalMatchWinsAndIsLogged() async throws {
        let (router, sink) = try makeRouter(#"{"port":[80],"outbound":"b"},{"ip_cidr":["1.0.0.0/8"],"outbound":"a"}"#)
        var metadata = flow("1.1.1.1:80")
        #expect(tag(await router.match(&metadata)) == "route:b")
        #expect(sink.text.contains("router: match[0] port=80 => route(b)"))
        #expect(!sink.text.contains("match[1]"))
    }

    @Test func noMatchFallsBackToFinalThenFirstOutbound() async throws {
        var metadata = flow("9.9.9.9:80")
        let (withFinal, _) = try makeRouter(#"{"port":[1],"outbound":"a"}"#, final: "b")
        #expect(tag(await withFinal.match(&metadata)) == "route:b")
        let (withoutFinal, _) = try makeRouter(#"{"port":[1],"outbound":"b"}"#)
        #expect(tag(await withoutFinal.match(&metadata)) == "route:a")
    }

    @Test func routeOptionsApplyAndMatchingContinues() async throws {
        let (router, sink) = try makeRouter("""
            {"port":[80],"action":"route-options","override_address":"10.0.0.1","override_port":8080,"udp_timeout":"10s"},
            {"ip_cidr":["10.0.0.0/8"],"outbound":"b"}
            """)
        var metadata = flow("1.1.1.1:80")
        #expect(tag(await router.match(&metadata)) == "route:b")
        #expect(metadata.destination.description == "10.0.0.1:8080")
        #expect(metadata.originalDestination?.description == "1.1.1.1:80")
        #expect(metadata.udpTimeout == .seconds(10))
        #expect(sink.text.contains("router: match[0] port=80 => route-options(override-address=10.0.0.1,override-port=8080)"))
        #expect(sink.text.contains("router: match[1] ip_cidr=10.0.0.0/8 => route(b)"))
    }

    @Test func rejectAndHijackAreFinal() async throws {
        let (router, sink) = try makeRouter(#"{"domain":["ads.test"],"action":"reject","method":"drop"},{"port":[53],"action":"hijack-dns"},{"outbound":"a","port":[53,80]}"#)
        var ads = flow("ads.test:80")
        #expect(tag(await router.match(&ads)) == "reject:drop")
        var dns = flow("8.8.8.8:53", network: .udp)
        #expect(tag(await router.match(&dns)) == "hijack-dns")
        #expect(sink.text.contains("=> reject(drop)"))
        #expect(sink.text.contains("=> hijack-dns"))
    }

    @Test func resolveFillsAddressesForLaterIPRules() async throws {
        let resolver = TableResolver(table: ["svc.test": [Adapter.IPAddress("10.1.1.1")!, Adapter.IPAddress("fd00::1")!]])
        let (router, sink) = try makeRouter(#"{"domain_suffix":["test"],"action":"resolve","strategy":"ipv4_only"},{"ip_cidr":["10.0.0.0/8"],"outbound":"b"}"#,
                                            resolver: resolver)
        var metadata = flow("svc.test:443")
        #expect(tag(await router.match(&metadata)) == "route:b")
        #expect(metadata.destinationAddresses == [Adapter.IPAddress("10.1.1.1")!])
        #expect(sink.text.contains("=> resolve(ipv4_only)"))
        var missing = flow("nope.test:443")
        #expect(tag(await router.match(&missing)).hasPrefix("failure:resolve nope.test: lookup nope.test"))
    }

    @Test func unknownOutboundAndUnsupportedNetworkFail() async throws {
        let (router, _) = try makeRouter(#"{"port":[1],"outbound":"ghost"},{"port":[2],"outbound":"tcponly"}"#,
                                         outbounds: [FakeOutbound("a"), FakeOutbound("tcponly", networks: [.tcp])])
        var ghost = flow("1.1.1.1:1")
        #expect(tag(await router.match(&ghost)) == "failure:outbound not found: ghost")
        var udp = flow("1.1.1.1:2", network: .udp)
        #expect(tag(await router.match(&udp)) == "failure:UDP is not supported by outbound: tcponly")
    }

    @Test func actionDescriptionsMatchGo() {
        #expect(RouteAction.route(outbound: "x", RouteOverrides(udpDisableDomainUnmapping: true, udpConnect: true)).description
                == "route(x,udp-disable-domain-unmapping,udp-connect)")
        #expect(RouteAction.sniff(sniffers: ["tls", "http"], timeout: .milliseconds(300)).description == "sniff(tls,http,300ms)")
        #expect(RouteAction.sniff(sniffers: [], timeout: nil).description == "sniff")
        #expect(RouteAction.resolve(strategy: .asIs, server: "dns-local").description == "resolve(dns-local)")
        #expect(RouteAction.reject(.default, noDrop: false).description == "reject")
        #expect(RouteAction.routeOptions(RouteOverrides(fallbackDelay: .milliseconds(1500))).description == "route-options(fallback-delay=1.5s)")
    }
}

/// Go's reject flood rule (`RuleActionReject.Error`): the 51st use of one reject rule within 30 s, and
/// every later one in the window, drops instead of refusing; `no_drop` keeps refusing.
@Suite struct RejectFloodTests {
    @Test func fiftyRejectsIn30SecondsThenDrop() async throws {
        let (router, sink) = try makeRouter(#"{"port":[81],"action":"reject"},{"port":[82],"action":"reject","no_drop":true}"#)
        var decisions: [String] = []
        for _ in 0..<52 {
            var metadata = flow("10.0.0.1:81")
            decisions.append(tag(await router.match(&metadata)))
        }
        #expect(decisions.prefix(50).allSatisfy { $0 == "reject:default" })
        #expect(decisions.suffix(2) == ["reject:drop", "reject:drop"])
        #expect(sink.text.contains("dropped due to flooding"))
        for _ in 0..<60 {
            var metadata = flow("10.0.0.1:82")
            #expect(tag(await router.match(&metadata)) == "reject:default")
        }
    }

    @Test func theWindowSlides() throws {
        let rule = RouteRule(condition: .default(DefaultRule(items: [])), action: .reject(.default, noDrop: false))
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        for i in 0..<50 { #expect(rule.rejectMethod(.default, now: start + .milliseconds(Int64(i))).method == .default) }
        #expect(rule.rejectMethod(.default, now: start + .seconds(1)) == (.drop, true))
        // 31 s after the first burst only the two latest uses are in the window.
        #expect(rule.rejectMethod(.default, now: start + .seconds(32)).method == .default)
        let drop = RouteRule(condition: .default(DefaultRule(items: [])), action: .reject(.drop, noDrop: false))
        #expect(drop.rejectMethod(.drop, now: start) == (.drop, false))
    }
}
