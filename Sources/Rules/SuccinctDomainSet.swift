// SuccinctDomainSet: sing's `domain.Matcher` — a LOUDS-encoded trie of reversed domain names.
//
// This is the structure a binary rule-set stores for `domain` / `domain_suffix`, so a rule-set read
// from disk is matched in place: no per-domain objects, no rebuild at load. Layout (sing
// common/domain/set.go, after openacid/succinct):
//   1. keys are domains reversed by Unicode scalar ("www.example.com" → "moc.elpmaxe.www"), with two
//      marker labels: '\r' (prefixLabel) ends a ".suffix" entry, '\n' (rootLabel) starts a suffix
//      entry that also matches the bare name (rule-set version ≥ 2);
//   2. the trie is walked breadth-first; each node writes one 0 bit per child label then a 1 bit
//      into `labelBitmap`, and its children's labels into `labels`;
//   3. `leaves` has bit n set when node n ends a key.
// Rank/select indexes over `labelBitmap` make child lookups O(1) plus a scan of the node's labels.

/// An immutable succinct set of reversed domain keys with sing's domain matching rules.
package struct SuccinctDomainSet: Sendable, Equatable {
    /// Bit n set: node n (breadth-first) ends a key.
    package private(set) var leaves: [UInt64]
    /// Per node: one 0 per child, then a 1.
    package private(set) var labelBitmap: [UInt64]
    /// Children's labels in breadth-first order (one byte each).
    package private(set) var labels: [UInt8]
    /// Ones before each word of `labelBitmap`, plus the total at the end.
    private var ranks: [Int32] = []
    /// Position of every 32nd one in `labelBitmap` (0th, 32nd, …).
    private var selects: [Int32] = []

    /// sing's marker that ends a ".suffix" entry (subdomains only).
    package static let prefixLabel = UInt8(ascii: "\r")
    /// sing's marker that starts a suffix entry matching the name and its subdomains.
    package static let rootLabel = UInt8(ascii: "\n")

    // MARK: building

    /// Builds the set Go's `domain.NewMatcher(domains, suffixes, legacy)` builds. `legacy` (rule-set
    /// version 1) spells `domain_suffix: "a.com"` as the two keys `a.com` and `\r.a.com`.
    package init(domains: [String], suffixes: [String], legacy: Bool) {
        var keys: [[UInt8]] = []
        keys.reserveCapacity(domains.count + 2 * suffixes.count)
        var seen = Set<String>()
        for suffix in suffixes where !suffix.isEmpty {
            guard seen.insert(suffix).inserted else { continue }
            if suffix.utf8.first == UInt8(ascii: ".") {
                keys.append(Self.reversed("\r" + suffix))
            } else if legacy {
                keys.append(Self.reversed(suffix))
                if seen.insert("." + suffix).inserted { keys.append(Self.reversed("\r." + suffix)) }
            } else {
                keys.append(Self.reversed("\n" + suffix))
            }
        }
        for domain in domains where seen.insert(domain).inserted {
            keys.append(Self.reversed(domain))
        }
        // Go's sort.Strings: bytewise order. Equal keys would break the build below (Go panics).
        keys.sort { $0.lexicographicallyPrecedes($1) }
        var unique: [[UInt8]] = []
        unique.reserveCapacity(keys.count)
        for key in keys where unique.last != key { unique.append(key) }
        self.init(sortedKeys: unique)
    }

    /// Builds from sorted, distinct, non-empty-set keys (breadth-first, as sing's `newSuccinctSet`).
    init(sortedKeys keys: [[UInt8]]) {
        leaves = []
        labelBitmap = []
        labels = []
        guard !keys.isEmpty else {
            // Go never builds an empty set; an empty root (one node, no labels) matches nothing.
            Self.setBit(&labelBitmap, 0)
            buildIndexes()
            return
        }
        struct Element { var start: Int, end: Int, column: Int }
        var queue = [Element(start: 0, end: keys.count, column: 0)]
        var bitIndex = 0
        var i = 0
        while i < queue.count {
            var element = queue[i]
            if element.column == keys[element.start].count {
                element.start += 1  // a leaf node: the shortest key ends here
                Self.setBit(&leaves, i)
            }
            var j = element.start
            while j < element.end {
                let from = j
                let label = keys[from][element.column]
                while j < element.end && keys[j][element.column] == label { j += 1 }
                queue.append(Element(start: from, end: j, column: element.column + 1))
                labels.append(label)
                Self.growBitmap(&labelBitmap, bitIndex)  // a 0 bit
                bitIndex += 1
            }
            Self.setBit(&labelBitmap, bitIndex)
            bitIndex += 1
            i += 1
        }
        buildIndexes()
    }

    /// A set read from a rule-set file. Throws when the arrays do not form a trie (Go would panic
    /// later, at match time; we refuse at load).
    package init(leaves: [UInt64], labelBitmap: [UInt64], labels: [UInt8]) throws(SRSError) {
        self.leaves = leaves
        self.labelBitmap = labelBitmap
        self.labels = labels
        var ones = 0
        for word in labelBitmap { ones += word.nonzeroBitCount }
        guard let last = labelBitmap.lastIndex(where: { $0 != 0 }) else { throw .badDomainSet }
        // Bits after the last 1 are padding; zeros before it are the labels.
        let usedBits = last * 64 + (64 - labelBitmap[last].leadingZeroBitCount)
        let zeros = usedBits - ones
        guard zeros == labels.count, ones == zeros + 1 else { throw .badDomainSet }
        buildIndexes()
    }

    // MARK: matching

    /// sing's `Matcher.Match`: true when `host` (lowercased by the caller) is one of the domains,
    /// or ends with one of the suffixes at a label boundary as its entry allows.
    package func matches(_ host: String) -> Bool {
        var host = host
        return host.withUTF8 { utf8 in
            if utf8.allSatisfy({ $0 < 0x80 }) {
                return has(count: utf8.count) { utf8[utf8.count - 1 - $0] }
            }
            let key = Self.reversed(String(decoding: utf8, as: UTF8.self))
            return has(count: key.count) { key[$0] }
        }
    }

    /// The walk of sing's `Matcher.has` over a reversed key given byte by byte.
    @inline(__always)
    private func has(count: Int, _ key: (Int) -> UInt8) -> Bool {
        var nodeID = 0, bitIndex = 0
        for i in 0..<count {
            let current = key(i)
            while true {
                if isNodeEnd(bitIndex) { return false }
                let label = labelAt(bitIndex - nodeID)
                if label == Self.prefixLabel { return true }
                if label == Self.rootLabel {
                    let next = countZeros(upTo: bitIndex + 1)
                    if current == UInt8(ascii: ".") && isLeaf(next) { return true }
                }
                if label == current { break }
                bitIndex += 1
            }
            nodeID = countZeros(upTo: bitIndex + 1)
            guard let one = selectOne(nodeID - 1) else { return false }
            bitIndex = one + 1
        }
        if isLeaf(nodeID) { return true }
        while true {
            if isNodeEnd(bitIndex) { return false }
            let label = labelAt(bitIndex - nodeID)
            if label == Self.prefixLabel || label == Self.rootLabel { return true }
            bitIndex += 1
        }
    }

    // MARK: dumping

    /// Every key, reversed back to its written form (sing's `succinctSet.keys`), depth-first.
    package func keys() -> [String] {
        var result: [String] = []
        var current: [UInt8] = []
        // A well-formed trie visits each label once; a malformed one may loop, so stop there.
        var budget = labels.count
        func traverse(_ nodeID: Int, _ start: Int) {
            if isLeaf(nodeID) { result.append(Self.unreversed(current)) }
            var bitIndex = start
            while !isNodeEnd(bitIndex) && budget > 0 {
                budget -= 1
                current.append(labelAt(bitIndex - nodeID))
                let next = countZeros(upTo: bitIndex + 1)
                if let one = selectOne(next - 1) { traverse(next, one + 1) }
                current.removeLast()
                bitIndex += 1
            }
        }
        traverse(0, 0)
        return result
    }

    /// sing's `Matcher.Dump`: the `domain` and `domain_suffix` lists that rebuild this set, sorted.
    package func dump() -> (domains: [String], suffixes: [String]) {
        var domains = Set<String>(), prefixes = Set<String>(), suffixes: [String] = []
        for key in keys() {
            guard let first = key.utf8.first else { continue }
            if first == Self.prefixLabel {
                prefixes.insert(String(key.dropFirst()))
            } else if first == Self.rootLabel {
                suffixes.append(String(key.dropFirst()))
            } else {
                domains.insert(key)
            }
        }
        for prefix in prefixes {
            // A legacy pair (`a.com` + `\r.a.com`) is one `domain_suffix: "a.com"`.
            if prefix.hasPrefix("."), domains.remove(String(prefix.dropFirst())) != nil {
                suffixes.append(String(prefix.dropFirst()))
                continue
            }
            suffixes.append(prefix)
        }
        return (domains.sorted(by: Self.bytewise), suffixes.sorted(by: Self.bytewise))
    }

    // MARK: bits (internal: `AdGuardDomainMatcher` walks the same trie with its own labels)

    /// A 1 in `labelBitmap` (a node's end); past the end counts as 1 so every scan stops.
    @inline(__always) func isNodeEnd(_ i: Int) -> Bool {
        let word = i >> 6
        guard i >= 0, word < labelBitmap.count else { return true }
        return labelBitmap[word] & (1 << UInt64(i & 63)) != 0
    }

    /// Node `n` ends a key; false past the end of `leaves` (Go would panic there).
    @inline(__always) func isLeaf(_ n: Int) -> Bool {
        let word = n >> 6
        guard n >= 0, word < leaves.count else { return false }
        return leaves[word] & (1 << UInt64(n & 63)) != 0
    }

    @inline(__always) func labelAt(_ i: Int) -> UInt8 {
        i >= 0 && i < labels.count ? labels[i] : 0
    }

    /// Zeros in `labelBitmap[0..<i]`.
    @inline(__always) func countZeros(upTo i: Int) -> Int {
        let word = i >> 6
        guard word < ranks.count else { return i - Int(ranks.last ?? 0) }
        var ones = Int(ranks[word])
        if word < labelBitmap.count {
            let mask: UInt64 = i & 63 == 0 ? 0 : ~UInt64(0) >> UInt64(64 - (i & 63))
            ones += (labelBitmap[word] & mask).nonzeroBitCount
        }
        return i - ones
    }

    /// Position of the `i`th one (0-based) in `labelBitmap`, or nil when there are fewer.
    @inline(__always) func selectOne(_ i: Int) -> Int? {
        guard i >= 0, i >> 5 < selects.count else { return nil }
        var word = Int(selects[i >> 5]) >> 6
        while word + 1 < ranks.count && Int(ranks[word + 1]) <= i { word += 1 }
        guard word < labelBitmap.count else { return nil }
        var w = labelBitmap[word]
        var remaining = i - Int(ranks[word])
        while remaining > 0 && w != 0 {
            w &= w - 1
            remaining -= 1
        }
        guard w != 0 else { return nil }
        return word << 6 + w.trailingZeroBitCount
    }

    private mutating func buildIndexes() {
        ranks = []
        ranks.reserveCapacity(labelBitmap.count + 1)
        selects = []
        var ones: Int32 = 0
        for (index, word) in labelBitmap.enumerated() {
            ranks.append(ones)
            var w = word
            while w != 0 {
                if ones & 31 == 0 { selects.append(Int32(index << 6 + w.trailingZeroBitCount)) }
                w &= w - 1
                ones += 1
            }
        }
        ranks.append(ones)
    }

    private static func growBitmap(_ words: inout [UInt64], _ i: Int) {
        while i >> 6 >= words.count { words.append(0) }
    }

    private static func setBit(_ words: inout [UInt64], _ i: Int) {
        growBitmap(&words, i)
        words[i >> 6] |= 1 << UInt64(i & 63)
    }

    static func reversed(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars.reversed() { out.append(contentsOf: scalar.utf8) }
        return out
    }

    static func unreversed(_ key: [UInt8]) -> String {
        let text = String(decoding: key, as: UTF8.self)
        return String(String.UnicodeScalarView(text.unicodeScalars.reversed()))
    }

    static func bytewise(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

    package static func == (a: Self, b: Self) -> Bool {
        a.leaves == b.leaves && a.labelBitmap == b.labelBitmap && a.labels == b.labels
    }
}
