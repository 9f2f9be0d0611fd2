// The `auto_redirect` table as sing-box 1.12 builds it on Linux (sing-tun v0.7.3,
// redirect_nftables.go / redirect_nftables_rules.go; on Linux auto_redirect always runs in "mark mode"):
//
//   table inet sing-box
//     set inet4_local_address_set / inet6_local_address_set   (interval; this host's addresses)
//     chain output            nat    output     mangle(-150): exclusions, [reject], TCP redirect
//     [chain output_route     route  output     mangle(-150): TCP to a loopback address: mark input]
//     chain output_udp_icmp   route  output     mangle(-150): exclusions, [reject], mark input
//     chain prerouting        nat    prerouting dstnat+1:     exclusions, DNS hijack, [reject], TCP redirect, mark input
//     [chain prerouting_filter filter prerouting dstnat+1:    TCP to a loopback address: mark input]
//     chain prerouting_udp_icmp filter prerouting dstnat+2:   restore/set marks for UDP/ICMP
//
// "mark input" sets meta mark and ct mark to the input mark; the route rule `fwmark input lookup 2022`
// then sends the packet into the TUN. Our own traffic carries the output mark and is never touched.
// One deliberate difference from v0.7.3: prerouting_udp_icmp returns early for packets arriving on the
// TUN (sing-tun added this later); without it, UDP replies from the TUN were re-marked and looped,
// which is why UDP through Go 1.12's auto_redirect got no replies (shared/PEERS.md).
//     set inet4_route_address_set / inet6_route_address_set, inet4_route_exclude_address_set / inet6_…
//                             (interval; route_address(_set) and route_exclude_address(_set), when not empty)
//
// As sing-tun's nftablesCreateIPSet, each route set holds the inline prefixes (`route_address`) and the
// rule-sets' destination IP CIDRs (`route_address_set`) of one family; a family with neither gets no
// set and no rule.
//     set inet4_local_redirect_address_set / inet6_local_redirect_address_set
//                             (constant; tun `loopback_address`, when not empty)
// With loopback addresses the TCP redirect is one rule per family that skips them (`daddr !=` the set),
// and the bracketed chains mark TCP to them into the TUN instead, where the stack turns it around.
package import Adapter

/// Builds the auto_redirect table from its options.
package enum AutoRedirectTable {
    /// The table for `options`.
    package static func build(_ options: AutoRedirectOptions) -> NftTable {
        var table = NftTable(family: .inet, name: options.tableName)
        table.sets = localAddressSets(options) + loopbackAddressSets(options) + routeAddressSets(options)
        let loopback = !options.loopbackAddresses.isEmpty
        let skipOutput = (!options.includeInterfaces.isEmpty && !options.includeInterfaces.contains("lo"))
            || options.excludeInterfaces.contains("lo")
        if !skipOutput {
            table.chains.append(NftChain(name: "output", hook: .output, type: .nat, priority: NftPriority.mangle,
                                         rules: excludeRules(options, hook: .output, type: .nat) + unreachable(options) + redirect(options)))
            if loopback {
                table.chains.append(NftChain(name: "output_route", hook: .output, type: .route, priority: NftPriority.mangle,
                                             rules: loopbackReroute(options, hook: .output)))
            }
            table.chains.append(NftChain(name: "output_udp_icmp", hook: .output, type: .route, priority: NftPriority.mangle,
                                         rules: excludeRules(options, hook: .output, type: .route) + unreachable(options) + [mark(options)]))
        }
        table.chains.append(NftChain(name: "prerouting", hook: .prerouting, type: .nat, priority: NftPriority.dstnat + 1,
                                     rules: excludeRules(options, hook: .prerouting, type: .nat) + unreachable(options)
                                         + redirect(options) + [mark(options)]))
        if loopback {
            table.chains.append(NftChain(name: "prerouting_filter", hook: .prerouting, type: .filter, priority: NftPriority.dstnat + 1,
                                         rules: loopbackReroute(options, hook: .prerouting)))
        }
        table.chains.append(NftChain(name: "prerouting_udp_icmp", hook: .prerouting, type: .filter, priority: NftPriority.dstnat + 2,
                                     rules: preroutingUDP(options)))
        return table
    }

    /// The named local address sets with `options.localAddresses` (for `replaceSetElements`).
    package static func localAddressSets(_ options: AutoRedirectOptions) -> [NftSet] {
        var sets: [NftSet] = []
        if options.enableIPv4 {
            sets.append(NftSet(name: "inet4_local_address_set", keyType: .ipv4Address, isInterval: true,
                               elements: intervalElements(options.localAddresses.filter(\.isIPv4))))
        }
        if options.enableIPv6 {
            sets.append(NftSet(name: "inet6_local_address_set", keyType: .ipv6Address, isInterval: true,
                               elements: intervalElements(options.localAddresses.filter { !$0.isIPv4 })))
        }
        return sets
    }

    /// `nftablesCreateLoopbackAddressSets`: the constant `inet4_local_redirect_address_set` /
    /// `inet6_local_redirect_address_set` with the loopback addresses of each enabled family that has some.
    static func loopbackAddressSets(_ options: AutoRedirectOptions) -> [NftSet] {
        enabledFamilies(options).compactMap { family in
            let addresses = loopbackAddresses(options, family)
            guard !addresses.isEmpty else { return nil }
            var set = NftSet(name: loopbackSetName(family), keyType: family == .ipv4 ? .ipv4Address : .ipv6Address,
                             elements: addresses.map { NftSetElement(key: $0.bytes) })
            set.isConstant = true
            return set
        }
    }

    static func loopbackSetName(_ family: NftFamily) -> String {
        family == .ipv4 ? "inet4_local_redirect_address_set" : "inet6_local_redirect_address_set"
    }

    /// The families the table serves, IPv4 first.
    static func enabledFamilies(_ options: AutoRedirectOptions) -> [NftFamily] {
        (options.enableIPv4 ? [.ipv4] : []) + (options.enableIPv6 ? [.ipv6] : [])
    }

    /// `loopback_address` entries of one family.
    static func loopbackAddresses(_ options: AutoRedirectOptions, _ family: NftFamily) -> [NetworkPrefix] {
        options.loopbackAddresses.filter { $0.isIPv4 == (family == .ipv4) }
    }

    /// `nftablesCreateLoopbackReroute`: TCP to a loopback address that is not marked yet gets the input
    /// mark (and, in output, the ct mark too), so the policy rule routes it into the TUN.
    static func loopbackReroute(_ options: AutoRedirectOptions, hook: NftHook) -> [NftRule] {
        let input = NftExpression.hostOrder(options.inputMark)
        let setMark: [NftExpression] = hook == .prerouting
            ? [.immediate(data: input), .setMeta(.mark), .counter]
            : [.immediate(data: input), .setMeta(.mark), .meta(.mark), .setCTMark(), .counter]
        return enabledFamilies(options).compactMap { family in
            guard !loopbackAddresses(options, family).isEmpty else { return nil }
            return NftRule([.meta(.l4proto), .cmp(equal: true, data: [6]), .meta(.mark), .cmp(equal: false, data: input)]
                           + destinationLookup(family, set: loopbackSetName(family), invert: false) + setMark)
        }
    }

    /// The named route sets: `inet4_route_address_set`, `inet6_route_address_set`,
    /// `inet4_route_exclude_address_set`, `inet6_route_exclude_address_set`, each only when not empty.
    package static func routeAddressSets(_ options: AutoRedirectOptions) -> [NftSet] {
        routeSetContents(options).map { entry in
            NftSet(name: entry.name, keyType: entry.family == .ipv4 ? .ipv4Address : .ipv6Address, isInterval: true,
                   elements: intervalElements(entry.prefixes))
        }
    }

    /// The non-empty route sets: name, family, prefixes, and whether a destination outside (true) or
    /// inside (false) the set returns.
    static func routeSetContents(_ options: AutoRedirectOptions)
        -> [(name: String, family: NftFamily, prefixes: [NetworkPrefix], invert: Bool)] {
        var result: [(name: String, family: NftFamily, prefixes: [NetworkPrefix], invert: Bool)] = []
        let lists = [("route_address_set", options.routeAddresses + options.routeAddressSet, true),
                     ("route_exclude_address_set", options.routeExcludeAddresses + options.routeExcludeAddressSet, false)]
        for (suffix, prefixes, invert) in lists {
            for family in [NftFamily.ipv4, .ipv6] {
                let list = prefixes.filter { $0.isIPv4 == (family == .ipv4) }
                guard !list.isEmpty else { continue }
                result.append(((family == .ipv4 ? "inet4_" : "inet6_") + suffix, family, list, invert))
            }
        }
        return result
    }

    /// What sing-box puts in the local address sets: every address on `lo` and every global unicast
    /// address elsewhere (whole prefixes: the gateway's connected subnets bypass the proxy).
    package static func localAddresses(of interfaces: [NetworkInterface]) -> [NetworkPrefix] {
        interfaces.flatMap { interface in
            interface.addresses.filter { interface.name == "lo" || $0.isGlobalUnicast }
        }
    }

    /// Interval-set elements for prefixes: merged ranges, each a start and an interval-end one past it.
    package static func intervalElements(_ prefixes: [NetworkPrefix]) -> [NftSetElement] {
        var ranges = prefixes.map { prefix -> (start: [UInt8], end: [UInt8]) in
            let start = prefix.masked.bytes
            var end = start
            for bit in prefix.length..<(start.count * 8) { end[bit / 8] |= UInt8(0x80 >> (bit % 8)) }
            return (start, end)
        }.sorted { $0.start.lexicographicallyPrecedes($1.start) }
        var merged: [(start: [UInt8], end: [UInt8])] = []
        for range in ranges {
            guard let last = merged.last else {
                merged.append(range)
                continue
            }
            // Overlapping or adjacent (start <= last.end + 1; a last range ending at the top absorbs all).
            let touches = increment(last.end).map { !$0.lexicographicallyPrecedes(range.start) } ?? true
            if touches {
                if last.end.lexicographicallyPrecedes(range.end) { merged[merged.count - 1].end = range.end }
            } else {
                merged.append(range)
            }
        }
        ranges = merged
        return ranges.flatMap { range -> [NftSetElement] in
            // A range ending at the last address has no "one past": sing-box then repeats the start.
            [NftSetElement(key: range.start), NftSetElement(key: increment(range.end) ?? range.start, isIntervalEnd: true)]
        }
    }

    /// `bytes + 1`, or nil on overflow.
    static func increment(_ bytes: [UInt8]) -> [UInt8]? {
        var result = bytes
        for index in result.indices.reversed() {
            if result[index] == 0xFF { result[index] = 0 } else {
                result[index] += 1
                return result
            }
        }
        return nil
    }

    private static let udpICMP = NftSet.anonymous(.inetProtocol, elements: [17, 1, 58].map { NftSetElement(key: [$0]) })
    private static let tcpUDP = NftSet.anonymous(.inetProtocol, elements: [6, 17].map { NftSetElement(key: [$0]) })

    private static func ret(_ expressions: [NftExpression], _ sets: [NftSet] = []) -> NftRule {
        NftRule(expressions + [.counter, .verdict(.return)], anonymousSets: sets)
    }

    /// `nftablesCreateExcludeRules`.
    static func excludeRules(_ options: AutoRedirectOptions, hook: NftHook, type: NftChainType) -> [NftRule] {
        var rules: [NftRule] = []
        let outputMark = NftExpression.hostOrder(options.outputMark)
        if hook == .output {
            if type == .route {
                rules.append(NftRule([.meta(.l4proto), .lookup(set: "#0", invert: true), .verdict(.return)], anonymousSets: [udpICMP]))
            }
            rules.append(ret([.meta(.mark), .cmp(equal: true, data: outputMark)]))
            if type == .route {
                rules.append(ret([.ctMark(), .cmp(equal: true, data: outputMark)]))
            }
        }
        if hook != .prerouting {
            // Local traffic by user: include_uid returns everyone else, exclude_uid returns the listed.
            for (ranges, include) in [(options.includeUIDs, true), (options.excludeUIDs, false)] where !ranges.isEmpty {
                if ranges.count == 1, let only = ranges.first, only.lowerBound == only.upperBound {
                    rules.append(ret([.meta(.skuid), .cmp(equal: !include, data: NftExpression.hostOrder(only.lowerBound))]))
                } else {
                    // Interval keys are compared bytewise: big-endian keys and a byteorder conversion of
                    // the host-order uid, as nft does (sing-tun stores host-order keys, which orders
                    // ranges wrongly; its rule carries the comment "not a bug :(").
                    func bigEndian(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.bigEndian) { Array($0) } }
                    let elements = ranges.flatMap { range -> [NftSetElement] in
                        [NftSetElement(key: bigEndian(range.lowerBound)),
                         NftSetElement(key: bigEndian(range.upperBound &+ 1), isIntervalEnd: true)]
                    }
                    let set = NftSet.anonymous(.uid, isInterval: true, elements: elements)
                    rules.append(ret([.meta(.skuid), .hostToNetwork(), .lookup(set: "#0", invert: include)], [set]))
                }
            }
        }
        if hook == .prerouting {
            rules.append(ret([.meta(.iifname), .cmp(equal: true, data: NftExpression.interfaceName(options.interfaceName))]))
            if options.includeInterfaces.count > 1 {
                let set = NftSet.anonymous(.interfaceName, elements: options.includeInterfaces.map { NftSetElement(key: NftExpression.interfaceName($0)) })
                rules.append(ret([.meta(.iifname), .lookup(set: "#0", invert: true)], [set]))
            } else if let only = options.includeInterfaces.first {
                rules.append(ret([.meta(.iifname), .cmp(equal: false, data: NftExpression.interfaceName(only))]))
            }
            if options.excludeInterfaces.count > 1 {
                let set = NftSet.anonymous(.interfaceName, elements: options.excludeInterfaces.map { NftSetElement(key: NftExpression.interfaceName($0)) })
                rules.append(ret([.meta(.iifname), .lookup(set: "#0")], [set]))
            } else if let only = options.excludeInterfaces.first {
                rules.append(ret([.meta(.iifname), .cmp(equal: true, data: NftExpression.interfaceName(only))]))
            }
        }
        // route_address(_set): destinations outside it return; route_exclude_address(_set): inside it return.
        for entry in routeSetContents(options) {
            rules.append(ret(destinationLookup(entry.family, set: entry.name, invert: entry.invert)))
        }
        if options.hijackDNS && type == .nat {
            if options.enableIPv4, let rule = dnsHijack(options, family: .ipv4, hook: hook) { rules.append(rule) }
            if options.enableIPv6, let rule = dnsHijack(options, family: .ipv6, hook: hook) { rules.append(rule) }
        }
        if options.enableIPv4 { rules.append(ret(destinationLookup(.ipv4, set: "inet4_local_address_set", invert: false))) }
        if options.enableIPv6 { rules.append(ret(destinationLookup(.ipv6, set: "inet6_local_address_set", invert: false))) }
        return rules
    }

    /// `meta nfproto <family> ip[6] daddr [!=] @set`.
    static func destinationLookup(_ family: NftFamily, set: String, invert: Bool) -> [NftExpression] {
        [.meta(.nfproto), .cmp(equal: true, data: [family.rawValue]),
         family == .ipv4 ? .payload(.network, offset: 16, length: 4) : .payload(.network, offset: 24, length: 16),
         .lookup(set: set, invert: invert)]
    }

    /// `nftablesCreateDNSHijackRulesForFamily`: DNS (TCP/UDP 53) is DNATed to the address after the TUN's.
    static func dnsHijack(_ options: AutoRedirectOptions, family: NftFamily, hook: NftHook) -> NftRule? {
        guard let prefix = family == .ipv4 ? options.inet4Address : options.inet6Address,
              let next = increment(prefix.bytes), prefix.contains(next) else { return nil }
        var expressions: [NftExpression] = [.meta(.nfproto), .cmp(equal: true, data: [family.rawValue])]
        if hook == .output {
            // DNAT of loopback-bound DNS is not possible, and tproxy does not exist in output.
            expressions += [.meta(.oifname), .cmp(equal: false, data: NftExpression.interfaceName("lo"))]
        } else {
            expressions += [family == .ipv4 ? .payload(.network, offset: 12, length: 4) : .payload(.network, offset: 8, length: 16),
                            .lookup(set: family == .ipv4 ? "inet4_local_address_set" : "inet6_local_address_set")]
        }
        expressions += [.meta(.l4proto), .lookup(set: "#0"), .payload(.transport, offset: 2, length: 2),
                        .cmp(equal: true, data: NftExpression.networkOrder(53)), .counter,
                        .immediate(data: next), .dnat(family: family)]
        return NftRule(expressions, anonymousSets: [tcpUDP])
    }

    /// `nftablesCreateUnreachable`: with strict_route and one family only, the other is rejected.
    static func unreachable(_ options: AutoRedirectOptions) -> [NftRule] {
        guard options.strictRoute, options.enableIPv4 != options.enableIPv6 else { return [] }
        let other: NftFamily = options.enableIPv4 ? .ipv6 : .ipv4
        return [NftRule([.meta(.nfproto), .cmp(equal: true, data: [other.rawValue]), .counter, .reject])]
    }

    /// `nftablesCreateRedirect`: TCP to the redirect port. With loopback addresses, one rule per
    /// family, which skips them.
    static func redirect(_ options: AutoRedirectOptions) -> [NftRule] {
        let redirectTCP: [NftExpression] = [.meta(.l4proto), .cmp(equal: true, data: [6]), .counter,
                                            .immediate(data: NftExpression.networkOrder(options.redirectPort)), .redirect(), .verdict(.return)]
        if !options.loopbackAddresses.isEmpty {
            return enabledFamilies(options).map { family in
                let match: [NftExpression] = loopbackAddresses(options, family).isEmpty
                    ? [.meta(.nfproto), .cmp(equal: true, data: [family.rawValue])]
                    : destinationLookup(family, set: loopbackSetName(family), invert: true)
                return NftRule(match + redirectTCP)
            }
        }
        var expressions: [NftExpression] = []
        if options.enableIPv4 && !options.enableIPv6 {
            expressions += [.meta(.nfproto), .cmp(equal: true, data: [NftFamily.ipv4.rawValue])]
        } else if options.enableIPv6 && !options.enableIPv4 {
            expressions += [.meta(.nfproto), .cmp(equal: true, data: [NftFamily.ipv6.rawValue])]
        }
        return [NftRule(expressions + redirectTCP)]
    }

    /// `nftablesCreateMark`: meta mark and ct mark become the input mark.
    static func mark(_ options: AutoRedirectOptions) -> NftRule {
        NftRule([.immediate(data: NftExpression.hostOrder(options.inputMark)), .setMeta(.mark), .meta(.mark), .setCTMark(),
                 .counter, .verdict(.return)])
    }

    /// The prerouting_udp_icmp chain.
    static func preroutingUDP(_ options: AutoRedirectOptions) -> [NftRule] {
        let tun = NftExpression.interfaceName(options.interfaceName)
        let input = NftExpression.hostOrder(options.inputMark)
        return [
            NftRule([.meta(.l4proto), .lookup(set: "#0", invert: true), .verdict(.return)], anonymousSets: [udpICMP]),
            ret([.meta(.iifname), .cmp(equal: true, data: tun)]),
            NftRule([.meta(.iifname), .cmp(equal: false, data: tun), .ctMark(), .cmp(equal: true, data: input), .setMeta(.mark), .counter]),
            NftRule([.ctMark(), .cmp(equal: false, data: input), .immediate(data: NftExpression.hostOrder(options.outputMark)),
                     .setMeta(.mark), .meta(.mark), .setCTMark(), .counter]),
        ]
    }
}

/// The table for a `tproxy` inbound: LAN TCP/UDP is delivered to the transparent socket on `port` and
/// marked so that the policy rule `fwmark <mark> lookup <local table>` (added with Netlink, with
/// `local default dev lo` in that table) makes it local.
package enum TProxyTable {
    /// The table for `options`.
    package static func build(_ options: TProxyOptions) -> NftTable {
        var rules: [NftRule] = [
            NftRule([.meta(.mark), .cmp(equal: true, data: NftExpression.hostOrder(options.bypassMark)), .verdict(.return)]),
        ]
        for family in [NftFamily.ipv4, .ipv6] {
            let list = options.bypassAddresses.filter { $0.isIPv4 == (family == .ipv4) }
            guard !list.isEmpty else { continue }
            let set = NftSet.anonymous(family == .ipv4 ? .ipv4Address : .ipv6Address, isInterval: true,
                                       elements: AutoRedirectTable.intervalElements(list))
            rules.append(NftRule(AutoRedirectTable.destinationLookup(family, set: "#0", invert: false) + [.verdict(.return)],
                                 anonymousSets: [set]))
        }
        for protocolNumber: UInt8 in [6, 17] {
            rules.append(NftRule([.meta(.l4proto), .cmp(equal: true, data: [protocolNumber]),
                                  .immediate(data: NftExpression.networkOrder(options.port)), .tproxy(),
                                  .immediate(data: NftExpression.hostOrder(options.mark)), .setMeta(.mark),
                                  .counter, .verdict(.accept)]))
        }
        return NftTable(family: .inet, name: options.tableName, chains: [
            NftChain(name: "prerouting", hook: .prerouting, type: .filter, priority: NftPriority.mangle, rules: rules),
        ])
    }
}

/// `FirewallInstaller` over an nftables socket (in that socket's namespace).
package final class NftablesFirewallInstaller: FirewallInstaller {
    private let socket: NftablesSocket

    /// An installer that speaks through `socket`.
    package init(socket: NftablesSocket) {
        self.socket = socket
    }

    /// Replaces the auto_redirect table in one batch.
    package func installAutoRedirect(_ options: AutoRedirectOptions) throws {
        try socket.apply([.replaceTable(AutoRedirectTable.build(options))], operation: "install table inet \(options.tableName)")
    }

    /// Flushes and refills the local address sets in one batch.
    package func updateLocalAddresses(_ options: AutoRedirectOptions) throws {
        let commands = AutoRedirectTable.localAddressSets(options).map {
            NftCommand.replaceSetElements(family: .inet, table: options.tableName, set: $0)
        }
        try socket.apply(commands, operation: "update local address sets of \(options.tableName)")
    }

    /// Replaces the tproxy table in one batch.
    package func installTProxy(_ options: TProxyOptions) throws {
        try socket.apply([.replaceTable(TProxyTable.build(options))], operation: "install table inet \(options.tableName)")
    }

    /// Deletes the table; a missing table is not an error.
    package func removeTable(named name: String) throws {
        try socket.apply([.deleteTable(family: .inet, name: name)], operation: "remove table inet \(name)")
    }
}
