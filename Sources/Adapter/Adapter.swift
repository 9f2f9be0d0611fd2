// Adapter: the protocols the parts meet through: Inbound, Outbound, Endpoint, Service, Dialer, …
// Owned by its folder; see ../shared/STYLE.md §1 for what it may import.

/// The module's name, for log lines and diagnostics.
package enum AdapterModule {
    package static let name = "Adapter"
}
