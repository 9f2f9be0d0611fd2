// AdGuard DNS filters against Go sing-box 1.12.12: `rule-set convert --type adguard` output, the
// AdGuard item (16) of `.srs` read and written as Go does, `rule-set match` with Go as the oracle,
// and a route decision through a converted rule-set.
import Adapter
import Config
import Foundation
import NIOCore
import Router
import Rules
import Testing
import TestSupport

/// A realistic filter (a few hundred lines) and the names to ask about it, seeded.
struct AdGuardCorpus {
    var text: String
    var queries: [String]

    /// Lines no generator would think of: every branch of Go's converter, each once.
    static let fixed = #"""
        ! Title: AdGuard DNS filter (test copy)
        ! Homepage: https://example.invalid
        # hosts-style comment

        ||ads.example.com^
        ||track*.example.org^
        ||*.wild.example^
        ||ad*vert*.example^
        |start.example.net^
        |startonly.example
        mid.example.com
        end.example.com^
        trailingdot.example.
        @@||good.ads.example.com^
        ||important.example^$important
        @@||unblock.important.example^$important
        @@|exact.ads.example.com^
        /^ad[0-9]+\.example\.com$/
        /^(pop|push)[a-c]*\.example\.io$/$important
        @@/^ok[0-9]+\.ads\.example\.com$/
        0.0.0.0 hosts.example.com
        0.0.0.0 hosts2.example.com
        :: hostsv6.example.com
        127.0.0.1 localhost
        ::1 ip6-localhost
        fe80::1%lo ip6-zoned
        0.0.0.0 two.example.com three.example.com
        ||example.com/path
        ||example.com^$third-party
        ||example.com^$app=com.x
        ||example.com^$dnstype=AAAA
        ||rewrite.example^$dnsrewrite=0.0.0.0
        ||rewrite6.example^$dnsrewrite=[::]
        ||rewrite-bad.example^$dnsrewrite=1.2.3.4
        ||192.168.
        ||10.0.0.1^
        1.2.3.4
        example.com:8080
        .dotstart.com
        -dash.com^
        ||pipe.com^|
        http://scheme.example.com
        https://secure.example.com^
        ||q.com?x=1
        ||amp.com&x
        ##.banner
        example.com##.ad
        ||tilde~.com^
        /10\.0\.[0-9]+\./
        /(https?:\/\/)192\.168\./
        ||
        @@
        plain.example.org
        xyz
        ||UPPER.Example.COM^
        ||under_score.example^
        ||*cdn*.example^
        *banner*
        |*.start-wild.example
        ends-wild.example*
        ||x.example.*^
        @@*safe*
        ||double..dot.example^
        |exact-dot.example.^
        ||dot-suffix.example.
        """#

    static func make(seed: UInt64, lineCount: Int, queryCount: Int) -> AdGuardCorpus {
        var rng = SeededGenerator(seed: seed)
        func label() -> String {
            String((0..<Int.random(in: 1...4, using: &rng)).map { _ in "abcde".randomElement(using: &rng)! })
        }
        func name() -> String {
            (0..<Int.random(in: 1...2, using: &rng)).map { _ in label() }.joined(separator: ".")
                + "." + ["com", "net", "io"].randomElement(using: &rng)!
        }
        func wildcard() -> String {
            var parts = Array(name())
            parts.insert("*", at: Int.random(in: 0..<parts.count, using: &rng))
            return String(parts)
        }
        var names: [String] = []
        var lines = fixed.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        while lines.count < lineCount {
            let n = name()
            names.append(n)
            let line: String
            switch Int.random(in: 0..<20, using: &rng) {
            case 0, 1, 2: line = "||\(n)^"
            case 3: line = "||\(n)"
            case 4: line = "|\(n)^"
            case 5: line = "|\(n)"
            case 6: line = n
            case 7: line = "\(n)^"
            case 8: line = "||\(wildcard())^"
            case 9: line = wildcard()
            case 10: line = "@@||\(label()).\(names.randomElement(using: &rng)!)^"
            case 11: line = "||\(n)^$important"
            case 12: line = "@@||\(n)^$important"
            case 13: line = "0.0.0.0 \(n)"
            case 14: line = "/^\(label())[a-e]*\\.\(n.replacingOccurrences(of: ".", with: "\\."))$/"
            case 15: line = "! comment \(n)"
            case 16: line = "||\(n)/path"
            case 17: line = "||\(n)^$third-party"
            case 18: line = "@@|\(n)^"
            default: line = "||\(n).^"
            }
            lines.append(line)
        }
        var queries: [String] = []
        while queries.count < queryCount {
            let base = names.randomElement(using: &rng)!
            switch Int.random(in: 0..<9, using: &rng) {
            case 0: queries.append(base)
            case 1: queries.append(label() + "." + base)  // a subdomain
            case 2: queries.append(label() + base)  // same tail, no dot
            case 3: queries.append(base + "." + label())  // a longer TLD
            case 4: queries.append(label() + "." + label() + "." + base)
            case 5: queries.append(name())  // probably unlisted
            case 6: queries.append(base.replacingOccurrences(of: ".", with: label() + "."))  // through wildcards
            case 7: queries.append(base.uppercased())
            default: queries.append(base + label())
            }
        }
        queries += ["ads.example.com", "www.ads.example.com", "good.ads.example.com", "x.good.ads.example.com",
                    "exact.ads.example.com", "tracker.example.org", "track.example.org", "a.wild.example", "wild.example",
                    "adXvertY.example", "advert.example", "start.example.net", "a.start.example.net", "startonly.example.com",
                    "mid.example.com", "xmid.example.com.cn", "end.example.com", "end.example.com.cn", "trailingdot.example.x",
                    "important.example", "unblock.important.example", "a.unblock.important.example", "ad12.example.com",
                    "ok12.ads.example.com", "popab.example.io", "hosts.example.com", "sub.hosts.example.com",
                    "hostsv6.example.com", "localhost", "two.example.com", "rewrite.example", "rewrite6.example",
                    "rewrite-bad.example", "scheme.example.com", "a.scheme.example.com", "secure.example.com",
                    "a.dotstart.com", "dotstart.com", "x-dash.com", "pipe.com", "plain.example.org", "xyz", "axyz.io",
                    "upper.example.com", "under_score.example", "example.com", "10.0.0.1", "1.2.3.4",
                    "a.cdn.example", "mycdn1.example", "cdn.example", "banner", "topbanners.io", "x.start-wild.example",
                    "start-wild.example", "ends-wild.example", "ends-wild.example.org", "x.example.com", "x.example",
                    "safe.ads.example.com", "banner-safe.io", "exact-dot.example", "dot-suffix.example", "a.dot-suffix.example.net"]
        return AdGuardCorpus(text: lines.joined(separator: "\n") + "\n", queries: queries)
    }
}

@Suite(.serialized) struct AdGuardRuleSetTests {
    /// Filter lines, queries and seed: `ADGUARD_LINES`, `ADGUARD_QUERIES`, `ADGUARD_SEED` for a
    /// long acceptance run; by default 400 lines and 300 generated names (one Go process each).
    static let corpus: AdGuardCorpus = {
        let environment = ProcessInfo.processInfo.environment
        return AdGuardCorpus.make(seed: UInt64(environment["ADGUARD_SEED"] ?? "") ?? 0xad_6a4d,
                                  lineCount: Int(environment["ADGUARD_LINES"] ?? "") ?? 400,
                                  queryCount: Int(environment["ADGUARD_QUERIES"] ?? "") ?? 300)
    }()

    /// Ours: Go's converter steps, then the version-2 file `rule-set convert` writes.
    static func convert(_ text: String, log: [AdGuardFilter.LogLine]? = nil) throws -> (bytes: [UInt8], log: [AdGuardFilter.LogLine]) {
        var lines: [AdGuardFilter.LogLine] = []
        let rules = try AdGuardFilter.rules(from: Array(text.utf8)) { lines.append($0) }
        return (try BinaryRuleSet.write(rules, version: 2), lines)
    }

    /// The log lines Go printed (`--disable-color`), as our `LogLine`s.
    static func goLog(_ stderr: String) -> [AdGuardFilter.LogLine] {
        stderr.split(separator: "\n").compactMap { line in
            if line.hasPrefix("DEBUG[0000] ") { return .debug(String(line.dropFirst(12))) }
            if line.hasPrefix("INFO[0000] ") { return .info(String(line.dropFirst(11))) }
            return nil
        }
    }

    static func metadata(_ domain: String) -> FlowMetadata {
        FlowMetadata(inbound: "", inboundType: "", network: .tcp, source: nil, destination: Destination(domain: domain, port: 443))
    }

    /// Go converts; we convert: same header, same inflated body (the zlib encoders differ, as for
    /// `rule-set compile`), and the same debug/info lines about dropped lines.
    @Test func convertIsByteIdenticalToGo() throws {
        let dir = try GoPeer.scratch("adguard-convert")
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.corpus.text.write(to: dir.appendingPathComponent("filter.txt"), atomically: true, encoding: .utf8)
        let go = try GoPeer.run(["rule-set", "convert", "--type", "adguard", "filter.txt"], in: dir)
        try #require(go.status == 0, "\(go.stderr)")
        let goBytes = [UInt8](try Data(contentsOf: dir.appendingPathComponent("filter.srs")))  // Go's default name
        let ours = try Self.convert(Self.corpus.text)
        #expect(Array(goBytes.prefix(4)) == Array(ours.bytes.prefix(4)))
        let goBody = try Zlib.decompress(goBytes[4...]), ourBody = try Zlib.decompress(ours.bytes[4...])
        #expect(goBody == ourBody, "bodies differ: go \(goBody.count) bytes, ours \(ourBody.count)")
        #expect(ours.log == Self.goLog(go.stderr))
        // The corpus must keep and drop plenty, or the comparison proves little.
        let dropped = ours.log.filter { if case .debug = $0 { true } else { false } }.count
        #expect(dropped > 30)
        #expect(ours.log.last == .info("parsed rules: \(Self.corpus.text.split(separator: "\n").count - dropped - Self.skippedLines)/\(Self.corpus.text.split(separator: "\n").count - Self.skippedLines)"))
    }

    /// Lines Go skips without counting: comments (and the empty line, which `split` already drops)
    /// and hosts lines for a real address.
    static var skippedLines: Int {
        corpus.text.split(separator: "\n").filter {
            $0.hasPrefix("!") || $0.hasPrefix("#") || $0.hasPrefix("127.0.0.1 ") || $0.hasPrefix("::1 ") || $0.hasPrefix("fe80::1%lo ")
        }.count
    }

    /// Only raw domains (names and 0.0.0.0 hosts lines): Go writes one plain `domain` item.
    @Test func hostsOnlyFilterIsADomainRule() throws {
        let dir = try GoPeer.scratch("adguard-hosts")
        defer { try? FileManager.default.removeItem(at: dir) }
        let text = "# hosts\n0.0.0.0 a.example\n0.0.0.0 a.example\nb.example\n127.0.0.1 c.example\n:: d.example\n"
        try text.write(to: dir.appendingPathComponent("hosts"), atomically: true, encoding: .utf8)
        let go = try GoPeer.run(["rule-set", "convert", "-t", "adguard", "-o", "h.srs", "hosts"], in: dir)
        try #require(go.status == 0, "\(go.stderr)")
        let goBytes = [UInt8](try Data(contentsOf: dir.appendingPathComponent("h.srs")))
        let ours = try Self.convert(text)
        #expect(try Zlib.decompress(goBytes[4...]) == Zlib.decompress(ours.bytes[4...]))
        let decompiled = try GoPeer.run(["rule-set", "decompile", "h.srs", "-o", "h.json"], in: dir)
        #expect(decompiled.status == 0)
        let plain = try BinaryRuleSet(bytes: ours.bytes).sourceOptions()
        guard case .default(let rule) = plain.rules.first else { Issue.record("no default rule"); return }
        #expect(rule.domain == ["a.example", "b.example", "d.example"])
        #expect(rule.adGuardDomain.isEmpty)
    }

    /// Go's file loads here, ours loads in Go; both refuse to decompile with Go's words.
    @Test func filesCrossLoadAndDecompileRefusesAsGo() throws {
        let dir = try GoPeer.scratch("adguard-cross")
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.corpus.text.write(to: dir.appendingPathComponent("filter.txt"), atomically: true, encoding: .utf8)
        try #require(try GoPeer.run(["rule-set", "convert", "-t", "adguard", "-o", "go.srs", "filter.txt"], in: dir).status == 0)
        try Data(try Self.convert(Self.corpus.text).bytes).write(to: dir.appendingPathComponent("own.srs"))
        let goBytes = [UInt8](try Data(contentsOf: dir.appendingPathComponent("go.srs")))
        let set = try BinaryRuleSet(bytes: goBytes)
        #expect(set.version == 2)
        #expect(throws: RuleError.self) { try set.sourceOptions() }
        do { _ = try set.sourceOptions() } catch {
            #expect(error.message == "unable to decompile binary AdGuard rules to rule-set.")
        }
        let goDecompile = try GoPeer.run(["rule-set", "decompile", "own.srs"], in: dir)
        #expect(goDecompile.status == 1)
        #expect(goDecompile.stderr.contains("FATAL[0000] unable to decompile binary AdGuard rules to rule-set."))
        let goMatch = try GoPeer.run(["rule-set", "match", "-f", "binary", "own.srs", "ads.example.com"], in: dir)
        let rules = try RuleSet.compileBinary(goBytes)
        #expect(rules.count == 1)
        // Go prints the rule's String(): the nested and/or with Go's `!adguard_domain_rules=<binary>`.
        #expect(goMatch.stderr == "match rules.[0]: \(rules[0])\n")
        #expect("\(rules[0])".contains("!adguard_domain_rules=<binary>"))
        // Re-writing what we read gives the same body (the matchers' sets are kept verbatim).
        var reread = try BinaryRuleSet(bytes: [UInt8](try Data(contentsOf: dir.appendingPathComponent("own.srs"))))
        reread.version = set.version
        #expect(reread == set)
    }

    /// `rule-set match` over a few hundred names: Go answers from its own file, we answer from
    /// Go's file and from ours.
    @Test func matchAgreesWithGo() throws {
        let dir = try GoPeer.scratch("adguard-match")
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.corpus.text.write(to: dir.appendingPathComponent("filter.txt"), atomically: true, encoding: .utf8)
        try #require(try GoPeer.run(["rule-set", "convert", "-t", "adguard", "-o", "go.srs", "filter.txt"], in: dir).status == 0)
        let goRules = try RuleSet.compileBinary([UInt8](try Data(contentsOf: dir.appendingPathComponent("go.srs"))))
        let ownRules = try RuleSet.compileBinary(try Self.convert(Self.corpus.text).bytes)
        var disagreements: [String] = []
        var hits = 0
        for query in Self.corpus.queries {
            let go = try GoPeer.run(["rule-set", "match", "-f", "binary", "go.srs", query], in: dir)
            try #require(go.status == 0, "\(go.stderr)")
            let expected = go.stderr.contains("match rules.[0]")
            if expected { hits += 1 }
            let metadata: FlowMetadata
            if let ip = IPAddress(query) {
                metadata = FlowMetadata(inbound: "", inboundType: "", network: .tcp, source: nil, destination: Destination(ip: ip, port: 0))
            } else {
                metadata = Self.metadata(query)
            }
            for (name, rules) in [("go.srs", goRules), ("own.srs", ownRules)] where rules[0].matches(metadata) != expected {
                disagreements.append("\(query) [\(name)]: go \(expected)")
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.count) disagreements: \(disagreements.prefix(20))")
        let total = Self.corpus.queries.count
        #expect(hits > total / 10 && total - hits > total / 20, "hits \(hits)/\(total)")
    }

    /// sing's own matcher cases (common/domain/adguard_matcher_test.go at v0.7.13) and its dump.
    @Test func matcherSemantics() {
        let lines = ["||example.org^", "|example.com^", "example.net^", "||example.edu", "||example.edu.tw^",
                     "|example.gov", "example.arpa"]
        let matcher = AdGuardDomainMatcher(ruleLines: lines)
        for domain in ["example.org", "www.example.org", "example.com", "example.net", "isexample.net", "www.example.net",
                       "example.edu", "example.edu.cn", "example.edu.tw", "www.example.edu", "www.example.edu.cn",
                       "example.gov", "example.gov.cn", "example.arpa", "www.example.arpa", "isexample.arpa",
                       "example.arpa.cn", "www.example.arpa.cn", "isexample.arpa.cn"] {
            #expect(matcher.matches(domain), "\(domain)")
        }
        for domain in ["example.org.cn", "notexample.org", "example.com.cn", "www.example.com.cn", "example.net.cn",
                       "notexample.edu", "notexample.edu.cn", "www.example.gov", "notexample.gov"] {
            #expect(!matcher.matches(domain), "\(domain)")
        }
        #expect(matcher.dump().sorted() == lines.sorted())
        let wild = AdGuardDomainMatcher(ruleLines: ["||ad*.example^", "*tracker*"])
        #expect(wild.matches("ad.example") && wild.matches("adserver.example") && wild.matches("x.ads.example"))
        #expect(!wild.matches("bad.example") && !wild.matches("ad.example.com"))
        #expect(wild.matches("mytrackers.net") && wild.matches("tracker"))
    }

    /// Errors and refusals with Go's wording.
    @Test func errorsUseGoWording() throws {
        #expect(throws: RuleError.self) { try AdGuardFilter.rules(from: Array("! only\n||a.com/path\n".utf8)) }
        do { _ = try AdGuardFilter.rules(from: Array("! only\n".utf8)) } catch {
            #expect(error.message == "AdGuard rule-set is empty or all rules are unsupported")
        }
        var rule = DefaultHeadlessRuleOptions()
        rule.adGuardDomain = ["||a.com^"]
        do { _ = try BinaryRuleSet.write([.default(rule)], version: 1); Issue.record("version 1 accepted") } catch {
            #expect(error.message == "AdGuard rule items is only supported in version 2 or later")
        }
        // A hostile AdGuard item (label bitmap without a trie) is refused at load, never trapped on.
        var body: [UInt8] = [1, 0, 16, 0, 1] + [UInt8](repeating: 0, count: 8) + [1, 0, 0, 0, 0, 0, 0, 0, 0x0f, 1, 0x2a, 0xff, 0]
        let bytes = [0x53, 0x52, 0x53, 2] + Zlib.compress(body)
        #expect(throws: SRSError.self) { try BinaryRuleSet(bytes: bytes) }
        body.removeLast(3)
        #expect(throws: SRSError.self) { try BinaryRuleSet(bytes: [0x53, 0x52, 0x53, 2] + Zlib.compress(body)) }
    }

    /// A route decision through a converted rule-set: blocked names are rejected, exceptions and
    /// unlisted names go to the final outbound (Go's `rule-set match` says which is which).
    @Test func routerRejectsThroughConvertedRuleSet() async throws {
        let dir = try GoPeer.scratch("adguard-route")
        defer { try? FileManager.default.removeItem(at: dir) }
        try AdGuardCorpus.fixed.write(to: dir.appendingPathComponent("filter.txt"), atomically: true, encoding: .utf8)
        try #require(try GoPeer.run(["rule-set", "convert", "-t", "adguard", "-o", "ads.srs", "filter.txt"], in: dir).status == 0)
        let config = #"""
            {"route": {"rule_set": [{"type": "local", "tag": "ads", "format": "binary", "path": "\#(dir.path)/ads.srs"}],
                       "rules": [{"rule_set": "ads", "action": "reject"}], "final": "a"}}
            """#
        let options = try ConfigLoader.decode(json: config).options
        let route = try #require(options.route)
        var sets: [String: RuleSet] = [:]
        for set in route.ruleSet { sets[set.tag] = try RuleSet.load(set) }
        let rules = try route.rules.map { try RouteRule(options: $0, ruleSets: sets) }
        let manager = OutboundManager()
        manager.add(TableOutbound("a"))
        manager.setDefault(tag: "a")
        let router = FlowRouter(rules: rules, outbounds: manager, logger: ContextLogger(core: .disabled, name: ""),
                                resolver: HostsTableResolver(table: [:]))
        let names = ["ads.example.com", "www.ads.example.com", "good.ads.example.com", "exact.ads.example.com",
                     "important.example", "unblock.important.example", "hosts.example.com", "a.wild.example",
                     "ad7.example.com", "ok7.ads.example.com", "Tracker1.Example.org", "unlisted.example"]
        var blocked = 0
        for name in names {
            let go = try GoPeer.run(["rule-set", "match", "-f", "binary", "ads.srs", name], in: dir)
            let expected = go.stderr.contains("match rules.[0]") ? "reject" : "route:a"
            if expected == "reject" { blocked += 1 }
            var metadata = Self.metadata(name)
            let got: String = switch await router.match(&metadata) {
            case .outbound(let outbound): "route:\(outbound.tag)"
            case .reject: "reject"
            case .hijackDNS: "hijack-dns"
            case .failure(let error): "failure:\(error.message)"
            }
            #expect(got == expected, "\(name)")
        }
        #expect(blocked >= 4 && blocked <= names.count - 4)
    }

    /// Mutated AdGuard bodies (re-deflated so zlib's checksum passes): every outcome is a rule-set
    /// or a described error, and matching a parsed one never traps.
    @Test func mutatedAdGuardBodiesNeverTrap() throws {
        let body = try Zlib.decompress(try Self.convert(AdGuardCorpus.fixed).bytes[4...])
        var rng = SeededGenerator(seed: 0xadad)
        var parsed = 0, refused = 0
        for _ in 0..<1500 {
            var mutated = body
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                mutated[Int.random(in: 0..<mutated.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            do {
                let set = try BinaryRuleSet(bytes: [0x53, 0x52, 0x53, 2] + Zlib.compress(mutated))
                _ = try? set.sourceOptions()
                if let rules = try? set.compile() {
                    for name in ["ads.example.com", "a.wild.example", "ad7.example.com", "x", ""] {
                        for rule in rules { _ = rule.matches(Self.metadata(name)) }
                    }
                }
                parsed += 1
            } catch {
                #expect(!error.description.isEmpty)
                refused += 1
            }
        }
        #expect(parsed > 100 && refused > 100, "parsed \(parsed), refused \(refused)")
    }
}
