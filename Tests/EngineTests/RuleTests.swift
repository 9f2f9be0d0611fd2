// Rule items and their combination, as sing-box's abstractDefaultRule combines them.
import Adapter
import Config
import Rules
import Testing

func flow(_ destination: String, source: String = "192.168.1.10:50000", network: NetworkKind = .tcp,
          inbound: String = "in", user: String? = nil, sniffedDomain: String? = nil) -> FlowMetadata {
    var metadata = FlowMetadata(inbound: inbound, inboundType: "mixed", network: network,
                                source: Destination(source), destination: Destination(destination)!)
    metadata.user = user
    metadata.sniffedDomain = sniffedDomain
    return metadata
}

/// Builds a default rule from JSON the way the config does.
func rule(_ json: String) throws -> HeadlessRule {
    let options = try ConfigLoader.decode(json: "{\"route\":{\"rules\":[\(json)]}}").options
    return try HeadlessRule(options: options.route!.rules[0])
}

@Suite struct RuleTests {
    @Test(arguments: [
        // domain / suffix / keyword / regex
        (#"{"domain":["example.com"],"outbound":"x"}"#, "example.com:443", true),
        (#"{"domain":["example.com"],"outbound":"x"}"#, "www.example.com:443", false),
        (#"{"domain_suffix":["example.com"],"outbound":"x"}"#, "www.example.com:443", true),
        (#"{"domain_suffix":["example.com"],"outbound":"x"}"#, "example.com:443", true),
        (#"{"domain_suffix":["example.com"],"outbound":"x"}"#, "badexample.com:443", false),
        (#"{"domain_suffix":[".example.com"],"outbound":"x"}"#, "example.com:443", false),
        (#"{"domain_suffix":[".example.com"],"outbound":"x"}"#, "a.example.com:443", true),
        (#"{"domain_keyword":["goog"],"outbound":"x"}"#, "www.GOOGLE.com:80", true),
        (#"{"domain_regex":["^api\\d+\\.test$"],"outbound":"x"}"#, "api42.test:80", true),
        (#"{"domain_regex":["^api\\d+\\.test$"],"outbound":"x"}"#, "api.test:80", false),
        (#"{"domain":["example.com"],"outbound":"x"}"#, "93.184.216.34:443", false),
        // ip_cidr / ip_is_private
        (#"{"ip_cidr":["10.0.0.0/8","fd00::/8"],"outbound":"x"}"#, "10.9.8.7:22", true),
        (#"{"ip_cidr":["10.0.0.0/8","fd00::/8"],"outbound":"x"}"#, "[fd00::5]:22", true),
        (#"{"ip_cidr":["10.0.0.0/8"],"outbound":"x"}"#, "11.0.0.1:22", false),
        (#"{"ip_is_private":true,"outbound":"x"}"#, "192.168.0.1:80", true),
        (#"{"ip_is_private":true,"outbound":"x"}"#, "1.1.1.1:80", false),
        // ports
        (#"{"port":[80,443],"outbound":"x"}"#, "1.1.1.1:443", true),
        (#"{"port":[80,443],"outbound":"x"}"#, "1.1.1.1:8443", false),
        (#"{"port_range":["1000:2000"],"outbound":"x"}"#, "1.1.1.1:1500", true),
        (#"{"port_range":[":100"],"outbound":"x"}"#, "1.1.1.1:99", true),
        (#"{"port_range":["60000:"],"outbound":"x"}"#, "1.1.1.1:65535", true),
        (#"{"port_range":["1000:2000"],"outbound":"x"}"#, "1.1.1.1:2001", false),
        // groups: a domain item OR an ip item satisfies the destination-address group
        (#"{"domain":["a.test"],"ip_cidr":["1.0.0.0/8"],"outbound":"x"}"#, "1.2.3.4:80", true),
        (#"{"domain":["a.test"],"ip_cidr":["1.0.0.0/8"],"outbound":"x"}"#, "a.test:80", true),
        (#"{"domain":["a.test"],"ip_cidr":["1.0.0.0/8"],"outbound":"x"}"#, "b.test:80", false),
        // groups AND each other: address group and port group must both hold
        (#"{"domain":["a.test"],"port":[443],"outbound":"x"}"#, "a.test:80", false),
        (#"{"domain":["a.test"],"port":[443],"outbound":"x"}"#, "a.test:443", true),
        // invert
        (#"{"domain":["a.test"],"invert":true,"outbound":"x"}"#, "a.test:80", false),
        (#"{"domain":["a.test"],"invert":true,"outbound":"x"}"#, "b.test:80", true),
        // source items
        (#"{"source_ip_cidr":["192.168.1.0/24"],"outbound":"x"}"#, "1.1.1.1:80", true),
        (#"{"source_ip_cidr":["192.168.2.0/24"],"outbound":"x"}"#, "1.1.1.1:80", false),
        (#"{"source_ip_is_private":true,"outbound":"x"}"#, "1.1.1.1:80", true),
        (#"{"source_port":[50000],"outbound":"x"}"#, "1.1.1.1:80", true),
        (#"{"source_port_range":["1:49999"],"outbound":"x"}"#, "1.1.1.1:80", false),
        // plain items
        (#"{"inbound":["in"],"outbound":"x"}"#, "1.1.1.1:80", true),
        (#"{"inbound":["other"],"outbound":"x"}"#, "1.1.1.1:80", false),
        (#"{"network":["udp"],"outbound":"x"}"#, "1.1.1.1:80", false),
        (#"{"network":"tcp","outbound":"x"}"#, "1.1.1.1:80", true),
        (#"{"ip_version":6,"outbound":"x"}"#, "1.1.1.1:80", false),
        (#"{"ip_version":4,"outbound":"x"}"#, "1.1.1.1:80", true),
        // logical
        (#"{"type":"logical","mode":"and","rules":[{"port":[80]},{"ip_cidr":["1.0.0.0/8"]}],"outbound":"x"}"#, "1.1.1.1:80", true),
        (#"{"type":"logical","mode":"and","rules":[{"port":[80]},{"ip_cidr":["2.0.0.0/8"]}],"outbound":"x"}"#, "1.1.1.1:80", false),
        (#"{"type":"logical","mode":"or","rules":[{"port":[81]},{"ip_cidr":["1.0.0.0/8"]}],"outbound":"x"}"#, "1.1.1.1:80", true),
        (#"{"type":"logical","mode":"or","rules":[{"port":[81]},{"ip_cidr":["1.0.0.0/8"]}],"invert":true,"outbound":"x"}"#, "1.1.1.1:80", false),
    ])
    func matchesLikeSingBox(json: String, destination: String, expected: Bool) throws {
        #expect(try rule(json).matches(flow(destination)) == expected)
    }

    @Test func authUserAndSniffedDomain() throws {
        let users = try rule(#"{"auth_user":["alice"],"outbound":"x"}"#)
        #expect(users.matches(flow("1.1.1.1:80", user: "alice")))
        #expect(!users.matches(flow("1.1.1.1:80", user: "bob")))
        #expect(!users.matches(flow("1.1.1.1:80")))
        // A sniffed domain is matched before the destination's own (Go's metadata.Domain).
        let domain = try rule(#"{"domain_suffix":["video.test"],"outbound":"x"}"#)
        #expect(domain.matches(flow("10.0.0.1:443", sniffedDomain: "cdn.video.test")))
    }

    @Test(arguments: [
        (#"{"domain":["a.test"],"outbound":"x"}"#, "domain=a.test"),
        (#"{"domain":["a","b"],"domain_suffix":["c"],"outbound":"x"}"#, "domain=[a b] domain_suffix=c"),
        (#"{"domain_keyword":["a","b","c","d"],"outbound":"x"}"#, "domain_keyword=[a b c...]"),
        (#"{"ip_cidr":["127.0.0.0/8"],"outbound":"x"}"#, "ip_cidr=127.0.0.0/8"),
        (#"{"port":[80,443],"network":"tcp","outbound":"x"}"#, "network=tcp port=[80 443]"),
        (#"{"ip_is_private":true,"invert":true,"outbound":"x"}"#, "!(ip_is_private=true)"),
        (#"{"inbound":["a","b"],"source_port_range":["1:2"],"outbound":"x"}"#, "inbound=[a b] source_port_range=1:2"),
        (#"{"type":"logical","mode":"and","rules":[{"port":[80]},{"domain":["x"]}],"outbound":"x"}"#, "port=80 && domain=x"),
    ])
    func describesItemsLikeGo(json: String, text: String) throws {
        #expect(try rule(json).description == text)
    }

    @Test func refusesWhatItCannotEvaluate() {
        #expect(throws: RuleError.self) { try rule(#"{"rule_set":["x"],"rule_set_ip_cidr_match_source":true,"outbound":"x"}"#) }
    }
}

@Suite struct RuleSetTests {
    func rules(_ routeJSON: String) throws -> [HeadlessRule] {
        let options = try ConfigLoader.decode(json: "{\"route\":\(routeJSON)}").options
        var sets: [String: RuleSet] = [:]
        for set in options.route!.ruleSet { sets[set.tag] = try RuleSet.load(set) }
        return try options.route!.rules.map { try HeadlessRule(options: $0, ruleSets: sets) }
    }

    @Test func inlineRuleSetMatchesAnyOfItsRules() throws {
        let compiled = try rules("""
            {"rule_set":[{"tag":"ads","type":"inline","rules":[{"domain_suffix":["ads.test"]},{"ip_cidr":["203.0.113.0/24"]}]}],
             "rules":[{"rule_set":["ads"],"outbound":"block"},{"rule_set":"ads","port":[443],"outbound":"block"}]}
            """)
        #expect(compiled[0].matches(flow("x.ads.test:80")))
        #expect(compiled[0].matches(flow("203.0.113.9:80")))
        #expect(!compiled[0].matches(flow("example.test:80")))
        #expect(compiled[1].matches(flow("x.ads.test:443")))
        #expect(!compiled[1].matches(flow("x.ads.test:80")))
        #expect(compiled[0].description == "rule_set=ads")
    }

    @Test func localSourceRuleSetIsReadFromDisk() throws {
        let path = "/tmp/engine-ruleset-\(UInt32.random(in: 0 ... .max)).json"
        try Array(#"{"version":2,"rules":[{"domain_keyword":["tracker"]},{"type":"logical","mode":"and","rules":[{"port":[53]},{"network":["udp"]}]}]}"#.utf8)
            .withUnsafeBytes { bytes in
                let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                _ = write(fd, bytes.baseAddress, bytes.count)
                close(fd)
            }
        defer { unlink(path) }
        let compiled = try rules("""
            {"rule_set":[{"tag":"local","type":"local","format":"source","path":"\(path)"}],"rules":[{"rule_set":["local"],"outbound":"x"}]}
            """)
        #expect(compiled[0].matches(flow("mytracker.test:443")))
        #expect(compiled[0].matches(flow("9.9.9.9:53", network: .udp)))
        #expect(!compiled[0].matches(flow("9.9.9.9:53", network: .tcp)))
    }

    @Test func missingLocalSetThrowsAndRemoteSetStartsEmpty() throws {
        let options = try ConfigLoader.decode(json: #"{"route":{"rule_set":[{"tag":"b","type":"local","path":"/x/geosite.srs"},{"tag":"r","type":"remote","url":"https://example.test/r.srs"}]}}"#).options
        let sets = options.route!.ruleSet
        #expect(throws: RuleError.self) { try RuleSet.load(sets[0]) }
        // The box fills a remote set at start (RemoteRuleSetTests); built alone it matches nothing.
        let remote = try RuleSet.load(sets[1])
        #expect(remote.rules.isEmpty)
        #expect(!remote.matches(flow("1.1.1.1:53", network: .tcp)))
    }
}

import Glibc
