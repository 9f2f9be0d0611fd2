/// A least-recently-used map: a dictionary into a doubly linked list kept in two index arrays, so
/// lookup, insert, touch and evict are O(1) and freed slots are reused. Not synchronised: the owner
/// (`DNSCache`, `FakeIPStore`) holds it inside its own lock.
struct LRUCache<Key: Hashable, Value> {
    private struct Node {
        var key: Key
        var value: Value
        var previous: Int
        var next: Int
    }

    private var nodes: [Node] = []
    private var index: [Key: Int] = [:]
    private var free: [Int] = []
    /// Most recently used node, or -1.
    private var head = -1
    /// Least recently used node, or -1.
    private var tail = -1
    /// The largest number of entries kept; inserting beyond it evicts the least recently used.
    let capacity: Int

    init(capacity: Int) {
        precondition(capacity > 0, "LRUCache capacity must be positive")
        self.capacity = capacity
    }

    var count: Int { index.count }

    /// The value for `key`, marking it most recently used.
    mutating func get(_ key: Key) -> Value? {
        guard let slot = index[key] else { return nil }
        moveToFront(slot)
        return nodes[slot].value
    }

    /// `project` of the value for `key`, marking it most recently used: reads a field or two of a
    /// large value without copying (retaining) the whole of it.
    mutating func get<T>(_ key: Key, _ project: (borrowing Value) -> T) -> T? {
        guard let slot = index[key] else { return nil }
        moveToFront(slot)
        return project(nodes[slot].value)
    }

    /// The value for `key` without changing the order.
    func peek(_ key: Key) -> Value? {
        guard let slot = index[key] else { return nil }
        return nodes[slot].value
    }

    /// Inserts or replaces `key`, marking it most recently used; returns the entry evicted to make room.
    @discardableResult
    mutating func set(_ key: Key, _ value: Value) -> (key: Key, value: Value)? {
        if let slot = index[key] {
            nodes[slot].value = value
            moveToFront(slot)
            return nil
        }
        var evicted: (key: Key, value: Value)? = nil
        if index.count >= capacity, let oldest = removeOldest() { evicted = oldest }
        let node = Node(key: key, value: value, previous: -1, next: head)
        let slot: Int
        if let reused = free.popLast() {
            nodes[reused] = node
            slot = reused
        } else {
            nodes.append(node)
            slot = nodes.count - 1
        }
        if head >= 0 { nodes[head].previous = slot }
        head = slot
        if tail < 0 { tail = slot }
        index[key] = slot
        return evicted
    }

    /// Removes `key`; returns its value.
    @discardableResult
    mutating func remove(_ key: Key) -> Value? {
        guard let slot = index.removeValue(forKey: key) else { return nil }
        unlink(slot)
        free.append(slot)
        return nodes[slot].value
    }

    /// The least recently used entry, without removing it.
    var oldest: (key: Key, value: Value)? {
        tail < 0 ? nil : (nodes[tail].key, nodes[tail].value)
    }

    /// Every entry, least recently used first (re-inserting them in this order rebuilds the recency).
    var entriesOldestFirst: [(key: Key, value: Value)] {
        var out: [(key: Key, value: Value)] = []
        out.reserveCapacity(count)
        var slot = tail
        while slot >= 0 {
            out.append((nodes[slot].key, nodes[slot].value))
            slot = nodes[slot].previous
        }
        return out
    }

    /// Removes and returns the least recently used entry.
    mutating func removeOldest() -> (key: Key, value: Value)? {
        guard tail >= 0 else { return nil }
        let slot = tail
        let entry = (nodes[slot].key, nodes[slot].value)
        index.removeValue(forKey: nodes[slot].key)
        unlink(slot)
        free.append(slot)
        return entry
    }

    mutating func removeAll() {
        nodes.removeAll()
        index.removeAll()
        free.removeAll()
        head = -1
        tail = -1
    }

    private mutating func unlink(_ slot: Int) {
        let previous = nodes[slot].previous, next = nodes[slot].next
        if previous >= 0 { nodes[previous].next = next } else { head = next }
        if next >= 0 { nodes[next].previous = previous } else { tail = previous }
        nodes[slot].previous = -1
        nodes[slot].next = -1
    }

    private mutating func moveToFront(_ slot: Int) {
        guard slot != head else { return }
        unlink(slot)
        nodes[slot].next = head
        if head >= 0 { nodes[head].previous = slot }
        head = slot
        if tail < 0 { tail = slot }
    }
}
