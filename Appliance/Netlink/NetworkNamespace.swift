// Entering a named network namespace (/var/run/netns/<name>, as `ip netns add` creates them) on a
// thread of our own. Sockets and TUN devices belong to the namespace of the thread that creates them, so
// creating them inside `run` aims them there for their whole life, whichever thread uses them later.
import CLinux
import Glibc

/// Runs code inside a named network namespace.
package enum NetworkNamespace {
    /// Runs `body` on a new thread that has entered namespace `name` and returns its result. The calling
    /// thread's namespace never changes. Throws `NetlinkError` if the namespace cannot be entered.
    package static func run<T>(named name: String, _ body: () throws -> T) throws -> T {
        try run(path: "/var/run/netns/\(name)", body)
    }

    /// Like `run(named:)` with a namespace file path (`/proc/<pid>/ns/net`).
    package static func run<T>(path: String, _ body: () throws -> T) throws -> T {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw NetlinkError(operation: "open \(path)", errno: errno) }
        defer { close(fd) }
        return try withoutActuallyEscaping(body) { escapable in
            var outcome: Result<T, any Error>?
            let thread = try NativeThread(name: "netns") {
                let entered = clinux_setns_net(fd)
                guard entered == 0 else {
                    outcome = .failure(NetlinkError(operation: "enter network namespace \(path)", errno: -entered))
                    return
                }
                outcome = Result { try escapable() }
            }
            thread.join()
            guard let outcome else { throw NetlinkError(operation: "run in \(path)", errno: EINTR) }
            return try outcome.get()
        }
    }
}
