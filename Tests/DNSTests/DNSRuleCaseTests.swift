// The DNS rule case table: one config fragment, one query and flow, one expected outcome, and where
// that expectation comes from (sing-box 1.12 docs at sing-box.sagernet.org/configuration/dns/rule/
// and …/rule_action/, or the Go source file that decides it). Servers "a" and "b" answer every
// address query with their own addresses (a: 10.0.0.1 / fd00::1, b: 203.0.113.7 / 2001:db8::7) and
// every other query with a TXT record naming themselves, so the answer tells who was asked.
import Testing
import Adapter
import Config
import Rules
@testable import DNS

/// What a case expects back.
enum DNSRuleExpectation: Sendable, Equatable, CustomStringConvertible {
    /// Answered by server "a" or "b" (or the first address of a fakeip answer: "fake").
    case server(String)
    /// A response with this RCODE and no answers.
    case rcode(DNSRcode)
    /// NOERROR without answers (a strategy refused the family).
    case empty
    /// No answer at all (reject drop).
    case dropped
    /// A predefined answer with exactly these address/TTL pairs.
    case answer([String])
    /// For lookups: the addresses returned.
    case addresses([String])
    /// For lookups: an error whose description contains this.
    case lookupError(String)

    var description: String {
        switch self {
        case .server(let tag): "server(\(tag))"
        case .rcode(let rcode): "rcode(\(rcode))"
        case .empty: "empty"
        case .dropped: "dropped"
        case .answer(let list): "answer(\(list))"
        case .addresses(let list): "addresses(\(list))"
        case .lookupError(let text): "lookupError(\(text))"
        }
    }
}

struct DNSRuleCase: Sendable, CustomTestStringConvertible {
    var name: String
    /// The `dns.rules` array as JSON.
    var rules: String
    var domain: String
    var type: DNSType = .a
    /// A lookup (`domain_resolver` / `resolve`) instead of a hijacked query.
    var lookup = false
    var inbound = "dns-in"
    var source = "192.168.1.5"
    var sourcePort: UInt16 = 40000
    var network: NetworkKind = .udp
    var expect: DNSRuleExpectation
    /// Where the expectation comes from.
    var reference: String

    var testDescription: String { name }
}

private let docsRule = "docs: configuration/dns/rule"
private let docsAction = "docs: configuration/dns/rule_action"
private let goRouter = "Go: dns/router.go"
private let goRuleDNS = "Go: route/rule/rule_dns.go + rule_abstract.go"
private let goClient = "Go: dns/client.go"

let dnsRuleCases: [DNSRuleCase] = [
    // Routing by domain.
    .init(name: "no rules: final server", rules: "[]", domain: "example.com", expect: .server("a"), reference: "docs: configuration/dns (final)"),
    .init(name: "domain exact", rules: #"[{"domain": "example.com", "server": "b"}]"#, domain: "example.com", expect: .server("b"), reference: docsRule),
    .init(name: "domain exact does not match a subdomain", rules: #"[{"domain": "example.com", "server": "b"}]"#, domain: "www.example.com", expect: .server("a"), reference: docsRule),
    .init(name: "domain is case-insensitive", rules: #"[{"domain": "example.com", "server": "b"}]"#, domain: "EXAMPLE.com", expect: .server("b"), reference: "Go: sing/common/domain matcher (lowercases)"),
    .init(name: "domain_suffix matches a subdomain", rules: #"[{"domain_suffix": "example.com", "server": "b"}]"#, domain: "a.b.example.com", expect: .server("b"), reference: docsRule),
    .init(name: "domain_suffix matches the apex", rules: #"[{"domain_suffix": "example.com", "server": "b"}]"#, domain: "example.com", expect: .server("b"), reference: docsRule),
    .init(name: "domain_suffix is label-aligned", rules: #"[{"domain_suffix": "example.com", "server": "b"}]"#, domain: "badexample.com", expect: .server("a"), reference: "Go: sing/common/domain matcher"),
    .init(name: "domain_suffix with a leading dot skips the apex", rules: #"[{"domain_suffix": ".example.com", "server": "b"}]"#, domain: "example.com", expect: .server("a"), reference: "Go: sing/common/domain matcher"),
    .init(name: "domain_keyword", rules: #"[{"domain_keyword": "track", "server": "b"}]"#, domain: "ads.tracker.net", expect: .server("b"), reference: docsRule),
    .init(name: "domain_regex", rules: #"[{"domain_regex": "^ads\\.", "server": "b"}]"#, domain: "ads.tracker.net", expect: .server("b"), reference: docsRule),
    .init(name: "domain items OR within their group", rules: #"[{"domain": "x.org", "domain_keyword": "tracker", "server": "b"}]"#, domain: "ads.tracker.net", expect: .server("b"), reference: goRuleDNS),
    // Query and flow items.
    .init(name: "query_type by name", rules: #"[{"query_type": ["A"], "server": "b"}]"#, domain: "example.com", expect: .server("b"), reference: docsRule),
    .init(name: "query_type mismatch", rules: #"[{"query_type": ["AAAA"], "server": "b"}]"#, domain: "example.com", expect: .server("a"), reference: docsRule),
    .init(name: "query_type by number", rules: #"[{"query_type": [28], "server": "b"}]"#, domain: "example.com", type: .aaaa, expect: .server("b"), reference: docsRule),
    .init(name: "query_type on a TXT question", rules: #"[{"query_type": ["TXT"], "server": "b"}]"#, domain: "example.com", type: .txt, expect: .server("b"), reference: docsRule),
    .init(name: "query_type never matches a lookup", rules: #"[{"query_type": ["A"], "server": "b"}]"#, domain: "example.com", lookup: true, expect: .addresses(["10.0.0.1", "fd00::1"]), reference: "Go: dns/router.go Lookup leaves QueryType 0"),
    .init(name: "ip_version 6 from an AAAA question", rules: #"[{"ip_version": 6, "server": "b"}]"#, domain: "example.com", type: .aaaa, expect: .server("b"), reference: goRouter),
    .init(name: "ip_version 4 does not match AAAA", rules: #"[{"ip_version": 4, "server": "b"}]"#, domain: "example.com", type: .aaaa, expect: .server("a"), reference: goRouter),
    .init(name: "inbound", rules: #"[{"inbound": ["dns-in"], "server": "b"}]"#, domain: "example.com", expect: .server("b"), reference: docsRule),
    .init(name: "inbound mismatch", rules: #"[{"inbound": ["other-in"], "server": "b"}]"#, domain: "example.com", expect: .server("a"), reference: docsRule),
    .init(name: "source_ip_cidr", rules: #"[{"source_ip_cidr": ["192.168.0.0/16"], "server": "b"}]"#, domain: "example.com", expect: .server("b"), reference: docsRule),
    .init(name: "source_ip_cidr mismatch", rules: #"[{"source_ip_cidr": ["10.0.0.0/8"], "server": "b"}]"#, domain: "example.com", expect: .server("a"), reference: docsRule),
    .init(name: "source_ip_is_private", rules: #"[{"source_ip_is_private": true, "server": "b"}]"#, domain: "example.com", expect: .server("b"), reference: docsRule),
    .init(name: "source_port", rules: #"[{"source_port": [40000], "server": "b"}]"#, domain: "example.com", expect: .server("b"), reference: docsRule),
    .init(name: "source_port_range", rules: #"[{"source_port_range": ["39000:41000"], "server": "b"}]"#, domain: "example.com", expect: .server("b"), reference: docsRule),
    .init(name: "port never matches: the query has no destination", rules: #"[{"port": [53], "server": "b"}]"#, domain: "example.com", expect: .server("a"), reference: "Go: dns/router.go resets metadata.Destination"),
    .init(name: "network udp", rules: #"[{"network": ["udp"], "server": "b"}]"#, domain: "example.com", expect: .server("b"), reference: docsRule),
    .init(name: "network tcp on a TCP flow", rules: #"[{"network": ["tcp"], "server": "b"}]"#, domain: "example.com", network: .tcp, expect: .server("b"), reference: docsRule),
    .init(name: "network tcp on a UDP flow", rules: #"[{"network": ["tcp"], "server": "b"}]"#, domain: "example.com", expect: .server("a"), reference: docsRule),
    .init(name: "items of different groups AND", rules: #"[{"domain": "example.com", "source_ip_cidr": ["10.0.0.0/8"], "server": "b"}]"#, domain: "example.com", expect: .server("a"), reference: goRuleDNS),
    .init(name: "invert", rules: #"[{"domain": "example.com", "invert": true, "server": "b"}]"#, domain: "other.org", expect: .server("b"), reference: docsRule),
    .init(name: "invert on a match", rules: #"[{"domain": "example.com", "invert": true, "server": "b"}]"#, domain: "example.com", expect: .server("a"), reference: docsRule),
    // Logical rules.
    .init(name: "logical and", rules: #"[{"type": "logical", "mode": "and", "rules": [{"domain_suffix": "example.com"}, {"query_type": "A"}], "server": "b"}]"#, domain: "www.example.com", expect: .server("b"), reference: docsRule),
    .init(name: "logical and, one fails", rules: #"[{"type": "logical", "mode": "and", "rules": [{"domain_suffix": "example.com"}, {"query_type": "AAAA"}], "server": "b"}]"#, domain: "www.example.com", expect: .server("a"), reference: docsRule),
    .init(name: "logical or", rules: #"[{"type": "logical", "mode": "or", "rules": [{"domain": "nope.test"}, {"domain_keyword": "other"}], "server": "b"}]"#, domain: "other.org", expect: .server("b"), reference: docsRule),
    .init(name: "logical invert", rules: #"[{"type": "logical", "mode": "or", "invert": true, "rules": [{"domain": "example.com"}], "server": "b"}]"#, domain: "other.org", expect: .server("b"), reference: docsRule),
    // Order and actions.
    .init(name: "first matching rule wins", rules: #"[{"domain": "example.com", "server": "b"}, {"domain": "example.com", "server": "a"}]"#, domain: "example.com", expect: .server("b"), reference: docsRule),
    .init(name: "a route to an unknown server is skipped", rules: #"[{"domain": "example.com", "server": "nope"}, {"domain": "example.com", "server": "b"}]"#, domain: "example.com", expect: .server("b"), reference: goRouter + " (transport not found: continue)"),
    .init(name: "reject answers REFUSED", rules: #"[{"domain": "example.com", "action": "reject"}]"#, domain: "example.com", expect: .rcode(.refused), reference: docsAction),
    .init(name: "reject drop answers nothing", rules: #"[{"domain": "example.com", "action": "reject", "method": "drop"}]"#, domain: "example.com", expect: .dropped, reference: docsAction),
    .init(name: "reject fails a lookup", rules: #"[{"domain": "example.com", "action": "reject"}]"#, domain: "example.com", lookup: true, expect: .lookupError("rejected"), reference: goRouter),
    .init(name: "predefined rcode", rules: #"[{"domain": "example.com", "action": "predefined", "rcode": "NXDOMAIN"}]"#, domain: "example.com", expect: .rcode(.nameError), reference: docsAction),
    .init(name: "predefined answer", rules: #"[{"domain": "example.com", "action": "predefined", "answer": ["example.com. 60 IN A 192.0.2.9"]}]"#, domain: "example.com", expect: .answer(["192.0.2.9/60"]), reference: docsAction),
    .init(name: "predefined wildcard takes the question's name", rules: #"[{"domain_suffix": "example.com", "action": "predefined", "answer": ["*.example.com. 30 IN A 192.0.2.8"]}]"#, domain: "deep.www.example.com", expect: .answer(["deep.www.example.com:192.0.2.8/30"]), reference: "Go: route/rule/rule_action.go rewriteRecords"),
    .init(name: "predefined answers a lookup", rules: #"[{"domain": "example.com", "action": "predefined", "answer": ["example.com. IN A 192.0.2.7"]}]"#, domain: "example.com", lookup: true, expect: .addresses(["192.0.2.7"]), reference: goRouter),
    .init(name: "predefined NXDOMAIN fails a lookup", rules: #"[{"domain": "example.com", "action": "predefined", "rcode": "NXDOMAIN"}]"#, domain: "example.com", lookup: true, expect: .lookupError("NXDOMAIN"), reference: goRouter),
    .init(name: "route-options strategy applies to the later route", rules: #"[{"domain": "example.com", "action": "route-options", "strategy": "ipv4_only"}, {"domain": "example.com", "server": "b"}]"#, domain: "example.com", type: .aaaa, expect: .empty, reference: docsAction + " + " + goClient),
    .init(name: "route-options does not end matching", rules: #"[{"domain": "example.com", "action": "route-options", "disable_cache": true}, {"domain": "example.com", "server": "b"}]"#, domain: "example.com", expect: .server("b"), reference: docsAction),
    .init(name: "route strategy ipv6_only empties an A question", rules: #"[{"domain": "example.com", "server": "b", "strategy": "ipv6_only"}]"#, domain: "example.com", expect: .empty, reference: docsAction),
    .init(name: "route rewrite_ttl", rules: #"[{"domain": "example.com", "server": "b", "rewrite_ttl": 17}]"#, domain: "example.com", expect: .answer(["203.0.113.7/17"]), reference: docsAction),
    .init(name: "fakeip answers an exchange", rules: #"[{"domain": "example.com", "server": "fake"}]"#, domain: "example.com", expect: .server("fake"), reference: "docs: configuration/dns/server/fakeip"),
    .init(name: "fakeip is skipped for lookups", rules: #"[{"domain": "example.com", "server": "fake"}, {"domain": "example.com", "server": "b"}]"#, domain: "example.com", lookup: true, expect: .addresses(["203.0.113.7", "2001:db8::7"]), reference: "Go: dns/router.go matchDNS allowFakeIP=false"),
    // Address limits (ip_cidr, ip_is_private, ip_accept_any on the response).
    .init(name: "ip_cidr accepts a response inside", rules: #"[{"ip_cidr": ["203.0.113.0/24"], "server": "b"}]"#, domain: "example.com", expect: .server("b"), reference: docsRule + " (Address Filter Fields)"),
    .init(name: "ip_cidr rejects a response outside: next rule", rules: #"[{"ip_cidr": ["198.51.100.0/24"], "server": "b"}]"#, domain: "example.com", expect: .server("a"), reference: goRouter + " (responseCheck → continue)"),
    .init(name: "ip_is_private rejects a public response", rules: #"[{"ip_is_private": true, "server": "b"}]"#, domain: "example.com", expect: .server("a"), reference: docsRule),
    .init(name: "ip_is_private accepts a private response", rules: #"[{"ip_is_private": true, "server": "a"}, {"domain": "example.com", "server": "b"}]"#, domain: "example.com", expect: .server("a"), reference: docsRule),
    .init(name: "ip_accept_any", rules: #"[{"ip_accept_any": true, "server": "b"}]"#, domain: "example.com", expect: .server("b"), reference: docsRule),
    .init(name: "address-limit rules skip non-address queries", rules: #"[{"ip_accept_any": true, "server": "b"}]"#, domain: "example.com", type: .txt, expect: .server("a"), reference: goRouter + " (isAddressQuery)"),
    .init(name: "address limit applies to lookups", rules: #"[{"ip_cidr": ["198.51.100.0/24"], "server": "b"}]"#, domain: "example.com", lookup: true, expect: .addresses(["10.0.0.1", "fd00::1"]), reference: goRouter),
    .init(name: "domain and ip_cidr share a group: the domain satisfies it", rules: #"[{"domain": "example.com", "ip_cidr": ["198.51.100.0/24"], "server": "b"}]"#, domain: "example.com", expect: .server("b"), reference: goRuleDNS),
    // Rule-sets.
    .init(name: "rule_set domain", rules: #"[{"rule_set": "set-domain", "server": "b"}]"#, domain: "www.example.com", expect: .server("b"), reference: docsRule),
    .init(name: "rule_set mismatch", rules: #"[{"rule_set": "set-domain", "server": "b"}]"#, domain: "other.org", expect: .server("a"), reference: docsRule),
    .init(name: "rule_set with ip_cidr is an address limit", rules: #"[{"rule_set": "set-cidr", "server": "b"}]"#, domain: "example.com", expect: .server("b"), reference: "Go: route/rule/rule_item_rule_set.go ContainsDestinationIPCIDRRule"),
    .init(name: "rule_set ip_cidr rejects outside answers", rules: #"[{"rule_set": "set-cidr-other", "server": "b"}]"#, domain: "example.com", expect: .server("a"), reference: "Go: route/rule/rule_item_rule_set.go"),
    .init(name: "rule_set_ip_cidr_match_source", rules: #"[{"rule_set": "set-source", "rule_set_ip_cidr_match_source": true, "server": "b"}]"#, domain: "example.com", type: .txt, expect: .server("b"), reference: docsRule),
    // Go 1.12 quirk, kept: with match_source the rule has no address limit, and the first pass skips
    // the set's ip_cidr items, so an ip_cidr-only set matches any source.
    .init(name: "rule_set_ip_cidr_match_source: ip_cidr-only set matches any source", rules: #"[{"rule_set": "set-source", "rule_set_ip_cidr_match_source": true, "server": "b"}]"#, domain: "example.com", type: .txt, source: "172.20.0.1", expect: .server("b"), reference: goRuleDNS + " (IgnoreDestinationIPCIDRMatch, DidMatch)"),
    .init(name: "rule_set_ip_cidr_match_source with a domain in the set", rules: #"[{"rule_set": "set-mixed", "rule_set_ip_cidr_match_source": true, "server": "b"}]"#, domain: "other.org", type: .txt, expect: .server("a"), reference: goRuleDNS),
]

@Suite struct DNSRuleCaseTests {
    /// Inline rule-sets the cases name.
    static let ruleSetsJSON = #"""
    [{"type": "inline", "tag": "set-domain", "rules": [{"domain_suffix": "example.com"}]},
     {"type": "inline", "tag": "set-cidr", "rules": [{"ip_cidr": "203.0.113.0/24"}]},
     {"type": "inline", "tag": "set-cidr-other", "rules": [{"ip_cidr": "198.51.100.0/24"}]},
     {"type": "inline", "tag": "set-source", "rules": [{"ip_cidr": "192.168.0.0/16"}]},
     {"type": "inline", "tag": "set-mixed", "rules": [{"domain": "example.com", "ip_cidr": "192.168.0.0/16"}]}]
    """#

    /// A server answering addresses or a TXT naming itself.
    static func server(_ tag: String, v4: String, v6: String) -> FakeTransport {
        FakeTransport(tag: tag) { query in
            guard let question = query.question else { throw DNSError.noQuestion }
            switch question.type {
            case .a: return answer(query, [.address(question.name, ip(v4), ttl: 300)])
            case .aaaa: return answer(query, [.address(question.name, ip(v6), ttl: 300)])
            default:
                return answer(query, [DNSResourceRecord(name: question.name, type: .txt, ttl: 300, data: .txt([Array(tag.utf8)]))])
            }
        }
    }

    static func router(rules json: String) throws -> DNSRouter {
        var ruleSets: [String: RuleSet] = [:]
        guard case .array(let sets) = try JSONParser.parse(ruleSetsJSON) else { throw RuleError("bad rule-sets") }
        for set in sets {
            let options = try RuleSetOptions(json: set, path: "rule_set")
            ruleSets[options.tag] = try RuleSet.load(options)
        }
        let options = try dnsOptions(#"{"rules": \#(json)}"#)
        var rules: [DNSRule] = []
        for ruleOptions in options.rules {
            rules.append(DNSRule(condition: try DNSRuleCondition(options: ruleOptions, ruleSets: ruleSets),
                                 action: try DNSRouteAction(options: ruleOptions.action, requireServer: true)))
        }
        let a = server("a", v4: "10.0.0.1", v6: "fd00::1")
        let b = server("b", v4: "203.0.113.7", v6: "2001:db8::7")
        let fake = FakeIPTransport(tag: "fake", store: FakeIPStore(inet4Range: IPPrefix("198.18.0.0/15"), inet6Range: IPPrefix("fc00::/18")))
        return DNSRouter(client: DNSClient(options: DNSClientOptions(disableCache: true)), transports: [a, b, fake],
                         defaultTransport: a, rules: rules)
    }

    @Test func tableHasEnoughCases() {
        #expect(dnsRuleCases.count >= 40)
        #expect(dnsRuleCases.allSatisfy { !$0.reference.isEmpty })
    }

    @Test(arguments: dnsRuleCases) func ruleCase(_ testCase: DNSRuleCase) async throws {
        let router = try Self.router(rules: testCase.rules)
        var metadata = FlowMetadata(inbound: testCase.inbound, inboundType: "direct", network: testCase.network,
                                    source: Destination(ip: ip(testCase.source), port: testCase.sourcePort),
                                    destination: Destination(ip: ip("192.0.2.53"), port: 53))
        metadata.sniffedProtocol = "dns"
        if testCase.lookup {
            let outcome: DNSRuleExpectation
            do {
                let addresses = try await router.lookup(testCase.domain, options: DNSLookupOptions(), metadata: metadata)
                outcome = .addresses(addresses.map(\.description))
            } catch {
                if case .lookupError(let text) = testCase.expect, "\(error)".contains(text) { return }
                outcome = .lookupError("\(error)")
            }
            #expect(outcome == testCase.expect, "\(testCase.name) [\(testCase.reference)]")
            return
        }
        let query = DNSMessage.query(id: 0x4242, name: try DNSName(testCase.domain), type: testCase.type)
        let outcome: DNSRuleExpectation
        do {
            let response = try await router.exchange(query, metadata: metadata)
            #expect(response.id == 0x4242)
            outcome = Self.classify(response, expected: testCase.expect)
        } catch DNSRejection.dropped {
            outcome = .dropped
        }
        #expect(outcome == testCase.expect, "\(testCase.name) [\(testCase.reference)]")
    }

    /// Reads a response in the terms the expectation uses.
    static func classify(_ response: DNSMessage, expected: DNSRuleExpectation) -> DNSRuleExpectation {
        if response.rcode != .noError { return response.answers.isEmpty ? .rcode(response.rcode) : .answer(["rcode \(response.rcode)"]) }
        if response.answers.isEmpty { return .empty }
        if case .answer(let list) = expected {
            let withName = list.contains { $0.contains(":") && !$0.contains("::") }
            return .answer(response.answers.map { record in
                let address = record.data.addressText
                return withName ? "\(record.name.domain):\(address)/\(record.ttl)" : "\(address)/\(record.ttl)"
            })
        }
        let first = response.answers[0]
        switch first.data {
        case .a(let address), .aaaa(let address):
            if address == ip("10.0.0.1") || address == ip("fd00::1") { return .server("a") }
            if address == ip("203.0.113.7") || address == ip("2001:db8::7") { return .server("b") }
            if IPPrefix("198.18.0.0/15")!.contains(address) { return .server("fake") }
            return .answer([address.description])
        case .txt(let strings):
            return .server(String(decoding: strings.first ?? [], as: UTF8.self))
        default:
            return .answer(["\(first)"])
        }
    }

    /// A lookup made by the box itself has no flow: flow items (network, inbound) never match it.
    @Test func flowlessLookupMatchesNoFlowItems() async throws {
        let router = try Self.router(rules: #"[{"network": "udp", "server": "b"}, {"domain": "example.com", "server": "b"}]"#)
        #expect(try await router.lookup("other.org", options: DNSLookupOptions()) == [ip("10.0.0.1"), ip("fd00::1")])
        #expect(try await router.lookup("example.com", options: DNSLookupOptions()) == [ip("203.0.113.7"), ip("2001:db8::7")])
        // Deprecated `outbound: any` (1.11 configs) matches lookups made without a flow only.
        let legacy = try Self.router(rules: #"[{"outbound": "any", "server": "b"}]"#)
        #expect(try await legacy.lookup("other.org", options: DNSLookupOptions(strategy: .ipv4Only)) == [ip("203.0.113.7")])
        let flow = FlowMetadata(inbound: "in", inboundType: "direct", network: .udp, source: nil, destination: Destination(domain: "x", port: 53))
        #expect(try await legacy.exchange(.query(name: try DNSName("other.org"), type: .a), metadata: flow).addresses == [ip("10.0.0.1")])
        // A named server (domain_resolver.server) skips the rules.
        #expect(try await router.lookup("example.com", options: DNSLookupOptions(server: "a", strategy: .ipv4Only)) == [ip("10.0.0.1")])
    }

    /// reverse_mapping keeps an answer's domain for its TTL, and not a fakeip answer's.
    @Test func reverseMappingFollowsTTL() async throws {
        let clock = TestClock()
        let mapping = DNSReverseMapping(now: clock.now)
        mapping.add(ip("203.0.113.7"), domain: "example.com", ttl: 60)
        #expect(mapping.lookup(ip("203.0.113.7")) == "example.com")
        #expect(mapping.lookup(ip("::ffff:203.0.113.7")) == "example.com")
        clock.advance(.seconds(61))
        #expect(mapping.lookup(ip("203.0.113.7")) == nil)

        let options = try dnsOptions(#"{"rules": [{"domain": "fake.test", "server": "fake"}]}"#)
        let rules = try options.rules.map { DNSRule(condition: try DNSRuleCondition(options: $0, ruleSets: [:]),
                                                    action: try DNSRouteAction(options: $0.action, requireServer: true)) }
        let a = Self.server("a", v4: "10.0.0.1", v6: "fd00::1")
        let fake = FakeIPTransport(tag: "fake", store: FakeIPStore(inet4Range: IPPrefix("198.18.0.0/15"), inet6Range: nil))
        let router = DNSRouter(client: DNSClient(), transports: [a, fake], defaultTransport: a, rules: rules, reverseMapping: true)
        _ = try await router.exchange(.query(name: try DNSName("real.test"), type: .a), metadata: nil)
        let fakeAnswer = try await router.exchange(.query(name: try DNSName("fake.test"), type: .a), metadata: nil)
        #expect(router.reverseDomain(for: ip("10.0.0.1")) == "real.test")
        #expect(fakeAnswer.addresses.count == 1)
        #expect(fakeAnswer.addresses.first.flatMap { router.reverseDomain(for: $0) } == nil)
        let mapper = DNSRouterDomainMapper(router: router, fakeIPStore: fake.store)
        #expect(fakeAnswer.addresses.first.map { mapper.fakeIPMapping(for: $0) } == .domain("fake.test"))
        #expect(mapper.fakeIPMapping(for: ip("198.18.200.1")) == .missing)
        #expect(mapper.fakeIPMapping(for: ip("10.0.0.1")) == .notFake)
    }

    // Building rules: sing-box's errors for bad rules.
    @Test(arguments: [
        (#"[{"domain": "x.test"}]"#, "missing server field"),
        (#"[{"server": "a"}]"#, "missing conditions"),
        (#"[{"ip_version": 5, "server": "a"}]"#, "invalid ip version: 5"),
        (#"[{"rule_set": "nope", "server": "a"}]"#, "rule-set not found: nope"),
        (#"[{"type": "logical", "mode": "xor", "rules": [{"domain": "x"}], "server": "a"}]"#, "unknown logical mode: xor"),
        (#"[{"domain": "x.test", "action": "predefined", "answer": ["x.test. IN HINFO a b"]}]"#, "predefined: answer[0]"),
    ])
    func badRulesFail(_ json: String, _ message: String) throws {
        do {
            _ = try Self.router(rules: json)
            Issue.record("built a bad rule: \(json)")
        } catch {
            #expect("\(error)".contains(message), "\(error)")
        }
    }
}

extension DNSRData {
    /// The address of an A/AAAA record as text.
    var addressText: String {
        switch self {
        case .a(let address), .aaaa(let address): address.description
        default: "\(self)"
        }
    }
}
