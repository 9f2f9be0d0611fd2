import Foundation
import Testing
@testable import Config

/// Decode errors whose text we give exactly as Go does (path and message).
private let decodeErrorCases: [String] = [
    #"{"route":{"rules":[{"domain":1,"outbound":"x"}]}}"#,
    #"{"route":{"rules":[{"port":"80","outbound":"x"}]}}"#,
    #"{"log":{"level":1}}"#,
    #"{"log":[]}"#,
    #"{"outbounds":[1]}"#,
    #"{"outbounds":[{"type":"direct","routing_mark":true}]}"#,
    #"{"outbounds":[{"type":"direct","connect_timeout":5}]}"#,
    #"{"inbounds":[{"type":"mixed","udp_timeout":"x"}]}"#,
    #"{"inbounds":[{"type":"mixed","udp_timeout":1.5}]}"#,
    #"{"dns":{"servers":[{"type":"udp","server":"1.1.1.1","server_port":99999}]}}"#,
    #"{"outbounds":[{"type":"socks","server":"a","server_port":1,"udp_over_tcp":"yes"}]}"#,
    #"{"route":{"rules":[{"ip_cidr":["a",1],"outbound":"x"}]}}"#,
    #"{"outbounds":[{"type":"direct","domain_resolver":1}]}"#,
    #"{"inbounds":[{"type":"mixed","users":[{"username":1}]}]}"#,
    #"{"outbounds":[{"type":"selector","outbounds":"a"}]}"#,
    #"{"inbounds":[{"type":"tun","address":"x"}]}"#,
    #"{"inbounds":[{"type":"tun","address":"10.0.0.1/40"}]}"#,
    #"{"inbounds":[{"type":"mixed","listen":"1.2.3"}]}"#,
    #"{"outbounds":[{"type":"direct","domain_strategy":"ipv5"}]}"#,
    #"{"outbounds":[{"type":"direct","network_strategy":"x"}]}"#,
    #"{"route":{"rules":[{"action":"sniff","timeout":"1y"}]}}"#,
    #"{"route":{"rule_set":[{"type":"remote","tag":"x","url":"https://a/b"}]}}"#,
    #"{"route":{"rule_set":[{"type":"local","path":"a.srs"}]}}"#,
    #"{"outbounds":[{"type":"vmess","transport":{"type":"tcp"}}]}"#,
    #"{"outbounds":[{"type":"vmess","transport":{"path":"/"}}]}"#,
    #"{"dns":{"servers":[{"address":"rcode://teapot"}]}}"#,
    #"{"dns":{"rules":[{"action":"predefined","rcode":"X"}]}}"#,
    #"{"inbounds":[{"type":"shadowtls","wildcard_sni":"some"}]}"#,
    #"{"inbounds":[{"type":"hysteria2","masquerade":{"type":"nginx"}}]}"#,
    #"{"inbounds":[{"type":"direct","network":["tcp","sctp"]}]}"#,
    #"{"outbounds":[{"type":"direct","detour":"a"}], "route": {"rules": [{"action": "direct", "detour": "x"}]}}"#,
    #"{"services":[{"type":"nope"}]}"#,
    #"{"experimental":{"cache_file":{"enabled":"yes"}}}"#,
    #"{"certificate":{"certificate_path":1}}"#,
    #"{"outbounds":[{"type":"hysteria","up":"100 Mbit"}]}"#,
    #"{"outbounds":[{"type":"hysteria","up":"fast"}]}"#,
    #"{"experimental":{"debug":{"memory_limit":"1 Mbps"}}}"#,
    #"{"route":{"rules":[{"Domain":"a","outbound":"d"}]}}"#,
    #"{"inbounds":[{"Type":"mixed"}]}"#,
]

@Test(arguments: Array(decodeErrorCases.enumerated()))
func decodeErrorTextMatchesGo(index: Int, json: String) throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("config-errors-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    try json.write(to: dir.appendingPathComponent("c.json"), atomically: true, encoding: .utf8)
    let go = try GoReference.run(["check", "-c", "c.json"], in: dir)
    let marker = "decode config at c.json: "
    let line = try #require(go.stderr.split(separator: "\n").first { $0.contains(marker) },
                            "Go gave no decode error for case \(index): \(go.stderr)")
    let goMessage = String(line[try #require(line.range(of: marker)).upperBound...])
    let ours = try #require(decodeError(json), "we accept case \(index)")
    #expect(ours.description == goMessage, "case \(index)")
}

/// Patterns for `domain_regex`: Go refuses some when it builds the router; we must agree on
/// which, and say the same thing.
private let regexCases: [String] = [
    "(abc", "abc)", "[abc", "abc\\", "(?=a)b", "(?!a)b", "(a)\\1", "*abc", "a**", "a++", "(?<=a)b",
    "(?P<n>a)", "(?<n>a)", "a{2,1}", "[z-a]", "(?i)abc", "a{1001}", "\\d+\\.example$", "[[:alpha:]]+",
    "\\Qa.b\\E", "a|*", "(*)", "[]a]", "x{,3}", "\\z", "a*?", "a+?b", "a??", "a*??", "a{2}{3}", "^(www\\.)?example\\.(com|org)$",
    "[^]a-c]+", "a{2,}?", "(?:a|b)*", "\\bword\\b", "[\\d-z]", "[a-]",
]

@Test(arguments: regexCases)
func regexpCheckMatchesGo(pattern: String) throws {
    let json = #"{"outbounds":[{"type":"direct","tag":"d"}],"route":{"rules":[{"domain_regex":"#
        + String(decoding: try JSONSerialization.data(withJSONObject: [pattern]), as: UTF8.self) + #","outbound":"d"}]}}"#
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("config-regex-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    try json.write(to: dir.appendingPathComponent("c.json"), atomically: true, encoding: .utf8)
    let go = try GoReference.run(["check", "-c", "c.json"], in: dir)
    let loaded = try ConfigLoader.decode(json: json, environment: [:])
    var ours: ConfigError?
    do { try ConfigLoader.check(loaded.options) } catch { ours = error }
    if go.status == 0 {
        #expect(ours == nil, "we refuse \(pattern): \(ours?.description ?? "")")
    } else {
        let goMessage = go.stderr.components(separatedBy: "domain_regex: ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        #expect(ours?.message == goMessage, "pattern \(pattern)")
    }
}
