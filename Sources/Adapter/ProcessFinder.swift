// ProcessFinder: who owns a connection's local socket, for the process_* and user rule items.

/// The local process behind a connection (Go's `process.Info` on Linux).
package struct OwnerProcess: Sendable, Equatable {
    /// The executable (`/proc/<pid>/exe`); empty when the socket was found but no process was.
    package var path: String
    /// The socket's owner uid.
    package var userID: Int32
    /// The user name for `userID` from the passwd database; empty when unknown.
    package var userName: String

    package init(path: String, userID: Int32, userName: String) {
        self.path = path
        self.userID = userID
        self.userName = userName
    }

    /// The executable's file name (`process_name` compares this, Go's `filepath.Base`).
    package var name: String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}

/// Finds the process owning a local socket. Implemented by Appliance (netlink sock_diag and
/// /proc on Linux); the router calls it once per flow when a rule needs it, off the data path.
package protocol ProcessFinder: Sendable {
    /// The owner of the socket whose local end is `source` (the flow's source as the inbound saw
    /// it). Throws with the kernel's reason when no socket matches (e.g. a forwarded LAN flow).
    func findProcess(network: NetworkKind, source: Destination, destination: Destination?) throws -> OwnerProcess
}
