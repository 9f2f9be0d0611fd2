import Foundation
import Testing
@testable import Config

/// A fresh directory with the given files.
private func directory(_ files: [String: String]) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("config-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    for (name, text) in files {
        try text.write(to: url.appendingPathComponent(name), atomically: true, encoding: .utf8)
    }
    return url
}

private let first = #"{"log":{"level":"info"},"outbounds":[{"type":"direct","tag":"a"}],"route":{"final":"a","rules":[{"domain":"x","outbound":"a"}]}}"#
private let second = #"{"log":{"level":"debug","timestamp":true},"outbounds":[{"type":"block","tag":"b"}],"route":{"final":"b"},"inbounds":[{"type":"mixed","listen_port":1}]}"#

@Test func mergeSortsByPathKeepsEarlierScalarsAndConcatenatesArrays() throws {
    let dir = try directory(["m1.json": first, "m2.json": second])
    defer { try? FileManager.default.removeItem(at: dir) }
    // Given in reverse order: Go sorts by path, so m1 still comes first.
    let loaded = try ConfigLoader.load(configPaths: [dir.appendingPathComponent("m2.json").path, dir.appendingPathComponent("m1.json").path],
                                       configDirectories: [], environment: [:])
    #expect(loaded.options.log?.level == "info")
    #expect(loaded.options.log?.timestamp == true)
    #expect(loaded.options.outbounds.map(\.tag) == ["a", "b"])
    #expect(loaded.options.route?.final == "a")
    #expect(loaded.options.inbounds.count == 1)
}

@Test func mergeMatchesGo() throws {
    let dir = try directory(["m1.json": first, "m2.json": second])
    defer { try? FileManager.default.removeItem(at: dir) }
    let go = try GoReference.run(["merge", "out.json", "-c", "m2.json", "-c", "m1.json"], in: dir)
    try #require(go.status == 0, "Go merge failed: \(go.stderr)")
    let expected = try JSONParser.parse(Array(try Data(contentsOf: dir.appendingPathComponent("out.json"))))
    var loaded = try ConfigLoader.load(configPaths: [dir.appendingPathComponent("m2.json").path, dir.appendingPathComponent("m1.json").path],
                                       configDirectories: [], environment: [:])
    ConfigMerge.inlinePathResources(&loaded.options)
    let text = mergeJSON(loaded.options)
    let ours = try JSONParser.parse(text)
    if !ours.semanticallyEquals(expected) {
        Issue.record("merge differs: \(jsonDifference(ours, expected) ?? "?")")
    }
    #expect(text == String(decoding: try Data(contentsOf: dir.appendingPathComponent("out.json")), as: UTF8.self))
}

@Test func directoryReadsJSONFilesInNameOrder() throws {
    let dir = try directory(["01.json": first, "02.json": second, "notes.txt": "not json"])
    defer { try? FileManager.default.removeItem(at: dir) }
    let loaded = try ConfigLoader.load(configPaths: [], configDirectories: [dir.path], environment: [:])
    #expect(loaded.options.outbounds.map(\.tag) == ["a", "b"])
}

@Test func errorsNameTheFile() throws {
    let dir = try directory(["bad.json": #"{"outbounds":[{"type":"direct","detour":1}]}"#])
    defer { try? FileManager.default.removeItem(at: dir) }
    let path = dir.appendingPathComponent("bad.json").path
    #expect(throws: ConfigError(path: "outbounds[0].detour", message: "json: cannot unmarshal number into Go value of type string", file: path)) {
        try ConfigLoader.load(configPaths: [path], configDirectories: [], environment: [:])
    }
    let missing = dir.appendingPathComponent("missing.json").path
    #expect(throws: ConfigError(path: "", message: "read config at \(missing): open \(missing): no such file or directory")) {
        try ConfigLoader.load(configPaths: [missing], configDirectories: [], environment: [:])
    }
}

@Test func mergeOfObjectIntoScalarFails() {
    #expect(throws: ConfigError.self) {
        try ConfigMerge.merge([try JSONParser.parse(#"{"log":{"level":"x"}}"#), try JSONParser.parse(#"{"log":"y"}"#)])
    }
    let merged = try? ConfigMerge.merge([try JSONParser.parse(#"{"a":[1],"b":{"c":1}}"#), try JSONParser.parse(#"{"a":2,"b":{"c":2,"d":3}}"#)])
    #expect(merged == (try? JSONParser.parse(#"{"a":[1,2],"b":{"c":1,"d":3}}"#)))
}

@Test func configErrorDescription() {
    #expect(ConfigError(path: "a.b", message: "m").description == "a.b: m")
    #expect(ConfigError(path: "", message: "m").description == "m")
    #expect(ConfigError(path: "a", message: "m", file: "f.json").description == "decode config at f.json: a: m")
}

@Test func nullMergesAsInGo() throws {
    // Appended to arrays, where an outbound without a type is then refused.
    let merged = try #require(try ConfigMerge.merge([try JSONParser.parse(#"{"outbounds":[{"type":"direct"}]}"#),
                                                      try JSONParser.parse(#"{"outbounds":null}"#)]))
    #expect(merged == (try JSONParser.parse(#"{"outbounds":[{"type":"direct"},null]}"#)))
    #expect(throws: ConfigError(path: "outbounds[1]", message: "unknown outbound type: ")) {
        try ConfigLoader.decode(value: merged, environment: [:])
    }
    // Refused into objects.
    #expect(throws: ConfigError(path: "log", message: "merge object item log: cannot merge json object into nil")) {
        try ConfigMerge.merge([try JSONParser.parse(#"{"log":{"level":"info"}}"#), try JSONParser.parse(#"{"log":null}"#)])
    }
    // Kept where it was first.
    let kept = try ConfigMerge.merge([try JSONParser.parse(#"{"log":null}"#), try JSONParser.parse(#"{"log":{"level":"debug"}}"#)])
    #expect(kept == (try JSONParser.parse(#"{"log":null}"#)))
}
