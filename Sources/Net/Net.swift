// Net: kernel sockets through NIOPosix — the default `Dialer` (`SystemDialer`), TCP and UDP
// listeners for inbounds, the UDP NAT table, the system resolver, and the `Relay` that splices
// two flows.
//
// Invariants:
// - Only this module (and Appliance) opens kernel sockets for the engine.
// - A relay joins two channels on ONE event loop; the data path passes `ByteBuffer`s through
//   without copying, with no task, closure or promise per chunk.
// - Imports: Adapter, CLinux, NIOCore, NIOPosix (STYLE.md §1).

/// The module's name, for log lines and diagnostics.
package enum NetModule {
    package static let name = "Net"
}
