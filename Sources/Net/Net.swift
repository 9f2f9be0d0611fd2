// Net: kernel sockets via NIOPosix: default Dialer, listeners, UDP NAT, Relay.
// Owned by its folder; see ../shared/STYLE.md §1 for what it may import.

/// The module's name, for log lines and diagnostics.
package enum NetModule {
    package static let name = "Net"
}
