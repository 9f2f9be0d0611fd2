// Binary rule-sets against Go sing-box 1.12.12: files Go compiles load here, files we compile load
// in Go, both decompile to the same source, and `rule-set match` picks the same first rule.
import Adapter
import Config
import Foundation
import Rules
import Testing

/// Source rule-sets covering every item the binary format carries, per version.
enum Fixtures {
    static let common = #"""
        {"domain": ["exact.test", "b.example"], "domain_suffix": ["example.com", ".sub.net", "c.io"],
         "domain_keyword": ["kw", "track"], "domain_regex": ["^re\\d+\\.x$", "b{2,}"]},
        {"ip_cidr": ["10.0.0.0/8", "10.1.0.0/16", "192.168.1.1", "11.0.0.0/8", "2001:db8::/32", "::ffff:1.2.3.4/128",
                     "172.16.0.0/12", "0.0.0.0/32", "fe80::/10"],
         "source_ip_cidr": ["192.0.2.0/25", "192.0.2.128/25"], "source_port": [80, 443], "port": [53],
         "source_port_range": ["1000:2000", ":99"], "port_range": ["3000:"]},
        {"type": "logical", "mode": "or", "rules": [{"domain": ["l.test"]}, {"network": ["udp"], "invert": true}]},
        {"type": "logical", "mode": "and", "rules": [{"type": "logical", "mode": "or", "rules": [{"port": [1]}]}, {"domain_suffix": ["n.test"]}], "invert": true},
        {"process_name": ["curl"], "process_path": ["/usr/bin/curl"], "package_name": ["com.x"], "wifi_ssid": ["home"], "wifi_bssid": ["00:11:22:33:44:55"]},
        {"source_ip_cidr": ["0.0.0.0/0", "::/0"], "query_type": ["A", 28, "HTTPS"], "network": ["tcp", "udp"], "invert": true}
        """#

    static func source(version: Int) -> String {
        var rules = common
        if version >= 2 { rules += #", {"process_path_regex": ["^/usr/.*"]}"# }
        if version >= 3 { rules += #", {"network_type": ["wifi", "ethernet"], "network_is_expensive": true, "network_is_constrained": true}"# }
        return #"{"version": \#(version), "rules": [\#(rules)]}"#
    }
}

@Suite(.serialized) struct BinaryRuleSetInteropTests {
    static func decode(_ text: String) throws -> PlainRuleSetOptions {
        try PlainRuleSetOptions(json: try JSONParser.parse(text), path: "")
    }

    /// Go compiles, Go decompiles; we read Go's file and must decompile to the same rules.
    @Test(arguments: [1, 2, 3]) func goCompiledFilesDecompileHereAsInGo(version: Int) throws {
        let dir = try GoPeer.scratch("srs-go")
        defer { try? FileManager.default.removeItem(at: dir) }
        try Fixtures.source(version: version).write(to: dir.appendingPathComponent("set.json"), atomically: true, encoding: .utf8)
        let compile = try GoPeer.run(["rule-set", "compile", "set.json", "-o", "go.srs"], in: dir)
        #expect(compile.status == 0, "\(compile.stderr)")
        let decompile = try GoPeer.run(["rule-set", "decompile", "go.srs", "-o", "go.json"], in: dir)
        #expect(decompile.status == 0, "\(decompile.stderr)")
        let goView = try Self.decode(String(contentsOf: dir.appendingPathComponent("go.json"), encoding: .utf8))

        let bytes = try [UInt8](Data(contentsOf: dir.appendingPathComponent("go.srs")))
        let ours = try BinaryRuleSet(bytes: bytes).sourceOptions()
        #expect(ours == goView)
        #expect(ours.version == UInt8(version))
        // And the file loads as matching rules, process items included.
        let rules = try RuleSet.compileBinary(bytes)
        #expect(rules.count == goView.rules.count)
        #expect(rules[4].needsProcess && !rules[0].needsProcess)
    }

    /// We compile; Go decompiles our file to what it decompiles its own to, and the inflated
    /// bodies are byte-identical (only the zlib encoder differs).
    @Test(arguments: [1, 2, 3]) func ourFilesLoadInGo(version: Int) throws {
        let dir = try GoPeer.scratch("srs-ours")
        defer { try? FileManager.default.removeItem(at: dir) }
        let text = Fixtures.source(version: version)
        try text.write(to: dir.appendingPathComponent("set.json"), atomically: true, encoding: .utf8)
        let source = try Self.decode(text)
        let ourBytes = try BinaryRuleSet.write(source.rules, version: source.version)
        try Data(ourBytes).write(to: dir.appendingPathComponent("ours.srs"))
        #expect(try GoPeer.run(["rule-set", "compile", "set.json", "-o", "go.srs"], in: dir).status == 0)
        let ourDecompile = try GoPeer.run(["rule-set", "decompile", "ours.srs", "-o", "ours.json"], in: dir)
        #expect(ourDecompile.status == 0, "\(ourDecompile.stderr)")
        #expect(try GoPeer.run(["rule-set", "decompile", "go.srs", "-o", "go.json"], in: dir).status == 0)
        let viaOurs = try Self.decode(String(contentsOf: dir.appendingPathComponent("ours.json"), encoding: .utf8))
        let viaGo = try Self.decode(String(contentsOf: dir.appendingPathComponent("go.json"), encoding: .utf8))
        #expect(viaOurs == viaGo)

        let goBytes = try [UInt8](Data(contentsOf: dir.appendingPathComponent("go.srs")))
        #expect(Array(goBytes.prefix(4)) == Array(ourBytes.prefix(4)))
        #expect(try Zlib.decompress(goBytes[4...]) == Zlib.decompress(ourBytes[4...]))
    }

    @Test func versionOneKeepsLegacySuffixKeys() throws {
        // Version 1 spells domain_suffix "a.com" as the keys "a.com" and "\r.a.com"; both match
        // the bare name and subdomains, and Dump folds them back into one suffix.
        let set = SuccinctDomainSet(domains: ["x.org"], suffixes: ["a.com", ".b.net"], legacy: true)
        #expect(set.keys().sorted() == ["\r.a.com", "\r.b.net", "a.com", "x.org"])
        #expect(set.matches("a.com") && set.matches("w.a.com") && !set.matches("xa.com"))
        #expect(!set.matches("b.net") && set.matches("q.b.net"))
        #expect(set.dump().suffixes == [".b.net", "a.com"])
    }

    @Test func errorsUseGoWording() throws {
        #expect(throws: SRSError.badMagic) { try BinaryRuleSet(bytes: Array("JSON{}".utf8)) }
        #expect(throws: SRSError.unsupportedVersion(4)) { try BinaryRuleSet(bytes: [0x53, 0x52, 0x53, 4, 0x78, 0x9c]) }
        #expect(SRSError.unsupportedVersion(9).description == "unsupported version: 9")
        #expect(SRSError.context("read rule[0]", .unknownItemType(77, last: 2)).description
                == "read rule[0]: unknown rule item type: 77, last type: 2")
        #expect(throws: RuleError("network_type rule item is only supported in version 3 or later")) {
            try BinaryRuleSet.write(try Self.decode(Fixtures.source(version: 3)).rules, version: 2)
        }
    }
}
