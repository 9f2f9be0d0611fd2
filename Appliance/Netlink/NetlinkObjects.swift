// The values the netlink layer reads and writes: links, addresses, routes and policy rules.
package import Adapter

/// An IP family, as rtnetlink numbers it.
package enum IPFamily: UInt8, Hashable, Sendable, CustomStringConvertible {
    case inet4 = 2
    case inet6 = 10

    /// The family of a prefix.
    package init(of prefix: NetworkPrefix) { self = prefix.isIPv4 ? .inet4 : .inet6 }

    /// `inet4` / `inet6`, as in sing-box's logs.
    package var description: String { self == .inet4 ? "inet4" : "inet6" }

    /// The length of an address of this family in bytes.
    package var addressLength: Int { self == .inet4 ? 4 : 16 }
}

/// A link as RTM_NEWLINK reports it.
package struct LinkInfo: Hashable, Sendable {
    /// ifi_index.
    package var index: Int32
    /// IFLA_IFNAME.
    package var name: String
    /// ifi_flags (IFF_*).
    package var flags: UInt32
    /// IFLA_MTU.
    package var mtu: UInt32
    /// IFLA_INFO_KIND (`veth`, `dummy`, `tun`), if the kernel reports one.
    package var kind: String?

    /// IFF_UP.
    package var isUp: Bool { flags & NetlinkConstant.interfaceUp != 0 }
    /// IFF_RUNNING or IFF_LOWER_UP.
    package var isRunning: Bool { flags & (NetlinkConstant.interfaceRunning | NetlinkConstant.interfaceLowerUp) != 0 }
    /// IFF_LOOPBACK.
    package var isLoopback: Bool { flags & NetlinkConstant.interfaceLoopback != 0 }
}

/// An address on a link (RTM_NEWADDR).
package struct AddressInfo: Hashable, Sendable {
    /// The link's index.
    package var interfaceIndex: Int32
    /// The address and prefix length (IFA_LOCAL if present, else IFA_ADDRESS).
    package var prefix: NetworkPrefix
    /// ifa_scope.
    package var scope: UInt8
}

/// A route in some table (RTM_NEWROUTE).
package struct RouteInfo: Hashable, Sendable {
    /// The destination prefix (`0.0.0.0/0` for a default route).
    package var destination: NetworkPrefix
    /// The table (RTA_TABLE, or rtm_table).
    package var table: UInt32
    /// RTA_OIF, if any.
    package var outputInterface: Int32?
    /// RTA_GATEWAY, if any (4 or 16 bytes).
    package var gateway: [UInt8]?
    /// RTA_PRIORITY (the metric), 0 if absent.
    package var metric: UInt32
    /// rtm_type (RTN_UNICAST = 1, RTN_LOCAL = 2, RTN_UNREACHABLE = 7, …).
    package var type: UInt8
    /// rtm_protocol.
    package var routeProtocol: UInt8
    /// rtm_scope.
    package var scope: UInt8

    /// A unicast route of ours: protocol boot, universe scope.
    package init(destination: NetworkPrefix, table: UInt32, outputInterface: Int32?, gateway: [UInt8]? = nil,
                 metric: UInt32 = 0, type: UInt8 = 1, routeProtocol: UInt8 = 3, scope: UInt8 = 0) {
        self.destination = destination
        self.table = table
        self.outputInterface = outputInterface
        self.gateway = gateway
        self.metric = metric
        self.type = type
        self.routeProtocol = routeProtocol
        self.scope = scope
    }

    /// The route's family.
    package var family: IPFamily { IPFamily(of: destination) }
}

/// What a policy rule does when it matches (FR_ACT_*).
package enum RuleAction: Hashable, Sendable {
    /// FR_ACT_TO_TBL: look up `table`.
    case lookup(table: UInt32)
    /// FR_ACT_GOTO: continue at the rule with this priority.
    case goto(priority: UInt32)
    /// FR_ACT_NOP: match and go on with the next rule (sing-box's `nopPriority` target).
    case nop
    /// FR_ACT_UNREACHABLE: fail with ENETUNREACH (`strict_route` for a family without addresses).
    case unreachable
}

/// A policy routing rule (RTM_NEWRULE), the selectors sing-box 1.12 uses for `auto_route`.
package struct RoutingRule: Hashable, Sendable {
    /// inet4 or inet6.
    package var family: IPFamily
    /// FRA_PRIORITY.
    package var priority: UInt32
    /// What happens on a match.
    package var action: RuleAction
    /// FIB_RULE_INVERT: the selectors' sense is inverted (`not … lookup`).
    package var invert: Bool = false
    /// FRA_FWMARK (and FRA_FWMASK when `mask` is set).
    package var mark: UInt32?
    /// FRA_FWMASK.
    package var mask: UInt32?
    /// FRA_IIFNAME.
    package var inputInterface: String?
    /// FRA_OIFNAME.
    package var outputInterface: String?
    /// FRA_UID_RANGE.
    package var uidRange: ClosedRange<UInt32>?
    /// FRA_SUPPRESS_PREFIXLEN: ignore lookup results with a prefix this long or shorter.
    package var suppressPrefixLength: UInt32?
    /// FRA_SRC with rtm_src_len.
    package var source: NetworkPrefix?
    /// FRA_DST with rtm_dst_len.
    package var destination: NetworkPrefix?
    /// FRA_DPORT_RANGE.
    package var destinationPorts: ClosedRange<UInt16>?

    /// A rule with no selectors; set the ones you need.
    package init(family: IPFamily, priority: UInt32, action: RuleAction) {
        self.family = family
        self.priority = priority
        self.action = action
    }
}
