import Synchronization
import Testing
import Adapter
@testable import DNS

/// Simulated time for caches: starts at the real now and moves only when told.
final class TestClock: Sendable {
    private let current = Mutex(ContinuousClock.now)
    var now: @Sendable () -> ContinuousClock.Instant { { [self] in current.withLock { $0 } } }
    func advance(_ duration: Duration) { current.withLock { $0 = $0.advanced(by: duration) } }
}

/// A transport answering from a closure, counting queries; `hold` makes queries wait until `release`.
final class FakeTransport: DNSTransport {
    let tag: String
    var type: String { "fake" }
    private let respond: @Sendable (DNSMessage) throws -> DNSMessage
    private let state = Mutex<(count: Int, queries: [DNSMessage], held: Bool)>((0, [], false))
    private let released = Mutex(false)

    init(tag: String = "fake", hold: Bool = false, respond: @escaping @Sendable (DNSMessage) throws -> DNSMessage) {
        self.tag = tag
        self.respond = respond
        state.withLock { $0.held = hold }
    }

    var count: Int { state.withLock { $0.count } }
    var queries: [DNSMessage] { state.withLock { $0.queries } }
    func release() { released.withLock { $0 = true } }

    func exchange(_ message: DNSMessage) async throws -> DNSMessage {
        let held = state.withLock { state -> Bool in
            state.count += 1
            state.queries.append(message)
            return state.held
        }
        // Polls so a cancelled (timed-out) query ends: Task.sleep throws on cancellation.
        while held, !released.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(2)) }
        try Task.checkCancellation()
        return try respond(message)
    }
}

/// A response to `query` with these answers (QR, RA set).
func answer(_ query: DNSMessage, _ records: [DNSResourceRecord], rcode: DNSRcode = .noError, authorities: [DNSResourceRecord] = []) -> DNSMessage {
    DNSMessage(id: query.id, isResponse: true, recursionDesired: true, recursionAvailable: true, rcode: rcode,
               questions: query.questions, answers: records, authorities: authorities)
}

/// Answers A with 10.0.0.1 and AAAA with fd00::1 for every name, TTL `ttl`.
func addressResponder(ttl: UInt32 = 300) -> @Sendable (DNSMessage) throws -> DNSMessage {
    { query in
        guard let question = query.question else { throw DNSError.noQuestion }
        switch question.type {
        case .a: return answer(query, [.address(question.name, ip("10.0.0.1"), ttl: ttl)])
        case .aaaa: return answer(query, [.address(question.name, ip("fd00::1"), ttl: ttl)])
        default: return answer(query, [])
        }
    }
}

func soaRecord(ttl: UInt32, minimum: UInt32) throws -> DNSResourceRecord {
    DNSResourceRecord(name: try DNSName("test"), type: .soa, ttl: ttl, data: .soa(DNSSOA(
        mname: try DNSName("ns.test"), rname: try DNSName("h.test"), serial: 1, refresh: 1, retry: 1, expire: 1, minimum: minimum)))
}

/// An address literal the test knows to be valid.
func ip(_ text: String) -> IPAddress {
    guard let address = IPAddress(text) else { fatalError("bad test address \(text)") }
    return address
}
