/// A first-in first-out queue over a growable ring of slots: append at the back, take from the front,
/// both O(1) amortised, and the storage is kept when the queue empties (steady state allocates nothing).
public struct RingQueue<Element>: Sendable where Element: Sendable {
    @usableFromInline var slots: [Element?]
    /// Index of the front element in `slots`.
    @usableFromInline var head = 0
    /// Elements held.
    @inlinable public var count: Int { used }
    @usableFromInline var used = 0

    /// An empty queue with room for `initialCapacity` elements before it grows.
    @inlinable public init(initialCapacity: Int = 16) {
        slots = Array(repeating: nil, count: Swift.max(initialCapacity, 1))
    }

    @inlinable public var isEmpty: Bool { used == 0 }

    /// The front element, settable in place.
    @inlinable public var first: Element? {
        get { used > 0 ? slots[head] : nil }
        set {
            precondition(used > 0, "RingQueue: no first element to replace")
            slots[head] = newValue
        }
    }

    /// Adds `element` at the back.
    @inlinable public mutating func append(_ element: Element) {
        if used == slots.count { grow() }
        var tail = head + count
        if tail >= slots.count { tail -= slots.count }
        slots[tail] = element
        used += 1
    }

    /// Takes the front element, nil when empty.
    @inlinable public mutating func popFirst() -> Element? {
        guard used > 0 else { return nil }
        let element = slots[head]
        slots[head] = nil
        head += 1
        if head == slots.count { head = 0 }
        used -= 1
        return element
    }

    /// Takes the front element; the queue must not be empty.
    @discardableResult
    @inlinable public mutating func removeFirst() -> Element {
        guard let element = popFirst() else { preconditionFailure("RingQueue: removeFirst on an empty queue") }
        return element
    }

    /// Drops every element and keeps the storage.
    @inlinable public mutating func removeAll() {
        while used > 0 { _ = popFirst() }
        head = 0
    }

    @usableFromInline mutating func grow() {
        var larger = [Element?](repeating: nil, count: slots.count * 2)
        var index = head
        for i in 0..<count {
            larger[i] = slots[index]
            index += 1
            if index == slots.count { index = 0 }
        }
        slots = larger
        head = 0
    }
}
