// What `auto_route` installs, as a pure function of the options: the routes of our table and the policy
// rules, in sing-box 1.12's order and priorities (sing-tun v0.7.3, tun_linux.go `rules()`/`routes()`).
// Kept free of I/O so it is tested without root, and so uninstall knows exactly what install added.
//
// Rule layout without auto_redirect (priority P = iproute2_rule_index, default 9000; nop = P + 10):
//   P     uidrange X goto nop                       (excluded UID ranges)
//   P+1   iif included goto match | iif excluded goto nop …
//   P+x   unreachable                               (strict_route, family without addresses)
//   P+x   to <tun address> lookup T; then suppress_prefixlength 0 lookup T; not dport 53 suppress_prefixlength 0 lookup main
//   P+x   iif <tun> goto nop; not iif lo lookup T; iif lo from 0.0.0.0/32 lookup T; iif lo from <tun net> lookup T
//   nop   (nop)
// With auto_redirect (mark mode): P fwmark output goto P+2; P+1 fwmark input lookup T; P+2 nop.
package import Adapter

/// The routes and rules `auto_route` installs for one set of options.
package struct AutoRoutePlan: Hashable, Sendable {
    /// Routes for table `tableIndex`, all through the TUN.
    package var routes: [NetworkPrefix]
    /// Policy rules, in installation order.
    package var rules: [RoutingRule]

    /// Computes the plan for `options` (sing-box 1.12 behaviour; see the file comment).
    package init(_ options: AutoRouteOptions) {
        routes = AutoRoutePlan.routeRanges(options)
        rules = AutoRoutePlan.rules(options)
    }

    /// The first and last priority our rules may use: sing-box deletes everything in [index, index + 10].
    package static func priorityRange(_ options: AutoRouteOptions) -> ClosedRange<UInt32> {
        options.ruleIndex...(options.ruleIndex + 10)
    }

    /// `BuildAutoRouteRanges`: per family with addresses, `route_address` or the default route, minus
    /// `route_exclude_address`.
    static func routeRanges(_ options: AutoRouteOptions) -> [NetworkPrefix] {
        var result: [NetworkPrefix] = []
        for family in [IPFamily.inet4, .inet6] {
            let addresses = family == .inet4 ? options.inet4Addresses : options.inet6Addresses
            guard !addresses.isEmpty else { continue }
            var ranges = options.routeAddresses.filter { IPFamily(of: $0) == family }.map(\.masked)
            if ranges.isEmpty {
                ranges = [NetworkPrefix(bytes: [UInt8](repeating: 0, count: family.addressLength), length: 0)!]
            }
            for exclude in options.routeExcludeAddresses where IPFamily(of: exclude) == family {
                ranges = ranges.flatMap { subtract(exclude.masked, from: $0) }
            }
            result += ranges
        }
        return result
    }

    /// `prefix` minus `exclude`, as the smallest list of prefixes (the split halves not containing it).
    static func subtract(_ exclude: NetworkPrefix, from prefix: NetworkPrefix) -> [NetworkPrefix] {
        if exclude.length <= prefix.length {
            return prefix.contains(exclude.bytes) && NetworkPrefix(bytes: prefix.bytes, length: exclude.length)?.masked == exclude
                ? [] : [prefix]
        }
        guard prefix.contains(exclude.bytes) else { return [prefix] }
        // Walk down from `prefix` to `exclude`, keeping the sibling half at every level.
        var result: [NetworkPrefix] = []
        var current = prefix
        while current.length < exclude.length {
            let bit = current.length
            var sibling = NetworkPrefix(bytes: exclude.bytes, length: bit + 1)!.masked
            sibling.bytes[bit / 8] ^= UInt8(0x80 >> (bit % 8))
            result.append(sibling)
            current = NetworkPrefix(bytes: exclude.bytes, length: bit + 1)!.masked
        }
        return result
    }

    /// `rules()` of sing-tun v0.7.3 for Linux (not Android).
    static func rules(_ options: AutoRouteOptions) -> [RoutingRule] {
        let p4 = !options.inet4Addresses.isEmpty
        let p6 = !options.inet6Addresses.isEmpty
        guard p4 || p6 else { return [] }
        let table = options.tableIndex
        var rules: [RoutingRule] = []
        func rule(_ family: IPFamily, _ priority: UInt32, _ action: RuleAction, _ configure: (inout RoutingRule) -> Void = { _ in }) {
            var it = RoutingRule(family: family, priority: priority, action: action)
            configure(&it)
            rules.append(it)
        }
        var priority = options.ruleIndex
        var priority6 = priority

        if options.autoRedirectMarkMode {
            for (enabled, family) in [(p4, IPFamily.inet4), (p6, IPFamily.inet6)] where enabled {
                let start = options.ruleIndex
                rule(family, start, .goto(priority: start + 2)) { $0.mark = options.autoRedirectOutputMark }
                rule(family, start + 1, .lookup(table: table)) { $0.mark = options.autoRedirectInputMark }
                rule(family, start + 2, .nop)
            }
            return rules
        }

        let nopPriority = options.ruleIndex + 10
        for range in options.excludedUIDRanges {
            if p4 { rule(.inet4, priority, .goto(priority: nopPriority)) { $0.uidRange = range } }
            if p6 { rule(.inet6, priority6, .goto(priority: nopPriority)) { $0.uidRange = range } }
        }
        if !options.excludedUIDRanges.isEmpty {
            if p4 { priority += 1 }
            if p6 { priority6 += 1 }
        }
        if !options.includeInterfaces.isEmpty {
            let matchPriority = priority + 2
            for name in options.includeInterfaces {
                if p4 { rule(.inet4, priority, .goto(priority: matchPriority)) { $0.inputInterface = name } }
                if p6 { rule(.inet6, priority6, .goto(priority: matchPriority)) { $0.inputInterface = name } }
            }
            if p4 { priority += 1 }
            if p6 { priority6 += 1 }
            if p4 {
                rule(.inet4, priority, .goto(priority: nopPriority))
                priority += 1
                rule(.inet4, matchPriority, .nop)
                priority += 1
            }
            if p6 {
                rule(.inet6, priority6, .goto(priority: nopPriority))
                priority6 += 1
                rule(.inet6, matchPriority, .nop)
                priority6 += 1
            }
        } else if !options.excludeInterfaces.isEmpty {
            for name in options.excludeInterfaces {
                if p4 { rule(.inet4, priority, .goto(priority: nopPriority)) { $0.inputInterface = name } }
                if p6 { rule(.inet6, priority6, .goto(priority: nopPriority)) { $0.inputInterface = name } }
            }
            if p4 { priority += 1 }
            if p6 { priority6 += 1 }
        }
        if options.strictRoute {
            if !p4 {
                rule(.inet4, priority, .unreachable)
                priority += 1
            }
            if !p6 {
                rule(.inet6, priority6, .unreachable)
                priority6 += 1
            }
        }
        if p4 {
            for address in options.inet4Addresses {
                rule(.inet4, priority, .lookup(table: table)) { $0.destination = address.masked }
            }
            priority += 1
            rule(.inet4, priority, .lookup(table: table)) { $0.suppressPrefixLength = 0 }
            priority += 1
        }
        if p6 {
            rule(.inet6, priority6, .lookup(table: table)) { $0.suppressPrefixLength = 0 }
            priority6 += 1
        }
        if p4 {
            rule(.inet4, priority, .lookup(table: NetlinkConstant.tableMain)) {
                $0.invert = true
                $0.destinationPorts = 53...53
                $0.suppressPrefixLength = 0
            }
        }
        if p6 {
            rule(.inet6, priority6, .lookup(table: NetlinkConstant.tableMain)) {
                $0.invert = true
                $0.destinationPorts = 53...53
                $0.suppressPrefixLength = 0
            }
        }
        if p4 {
            rule(.inet4, priority, .goto(priority: nopPriority)) { $0.inputInterface = options.interfaceName }
            priority += 1
            rule(.inet4, priority, .lookup(table: table)) {
                $0.invert = true
                $0.inputInterface = "lo"
            }
            rule(.inet4, priority, .lookup(table: table)) {
                $0.inputInterface = "lo"
                $0.source = NetworkPrefix(bytes: [0, 0, 0, 0], length: 32)
            }
            for address in options.inet4Addresses {
                rule(.inet4, priority, .lookup(table: table)) {
                    $0.inputInterface = "lo"
                    $0.source = address.masked
                }
            }
        }
        if p6 {
            rule(.inet6, priority6, .goto(priority: nopPriority)) { $0.inputInterface = options.interfaceName }
            rule(.inet6, priority6, .goto(priority: nopPriority)) {
                $0.inputInterface = "lo"
                $0.source = NetworkPrefix(bytes: [UInt8](repeating: 0, count: 16), length: 1)
            }
            rule(.inet6, priority6, .goto(priority: nopPriority)) {
                $0.inputInterface = "lo"
                $0.source = NetworkPrefix(bytes: [0x80] + [UInt8](repeating: 0, count: 15), length: 1)
            }
            priority6 += 1
            for address in options.inet6Addresses {
                rule(.inet6, priority6, .lookup(table: table)) {
                    $0.inputInterface = "lo"
                    $0.source = address.masked
                }
            }
            priority6 += 1
            rule(.inet6, priority6, .lookup(table: table))
        }
        if p4 { rule(.inet4, nopPriority, .nop) }
        if p6 { rule(.inet6, nopPriority, .nop) }
        return rules
    }
}
