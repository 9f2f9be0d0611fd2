// AdGuardDomainMatcher: sing's `domain.AdGuardMatcher` — AdGuard DNS filter patterns in the same
// succinct trie `SuccinctDomainSet` stores, so a `.srs` made by `rule-set convert --type adguard`
// is matched in place and written back byte for byte.
//
// A rule line becomes one reversed key (sing common/domain/adguard_matcher.go):
//   1. `||name` (suffix rule) starts with rootLabel '\n': the name itself or any subdomain;
//      `|name` (start anchor) starts with nothing: the host must begin there;
//      a bare `name` starts with prefixLabel '\r': anything may come before it;
//   2. `name^` (end anchor) ends there; without `^` a trailing '.' is dropped and suffixLabel '\b'
//      is appended: anything may follow;
//   3. '*' inside a rule is anyLabel: any run of bytes, empty included.
// Matching tries the reversed host, then "\b" + every dot-suffix of it, each with a walk that
// branches on '*' and '\b' (depth capped at 100 as sing does).

/// AdGuard domain rules as a succinct set (Go's `*domain.AdGuardMatcher`). Immutable and shared;
/// a set read from a file was validated by `SuccinctDomainSet.init(leaves:labelBitmap:labels:)`.
package struct AdGuardDomainMatcher: Sendable, Equatable {
    /// The trie, written to `.srs` exactly as a `domain` item's set is.
    package let set: SuccinctDomainSet

    /// sing's `anyLabel`: a '*' in a rule matches any run of bytes.
    static let anyLabel = UInt8(ascii: "*")
    /// sing's `suffixLabel` '\b': a rule without `^` matches whatever follows it.
    static let suffixLabel: UInt8 = 0x08
    /// sing's `hasWithDepth` recursion limit.
    static let maxDepth = 100

    /// A matcher over a set read from a rule-set file.
    package init(set: SuccinctDomainSet) { self.set = set }

    /// Builds the set Go's `domain.NewAdGuardMatcher(ruleLines)` builds: each line (`||a.com^`,
    /// `|a.com`, `a*.com`, …) to one key, duplicates dropped, keys sorted bytewise.
    package init(ruleLines: [String]) {
        var keys: [[UInt8]] = []
        keys.reserveCapacity(ruleLines.count)
        for line in ruleLines {
            // Byte-wise as Go's strings functions (no grapheme clusters: "\r\n" must stay two bytes).
            var rule = Array(line.utf8)[...]
            var isSuffix = false, hasStart = false, hasEnd = false
            if rule.starts(with: [0x7C, 0x7C]) {  // "||"
                rule = rule.dropFirst(2)
                isSuffix = true
            } else if rule.first == 0x7C {  // "|"
                rule = rule.dropFirst()
                hasStart = true
            }
            if rule.last == UInt8(ascii: "^") {
                rule = rule.dropLast()
                hasEnd = true
            }
            var text = [UInt8]()
            if isSuffix {
                text.append(SuccinctDomainSet.rootLabel)
            } else if !hasStart {
                text.append(SuccinctDomainSet.prefixLabel)
            }
            text.append(contentsOf: rule)
            if !hasEnd {
                if text.last == UInt8(ascii: ".") { text.removeLast() }
                text.append(Self.suffixLabel)
            }
            keys.append(SuccinctDomainSet.reversed(String(decoding: text, as: UTF8.self)))
        }
        // common.Uniq then sort.Strings: bytewise order, each key once.
        keys.sort { $0.lexicographicallyPrecedes($1) }
        var unique: [[UInt8]] = []
        unique.reserveCapacity(keys.count)
        for key in keys where unique.last != key { unique.append(key) }
        set = SuccinctDomainSet(sortedKeys: unique)
    }

    // MARK: matching

    /// sing's `AdGuardMatcher.Match`: `domain` is lowercased by the caller (the rule item does it).
    /// One scratch buffer per call: the reversed host with a spare byte in front, so "\b" + each
    /// dot-suffix is a slice of it after writing '\b' over the dot.
    package func matches(_ domain: String) -> Bool {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(domain.utf8.count + 1)
        buffer.append(Self.suffixLabel)
        if domain.utf8.allSatisfy({ $0 < 0x80 }) {
            buffer.append(contentsOf: domain.utf8.reversed())  // ASCII: bytes are scalars
        } else {
            buffer.append(contentsOf: SuccinctDomainSet.reversed(domain))
        }
        return buffer.withUnsafeMutableBufferPointer { key -> Bool in
            if has(UnsafeBufferPointer(rebasing: key[1...]), nodeID: 0, bitIndex: 0, depth: 0) { return true }
            var start = 0  // key[start] is the '\b' in front of the remaining suffix
            while true {
                if has(UnsafeBufferPointer(rebasing: key[start...]), nodeID: 0, bitIndex: 0, depth: 0) { return true }
                guard let dot = key[(start + 1)...].firstIndex(of: UInt8(ascii: ".")) else { return false }
                key[dot] = Self.suffixLabel
                start = dot
            }
        }
    }

    /// sing's `hasWithDepth`: walks `key` from node `nodeID` whose labels start at bit `bitIndex`.
    /// '*' and '\b' edges try every split of the rest of the key. A malformed trie (only from a
    /// hostile file) ends the walk with no match where Go would panic.
    private func has(_ key: UnsafeBufferPointer<UInt8>, nodeID: Int, bitIndex: Int, depth: Int) -> Bool {
        guard depth <= Self.maxDepth else { return false }
        var nodeID = nodeID, bitIndex = bitIndex
        for i in 0..<key.count {
            let current = key[i]
            while true {
                if set.isNodeEnd(bitIndex) { return false }
                let label = set.labelAt(bitIndex - nodeID)
                if label == SuccinctDomainSet.prefixLabel { return true }
                if label == SuccinctDomainSet.rootLabel {
                    // `||name` matches the name itself when the host has a dot before it.
                    if current == UInt8(ascii: "."), set.isLeaf(set.countZeros(upTo: bitIndex + 1)) { return true }
                }
                if label == current { break }
                if label == Self.anyLabel || label == Self.suffixLabel {
                    let next = set.countZeros(upTo: bitIndex + 1)
                    guard let one = set.selectOne(next - 1) else { return false }
                    // The wildcard swallows key[i..<j] for every j, the empty run first.
                    for j in i...key.count
                    where has(UnsafeBufferPointer(rebasing: key[j...]), nodeID: next, bitIndex: one + 1, depth: depth + 1) {
                        return true
                    }
                }
                bitIndex += 1
            }
            nodeID = set.countZeros(upTo: bitIndex + 1)
            guard let one = set.selectOne(nodeID - 1) else { return false }
            bitIndex = one + 1
        }
        if set.isLeaf(nodeID) { return true }
        // The key is used up: a marker edge here still matches; '*' may match the empty run.
        while true {
            if set.isNodeEnd(bitIndex) { return false }
            let label = set.labelAt(bitIndex - nodeID)
            if label == SuccinctDomainSet.prefixLabel || label == SuccinctDomainSet.rootLabel || label == Self.suffixLabel {
                return true
            }
            if label == Self.anyLabel {
                let next = set.countZeros(upTo: bitIndex + 1)
                guard let one = set.selectOne(next - 1) else { return false }
                return has(UnsafeBufferPointer(start: nil, count: 0), nodeID: next, bitIndex: one + 1, depth: depth + 1)
            }
            bitIndex += 1
        }
    }

    // MARK: dumping

    /// sing's `AdGuardMatcher.Dump`: the rule lines back (`||a.com^`, `|b.com`, `c.com`), in trie
    /// order. Go would panic on an empty key; it is skipped.
    package func dump() -> [String] {
        var lines: [String] = []
        for key in set.keys() {
            var bytes = Array(key.utf8)[...]
            guard let first = bytes.first else { continue }
            var isSuffix = false, hasStart = false
            if first == SuccinctDomainSet.prefixLabel {
                bytes = bytes.dropFirst()
            } else if first == SuccinctDomainSet.rootLabel {
                bytes = bytes.dropFirst()
                isSuffix = true
            } else {
                hasStart = true
            }
            let hasEnd = bytes.last != Self.suffixLabel
            if !hasEnd { bytes = bytes.dropLast() }
            var line = isSuffix ? "||" : hasStart ? "|" : ""
            line += String(decoding: bytes, as: UTF8.self)
            if hasEnd { line += "^" }
            lines.append(line)
        }
        return lines
    }
}
