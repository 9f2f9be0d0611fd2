// TunSettings: a tun inbound's options, parsed and checked once, with sing-box 1.12's defaults.
package import Adapter
package import Config
import NetstackWire
import NIOCore

/// The tun fields this build acts on, defaults applied (sing-box 1.12 `inbound/tun.go`).
package struct TunSettings: Sendable {
    /// `interface_name`; empty lets the kernel pick `tun%d`.
    package var interfaceName: String
    /// `mtu`, default 9000 (Go's `tun.DefaultMTU` for 1.12 on Linux).
    package var mtu: UInt32
    /// The IPv4 part of `address`.
    package var inet4Addresses: [NetworkPrefix]
    /// The IPv6 part of `address`.
    package var inet6Addresses: [NetworkPrefix]
    /// `auto_route`: routes and policy rules steer traffic into the TUN.
    package var autoRoute: Bool
    /// `auto_redirect`: nftables steers TCP to the redirect listener and marks UDP into the TUN.
    package var autoRedirect: Bool
    /// `strict_route`.
    package var strictRoute: Bool
    /// `iproute2_table_index`, default 2022.
    package var tableIndex: UInt32
    /// `iproute2_rule_index`, default 9000.
    package var ruleIndex: UInt32
    /// `auto_redirect_input_mark`, default 0x2023.
    package var inputMark: UInt32
    /// `auto_redirect_output_mark`, default 0x2024.
    package var outputMark: UInt32
    /// `route_address`.
    package var routeAddresses: [NetworkPrefix]
    /// `route_exclude_address`.
    package var routeExcludeAddresses: [NetworkPrefix]
    /// `route_address_set`: rule-set tags, and their destination IP CIDRs once `resolveRuleSets` ran.
    package var routeAddressSet: [(tag: String, prefixes: [NetworkPrefix])]
    /// `route_exclude_address_set`, as `routeAddressSet`.
    package var routeExcludeAddressSet: [(tag: String, prefixes: [NetworkPrefix])]
    /// `include_interface`.
    package var includeInterfaces: [String]
    /// `exclude_interface`.
    package var excludeInterfaces: [String]
    /// `include_uid` + `include_uid_range`.
    package var includeUIDs: [ClosedRange<UInt32>]
    /// `exclude_uid` + `exclude_uid_range`.
    package var excludeUIDs: [ClosedRange<UInt32>]
    /// `udp_timeout`, default 5 minutes (Go's `C.UDPTimeout`).
    package var udpTimeout: ConfigDuration
    /// `stack`: `""`, `system`, `gvisor` or `mixed` (all served by our netstack; see Tun.swift).
    package var stack: String
    /// The legacy per-inbound fields (`sniff`, `domain_strategy`, …), applied to each flow.
    package var legacySniff: InboundSniff?
    /// The legacy `domain_strategy`.
    package var legacyDomainStrategy: DomainStrategy?
    /// The legacy `udp_disable_domain_unmapping`.
    package var udpDisableDomainUnmapping: Bool
    /// `loopback_address`: TCP to these is turned back to the client itself (sing-tun swaps the
    /// addresses), so `address:port` reaches the dialling host's own `port`.
    package var loopbackAddresses: [String]
    /// What makes the inbound fail when it starts (an unknown `stack`, a field this build lacks).
    package var startError: AdapterError?

    /// Parses `options`. Throws `AdapterError` for values that cannot be read (a bad UID range);
    /// what Go refuses only at start (`unknown stack: lwip`) lands in `startError`.
    package init(_ options: TunInboundOptions) throws {
        interfaceName = options.interfaceName ?? ""
        mtu = options.mtu.flatMap { $0 == 0 ? nil : $0 } ?? 9000
        var v4: [NetworkPrefix] = [], v6: [NetworkPrefix] = []
        for option in options.address {
            guard let prefix = NetworkPrefix(option.description) else { throw AdapterError(.other, "invalid address: \(option)") }
            if prefix.isIPv4 { v4.append(prefix) } else { v6.append(prefix) }
        }
        inet4Addresses = v4
        inet6Addresses = v6
        autoRoute = options.autoRoute
        autoRedirect = options.autoRedirect
        strictRoute = options.strictRoute
        tableIndex = UInt32(clamping: options.iproute2TableIndex.flatMap { $0 == 0 ? nil : $0 } ?? 2022)
        ruleIndex = UInt32(clamping: options.iproute2RuleIndex.flatMap { $0 == 0 ? nil : $0 } ?? 9000)
        inputMark = options.autoRedirectInputMark.flatMap { $0.value == 0 ? nil : $0.value } ?? 0x2023
        outputMark = options.autoRedirectOutputMark.flatMap { $0.value == 0 ? nil : $0.value } ?? 0x2024
        routeAddresses = try options.routeAddress.map { try TunSettings.prefix($0) }
        routeExcludeAddresses = try options.routeExcludeAddress.map { try TunSettings.prefix($0) }
        routeAddressSet = options.routeAddressSet.map { ($0, []) }
        routeExcludeAddressSet = options.routeExcludeAddressSet.map { ($0, []) }
        includeInterfaces = options.includeInterface
        excludeInterfaces = options.excludeInterface
        includeUIDs = try options.includeUID.map { $0...$0 } + options.includeUIDRange.map(TunSettings.uidRange)
        excludeUIDs = try options.excludeUID.map { $0...$0 } + options.excludeUIDRange.map(TunSettings.uidRange)
        udpTimeout = options.udpTimeout.map(\.value).flatMap { $0.nanoseconds > 0 ? $0 : nil } ?? ConfigDuration(seconds: 300)
        stack = options.stack ?? ""
        loopbackAddresses = options.loopbackAddress.map(\.text)
        // `endpoint_independent_nat` is removed in 1.12 and ignored, as Go does: replies from any
        // address always reach the client (TunPacketConnection).
        // Go checks these when the inbound starts (`check` passes them), so we report them there too.
        if !["", "system", "gvisor", "mixed"].contains(stack) {
            startError = AdapterError(.other, "unknown stack: \(stack)")
        } else if mtu < 576 || mtu > 65535 || (mtu < 1280 && !v6.isEmpty) {
            // RFC 791 (576) and RFC 8200 §5 (1280) minimums; the kernel refuses other values.
            startError = AdapterError(.other, "invalid MTU: \(mtu)")
        } else if !includeInterfaces.isEmpty && !excludeInterfaces.isEmpty {
            startError = AdapterError(.other, "`include_interface` and `exclude_interface` cannot be set at the same time")
        }
        // `detour` is read and ignored, as Go's tun inbound does (it never sets InboundDetour).
        legacySniff = options.sniff
            ? InboundSniff(overrideDestination: options.sniffOverrideDestination,
                           timeout: options.sniffTimeout.map { .nanoseconds($0.nanoseconds) })
            : nil
        legacyDomainStrategy = options.domainStrategy.flatMap { DomainStrategy(rawValue: $0.rawValue) }.flatMap { $0 == .asIs ? nil : $0 }
        udpDisableDomainUnmapping = options.udpDisableDomainUnmapping
    }

    /// Fills the `route_address_set` / `route_exclude_address_set` prefixes from the route rule-sets
    /// (`lookup` gives a tag's destination IP CIDRs, nil for an unknown tag). Throws Go's
    /// `parse route_address_set: rule-set not found: <tag>`.
    package mutating func resolveRuleSets(_ lookup: (String) -> [IPPrefix]?) throws {
        for key in ["route_address_set", "route_exclude_address_set"] {
            let tags = key == "route_address_set" ? routeAddressSet : routeExcludeAddressSet
            let resolved = try tags.map { entry -> (tag: String, prefixes: [NetworkPrefix]) in
                guard let prefixes = lookup(entry.tag) else {
                    throw AdapterError(.other, "parse \(key): rule-set not found: \(entry.tag)")
                }
                return (entry.tag, prefixes.compactMap { NetworkPrefix($0.description) })
            }
            if key == "route_address_set" { routeAddressSet = resolved } else { routeExcludeAddressSet = resolved }
        }
    }

    /// The legacy inbound fields, as `FlowMetadata.applyListenOptions` does for listen inbounds.
    func applyLegacyFields(to metadata: inout FlowMetadata) {
        metadata.inboundSniff = legacySniff
        metadata.inboundDomainStrategy = legacyDomainStrategy
        if udpDisableDomainUnmapping { metadata.udpDisableDomainUnmapping = true }
    }

    /// The `auto_route` request for the TUN the kernel named `interfaceName`.
    package func autoRouteOptions(interfaceName: String) -> AutoRouteOptions {
        AutoRouteOptions(interfaceName: interfaceName, inet4Addresses: inet4Addresses, inet6Addresses: inet6Addresses,
                         tableIndex: tableIndex, ruleIndex: ruleIndex, strictRoute: strictRoute,
                         autoRedirectMarkMode: autoRedirect, autoRedirectInputMark: inputMark,
                         autoRedirectOutputMark: outputMark, routeAddresses: routeAddresses,
                         routeExcludeAddresses: routeExcludeAddresses, includeInterfaces: includeInterfaces,
                         excludeInterfaces: excludeInterfaces, excludedUIDRanges: excludedUIDRanges)
    }

    /// The `auto_redirect` table for the TUN and the redirect listener's port.
    package func autoRedirectOptions(interfaceName: String, redirectPort: UInt16) -> AutoRedirectOptions {
        var options = AutoRedirectOptions(interfaceName: interfaceName, enableIPv4: !inet4Addresses.isEmpty,
                                          enableIPv6: !inet6Addresses.isEmpty, inet4Address: inet4Addresses.first,
                                          inet6Address: inet6Addresses.first, redirectPort: redirectPort,
                                          inputMark: inputMark, outputMark: outputMark, strictRoute: strictRoute,
                                          routeAddresses: routeAddresses, routeExcludeAddresses: routeExcludeAddresses,
                                          includeInterfaces: includeInterfaces, excludeInterfaces: excludeInterfaces)
        options.includeUIDs = includeUIDs
        options.excludeUIDs = excludeUIDs
        options.routeAddressSet = routeAddressSet.flatMap(\.prefixes)
        options.routeExcludeAddressSet = routeExcludeAddressSet.flatMap(\.prefixes)
        options.loopbackAddresses = loopbackAddresses.compactMap { NetworkPrefix($0) }  // bare addresses: host prefixes
        return options
    }

    /// The UID ranges that bypass the TUN: the excluded ones, or everything outside the included ones.
    package var excludedUIDRanges: [ClosedRange<UInt32>] {
        guard !includeUIDs.isEmpty else { return excludeUIDs }
        var result: [ClosedRange<UInt32>] = []
        var next: UInt64 = 0
        for range in includeUIDs.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if UInt64(range.lowerBound) > next { result.append(UInt32(next)...(range.lowerBound - 1)) }
            next = max(next, UInt64(range.upperBound) + 1)
        }
        if next <= UInt64(UInt32.max) { result.append(UInt32(next)...UInt32.max) }
        return result + excludeUIDs
    }

    /// `1000:2000` (sing-tun's `parseRange`).
    static func uidRange(_ text: String) throws -> ClosedRange<UInt32> {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let low = UInt32(parts[0]), let high = UInt32(parts[1]), low <= high else {
            throw AdapterError(.other, "invalid uid range: \(text)")
        }
        return low...high
    }

    static func prefix(_ option: IPPrefixOption) throws -> NetworkPrefix {
        guard let prefix = NetworkPrefix(option.description) else { throw AdapterError(.other, "invalid prefix: \(option)") }
        return prefix
    }

    static func ipv4(_ prefix: NetworkPrefix) -> IPv4Address? {
        guard prefix.isIPv4 else { return nil }
        return IPv4Address(prefix.bytes[0], prefix.bytes[1], prefix.bytes[2], prefix.bytes[3])
    }

    static func ipv6(_ prefix: NetworkPrefix) -> IPv6Address? {
        guard !prefix.isIPv4 else { return nil }
        let high = prefix.bytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let low = prefix.bytes[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return IPv6Address(high: high, low: low)
    }
}
