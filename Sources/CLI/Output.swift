// Standard streams without Foundation's buffering, and Go-style FATAL lines.
import Adapter
#if canImport(Glibc)
import Glibc
#endif

/// Writes to the standard streams (whole strings, retrying short writes).
enum FileHandleOutput {
    static func standardError(_ text: String) { write(2, text) }
    static func standardOutput(_ text: String) { write(1, text) }
    private static func write(_ fd: Int32, _ text: String) {
        FileDescriptorLogSink(fd: fd).write(line: text)
    }
}

/// Process-wide CLI presentation settings, fixed once the global flags are parsed.
enum Console {
    /// `--disable-color` was given.
    nonisolated(unsafe) static var disableColor = false

    /// Colours only on a terminal and only when not disabled.
    static var colors: Bool { !disableColor && isatty(2) == 1 }

    /// A console logger with Go's default format (`INFO[0000] …`).
    static func logCore() -> LogCore {
        LogCore(level: .trace, sink: FileDescriptorLogSink(fd: 2), colors: colors, timestampStyle: .relative)
    }

    /// Prints `FATAL[0000] message` as Go's `log.Fatal` and returns exit status 1.
    static func fatal(_ message: String) -> Int32 {
        logCore().write(.fatal, name: "", message: message, flow: nil)
        return 1
    }
}
