// The .srs reader under mutated input: every outcome is a rule-set or a described error, never a trap.
import Adapter
import Config
import Foundation
import Rules
import Testing
import TestSupport

@Suite struct BinaryRuleSetFuzzTests {
    /// A valid file of every item kind, made by our writer (the interop tests pin it to Go's).
    static func seedFile() throws -> [UInt8] {
        let source = try PlainRuleSetOptions(json: try JSONParser.parse(Fixtures.source(version: 3)), path: "")
        return try BinaryRuleSet.write(source.rules, version: 3)
    }

    /// Parses, and when that succeeds decompiles, compiles and matches: nothing may trap.
    static func exercise(_ bytes: [UInt8]) -> Bool {
        do {
            let set = try BinaryRuleSet(bytes: bytes)
            _ = try? set.sourceOptions()
            if let rules = try? set.compile() {
                for target in ["example.com", "a.sub.net", "10.1.2.3", "2001:db8::1", "kw.test", ""] {
                    let destination = IPAddress(target).map { Destination(ip: $0, port: 53) } ?? Destination(domain: target, port: 53)
                    let metadata = FlowMetadata(inbound: "", inboundType: "", network: .udp, source: nil, destination: destination)
                    for rule in rules { _ = rule.matches(metadata) }
                }
            }
            return true
        } catch {
            #expect(!error.description.isEmpty)
            return false
        }
    }

    @Test func everyTruncationIsAnError() throws {
        let file = try Self.seedFile()
        for length in 0..<file.count {
            #expect(!Self.exercise(Array(file.prefix(length))), "prefix \(length) parsed")
        }
    }

    @Test func mutatedFilesNeverTrap() throws {
        let file = try Self.seedFile()
        var rng = SeededGenerator(seed: 42)
        for _ in 0..<2000 {
            var bytes = file
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0 ... 255, using: &rng)
            }
            _ = Self.exercise(bytes)
        }
    }

    /// zlib's checksum rejects most whole-file mutations, so also mutate the inflated body and
    /// re-deflate it: this reaches the item parsers, the succinct set and the IP ranges.
    @Test func mutatedBodiesNeverTrap() throws {
        let file = try Self.seedFile()
        let body = try Zlib.decompress(file[4...])
        var rng = SeededGenerator(seed: 7)
        var parsed = 0, refused = 0
        for round in 0..<6000 {
            var mutated = body
            switch round % 4 {
            case 0:
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    mutated[Int.random(in: 0..<mutated.count, using: &rng)] = UInt8.random(in: 0 ... 255, using: &rng)
                }
            case 1:
                mutated[Int.random(in: 0..<mutated.count, using: &rng)] ^= 1 << UInt8.random(in: 0...7, using: &rng)
            case 2:
                mutated.removeSubrange(Int.random(in: 0..<mutated.count, using: &rng)...)
            default:
                let at = Int.random(in: 0..<mutated.count, using: &rng)
                mutated.insert(contentsOf: (0..<Int.random(in: 1...8, using: &rng)).map { _ in UInt8.random(in: 0 ... 255, using: &rng) }, at: at)
            }
            if Self.exercise(Array(file.prefix(4)) + Zlib.compress(mutated)) { parsed += 1 } else { refused += 1 }
        }
        #expect(parsed > 0 && refused > 0)
    }

    @Test func hostileCountsDoNotAllocate() throws {
        // One rule whose domain item claims 2^62 leaves: refused as truncated, not allocated.
        var body: [UInt8] = [1, 0, 2, 0]
        body += [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40]
        #expect(throws: SRSError.context("read rule[0]", .truncated)) {
            try BinaryRuleSet(bytes: [0x53, 0x52, 0x53, 3] + Zlib.compress(body))
        }
        // A zip bomb stops at the inflate limit instead of filling memory.
        let bomb = Zlib.compress([UInt8](repeating: 0, count: 8 << 20))
        #expect(throws: Zlib.Failure.self) { try Zlib.decompress(bomb[...], limit: 1 << 20) }
    }
}
