// Opt-in measurement (ADGUARD_BENCH=1): a 50k-line AdGuard filter converted, loaded and matched
// in-process. Prints numbers; asserts only that every listed `||name^` blocks its name.
import Adapter
import Config
import Foundation
import Rules
import Testing
import TestSupport

@Suite struct AdGuardMeasurementTests {
    static var enabled: Bool { ProcessInfo.processInfo.environment["ADGUARD_BENCH"] == "1" }

    @Test(.enabled(if: AdGuardMeasurementTests.enabled)) func fiftyThousandLines() throws {
        var rng = SeededGenerator(seed: 50_000)
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        func label() -> String { String((0..<Int.random(in: 3...10, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }) }
        let names = (0..<50_000).map { _ in label() + "." + label() + ".com" }
        // The shape of AdGuard DNS filter: mostly `||name^`, some exceptions, a few wildcards.
        var lines: [String] = []
        for (index, name) in names.enumerated() {
            switch index % 50 {
            case 0: lines.append("@@||w." + name + "^")
            case 1: lines.append("||" + label() + "*." + name + "^")
            case 2: lines.append("||" + name + "^$important")
            default: lines.append("||" + name + "^")
            }
        }
        let text = Array((lines.joined(separator: "\n") + "\n").utf8)
        let clock = ContinuousClock()
        var bytes: [UInt8] = []
        let convert = try clock.measure { bytes = try BinaryRuleSet.write(try AdGuardFilter.rules(from: text), version: 2) }
        var rules: [HeadlessRule] = []
        let load = clock.measure { rules = (try? RuleSet.compileBinary(bytes)) ?? [] }
        let queries = (0..<100_000).map { i in i % 2 == 0 ? "x.\(names[i % names.count])" : label() + ".example.net" }
        let flows = queries.map { FlowMetadata(inbound: "", inboundType: "", network: .tcp, source: nil, destination: Destination(domain: $0, port: 443)) }
        var hits = 0
        let elapsed = clock.measure { for flow in flows where rules[0].matches(flow) { hits += 1 } }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print("adguard: \(lines.count) lines -> .srs \(bytes.count) bytes, convert \(convert), load \(load), \(Int(Double(flows.count) / seconds)) matches/s, \(hits) hits")
        for name in names.prefix(1000).enumerated().filter({ $0.offset % 50 > 2 }).map(\.element) {
            #expect(rules[0].matches(FlowMetadata(inbound: "", inboundType: "", network: .tcp, source: nil, destination: Destination(domain: name, port: 1))))
        }
    }
}
