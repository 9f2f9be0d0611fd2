import Foundation
import Testing
@testable import Config

private func paths(_ value: JSONValue, _ prefix: [String] = []) -> [[String]] {
    var out: [[String]] = []
    switch value {
    case .object(let o):
        for e in o.entries { out.append(prefix + [e.key]); out += paths(e.value, prefix + [e.key]) }
    case .array(let a):
        for (i, v) in a.enumerated() { out += paths(v, prefix + ["#\(i)"]) }
    default: break
    }
    return out
}

private func mutate(_ value: JSONValue, _ path: [String], _ replacement: JSONValue?) -> JSONValue {
    guard let head = path.first else { return replacement ?? .null }
    switch value {
    case .object(var o):
        if path.count == 1 {
            if let replacement { o[head] = replacement } else { o.entries.removeAll { $0.key == head } }
            return .object(o)
        }
        if let child = o[head] { o[head] = mutate(child, Array(path.dropFirst()), replacement) }
        return .object(o)
    case .array(var a):
        if let i = Int(head.dropFirst()), i < a.count { a[i] = mutate(a[i], Array(path.dropFirst()), replacement) }
        return .array(a)
    default: return value
    }
}

/// Differential test: valid corpus files with one value deleted or replaced by a value of
/// another kind; Go's check and ours must decide alike, except where we refuse a dangling
/// reference or a dependency cycle on purpose.
@Test func mutatedConfigsDecideLikeGo() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mut-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    try? FileManager.default.createSymbolicLink(at: dir.appendingPathComponent("rules"), withDestinationURL: GoReference.corpus.appendingPathComponent("rules"))
    let replacements: [JSONValue?] = [nil, .string("x"), .number("1"), .array([]), .bool(true), .object(JSONObject())]
    var n = 0
    for file in GoReference.corpusFiles where file.hasPrefix("valid-") && !file.contains("docs") {
        let original = try JSONParser.parse(Array(try Data(contentsOf: GoReference.corpus.appendingPathComponent(file))))
        let all = paths(original)
        for (k, p) in all.enumerated() where k % 5 == 0 {
            let replacement = replacements[(k / 5) % replacements.count]
            let mutated = mutate(original, p, replacement)
            let text = mutated.serialized()
            try text.write(to: dir.appendingPathComponent("m.json"), atomically: true, encoding: .utf8)
            let go = try GoReference.run(["check", "-c", "m.json"], in: dir)
            var ours: ConfigError?
            do { _ = try ConfigLoader.loadAndCheck(configPaths: [dir.appendingPathComponent("m.json").path], configDirectories: [], workingDirectory: dir.path, environment: [:]) } catch { ours = error }
            n += 1
            if go.status == 0, let ours, strictOnPurpose.contains(where: { ours.message.contains($0) }) { continue }
            if (go.status == 0) != (ours == nil) {
                let goLine = go.stderr.split(separator: "\n").first { $0.contains("FATAL") || $0.contains("panic") }.map(String.init) ?? ""
                Issue.record("\(file) \(p.joined(separator: ".")) := \(replacement.map { $0.serialized(indent: "") } ?? "<deleted>"): Go \(go.status == 0 ? "accepts" : "refuses: " + goLine), we \(ours.map { "refuse: \($0)" } ?? "accept")")
            }
        }
    }
    #expect(n > 50)
}

/// Our refusals that Go's check lets through by design (it finds these only when it starts).
private let strictOnPurpose = [
    "unknown outbound", "unknown inbound", "unknown DNS server", "domain resolver not found", "unknown resolved service",
    "rule-set not found", "circular", "default outbound not found", "unknown tailscale endpoint",
]
