// AnyTLSSessionPool: the client's sessions (sing-anytls session/client.go, read for facts).
//
// - A new stream takes an idle session (the newest first, as Go's skip list keyed by
//   MaxUint64 - seq orders them) or gets a new one; the session leaves the idle list while its
//   stream lives and comes back, stamped idle-since-now, when that stream ends (Go's `dieHook`).
// - Every `checkInterval` the idle list is swept newest first: a session idle longer than
//   `idleTimeout` is closed unless fewer than `minIdleSession` sessions were kept so far in the
//   sweep (then its idle time restarts).
// - One difference from Go, for the one-loop-per-flow design (ARCHITECTURE.md): a session lives on
//   one event loop and only serves flows on that loop, so a stream takes the newest idle session
//   of its own loop. The sweep and `min_idle_session` count all sessions, as Go's do.
import NIOConcurrencyHelpers
package import NIOCore

/// The sessions of one outbound. Thread-safe (a lock around the lists); sessions are touched only
/// on their own loops.
package final class AnyTLSSessionPool: @unchecked Sendable {
    private struct Idle {
        var session: AnyTLSSession
        var sequence: UInt64
        var since: NIODeadline
    }

    private let lock = NIOLock()
    private var idle: [Idle] = []  // newest (highest sequence) first
    private var sessions: [UInt64: AnyTLSSession] = [:]
    private var nextSequence: UInt64 = 0
    private var isClosed = false
    private var sweeper: RepeatedTask?
    /// `idle_session_timeout` (30 s when 5 s or less).
    package let idleTimeout: TimeAmount
    /// `idle_session_check_interval` (30 s when 5 s or less).
    package let checkInterval: TimeAmount
    /// `min_idle_session`.
    package let minIdleSession: Int

    /// Go's defaults: an interval or timeout of 5 s or less is 30 s.
    package init(checkInterval: TimeAmount?, idleTimeout: TimeAmount?, minIdleSession: Int) {
        let fallback = TimeAmount.seconds(AnyTLSModule.defaultIdleInterval)
        let five = TimeAmount.seconds(5)
        self.checkInterval = (checkInterval ?? .zero) <= five ? fallback : checkInterval!
        self.idleTimeout = (idleTimeout ?? .zero) <= five ? fallback : idleTimeout!
        self.minIdleSession = minIdleSession
    }

    /// Starts the periodic sweep on `loop`.
    package func startSweeping(on loop: any EventLoop) {
        let task = loop.scheduleRepeatedTask(initialDelay: checkInterval, delay: checkInterval) { [weak self] _ in
            self?.sweep(now: .now())
        }
        lock.withLock { sweeper = task }
    }

    /// Sessions open now, idle or not (tests).
    package var sessionCount: Int { lock.withLock { sessions.count } }
    /// Idle sessions now (tests).
    package var idleCount: Int { lock.withLock { idle.count } }

    /// The newest idle session on `loop`, taken off the idle list; nil when there is none.
    package func takeIdle(on loop: any EventLoop) -> AnyTLSSession? {
        lock.withLock {
            guard let index = idle.firstIndex(where: { $0.session.eventLoop === loop }) else { return nil }
            return idle.remove(at: index).session
        }
    }

    /// Adds a new session (busy); false when the pool is closed (the caller closes it). Its close
    /// takes it out of the pool.
    package func add(_ session: AnyTLSSession) -> Bool {
        let sequence: UInt64? = lock.withLock {
            guard !isClosed else { return nil }
            nextSequence += 1
            sessions[nextSequence] = session
            return nextSequence
        }
        guard let sequence else { return false }
        session.onClose = { [weak self] in self?.forget(sequence) }
        session.poolSequence = sequence
        return true
    }

    /// A stream of `session` ended: back on the idle list unless the session or the pool closed.
    /// On the session's loop.
    package func streamEnded(on session: AnyTLSSession) {
        guard !session.isClosed else { return }
        let keep: Bool = lock.withLock {
            guard !isClosed, sessions[session.poolSequence] != nil else { return false }
            idle.removeAll { $0.sequence == session.poolSequence }
            let entry = Idle(session: session, sequence: session.poolSequence, since: .now())
            let index = idle.firstIndex { $0.sequence < entry.sequence } ?? idle.endIndex
            idle.insert(entry, at: index)
            return true
        }
        if !keep { session.close() }
    }

    private func forget(_ sequence: UInt64) {
        lock.withLock {
            sessions.removeValue(forKey: sequence)
            idle.removeAll { $0.sequence == sequence }
        }
    }

    /// Go's `idleCleanupExpTime`: closes sessions idle since before `now - idleTimeout`, keeping
    /// the first `minIdleSession` of the sweep.
    package func sweep(now: NIODeadline) {
        let expiry = now - idleTimeout
        let closing: [AnyTLSSession] = lock.withLock {
            var kept = 0
            var closing: [AnyTLSSession] = []
            var index = 0
            while index < idle.count {
                if idle[index].since >= expiry {
                    kept += 1
                    index += 1
                } else if kept < minIdleSession {
                    idle[index].since = now
                    kept += 1
                    index += 1
                } else {
                    closing.append(idle.remove(at: index).session)
                }
            }
            return closing
        }
        for session in closing { session.eventLoop.execute { session.close() } }
    }

    /// Closes every session and stops the sweep; new sessions are refused from here.
    package func close() {
        let (all, task): ([AnyTLSSession], RepeatedTask?) = lock.withLock {
            isClosed = true
            let all = Array(sessions.values)
            sessions.removeAll()
            idle.removeAll()
            let task = sweeper
            sweeper = nil
            return (all, task)
        }
        task?.cancel()
        for session in all { session.eventLoop.execute { session.close() } }
    }
}
