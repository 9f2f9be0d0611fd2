// Systemd: the service manager protocol (sd_notify): READY=1, STATUS=, WATCHDOG=1 on the interval
// systemd asks for (WATCHDOG_USEC), RELOADING=1 and STOPPING=1. Works without systemd: with no
// NOTIFY_SOCKET every call is a no-op that reports `.notRunningUnderSystemd`.
// Only the non-variadic sd_notify is used (sd_notifyf is unavailable from Swift).
// Must not import: Netlink, Nftables, TunDevice, Box.
import CSystemd
import Glibc
import Synchronization

/// The module's name, for log lines and diagnostics.
package enum SystemdModule {
    package static let name = "Systemd"
}

/// What happened to one notification.
package enum NotifyResult: Equatable, Sendable {
    /// The datagram was sent.
    case sent
    /// NOTIFY_SOCKET is not set: not started by systemd with Type=notify.
    case notRunningUnderSystemd
    /// Sending failed (errno), e.g. ECONNREFUSED when nobody listens on the socket.
    case failed(errno: Int32)
}

/// Sends sd_notify messages for this process.
package struct SystemdNotifier: Sendable {
    /// A notifier; it reads NOTIFY_SOCKET on every call, so it follows the environment.
    package init() {}

    /// Sends `fields` (each `KEY=VALUE`) in one datagram.
    @discardableResult
    package func notify(_ fields: [String]) -> NotifyResult {
        let state = fields.joined(separator: "\n")
        let result = sd_notify(0, state)
        if result > 0 { return .sent }
        if result == 0 { return .notRunningUnderSystemd }
        return .failed(errno: -result)
    }

    /// READY=1 (startup finished) with an optional STATUS= line and MAINPID.
    @discardableResult
    package func ready(status: String? = nil) -> NotifyResult {
        notify(["READY=1"] + (status.map { ["STATUS=\(SystemdNotifier.oneLine($0))"] } ?? []) + ["MAINPID=\(getpid())"])
    }

    /// STATUS=<text>: shown by `systemctl status`.
    @discardableResult
    package func status(_ text: String) -> NotifyResult {
        notify(["STATUS=\(SystemdNotifier.oneLine(text))"])
    }

    /// WATCHDOG=1: the keep-alive ping.
    @discardableResult
    package func watchdog() -> NotifyResult { notify(["WATCHDOG=1"]) }

    /// RELOADING=1 with MONOTONIC_USEC (required by Type=notify-reload, harmless otherwise); send
    /// `ready()` when the reload finished.
    @discardableResult
    package func reloading() -> NotifyResult {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let microseconds = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
        return notify(["RELOADING=1", "MONOTONIC_USEC=\(microseconds)"])
    }

    /// STOPPING=1: shutdown has begun.
    @discardableResult
    package func stopping() -> NotifyResult { notify(["STOPPING=1"]) }

    /// The watchdog interval systemd expects pings within (WATCHDOG_USEC, when WATCHDOG_PID is us or
    /// unset); nil if the watchdog is off.
    package var watchdogTimeout: Duration? {
        var microseconds: UInt64 = 0
        guard sd_watchdog_enabled(0, &microseconds) > 0, microseconds > 0 else { return nil }
        return .microseconds(Int64(clamping: microseconds))
    }

    /// A STATUS= value must be one line.
    static func oneLine(_ text: String) -> String {
        String(text.map { $0 == "\n" || $0 == "\r" ? " " : $0 })
    }
}

/// Pings the watchdog at half of WATCHDOG_USEC (systemd's advice) until cancelled.
///
/// Runs on a thread of its own rather than on Swift's cooperative pool: blocking work elsewhere in the
/// process must not starve the keep-alive; health is judged by `isHealthy` instead.
package final class WatchdogPinger: Sendable {
    private let cancelled = Atomic<Bool>(false)
    private let thread = Mutex<pthread_t?>(nil)

    /// Starts pinging if systemd enabled the watchdog; otherwise does nothing. `isHealthy` is asked
    /// before each ping (on the pinger's thread): a stuck or unhealthy box stops pinging and systemd
    /// restarts it.
    package init(notifier: SystemdNotifier = SystemdNotifier(), isHealthy: @escaping @Sendable () -> Bool = { true }) {
        guard let timeout = notifier.watchdogTimeout else { return }
        let interval = timeout / 2
        let intervalMicroseconds = interval.components.seconds * 1_000_000 + interval.components.attoseconds / 1_000_000_000_000
        let body = PingerBody(notifier: notifier, isHealthy: isHealthy, intervalMicroseconds: intervalMicroseconds, pinger: self)
        let context = Unmanaged.passRetained(body).toOpaque()
        var created = pthread_t()
        let result = pthread_create(&created, nil, { argument in
            let body = Unmanaged<PingerBody>.fromOpaque(argument!).takeRetainedValue()
            body.run()
            return nil
        }, context)
        if result == 0 {
            thread.withLock { $0 = created }
        } else {
            Unmanaged<PingerBody>.fromOpaque(context).release()
        }
    }

    /// Whether pings are being sent.
    package var isActive: Bool { thread.withLock { $0 != nil } && !cancelled.load(ordering: .relaxed) }

    /// Stops pinging and waits for the thread (at most one 10 ms slice).
    package func cancel() {
        cancelled.store(true, ordering: .releasing)
        let running = thread.withLock { thread -> pthread_t? in
            defer { thread = nil }
            return thread
        }
        if let running { pthread_join(running, nil) }
    }

    deinit { cancel() }

    fileprivate var isCancelled: Bool { cancelled.load(ordering: .acquiring) }
}

/// The pinger thread's loop; holds the pinger weakly so dropping it stops the thread.
private final class PingerBody: @unchecked Sendable {
    let notifier: SystemdNotifier
    let isHealthy: @Sendable () -> Bool
    let intervalMicroseconds: Int64
    weak var pinger: WatchdogPinger?

    init(notifier: SystemdNotifier, isHealthy: @escaping @Sendable () -> Bool, intervalMicroseconds: Int64, pinger: WatchdogPinger) {
        self.notifier = notifier
        self.isHealthy = isHealthy
        self.intervalMicroseconds = intervalMicroseconds
        self.pinger = pinger
    }

    func run() {
        while true {
            // Take the pinger only for the check, so dropping it ends the loop.
            do {
                guard let pinger, !pinger.isCancelled else { return }
            }
            if isHealthy() { notifier.watchdog() }
            // Sleep in 10 ms slices so cancel() returns promptly.
            var slept: Int64 = 0
            while slept < intervalMicroseconds {
                guard let pinger = self.pinger, !pinger.isCancelled else { return }
                let slice = min(10_000, intervalMicroseconds - slept)
                usleep(UInt32(slice))
                slept += slice
            }
        }
    }
}
