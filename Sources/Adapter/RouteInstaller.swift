// The engine's handle on the kernel routing policy a `tun` inbound needs for `auto_route`: routes in a
// table of ours and the policy rules that steer traffic into it, as sing-box 1.12 installs them.
// Appliance/Netlink implements it; engine tests use a fake.

/// What to route into the TUN and how, from the tun inbound's options (sing-box 1.12 names in comments).
package struct AutoRouteOptions: Hashable, Sendable {
    /// `interface_name`: the TUN interface.
    package var interfaceName: String
    /// `address` (IPv4 part): enables IPv4 routing when non-empty.
    package var inet4Addresses: [NetworkPrefix]
    /// `address` (IPv6 part): enables IPv6 routing when non-empty.
    package var inet6Addresses: [NetworkPrefix]
    /// `iproute2_table_index`, default 2022.
    package var tableIndex: UInt32
    /// `iproute2_rule_index`, default 9000; our rules use this priority and the ten after it.
    package var ruleIndex: UInt32
    /// `strict_route`: a family without addresses becomes unreachable.
    package var strictRoute: Bool
    /// `auto_redirect` is on: sing-box then installs only the mark rules (input mark → our table).
    package var autoRedirectMarkMode: Bool
    /// `auto_redirect_input_mark`, default 0x2023.
    package var autoRedirectInputMark: UInt32
    /// `auto_redirect_output_mark`, default 0x2024.
    package var autoRedirectOutputMark: UInt32
    /// `route_address`: routed prefixes instead of the default route.
    package var routeAddresses: [NetworkPrefix]
    /// `route_exclude_address`: prefixes cut out of the routed ranges.
    package var routeExcludeAddresses: [NetworkPrefix]
    /// `include_interface`: only traffic arriving on these interfaces is routed.
    package var includeInterfaces: [String]
    /// `exclude_interface`: traffic arriving on these interfaces is not routed.
    package var excludeInterfaces: [String]
    /// `include_uid`/`exclude_uid` and their ranges, already reduced to the UID ranges that bypass the TUN.
    package var excludedUIDRanges: [ClosedRange<UInt32>]

    /// sing-box's defaults: table 2022, rules from 9000, marks 0x2023/0x2024.
    package init(interfaceName: String, inet4Addresses: [NetworkPrefix] = [], inet6Addresses: [NetworkPrefix] = [],
                 tableIndex: UInt32 = 2022, ruleIndex: UInt32 = 9000, strictRoute: Bool = false,
                 autoRedirectMarkMode: Bool = false, autoRedirectInputMark: UInt32 = 0x2023,
                 autoRedirectOutputMark: UInt32 = 0x2024, routeAddresses: [NetworkPrefix] = [],
                 routeExcludeAddresses: [NetworkPrefix] = [], includeInterfaces: [String] = [],
                 excludeInterfaces: [String] = [], excludedUIDRanges: [ClosedRange<UInt32>] = []) {
        self.interfaceName = interfaceName
        self.inet4Addresses = inet4Addresses
        self.inet6Addresses = inet6Addresses
        self.tableIndex = tableIndex
        self.ruleIndex = ruleIndex
        self.strictRoute = strictRoute
        self.autoRedirectMarkMode = autoRedirectMarkMode
        self.autoRedirectInputMark = autoRedirectInputMark
        self.autoRedirectOutputMark = autoRedirectOutputMark
        self.routeAddresses = routeAddresses
        self.routeExcludeAddresses = routeExcludeAddresses
        self.includeInterfaces = includeInterfaces
        self.excludeInterfaces = excludeInterfaces
        self.excludedUIDRanges = excludedUIDRanges
    }
}

/// Installs and removes the `auto_route` routes and rules.
///
/// `install` first removes leftovers of an earlier run (rules in our priority range, routes in our table),
/// so a crash never leaves two sets behind. Every method is blocking (netlink round trips): call it from
/// the control plane, never from an event loop. Errors name the object that failed.
package protocol RouteInstaller: Sendable {
    /// Adds the TUN's addresses, routes in `tableIndex` and the policy rules for `options`.
    func install(_ options: AutoRouteOptions) throws
    /// Removes what `install` added (and any leftover in our table and priority range). Idempotent.
    func uninstall(_ options: AutoRouteOptions) throws
}
