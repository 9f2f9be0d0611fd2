// HTTPProxy: HTTP proxy (CONNECT and plain forward) inbound and outbound.
// Owned by its folder; see ../shared/STYLE.md §1 for what it may import.

/// The module's name, for log lines and diagnostics.
package enum HTTPProxyModule {
    package static let name = "HTTPProxy"
}
