// `rule-set match` against Go as the oracle: a generated rule-set of 10,000+ domains and CIDRs,
// queried with names and addresses chosen to hit and to just miss every entry kind.
import Adapter
import Config
import Foundation
import Rules
import Testing
import TestSupport

/// The generated rule-set and its queries (seeded, so every run asks the same questions).
struct GeneratedRuleSet {
    var json: String
    var queries: [String]
    var entryCount: Int

    static func make(seed: UInt64, queryCount: Int) -> GeneratedRuleSet {
        var rng = SeededGenerator(seed: seed)
        // A small alphabet and few TLDs, so names collide in the trie and near-misses are near.
        func label() -> String {
            String((0..<Int.random(in: 1...5, using: &rng)).map { _ in "abcdef".randomElement(using: &rng)! })
        }
        func name() -> String {
            (0..<Int.random(in: 1...3, using: &rng)).map { _ in label() }.joined(separator: ".")
                + "." + ["com", "net", "io", "cn", "org"].randomElement(using: &rng)!
        }
        let domains = (0..<3000).map { _ in name() }
        let suffixes = (0..<3000).map { i in i % 2 == 0 ? name() : "." + name() }
        let keywords = (0..<20).map { _ in label() + label() + "z" }
        let regexes = [#"^[a-c]+\.com$"#, "f{3,}", #"\.io$"#, #"^d[a-f]*e\."#]
        var v4: [(UInt32, Int)] = [], v6: [(UInt64, Int)] = []
        for _ in 0..<3000 {
            let bits = Int.random(in: 8...32, using: &rng)
            let value = UInt32.random(in: 0 ... .max, using: &rng) & (bits == 32 ? .max : ~(UInt32.max >> UInt32(bits)))
            v4.append((value, bits))
        }
        for _ in 0..<1000 {
            let bits = Int.random(in: 16...64, using: &rng)
            let high = (0x2001_0000_0000_0000 | UInt64.random(in: 0...0xffff_ffff_ffff, using: &rng)) & (bits == 64 ? .max : ~(UInt64.max >> UInt64(bits)))
            v6.append((high, bits))
        }
        func v4Text(_ v: UInt32) -> String { "\(v >> 24).\(v >> 16 & 255).\(v >> 8 & 255).\(v & 255)" }
        func v6Text(_ high: UInt64, low: UInt64 = 0) -> String {
            IPAddress.v6(IPv6Bits(high: high, low: low)).description
        }
        func list(_ items: [String]) -> String {
            "[" + items.map { "\"" + $0.replacingOccurrences(of: "\\", with: "\\\\") + "\"" }.joined(separator: ",") + "]"
        }
        let cidrs = v4.map { "\(v4Text($0.0))/\($0.1)" } + v6.map { "\(v6Text($0.0))/\($0.1)" }
        let logicalSuffixes = (0..<200).map { _ in name() }
        let json = """
            {"version": 3, "rules": [
             {"domain": \(list(domains)), "domain_suffix": \(list(suffixes))},
             {"ip_cidr": \(list(cidrs))},
             {"domain_keyword": \(list(keywords))},
             {"domain_regex": \(list(regexes))},
             {"type": "logical", "mode": "and", "rules": [{"domain_suffix": \(list(logicalSuffixes))}, {"domain_keyword": ["ab"], "invert": true}]},
             {"type": "logical", "mode": "or", "rules": [{"domain": ["zz.test"]}, {"ip_cidr": ["198.18.0.0/15"]}], "invert": true}
            ]}
            """
        var queries: [String] = []
        while queries.count < queryCount {
            switch Int.random(in: 0..<12, using: &rng) {
            case 0: queries.append(domains.randomElement(using: &rng)!)
            case 1: queries.append(label() + "." + suffixes.randomElement(using: &rng)!.trimmingPrefix("."))
            case 2: queries.append(String(suffixes.randomElement(using: &rng)!.trimmingPrefix(".")))
            case 3: queries.append(label() + domains.randomElement(using: &rng)!)  // same tail, no dot
            case 4: queries.append(domains.randomElement(using: &rng)! + "x")
            case 5: queries.append(name())
            case 6: queries.append(label() + "." + logicalSuffixes.randomElement(using: &rng)!)
            case 7:
                let (base, bits) = v4.randomElement(using: &rng)!
                let host = bits == 32 ? 0 : UInt32.random(in: 0...(UInt32.max >> UInt32(bits)), using: &rng)
                queries.append(v4Text(base | host))
            case 8:
                let (base, bits) = v4.randomElement(using: &rng)!
                let size: UInt32 = bits == 32 ? 1 : (UInt32.max >> UInt32(bits)) &+ 1
                queries.append(v4Text(base &+ size))  // just past the prefix
            case 9: queries.append(v4Text(UInt32.random(in: 0 ... .max, using: &rng)))
            case 10:
                let (base, _) = v6.randomElement(using: &rng)!
                queries.append(v6Text(base, low: UInt64.random(in: 0 ... .max, using: &rng)))
            default:
                queries.append(v6Text(0x2001_0000_0000_0000 | UInt64.random(in: 0...0xffff_ffff_ffff, using: &rng) << 16))
            }
        }
        return GeneratedRuleSet(json: json, queries: queries, entryCount: domains.count + suffixes.count + cidrs.count)
    }
}

@Suite(.serialized) struct RuleSetMatchOracleTests {
    /// Queries per run: `RULES_MATCH_QUERIES` (10000 for the full acceptance run), else 400 so the
    /// default suite stays quick (each Go query is one process, ~20 ms).
    static var queryCount: Int {
        Int(ProcessInfo.processInfo.environment["RULES_MATCH_QUERIES"] ?? "") ?? 400
    }

    /// Every `match rules.[i]` index Go printed. Go keeps its match cache across the rules here,
    /// so rules after the first hit may print too (PEERS.md); the router's answer is the first.
    static func hits(_ stderr: String) -> [Int] {
        stderr.split(separator: "\n").filter { $0.hasPrefix("match rules.[") }
            .compactMap { Int($0.dropFirst("match rules.[".count).prefix { $0 != "]" }) }
    }

    /// Ours the same way: one match state through all rules, as `rule-set match` runs them.
    static func hits(_ rules: [HeadlessRule], query: String) -> [Int] {
        let destination: Destination
        if let ip = IPAddress(query) { destination = Destination(ip: ip, port: 0) } else { destination = Destination(domain: query, port: 0) }
        let metadata = FlowMetadata(inbound: "", inboundType: "", network: .tcp, source: nil, destination: destination)
        var state = RuleMatchState()
        return rules.indices.filter { rules[$0].matches(metadata, state: &state) }
    }

    /// The router's answer: each rule with a fresh state (route.go resets before every rule).
    static func firstHit(_ rules: [HeadlessRule], query: String) -> Int? {
        let destination: Destination
        if let ip = IPAddress(query) { destination = Destination(ip: ip, port: 0) } else { destination = Destination(domain: query, port: 0) }
        let metadata = FlowMetadata(inbound: "", inboundType: "", network: .tcp, source: nil, destination: destination)
        return rules.firstIndex { $0.matches(metadata) }
    }

    @Test func firstHitAgreesWithGoOnGeneratedSet() throws {
        let generated = GeneratedRuleSet.make(seed: 0x5eed_1234, queryCount: Self.queryCount)
        #expect(generated.entryCount >= 10_000)
        let dir = try GoPeer.scratch("match")
        defer { try? FileManager.default.removeItem(at: dir) }
        try generated.json.write(to: dir.appendingPathComponent("gen.json"), atomically: true, encoding: .utf8)
        let compile = try GoPeer.run(["rule-set", "compile", "gen.json", "-o", "gen.srs"], in: dir)
        try #require(compile.status == 0, "\(compile.stderr)")

        // Ours three ways: Go's .srs as read, our own .srs, and the source rules.
        let goBinary = try RuleSet.compileBinary([UInt8](Data(contentsOf: dir.appendingPathComponent("gen.srs"))))
        let source = try PlainRuleSetOptions(json: try JSONParser.parse(generated.json), path: "")
        let ownBinary = try RuleSet.compileBinary(try BinaryRuleSet.write(source.rules, version: source.version))
        let fromSource = try RuleSet.compile(source.rules)

        var disagreements: [String] = []
        var hits = 0
        for query in generated.queries {
            let go = try GoPeer.run(["rule-set", "match", "-f", "binary", "gen.srs", query], in: dir)
            try #require(go.status == 0, "\(go.stderr)")
            let expectedAll = Self.hits(go.stderr)
            let expected = expectedAll.first
            if let expected, expected < 5 { hits += 1 }  // rule 5 (an inverted or) catches the rest
            for (name, rules) in [("go.srs", goBinary), ("own.srs", ownBinary), ("source", fromSource)] {
                let ours = Self.firstHit(rules, query: query)
                if ours != expected { disagreements.append("\(query) [\(name)]: go \(expected.map(String.init) ?? "none"), ours \(ours.map(String.init) ?? "none")") }
                let oursAll = Self.hits(rules, query: query)
                if oursAll != expectedAll { disagreements.append("\(query) [\(name)] all hits: go \(expectedAll), ours \(oursAll)") }
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.count) disagreements, first: \(disagreements.prefix(10))")
        // The query mix must exercise both answers, or the comparison proves little.
        #expect(hits > generated.queries.count / 5 && hits < generated.queries.count * 9 / 10)
    }
}
