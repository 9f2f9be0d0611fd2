// Lifecycle: staged start and close shared by every adapter (sing-box adapter.Lifecycle).

/// The stages the box walks every adapter through, in order (Go's `adapter.StartStage`).
/// `initialize` builds what others look up, `start` opens sockets, `postStart` runs after every
/// adapter started (groups pick outbounds, DNS warms up), `started` is the last word.
package enum StartStage: Int, Sendable, CaseIterable, CustomStringConvertible {
    case initialize, start, postStart, started
    package var description: String {
        switch self {
        case .initialize: "initialize"
        case .start: "start"
        case .postStart: "post-start"
        case .started: "start-after-started"
        }
    }
}

/// Something the box starts and closes. Called from the box's control task, never from an event
/// loop thread (so implementations may wait on futures). `close` is called once, even after a
/// failed start, and must release every socket and flow it owns.
package protocol Lifecycle: AnyObject, Sendable {
    /// Runs one start stage. Throws to abort the box start; the box then closes everything.
    func start(_ stage: StartStage) async throws
    /// Stops accepting, closes owned flows and sockets. Errors are logged, not fatal.
    func close() async throws
}

extension Lifecycle {
    package func start(_ stage: StartStage) async throws {}
    package func close() async throws {}
}
