import NIOCore
import Synchronization

/// Queries waiting for answers on one socket, keyed by the random ID each was sent with.
///
/// Confined to the socket's event loop. An answer is accepted only when its ID is pending, QR is
/// set and its question matches the one asked (RFC 5452 §9.1); anything else is dropped and counted,
/// so a spoofed or stray datagram cannot complete or fail someone else's query. The table is bounded:
/// past `limit` queries a new one fails at once instead of growing memory.
struct DNSPendingQueries {
    struct Entry {
        var question: DNSQuestion?
        var originalID: UInt16
        var promise: EventLoopPromise<DNSMessage>
        /// The retransmission or deadline timer.
        var timer: Scheduled<Void>?
        /// Sends left (UDP retransmissions).
        var sendsLeft: Int
        var wire: ByteBuffer
        /// The caller's handle, so a cancelled task can find its query.
        var serial: UInt64
    }

    private(set) var entries: [UInt16: Entry] = [:]
    private var serials: [UInt64: UInt16] = [:]
    /// Answers dropped: unparseable, unknown ID, not a response, or a question mismatch.
    private(set) var droppedCount = 0
    let limit: Int

    init(limit: Int = 4096) { self.limit = limit }

    var isEmpty: Bool { entries.isEmpty }

    /// Picks a random ID not in use (RFC 5452 §4.3: unpredictable IDs), or nil when full.
    func freshID() -> UInt16? {
        guard entries.count < limit else { return nil }
        while true {
            let id = UInt16.random(in: .min ... .max)
            if entries[id] == nil { return id }
        }
    }

    mutating func insert(_ entry: Entry, id: UInt16) {
        entries[id] = entry
        serials[entry.serial] = id
    }

    mutating func update(_ id: UInt16, _ body: (inout Entry) -> Void) {
        guard var entry = entries[id] else { return }
        body(&entry)
        entries[id] = entry
    }

    /// Removes and returns the entry for `id`.
    mutating func remove(id: UInt16) -> Entry? {
        guard let entry = entries.removeValue(forKey: id) else { return nil }
        serials[entry.serial] = nil
        entry.timer?.cancel()
        return entry
    }

    /// Removes and returns the entry a caller holds by `serial`.
    mutating func remove(serial: UInt64) -> Entry? {
        guard let id = serials[serial] else { return nil }
        return remove(id: id)
    }

    /// Matches a datagram or frame to its query: completes that query's promise with the response
    /// (its ID restored to the asker's) and returns true; drops anything else and returns false.
    mutating func deliver(_ bytes: ByteBuffer) -> Bool {
        guard let response = try? DNSMessage(parsing: bytes), response.isResponse,
              let entry = entries[response.id] else {
            droppedCount += 1
            return false
        }
        if let asked = entry.question {
            guard let answered = response.question, asked.matches(answered) else {
                droppedCount += 1
                return false
            }
        }
        _ = remove(id: response.id)
        var restored = response
        restored.id = entry.originalID
        entry.promise.succeed(restored)
        return true
    }

    /// Counts a datagram dropped before parsing (from a stranger).
    mutating func countDrop() { droppedCount += 1 }

    /// Fails and removes every query.
    mutating func failAll(_ error: any Error) {
        let all = entries
        entries.removeAll()
        serials.removeAll()
        for entry in all.values {
            entry.timer?.cancel()
            entry.promise.fail(error)
        }
    }
}

/// Hands out caller handles for `DNSPendingQueries` (any thread).
enum DNSQuerySerial {
    private static let counter = Atomic<UInt64>(0)
    static func next() -> UInt64 {
        counter.wrappingAdd(1, ordering: .relaxed).newValue
    }
}
