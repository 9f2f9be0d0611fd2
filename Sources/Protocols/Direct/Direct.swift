// Direct: the `direct` outbound (kernel sockets with every dial field) and the `direct` inbound
// (a plain TCP/UDP listener that forwards to a fixed or overridden destination).
//
// Imports: Adapter, Net, Config, NIOCore (STYLE.md §1).
package import Adapter

/// The module's name, for log lines and diagnostics.
package enum DirectModule {
    package static let name = "Direct"
}

/// How `override_address` / `override_port` rewrite a destination (Go's three override modes).
package struct DestinationOverride: Sendable, Equatable {
    package var host: Host?
    package var port: UInt16?

    package init(host: Host?, port: UInt16?) {
        self.host = host
        self.port = (port ?? 0) > 0 ? port : nil
    }

    package var isEmpty: Bool { host == nil && port == nil }

    /// Address and port: both replaced; address only: the port is kept; port only: the host is kept.
    package func apply(to destination: Destination) -> Destination {
        var out = destination
        if let host { out.host = host }
        if let port { out.port = port }
        return out
    }
}
