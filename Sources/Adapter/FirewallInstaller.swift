// The engine's handle on the nftables rules that steer LAN traffic: sing-box 1.12's `auto_redirect`
// table (TCP redirected to a local port, UDP/ICMP marked into the TUN's routing table) and the table for a
// `tproxy` inbound. Appliance/Nftables implements it over libnftnl; engine tests use a fake.

/// The inputs of the `auto_redirect` table (sing-box 1.12 option names in comments).
package struct AutoRedirectOptions: Hashable, Sendable {
    /// The nftables table name; sing-box uses `"sing-box"`.
    package var tableName: String
    /// `interface_name`: the TUN; its traffic bypasses the rules.
    package var interfaceName: String
    /// IPv4 enabled (the TUN has an IPv4 address).
    package var enableIPv4: Bool
    /// IPv6 enabled (the TUN has an IPv6 address).
    package var enableIPv6: Bool
    /// The TUN's first IPv4 and IPv6 prefixes; DNS to local addresses is hijacked to their next address.
    package var inet4Address: NetworkPrefix?
    /// See `inet4Address`.
    package var inet6Address: NetworkPrefix?
    /// The local port TCP is redirected to (the redirect server).
    package var redirectPort: UInt16
    /// `auto_redirect_input_mark`, default 0x2023.
    package var inputMark: UInt32
    /// `auto_redirect_output_mark`, default 0x2024: our own outbound traffic, never redirected.
    package var outputMark: UInt32
    /// `strict_route`: with one family only, the other is rejected.
    package var strictRoute: Bool
    /// Addresses of this host (global unicast, plus everything on `lo`): traffic to them is not proxied.
    package var localAddresses: [NetworkPrefix]
    /// `route_address`: only these destinations are proxied (empty: all).
    package var routeAddresses: [NetworkPrefix]
    /// `route_exclude_address`: these destinations are not proxied.
    package var routeExcludeAddresses: [NetworkPrefix]
    /// `include_interface` / `exclude_interface` for forwarded traffic.
    package var includeInterfaces: [String]
    /// See `includeInterfaces`.
    package var excludeInterfaces: [String]
    /// Whether DNS (port 53) to a local address is redirected to the TUN's DNS address.
    package var hijackDNS: Bool
    /// `include_uid` / `include_uid_range`: only these users' local traffic is proxied (empty: all).
    package var includeUIDs: [ClosedRange<UInt32>] = []
    /// `exclude_uid` / `exclude_uid_range`: these users' local traffic is not proxied.
    package var excludeUIDs: [ClosedRange<UInt32>] = []
    /// The destination IP CIDRs of the `route_address_set` rule-sets: proxied together with
    /// `routeAddresses` (both empty: all).
    package var routeAddressSet: [NetworkPrefix] = []
    /// The destination IP CIDRs of the `route_exclude_address_set` rule-sets: not proxied.
    package var routeExcludeAddressSet: [NetworkPrefix] = []
    /// tun `loopback_address` (host prefixes): TCP to them is not redirected but marked into the TUN,
    /// whose stack turns it back to its sender.
    package var loopbackAddresses: [NetworkPrefix] = []

    /// sing-box's defaults for the table name and marks.
    package init(tableName: String = "sing-box", interfaceName: String, enableIPv4: Bool, enableIPv6: Bool,
                 inet4Address: NetworkPrefix? = nil, inet6Address: NetworkPrefix? = nil, redirectPort: UInt16,
                 inputMark: UInt32 = 0x2023, outputMark: UInt32 = 0x2024, strictRoute: Bool = false,
                 localAddresses: [NetworkPrefix] = [], routeAddresses: [NetworkPrefix] = [],
                 routeExcludeAddresses: [NetworkPrefix] = [], includeInterfaces: [String] = [],
                 excludeInterfaces: [String] = [], hijackDNS: Bool = true) {
        self.tableName = tableName
        self.interfaceName = interfaceName
        self.enableIPv4 = enableIPv4
        self.enableIPv6 = enableIPv6
        self.inet4Address = inet4Address
        self.inet6Address = inet6Address
        self.redirectPort = redirectPort
        self.inputMark = inputMark
        self.outputMark = outputMark
        self.strictRoute = strictRoute
        self.localAddresses = localAddresses
        self.routeAddresses = routeAddresses
        self.routeExcludeAddresses = routeExcludeAddresses
        self.includeInterfaces = includeInterfaces
        self.excludeInterfaces = excludeInterfaces
        self.hijackDNS = hijackDNS
    }
}

/// The inputs of a `tproxy` inbound's table: TCP and UDP arriving on the LAN are delivered to a local
/// transparent socket, and the routing rule `fwmark → local table` makes them local.
package struct TProxyOptions: Hashable, Sendable {
    /// The nftables table name.
    package var tableName: String
    /// The port the tproxy inbound listens on (IP_TRANSPARENT).
    package var port: UInt16
    /// The mark set on intercepted packets (a policy rule routes it to the local table).
    package var mark: UInt32
    /// Our own outbound mark: such traffic is never intercepted.
    package var bypassMark: UInt32
    /// Destinations never intercepted (this host's addresses, private ranges the user keeps direct).
    package var bypassAddresses: [NetworkPrefix]

    /// A tproxy table description.
    package init(tableName: String = "sing-box-tproxy", port: UInt16, mark: UInt32 = 0x2025,
                 bypassMark: UInt32 = 0x2024, bypassAddresses: [NetworkPrefix] = []) {
        self.tableName = tableName
        self.port = port
        self.mark = mark
        self.bypassMark = bypassMark
        self.bypassAddresses = bypassAddresses
    }
}

/// Installs, replaces and removes our nftables tables.
///
/// Every call is one netlink batch: it is applied entirely or not at all (an error means nothing
/// changed). Installing a table replaces any earlier table of the same name in the same batch. Blocking:
/// call from the control plane.
package protocol FirewallInstaller: Sendable {
    /// Installs (or atomically replaces) the auto_redirect table.
    func installAutoRedirect(_ options: AutoRedirectOptions) throws
    /// Replaces only the local address sets of the installed auto_redirect table (interfaces changed).
    func updateLocalAddresses(_ options: AutoRedirectOptions) throws
    /// Installs (or atomically replaces) a tproxy table.
    func installTProxy(_ options: TProxyOptions) throws
    /// Deletes the named table if it exists. Idempotent.
    func removeTable(named name: String) throws
}
