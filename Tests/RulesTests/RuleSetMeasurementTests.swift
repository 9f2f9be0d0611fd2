// Opt-in measurement (RULES_BENCH=1): load time and matches per second of a 100k-domain binary
// rule-set, in-process. Prints numbers; asserts only that every listed domain matches.
import Adapter
import Config
import Foundation
import Rules
import Testing
import TestSupport

@Suite struct RuleSetMeasurementTests {
    static var enabled: Bool { ProcessInfo.processInfo.environment["RULES_BENCH"] == "1" }

    @Test(.enabled(if: RuleSetMeasurementTests.enabled)) func hundredThousandDomains() throws {
        var rng = SeededGenerator(seed: 100_000)
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        func label() -> String { String((0..<Int.random(in: 3...10, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }) }
        let domains = (0..<100_000).map { _ in label() + "." + label() + ".com" }
        let source = PlainRuleSetOptions(version: 3, rules: [.default({
            var rule = DefaultHeadlessRuleOptions()
            rule.domain = Array(domains[..<50_000])
            rule.domainSuffix = Array(domains[50_000...])
            return rule
        }())])
        let bytes = try BinaryRuleSet.write(source.rules, version: 3)
        let clock = ContinuousClock()
        var rules: [HeadlessRule] = []
        let load = clock.measure { rules = (try? RuleSet.compileBinary(bytes)) ?? [] }
        var hashed: [HeadlessRule] = []
        let build = clock.measure { hashed = (try? RuleSet.compile(source.rules)) ?? [] }
        let queries = (0..<200_000).map { i in i % 2 == 0 ? "w.\(domains[i % domains.count])" : label() + ".example.net" }
        let flows = queries.map { FlowMetadata(inbound: "", inboundType: "", network: .tcp, source: nil, destination: Destination(domain: $0, port: 443)) }
        for (name, set) in [("succinct (binary)", rules), ("hash sets (source)", hashed)] {
            var hits = 0
            let elapsed = clock.measure { for flow in flows where set[0].matches(flow) { hits += 1 } }
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            print("\(name): \(Int(Double(flows.count) / seconds)) matches/s, \(hits) hits")
        }
        // The same flows through the updatable container (a locked snapshot of its rules per match).
        let container = RuleSet(tag: "big", rules: rules)
        var containerHits = 0
        let viaContainer = clock.measure { for flow in flows where container.matches(flow) { containerHits += 1 } }
        let containerSeconds = Double(viaContainer.components.seconds) + Double(viaContainer.components.attoseconds) / 1e18
        print("RuleSet.matches (updatable): \(Int(Double(flows.count) / containerSeconds)) matches/s, \(containerHits) hits")
        print("binary .srs \(bytes.count) bytes, load \(load), source build \(build)")
        for domain in domains.prefix(1000) { #expect(rules[0].matches(FlowMetadata(inbound: "", inboundType: "", network: .tcp, source: nil, destination: Destination(domain: domain, port: 1)))) }
    }
}
