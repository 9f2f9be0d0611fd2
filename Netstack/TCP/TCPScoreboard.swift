package import NetstackWire

/// The sender's SACK scoreboard (RFC 6675 §3): which ranges above SND.UNA the peer reported holding.
///
/// Ranges are sorted, disjoint and merged; a small array keeps its capacity, so steady state does not
/// allocate. Blocks that fall below SND.UNA, lie beyond what was sent, or are inverted are ignored
/// (RFC 2018 §8 allows a receiver to renege, so nothing here is trusted for releasing data).
package struct TCPScoreboard: Sendable {
    package private(set) var ranges: [TCPSACKBlock] = []
    /// Bytes covered by `ranges`.
    package private(set) var sackedByteCount = 0
    /// Keeps the array small when a peer sends pathological blocks.
    static let maximumRanges = 64

    package init() { ranges.reserveCapacity(8) }

    package var isEmpty: Bool { ranges.isEmpty }
    /// The highest SACKed sequence number + 1 (nil: nothing SACKed).
    package var highestSacked: SeqNumber? { ranges.last?.end }

    package mutating func removeAll() {
        ranges.removeAll(keepingCapacity: true)
        sackedByteCount = 0
    }

    /// Adds the peer's blocks clamped to `[unacknowledged, sendMax)`. Returns true if any byte was new.
    @discardableResult
    package mutating func add(_ blocks: TCPSACKBlocks, unacknowledged: SeqNumber, sendMax: SeqNumber) -> Bool {
        var changed = false
        for block in blocks {
            guard block.start < block.end, block.end > unacknowledged, block.end <= sendMax else { continue }
            let start = laterSeq(block.start, unacknowledged)
            if insert(TCPSACKBlock(start: start, end: block.end)) { changed = true }
        }
        return changed
    }

    /// Merges one range; returns true if it covered new bytes.
    mutating func insert(_ block: TCPSACKBlock) -> Bool {
        var start = block.start
        var end = block.end
        // First range that ends at or after `start` (touching ranges merge).
        var index = 0
        while index < ranges.count, ranges[index].end < start { index += 1 }
        var covered = 0
        var last = index
        while last < ranges.count, ranges[last].start <= end {
            let r = ranges[last]
            let overlapStart = laterSeq(r.start, block.start)
            let overlapEnd = earlierSeq(r.end, block.end)
            if overlapEnd > overlapStart { covered += Int(overlapEnd - overlapStart) }
            start = earlierSeq(start, r.start)
            end = laterSeq(end, r.end)
            last += 1
        }
        let newBytes = Int(block.end - block.start) - covered
        guard newBytes > 0 else { return false }
        let removedBytes = ranges[index..<last].reduce(0) { $0 + Int($1.end - $1.start) }
        if last > index {
            ranges.replaceSubrange(index..<last, with: CollectionOfOne(TCPSACKBlock(start: start, end: end)))
        } else {
            if ranges.count >= Self.maximumRanges { return false }
            ranges.insert(TCPSACKBlock(start: start, end: end), at: index)
        }
        sackedByteCount += Int(end - start) - removedBytes
        return true
    }

    /// Forgets everything below the new SND.UNA.
    package mutating func acknowledge(upTo unacknowledged: SeqNumber) {
        var drop = 0
        while drop < ranges.count, ranges[drop].end <= unacknowledged {
            sackedByteCount -= Int(ranges[drop].end - ranges[drop].start)
            drop += 1
        }
        if drop > 0 { ranges.removeFirst(drop) }
        if let first = ranges.first, first.start < unacknowledged {
            sackedByteCount -= Int(unacknowledged - first.start)
            ranges[0].start = unacknowledged
        }
    }

    /// SACKed bytes within `[low, high)`.
    package func sackedBytes(from low: SeqNumber, to high: SeqNumber) -> Int {
        guard low < high else { return 0 }
        var total = 0
        for r in ranges {
            if r.end <= low { continue }
            if r.start >= high { break }
            total += Int(earlierSeq(r.end, high) - laterSeq(r.start, low))
        }
        return total
    }

    /// The range containing `sequenceNumber`, if SACKed.
    package func range(containing sequenceNumber: SeqNumber) -> TCPSACKBlock? {
        for r in ranges {
            if r.start > sequenceNumber { return nil }
            if sequenceNumber < r.end { return r }
        }
        return nil
    }

    /// The start of the first SACKed range above `sequenceNumber`.
    package func nextSackedStart(after sequenceNumber: SeqNumber) -> SeqNumber? {
        ranges.first { $0.start > sequenceNumber }?.start
    }

    /// RFC 6675 IsLost as a boundary: every un-SACKed byte below the returned sequence number has
    /// `duplicateThreshold` discontiguous SACKed ranges or more than (threshold − 1)·SMSS SACKed bytes
    /// above it. Returns nil when no byte qualifies.
    package func lossBoundary(maximumSegmentSize: Int, duplicateThreshold: Int = 3) -> SeqNumber? {
        var bytes = 0
        var count = 0
        var index = ranges.count - 1
        while index >= 0 {
            bytes += Int(ranges[index].end - ranges[index].start)
            count += 1
            if count >= duplicateThreshold || bytes > (duplicateThreshold - 1) * maximumSegmentSize {
                return ranges[index].start
            }
            index -= 1
        }
        return nil
    }
}
