// Systemd: the service manager protocol (sd_notify): READY=1, STATUS=, WATCHDOG=1 on the interval
// systemd asks for (WATCHDOG_USEC), RELOADING=1 and STOPPING=1. Works without systemd: with no
// NOTIFY_SOCKET every call is a no-op that reports `.notRunningUnderSystemd`.
// Only the non-variadic sd_notify is used (sd_notifyf is unavailable from Swift).
// Must not import: Netlink, Nftables, TunDevice, Box.
import CSystemd
import Glibc

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
package final class WatchdogPinger: Sendable {
    private let task: Task<Void, Never>?

    /// Starts pinging if systemd enabled the watchdog; otherwise does nothing. `isHealthy` is asked
    /// before each ping: a stuck or unhealthy box stops pinging and systemd restarts it.
    package init(notifier: SystemdNotifier = SystemdNotifier(), isHealthy: @escaping @Sendable () -> Bool = { true }) {
        guard let timeout = notifier.watchdogTimeout else {
            task = nil
            return
        }
        let interval = timeout / 2
        task = Task.detached {
            while !Task.isCancelled {
                if isHealthy() { notifier.watchdog() }
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// Whether pings are being sent.
    package var isActive: Bool { task != nil }

    /// Stops pinging.
    package func cancel() { task?.cancel() }

    deinit { task?.cancel() }
}
