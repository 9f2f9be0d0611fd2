// Nftables: nftables via libnftnl: auto_redirect and tproxy tables.
// Owned by its folder; see ../shared/STYLE.md §1 for what it may import.

/// The module's name, for log lines and diagnostics.
package enum NftablesModule {
    package static let name = "Nftables"
}
