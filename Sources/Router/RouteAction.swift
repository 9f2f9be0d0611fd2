// RouteAction: what a matching route rule does, printed as Go prints it.
package import Adapter
package import NIOCore

/// `route` / `route-options` fields that change how a flow is dialed.
package struct RouteOverrides: Sendable, Equatable, CustomStringConvertible {
    /// `override_address`: replaces the destination host.
    package var overrideAddress: Host?
    /// `override_port`: replaces the destination port.
    package var overridePort: UInt16?
    /// `network_strategy` (kept for the log line; Linux gateways have one network).
    package var networkStrategy: String?
    /// `fallback_delay`.
    package var fallbackDelay: TimeAmount?
    /// `udp_disable_domain_unmapping`.
    package var udpDisableDomainUnmapping: Bool
    /// `udp_connect`.
    package var udpConnect: Bool
    /// `udp_timeout` (route-options only).
    package var udpTimeout: TimeAmount?

    package init(overrideAddress: Host? = nil, overridePort: UInt16? = nil, networkStrategy: String? = nil,
                 fallbackDelay: TimeAmount? = nil, udpDisableDomainUnmapping: Bool = false,
                 udpConnect: Bool = false, udpTimeout: TimeAmount? = nil) {
        self.overrideAddress = overrideAddress
        self.overridePort = overridePort
        self.networkStrategy = networkStrategy
        self.fallbackDelay = fallbackDelay
        self.udpDisableDomainUnmapping = udpDisableDomainUnmapping
        self.udpConnect = udpConnect
        self.udpTimeout = udpTimeout
    }

    /// Go's `route-options(override-address=…,override-port=…,…)` body.
    package var description: String {
        var parts: [String] = []
        if let overrideAddress { parts.append("override-address=\(overrideAddress)") }
        if let overridePort, overridePort > 0 { parts.append("override-port=\(overridePort)") }
        if let networkStrategy { parts.append("network-strategy=\(networkStrategy)") }
        if let fallbackDelay, fallbackDelay > .zero { parts.append("fallback-delay=\(RouteOverrides.goDuration(fallbackDelay))") }
        if udpDisableDomainUnmapping { parts.append("udp-disable-domain-unmapping") }
        if udpConnect { parts.append("udp-connect") }
        return parts.joined(separator: ",")
    }

    /// Applies the options to a flow, as Go's `matchRule` does (the first override remembers the
    /// original destination).
    package func apply(to metadata: inout FlowMetadata) {
        if (overrideAddress != nil || (overridePort ?? 0) > 0) && metadata.originalDestination == nil {
            metadata.originalDestination = metadata.destination
        }
        if let overrideAddress { metadata.destination.host = overrideAddress }
        if let overridePort, overridePort > 0 { metadata.destination.port = overridePort }
        if let fallbackDelay, fallbackDelay > .zero { metadata.fallbackDelay = fallbackDelay }
        if udpDisableDomainUnmapping { metadata.udpDisableDomainUnmapping = true }
        if udpConnect { metadata.udpConnect = true }
        if let udpTimeout, udpTimeout > .zero { metadata.udpTimeout = udpTimeout }
    }

    /// Go's `time.Duration.String()` for whole milliseconds and up (`300ms`, `1.5s`, `1m0s`).
    static func goDuration(_ amount: TimeAmount) -> String {
        let ns = amount.nanoseconds
        if ns < 1_000_000_000 {
            if ns % 1_000_000 == 0 { return "\(ns / 1_000_000)ms" }
            return "\(Double(ns) / 1_000_000)ms"
        }
        var seconds = ns / 1_000_000_000
        let fraction = ns % 1_000_000_000
        var out = ""
        if seconds >= 3600 { out += "\(seconds / 3600)h"; seconds %= 3600 }
        if seconds >= 60 || !out.isEmpty { out += "\(seconds / 60)m"; seconds %= 60 }
        var fractionText = ""
        if fraction > 0 {
            var f = String(fraction)
            while f.utf8.count < 9 { f = "0" + f }
            while f.hasSuffix("0") { f.removeLast() }
            fractionText = "." + f
        }
        return out + "\(seconds)\(fractionText)s"
    }
}

/// How `reject` refuses a flow.
package enum RejectMethod: String, Sendable, Equatable {
    /// TCP RST / ICMP port unreachable (Go: ECONNREFUSED to the inbound).
    case `default`
    /// Silently drop.
    case drop
    /// Answer (ICMP echo reply for ping); not supported for TCP connections.
    case reply
}

/// The action of a route rule (sing-box 1.11+ rule actions).
package enum RouteAction: Sendable, Equatable, CustomStringConvertible {
    case route(outbound: String, RouteOverrides)
    case routeOptions(RouteOverrides)
    case reject(RejectMethod, noDrop: Bool)
    case hijackDNS
    case sniff(sniffers: [String], timeout: TimeAmount?)
    case resolve(strategy: DomainStrategy, server: String?)
    /// `direct` with dial fields: Go 1.12 parses it and logs the match, but its router acts on it
    /// nowhere, so matching goes on past it. The text is Go's `(bind_interface=…,…)` suffix.
    case direct(String)

    /// `route`, `reject` and `hijack-dns` end matching; the others modify the flow and continue.
    package var isFinal: Bool {
        switch self {
        case .route, .reject, .hijackDNS: true
        case .routeOptions, .sniff, .resolve, .direct: false
        }
    }

    package var description: String {
        switch self {
        case .route(let outbound, let options):
            var parts = [outbound]
            if options.udpDisableDomainUnmapping { parts.append("udp-disable-domain-unmapping") }
            if options.udpConnect { parts.append("udp-connect") }
            return "route(\(parts.joined(separator: ",")))"
        case .routeOptions(let options):
            return "route-options(\(options))"
        case .reject(let method, _):
            return method == .default ? "reject" : "reject(\(method.rawValue))"
        case .hijackDNS:
            return "hijack-dns"
        case .sniff(let sniffers, let timeout):
            var parts = sniffers
            if let timeout, timeout > .zero { parts.append(RouteOverrides.goDuration(timeout)) }
            return parts.isEmpty ? "sniff" : "sniff(\(parts.joined(separator: ",")))"
        case .resolve(let strategy, let server):
            var parts: [String] = []
            if strategy != .asIs { parts.append(strategy.rawValue) }
            if let server, !server.isEmpty { parts.append(server) }
            return parts.isEmpty ? "resolve" : "resolve(\(parts.joined(separator: ",")))"
        case .direct(let suffix):
            return "direct" + suffix
        }
    }
}
