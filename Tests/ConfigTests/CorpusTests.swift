import Foundation
import Testing
@testable import Config

// The corpus: `valid-*` both accept, `invalid-*` both reject, `strict-*` Go accepts and we reject
// (dangling tag references and dependency cycles, which Go's `check` does not look at; unknown
// keys in the few places Go decodes leniently: reject/route-options/direct actions, DNS
// route-options, `domain_resolver` objects, `certificate`; inbound `proxy_protocol`, which Go
// refuses only when the listener starts); `format-*` only format.

/// What our `check` says about a corpus file: nil when accepted.
private func ourVerdict(_ name: String) -> ConfigError? {
    do {
        _ = try ConfigLoader.loadAndCheck(configPaths: [GoReference.corpus.appendingPathComponent(name).path],
                                          configDirectories: [], workingDirectory: GoReference.corpus.path, environment: [:])
        return nil
    } catch {
        return error
    }
}

@Test func corpusIsLargeAndGoIsPresent() throws {
    let files = GoReference.corpusFiles
    #expect(files.count >= 25)
    #expect(files.filter { $0.hasPrefix("valid-") }.count >= 10)
    #expect(files.filter { $0.hasPrefix("invalid-") }.count >= 10)
    // No silent skipping: the reference binary must be there.
    let version = try GoReference.run(["version"])
    #expect(version.stdout.contains("sing-box version 1.12"))
}

@Test(arguments: GoReference.corpusFiles.filter { !$0.hasPrefix("format-") })
func checkDecisionMatchesGo(file: String) throws {
    let go = try GoReference.run(["check", "-c", file])
    let ours = ourVerdict(file)
    let goAccepts = go.status == 0
    if file.hasPrefix("valid-") {
        #expect(goAccepts, "Go rejects \(file): \(go.stderr)")
        #expect(ours == nil, "we reject \(file): \(ours?.description ?? "")")
    } else if file.hasPrefix("invalid-") {
        #expect(!goAccepts, "Go accepts \(file)")
        #expect(ours != nil, "we accept \(file); Go says: \(go.stderr)")
    } else if file.hasPrefix("strict-") {
        #expect(goAccepts, "Go rejects \(file): \(go.stderr)")
        #expect(ours != nil, "we accept \(file), which has a dangling reference")
    } else {
        Issue.record("corpus file \(file) must start with valid-, invalid- or strict-")
    }
    if let ours {
        #expect(!ours.path.isEmpty, "rejection of \(file) names no JSON path: \(ours)")
    }
}

// `format-*` files are compared by format only: they use what Go's check cannot build here
// (TLS servers without certificate files, tailscale, DERP, DHCP, v2ray API are not in its build).
@Test(arguments: GoReference.corpusFiles.filter { $0.hasPrefix("valid-") || $0.hasPrefix("format-") })
func formatMatchesGo(file: String) throws {
    let go = try GoReference.run(["format", "-c", file])
    try #require(go.status == 0, "Go format failed on \(file): \(go.stderr)")
    let expected = try JSONParser.parse(go.stdout)
    let loaded = try ConfigLoader.load(configPaths: [GoReference.corpus.appendingPathComponent(file).path],
                                       configDirectories: [], environment: [:])
    let text = formatJSON(loaded.options)
    let actual = try JSONParser.parse(text)
    if !actual.semanticallyEquals(expected) {
        Issue.record("format differs for \(file): \(jsonDifference(actual, expected) ?? "?")")
    }
    // And what we print reads back to the same options.
    let again = try ConfigLoader.decode(json: text, environment: [:])
    #expect(formatJSON(again.options) == text)
}

/// The deprecation warnings Go logs while checking a valid file are the ones we collect.
@Test(arguments: GoReference.corpusFiles.filter { $0.hasPrefix("valid-") })
func warningsMatchGo(file: String) throws {
    let go = try GoReference.run(["check", "-c", file])
    let goWarnings = Set(go.stderr.split(separator: "\n").compactMap { line -> String? in
        guard line.contains("WARN"), let end = line.range(of: "] ") else { return nil }
        return String(line[end.upperBound...])
    })
    let loaded = try ConfigLoader.load(configPaths: [GoReference.corpus.appendingPathComponent(file).path],
                                       configDirectories: [], environment: [:])
    #expect(Set(loaded.warnings) == goWarnings)
}

/// Beyond equal values, our format text is Go's byte for byte (key order, indent, escapes).
@Test(arguments: GoReference.corpusFiles.filter { $0.hasPrefix("valid-") || $0.hasPrefix("format-") })
func formatTextMatchesGo(file: String) throws {
    let go = try GoReference.run(["format", "-c", file])
    try #require(go.status == 0)
    let loaded = try ConfigLoader.load(configPaths: [GoReference.corpus.appendingPathComponent(file).path],
                                       configDirectories: [], environment: [:])
    let ours = formatJSON(loaded.options) + "\n"
    if ours != go.stdout {
        let a = ours.split(separator: "\n", omittingEmptySubsequences: false)
        let b = go.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        let line = zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(a.count, b.count)
        Issue.record("\(file) line \(line + 1): ours \(line < a.count ? String(a[line]) : "<end>") | go \(line < b.count ? String(b[line]) : "<end>")")
    }
}
