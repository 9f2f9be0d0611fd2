// `sing-box run`: start the box, reload on SIGHUP, close cleanly on SIGTERM/SIGINT.
//
// 1. Load and check the config; build and start the box (FATAL and exit 1 on failure, with
//    Go's `create service:` / `start service:` prefixes).
// 2. Wait for a signal. SIGHUP: load and build the new config first; if that fails, log
//    `reload service: …` and keep serving the old box. Otherwise close the old box and start the
//    new one (on a start failure, rebuild and restart the old configuration).
// 3. SIGTERM / SIGINT: close every inbound and flow, exit 0.
// Under systemd (Type=notify): READY=1 once started, RELOADING=1 … READY=1 around a reload,
// STOPPING=1 before closing, and WATCHDOG=1 pings while WatchdogSec is set (no-ops otherwise).
import Adapter
import Box
import Config
import Dispatch
import Systemd
#if canImport(Glibc)
import Glibc
#endif

enum RunCommand {
    static func run(_ arguments: Arguments) async -> Int32 {
        let signals = SignalStream([SIGHUP, SIGTERM, SIGINT])
        let loaded: LoadedConfig
        do { loaded = try Commands.load(arguments) } catch { return Console.fatal(error.description) }
        var box: SingBox
        switch await startBox(loaded) {
        case .success(let started): box = started
        case .failure(let message): return Console.fatal(message)
        }
        let notifier = SystemdNotifier()
        notifier.ready(status: "sing-box started")
        let watchdog = WatchdogPinger(notifier: notifier)
        defer { watchdog.cancel() }
        for await signal in signals.stream {
            if signal != SIGHUP {
                notifier.stopping()
                await box.close()
                return 0
            }
            notifier.reloading()
            defer { notifier.ready(status: "sing-box started") }
            let next: LoadedConfig
            do { next = try Commands.load(arguments) } catch {
                box.logger.error("reload service: \(error.description)")
                continue
            }
            let candidate: SingBox
            do {
                candidate = try SingBox(options: next.options, colors: Console.colors)
            } catch {
                box.logger.error("reload service: \(error.runDescription)")
                continue
            }
            await box.close()
            do {
                try await candidate.start()
                box = candidate
            } catch {
                candidate.logger.error("reload service: \(error.runDescription)")
                // Keep serving: bring the previous configuration back up.
                switch await startBox(LoadedConfig(options: box.options)) {
                case .success(let restored): box = restored
                case .failure(let message): return Console.fatal(message)
                }
            }
        }
        return 0
    }

    enum Outcome {
        case success(SingBox)
        case failure(String)
    }

    static func startBox(_ loaded: LoadedConfig) async -> Outcome {
        let box: SingBox
        do {
            box = try SingBox(options: loaded.options, colors: Console.colors)
        } catch {
            return .failure(error.runDescription)
        }
        for warning in loaded.warnings { box.logger.warn(warning) }
        do {
            try await box.start()
        } catch {
            return .failure(error.runDescription)
        }
        return .success(box)
    }
}

/// Delivers POSIX signals as an async stream (the default actions are ignored while it lives).
final class SignalStream: @unchecked Sendable {
    let stream: AsyncStream<Int32>
    private var sources: [any DispatchSourceSignal] = []

    init(_ signals: [Int32]) {
        var continuation: AsyncStream<Int32>.Continuation!
        stream = AsyncStream { continuation = $0 }
        let queue = DispatchQueue(label: "sing-box.signals")
        for number in signals {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            let yield = continuation!
            source.setEventHandler { yield.yield(number) }
            source.resume()
            sources.append(source)
        }
    }
}
