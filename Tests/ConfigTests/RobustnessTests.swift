import Foundation
import Testing
@testable import Config

/// Every corpus file, truncated and with bytes changed, must decode or fail with an error:
/// input never traps (STYLE §4).
@Test(arguments: GoReference.corpusFiles)
func mangledInputNeverTraps(file: String) throws {
    let bytes = Array(try Data(contentsOf: GoReference.corpus.appendingPathComponent(file)))
    var inputs: [[UInt8]] = []
    for cut in stride(from: 0, to: bytes.count, by: 13) { inputs.append(Array(bytes[..<cut])) }
    let replacements: [UInt8] = Array("0\"{}[],:-9etn.".utf8)
    for (i, index) in stride(from: 0, to: bytes.count, by: 11).enumerated() {
        var copy = bytes
        copy[index] = replacements[i % replacements.count]
        inputs.append(copy)
    }
    var failures = 0
    for input in inputs {
        do {
            let loaded = try ConfigLoader.decode(bytes: input, environment: [:])
            try? ConfigLoader.check(loaded.options)
            _ = formatJSON(loaded.options)
        } catch {
            failures += 1
            #expect(!error.message.isEmpty)
        }
    }
    // Most of the damage must be noticed.
    #expect(failures > inputs.count / 4)
}

@Test(arguments: [
    "9223372036854775807ns", "2562047h47m16.854775807s", "2562048h", "213503982d.9", "99999999999999999999s",
    "1.99999999999999999999999h", "-9223372036854775808ns",
])
func extremeDurationsDoNotTrap(text: String) {
    _ = try? ConfigDuration.parse(text, path: "")
}

@Test func extremeDurationsParseLikeGo() throws {
    #expect(try ConfigDuration.parse("2562047h47m16.854775807s", path: "").nanoseconds == Int64.max)
    #expect(try ConfigDuration.parse("-9223372036854775808ns", path: "").nanoseconds == Int64.min)
    #expect(throws: ConfigError(path: "p", message: #"time: invalid duration "2562048h""#)) {
        try ConfigDuration.parse("2562048h", path: "p")
    }
    #expect(throws: ConfigError(path: "p", message: #"time: unknown unit "x" in duration "1x""#)) {
        try ConfigDuration.parse("1x", path: "p")
    }
    #expect(throws: ConfigError(path: "p", message: #"time: missing unit in duration "5""#)) {
        try ConfigDuration.parse("5", path: "p")
    }
}

@Test func sourceRuleSetFilesDecodeStrictly() throws {
    let file = try PlainRuleSetOptions(json: try JSONParser.parse(#"{"version": 2, "rules": [{"domain_suffix": ".example", "query_type": "HTTPS"}, {"type": "logical", "mode": "and", "rules": [{"port": 443}, {"network": "tcp"}]}]}"#), path: "")
    #expect(file.version == 2)
    #expect(file.rules.count == 2)
    #expect(throws: ConfigError(path: "", message: "missing rule-set version")) {
        try PlainRuleSetOptions(json: try JSONParser.parse(#"{"rules": []}"#), path: "")
    }
    #expect(throws: ConfigError(path: "rules[0].outbound", message: #"json: unknown field "outbound""#)) {
        try PlainRuleSetOptions(json: try JSONParser.parse(#"{"version": 3, "rules": [{"domain": "a", "outbound": "x"}]}"#), path: "")
    }
}

@Test func deepNestingIsAnErrorNotACrash() {
    let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
    #expect(throws: ConfigError.self) { try JSONParser.parse(deep) }
    let rules = String(repeating: #"{"type":"logical","mode":"and","rules":["#, count: 300)
    #expect(throws: ConfigError.self) { try ConfigLoader.decode(json: #"{"route":{"rules":["# + rules, environment: [:]) }
}

@Test func regexpCheckNeverTraps() {
    // A fixed-seed walk over the characters that matter to the scanner.
    let alphabet = Array("()[]{}\\*+?|^$.-:,<>=!PQE0123456789az")
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    for _ in 0..<20_000 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        let length = Int(state >> 59)
        var pattern = ""
        var bits = state
        for _ in 0..<length {
            bits = bits &* 6364136223846793005 &+ 1
            pattern.append(alphabet[Int(bits >> 58) % alphabet.count])
        }
        _ = RegexpSyntax.error(in: pattern)
    }
}
