// Netlink: rtnetlink over libmnl for the gateway: links (create, delete, MTU, up/down), addresses,
// routes in a table of ours, policy rules as sing-box 1.12 installs them for `auto_route`, dumps of all
// four, and a monitor that keeps a snapshot of links, addresses and default routes.
//
// Invariants: every request is acknowledged (NLM_F_ACK) and its error, if any, is thrown with the errno
// and what we were doing; dumps read until NLMSG_DONE. Sockets belong to the network namespace of the
// thread that opened them, which is how tests (and a future multi-namespace appliance) aim them.
// Must not import: Box, protocols, NetstackNIO. Linux headers arrive through CMnl/CLinux only.

import Glibc

/// The module's name, for log lines and diagnostics.
package enum NetlinkModule {
    package static let name = "Netlink"
}

/// A netlink request failed: the kernel's errno and what we asked.
package struct NetlinkError: Error, CustomStringConvertible, Equatable {
    /// What we were doing: `add rule 9001 (inet4)`.
    package var operation: String
    /// The positive errno the kernel (or the socket) returned.
    package var errno: Int32

    /// An error for `operation` with `errno`.
    package init(operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    /// `add route 0.0.0.0/0 table 2022: File exists (errno 17)`.
    package var description: String { "\(operation): \(errnoDescription(errno)) (errno \(errno))" }
}

/// strerror without Foundation.
func errnoDescription(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "error \(code)" }
    return String(cString: text)
}
