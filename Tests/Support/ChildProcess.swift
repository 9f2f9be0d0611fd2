// TestSupport: what every test target shares. Only tests import it.
//
// `ChildProcess` replaces Foundation's `Process` in tests. Foundation reaps children on one shared
// monitor thread with a blocking waitpid as soon as a child's end of its socket pair closes; a child
// that closes its inherited descriptors early (dnsmasq, daemons) parks that thread until the child
// exits, and every other `waitUntilExit()` in the test process hangs behind it. The whole suite
// deadlocked that way. Here each child is spawned with posix_spawn and waited for by its own pid.
// Children also get an empty signal mask and default dispositions (threads of the test runner block
// SIGTERM, and a spawned child would inherit that), and only descriptors 0–2 (no pipe of another
// test leaks into a long-lived child and keeps its reader waiting for EOF).
package import Foundation
import CLinux
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Why a child ended, as Foundation's `Process.TerminationReason`.
package enum ChildTerminationReason: Sendable { case exit, uncaughtSignal }

/// A child process with the part of Foundation's `Process` API the tests use.
package final class ChildProcess: @unchecked Sendable {
    package var executableURL: URL?
    package var arguments: [String] = []
    package var environment: [String: String]?
    package var currentDirectoryURL: URL?
    /// `FileHandle`, `Pipe`, or nil (inherit).
    package var standardInput: Any?
    package var standardOutput: Any?
    package var standardError: Any?

    private struct State { var pid: pid_t = 0; var status: Int32?; var reason: ChildTerminationReason = .exit }
    private let state = Mutex(State())

    package init() {}

    package enum SpawnError: Error, CustomStringConvertible {
        case noExecutable
        case spawn(String, Int32)
        package var description: String {
            switch self {
            case .noExecutable: "ChildProcess: executableURL not set"
            case .spawn(let path, let code): "ChildProcess: posix_spawn \(path): \(String(cString: strerror(code)))"
            }
        }
    }

    package var processIdentifier: Int32 { state.withLock { $0.pid } }

    /// Starts the child. Pipes' parent-side write/read ends for the child are closed afterwards, so
    /// reading a `Pipe` to its end finishes when the child exits.
    package func run() throws {
        guard let path = executableURL?.path else { throw SpawnError.noExecutable }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        func redirect(_ target: Any?, to fd: Int32, reading: Bool) {
            switch target {
            case let pipe as Pipe:
                let handle = reading ? pipe.fileHandleForReading : pipe.fileHandleForWriting
                posix_spawn_file_actions_adddup2(&actions, handle.fileDescriptor, fd)
            case let handle as FileHandle:
                if handle === FileHandle.nullDevice || handle.fileDescriptor < 0 {
                    posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", reading ? O_RDONLY : O_WRONLY, 0)
                } else {
                    posix_spawn_file_actions_adddup2(&actions, handle.fileDescriptor, fd)
                }
            default:
                break
            }
        }
        redirect(standardInput, to: 0, reading: true)
        redirect(standardOutput, to: 1, reading: false)
        redirect(standardError, to: 2, reading: false)
        clinux_spawn_addclosefrom(&actions, 3)
        if let directory = currentDirectoryURL?.path {
            clinux_spawn_addchdir(&actions, directory)
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD, SIGQUIT, SIGUSR1, SIGUSR2] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let environmentList = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { environmentList.forEach { free($0) } }

        var pid: pid_t = 0
        let code = posix_spawn(&pid, path, &actions, &attributes, argv, environmentList)
        guard code == 0 else { throw SpawnError.spawn(path, code) }
        state.withLock { $0.pid = pid }
        // The child has its copies; close ours so EOF reaches the reader when the child exits.
        if let pipe = standardOutput as? Pipe { try? pipe.fileHandleForWriting.close() }
        if let pipe = standardError as? Pipe, (standardOutput as? Pipe) !== pipe { try? pipe.fileHandleForWriting.close() }
        if let pipe = standardInput as? Pipe { try? pipe.fileHandleForReading.close() }
    }

    /// Reaps the child if it has ended; never blocks.
    private func poll() {
        state.withLock { state in
            guard state.pid > 0, state.status == nil else { return }
            var status: Int32 = 0
            let result = waitpid(state.pid, &status, WNOHANG)
            if result == state.pid {
                // WIFEXITED / WEXITSTATUS / WTERMSIG, spelled out (the macros do not import).
                if status & 0x7f == 0 {
                    state.status = (status >> 8) & 0xff
                    state.reason = .exit
                } else {
                    state.status = status & 0x7f
                    state.reason = .uncaughtSignal
                }
            } else if result < 0 && errno == ECHILD {
                state.status = -1
            }
        }
    }

    package var isRunning: Bool {
        poll()
        return state.withLock { $0.pid > 0 && $0.status == nil }
    }

    /// Blocks the calling thread until the child has ended (it polls; no other thread is needed).
    package func waitUntilExit() {
        while isRunning { usleep(2_000) }
    }

    /// Exit status, or the signal number when a signal ended it (as Foundation reports it).
    package var terminationStatus: Int32 { poll(); return state.withLock { $0.status ?? 0 } }
    package var terminationReason: ChildTerminationReason { poll(); return state.withLock { $0.reason } }

    /// SIGTERM, as `Process.terminate()`.
    package func terminate() { send(SIGTERM) }
    /// SIGINT, as `Process.interrupt()`.
    package func interrupt() { send(SIGINT) }

    /// Sends `signal` while the child is still running.
    package func send(_ signal: Int32) {
        if isRunning { kill(processIdentifier, signal) }
    }
}
