// Logging in sing-box's format: levels trace…panic, `INFO[0012] tag: message` on a console,
// `+0000 2006-01-02 15:04:05 INFO …` with `timestamp`, `[<flow id> <elapsed>]` for flow lines.
package import NIOCore
import Glibc
import Synchronization

/// sing-box's log levels; lower raw value is more severe (Go's `log.Level` order).
package enum LogLevel: Int, Sendable, Comparable, CaseIterable, CustomStringConvertible {
    case panic = 0, fatal, error, warn, info, debug, trace

    /// Parses a config level name (`"warn"`, also Go's alias `"warning"`).
    package init?(name: String) {
        switch name {
        case "trace": self = .trace
        case "debug": self = .debug
        case "info": self = .info
        case "warn", "warning": self = .warn
        case "error": self = .error
        case "fatal": self = .fatal
        case "panic": self = .panic
        default: return nil
        }
    }

    package var description: String {
        switch self {
        case .panic: "panic"
        case .fatal: "fatal"
        case .error: "error"
        case .warn: "warn"
        case .info: "info"
        case .debug: "debug"
        case .trace: "trace"
        }
    }

    package static func < (lhs: LogLevel, rhs: LogLevel) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Where formatted lines go. The default writes to a file descriptor; tests capture lines.
package protocol LogSink: Sendable {
    func write(line: String)
}

/// Writes whole lines with one `write(2)` each, so concurrent lines never interleave mid-line.
package final class FileDescriptorLogSink: LogSink {
    private let fd: Int32
    private let ownsDescriptor: Bool

    /// Writes to `fd`; closes it on deinit when `ownsDescriptor`.
    package init(fd: Int32, ownsDescriptor: Bool = false) {
        self.fd = fd
        self.ownsDescriptor = ownsDescriptor
    }

    /// Opens (creating, appending) the file at `path`, as Go's `log.output` does.
    package convenience init(path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw AdapterError(.other, "open log file \(path): \(String(cString: strerror(errno)))")
        }
        self.init(fd: fd, ownsDescriptor: true)
    }

    deinit { if ownsDescriptor { Glibc.close(fd) } }

    package func write(line: String) {
        var line = line
        line.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                offset += n
            }
        }
    }
}

/// The box's log root: level filter, format and sink. Immutable after creation; shared by every
/// `ContextLogger`. Formatting happens only for lines that pass the level check.
package final class LogCore: Sendable {
    /// How the time is shown.
    package enum TimestampStyle: Sendable {
        /// `INFO[0012]`: seconds since start, four digits (Go's console default).
        case relative
        /// `+0000 2026-11-25 22:18:48 INFO` (`log.timestamp: true`).
        case full
        /// `INFO` alone (a log file without `timestamp`).
        case none
    }

    /// Lines less severe than this are dropped. `nil` means logging is disabled.
    package let level: LogLevel?
    package let colors: Bool
    package let timestampStyle: TimestampStyle
    package let sink: any LogSink
    /// Wall-clock start, seconds since the epoch, for the relative style.
    private let baseTime: Int
    /// Who else reads the lines written (the Clash API's `/logs`).
    package let observer = LogObserver()

    package init(level: LogLevel?, sink: any LogSink, colors: Bool = false,
                 timestampStyle: TimestampStyle = .relative, baseTime: Int = time(nil)) {
        self.level = level
        self.sink = sink
        self.colors = colors
        self.timestampStyle = timestampStyle
        self.baseTime = baseTime
    }

    /// A core that drops everything (`log.disabled`).
    package static let disabled = LogCore(level: nil, sink: FileDescriptorLogSink(fd: 2))

    /// True when a line at `level` would be written.
    @inlinable package func isEnabled(_ level: LogLevel) -> Bool {
        guard let threshold = self.level else { return false }
        return level <= threshold
    }

    /// Formats and writes one line.
    package func write(_ level: LogLevel, name: String, message: String, flow: FlowID?) {
        guard isEnabled(level) else { return }
        var text = ""
        if let flow {
            let id = String(flow.id)
            let idText = colors ? "\u{1B}[38;5;\(LogCore.flowColor(flow.id))m\(id)\u{1B}[0m" : id
            text = "[\(idText) \(LogCore.formatElapsed(.now() - flow.start))] "
        }
        if !name.isEmpty { text += name + ": " }
        text += message
        // Go's observable logger hands subscribers this "simple" form: no level, time or colours.
        if observer.hasSubscribers {
            observer.emit(level, colors ? Self.plainFlowPrefix(flow) + (name.isEmpty ? "" : name + ": ") + message : text)
        }
        var levelText = level.description.uppercased()
        if colors {
            let code: Int = switch level {
            case .debug, .trace: 37
            case .info: 36
            case .warn: 33
            case .error, .fatal, .panic: 31
            }
            levelText = "\u{1B}[\(code)m\(levelText)\u{1B}[0m"
        }
        switch timestampStyle {
        case .none:
            text = levelText + " " + text
        case .full:
            text = LogCore.formatWallClock() + " " + levelText + " " + text
        case .relative:
            var seconds = String(max(0, time(nil) - baseTime))
            while seconds.utf8.count < 4 { seconds = "0" + seconds }
            text = levelText + "[" + seconds + "] " + text
        }
        sink.write(line: text + "\n")
    }

    /// The flow prefix without colours (`[1234 5ms] `), empty without a flow.
    private static func plainFlowPrefix(_ flow: FlowID?) -> String {
        guard let flow else { return "" }
        return "[\(flow.id) \(LogCore.formatElapsed(.now() - flow.start))] "
    }

    /// 256-colour index for a flow id: Go picks from the 6×6×6 cube and avoids dark colours.
    static func flowColor(_ id: UInt32) -> Int {
        var color = Int(UInt8(truncatingIfNeeded: id)) % 215
        var row = color / 36, column = color % 36
        let luma = 0.2126 * Double(row * 51) + 0.7152 * Double(column / 6 * 51) + 0.0722 * Double(column % 6 * 51)
        if luma < 60 {
            row = 5 - row
            column = 35 - column
            color = row * 36 + column
        }
        return color + 16
    }

    /// `24ms` below a second, else Go's duration spelling rounded to milliseconds (`1.5s`, `2m3.004s`).
    package static func formatElapsed(_ amount: TimeAmount) -> String {
        let ms = max(0, amount.nanoseconds / 1_000_000)
        if ms < 1000 { return "\(ms)ms" }
        var out = ""
        var rest = ms
        if rest >= 3_600_000 { out += "\(rest / 3_600_000)h"; rest %= 3_600_000 }
        if rest >= 60_000 || !out.isEmpty { out += "\(rest / 60_000)m"; rest %= 60_000 }
        let seconds = rest / 1000, fraction = rest % 1000
        if fraction == 0 { return out + "\(seconds)s" }
        var f = String(fraction)
        while f.utf8.count < 3 { f = "0" + f }
        while f.hasSuffix("0") { f.removeLast() }
        return out + "\(seconds).\(f)s"
    }

    /// `-0700 2006-01-02 15:04:05` in local time, Go's 1.12 full timestamp.
    static func formatWallClock() -> String {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let n = strftime(&buffer, buffer.count, "%z %Y-%m-%d %H:%M:%S", &parts)
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Subscribers to a log core's lines (Go's observable log factory). Lines reach them only while
/// someone listens; the check costs one atomic load per written line.
package final class LogObserver: Sendable {
    /// Receives a line's level and its text without level or time; called on the logging thread.
    package typealias Subscriber = @Sendable (LogLevel, String) -> Void
    private let subscribers = Mutex<(next: UInt64, all: [UInt64: Subscriber])>((0, [:]))
    private let count = Atomic<Int>(0)

    package init() {}

    /// True while anyone listens.
    package var hasSubscribers: Bool { count.load(ordering: .relaxed) > 0 }

    /// How many listen.
    package var subscriberCount: Int { count.load(ordering: .relaxed) }

    /// Adds `subscriber`; returns the token that removes it.
    package func subscribe(_ subscriber: @escaping Subscriber) -> UInt64 {
        subscribers.withLock { state in
            state.next += 1
            state.all[state.next] = subscriber
            count.store(state.all.count, ordering: .relaxed)
            return state.next
        }
    }

    /// Removes the subscriber `token` named.
    package func unsubscribe(_ token: UInt64) {
        subscribers.withLock { state in
            state.all.removeValue(forKey: token)
            count.store(state.all.count, ordering: .relaxed)
        }
    }

    func emit(_ level: LogLevel, _ text: String) {
        for subscriber in subscribers.withLock({ Array($0.all.values) }) { subscriber(level, text) }
    }
}

/// A logger with a fixed name prefix (`router`, `inbound/mixed[mixed-in]`), sing-box's
/// `log.ContextLogger`. Cheap to copy; the message closure runs only when the level is enabled.
package struct ContextLogger: Sendable {
    package let core: LogCore
    /// The prefix printed before `: message`; empty for box-level lines (`sing-box started`).
    package let name: String

    package init(core: LogCore, name: String) {
        self.core = core
        self.name = name
    }

    /// The same core with another prefix.
    package func named(_ name: String) -> ContextLogger { ContextLogger(core: core, name: name) }

    @inlinable package func isEnabled(_ level: LogLevel) -> Bool { core.isEnabled(level) }

    @inlinable package func log(_ level: LogLevel, _ message: @autoclosure () -> String, flow: FlowID? = nil) {
        guard core.isEnabled(level) else { return }
        core.write(level, name: name, message: message(), flow: flow)
    }

    @inlinable package func trace(_ message: @autoclosure () -> String, flow: FlowID? = nil) { log(.trace, message(), flow: flow) }
    @inlinable package func debug(_ message: @autoclosure () -> String, flow: FlowID? = nil) { log(.debug, message(), flow: flow) }
    @inlinable package func info(_ message: @autoclosure () -> String, flow: FlowID? = nil) { log(.info, message(), flow: flow) }
    @inlinable package func warn(_ message: @autoclosure () -> String, flow: FlowID? = nil) { log(.warn, message(), flow: flow) }
    @inlinable package func error(_ message: @autoclosure () -> String, flow: FlowID? = nil) { log(.error, message(), flow: flow) }
}
