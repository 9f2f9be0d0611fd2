package import NetstackWire

/// A binary min-heap of (deadline, flow) used as the stack's timer queue.
///
/// Entries are hints, not truth: a flow pushes one entry and, when it pops, the stack checks the
/// flow's real deadline and pushes again if it moved later. So traffic that extends an idle timer
/// costs nothing per packet, and a dead flow's entry is skipped by its generation.
package struct DeadlineHeap: Sendable {
    package struct Entry: Sendable {
        package var deadline: Instant
        package var flow: FlowID
    }

    private var entries: [Entry] = []

    package init() {}

    package var count: Int { entries.count }
    package var isEmpty: Bool { entries.isEmpty }
    /// The earliest deadline.
    package var next: Instant? { entries.first?.deadline }

    package mutating func push(_ deadline: Instant, _ flow: FlowID) {
        entries.append(Entry(deadline: deadline, flow: flow))
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard entries[child].deadline < entries[parent].deadline else { break }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    package mutating func popDue(now: Instant) -> Entry? {
        guard let first = entries.first, first.deadline <= now else { return nil }
        let last = entries.removeLast()
        if !entries.isEmpty {
            entries[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var smallest = parent
                if left < entries.count && entries[left].deadline < entries[smallest].deadline { smallest = left }
                if right < entries.count && entries[right].deadline < entries[smallest].deadline { smallest = right }
                if smallest == parent { break }
                entries.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return first
    }
}
