// RouteRule: a headless condition paired with a route action.
package import Rules
package import NIOCore
import Synchronization

/// One entry of `route.rules`.
package struct RouteRule: Sendable, CustomStringConvertible {
    package var condition: HeadlessRule
    package var action: RouteAction {
        didSet { rejectFlood = Self.floodGuard(for: action) }
    }
    /// The flood counter of a `reject` rule without `no_drop` (shared by copies of the rule).
    private(set) var rejectFlood: RejectFloodGuard?

    package init(condition: HeadlessRule, action: RouteAction) {
        self.condition = condition
        self.action = action
        self.rejectFlood = Self.floodGuard(for: action)
    }

    package var description: String { condition.description }

    /// The method a `reject` of this rule uses now: its own, or `drop` once it has fired more than 50
    /// times in 30 s (Go's `RuleActionReject.Error`: a client retrying a refused connection in a loop gets
    /// silence instead of RSTs or ICMP). `no_drop` turns the counting off; `drop` needs none.
    /// `flooded` tells whether the flood rule chose the method.
    package func rejectMethod(_ method: RejectMethod, now: NIODeadline = .now()) -> (method: RejectMethod, flooded: Bool) {
        guard method != .drop, let rejectFlood, rejectFlood.record(now) else { return (method, false) }
        return (.drop, true)
    }

    private static func floodGuard(for action: RouteAction) -> RejectFloodGuard? {
        if case .reject(let method, let noDrop) = action, method != .drop, !noDrop { return RejectFloodGuard() }
        return nil
    }
}

/// Counts a reject rule's uses over a sliding 30 s window (the last 50 times kept in a ring).
final class RejectFloodGuard: Sendable {
    static let limit = 50
    static let window = TimeAmount.seconds(30)
    private let state = Mutex<(times: [UInt64], next: Int)>(([UInt64](repeating: 0, count: RejectFloodGuard.limit), 0))

    /// Records one use at `now`; true when it is more than the 50th within 30 s.
    func record(_ now: NIODeadline) -> Bool {
        let nanoseconds = now.uptimeNanoseconds
        return state.withLock { state in
            // The slot about to be overwritten holds the use 50 before this one.
            let oldest = state.times[state.next]
            state.times[state.next] = nanoseconds
            state.next = (state.next + 1) % Self.limit
            return oldest != 0 && nanoseconds &- oldest <= UInt64(Self.window.nanoseconds)
        }
    }
}
