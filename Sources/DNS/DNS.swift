// DNS: DNS codec, client and cache, DNS rules, transports, fakeip, hosts.
// Owned by its folder; see ../shared/STYLE.md §1 for what it may import.

/// The module's name, for log lines and diagnostics.
package enum DNSModule {
    package static let name = "DNS"
}
