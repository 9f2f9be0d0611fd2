// Route actions from the config's rule actions.
package import Config
package import Adapter
import NIOCore

extension RouteAction {
    /// Converts a rule's action.
    package init(options action: RuleAction) {
        switch action {
        case .route(let o):
            self = .route(outbound: o.outbound ?? "", RouteOverrides(fields: o.options))
        case .routeOptions(let o):
            self = .routeOptions(RouteOverrides(fields: o.options))
        case .direct(let dial):
            self = .direct(RouteAction.directSuffix(dial))
        case .reject(let o):
            self = .reject(o.method == .drop ? .drop : .default, noDrop: o.noDrop)
        case .hijackDNS:
            self = .hijackDNS
        case .sniff(let o):
            self = .sniff(sniffers: o.sniffer, timeout: o.timeout.map { .nanoseconds($0.nanoseconds) })
        case .resolve(let o):
            self = .resolve(strategy: Adapter.DomainStrategy(rawValue: (o.strategy ?? .asIs).rawValue) ?? .asIs,
                            server: o.server)
        }
    }
}

extension RouteOverrides {
    /// From `route` / `route-options` fields.
    package init(fields f: RouteOptionsFields) {
        self.init(overrideAddress: f.overrideAddress.flatMap { $0.isEmpty ? nil : Host($0) },
                  overridePort: f.overridePort,
                  networkStrategy: f.networkStrategy?.rawValue,
                  fallbackDelay: f.fallbackDelay.flatMap { $0 > 0 ? TimeAmount.nanoseconds(Int64($0)) : nil },
                  udpDisableDomainUnmapping: f.udpDisableDomainUnmapping,
                  udpConnect: f.udpConnect,
                  udpTimeout: f.udpTimeout.flatMap { $0.nanoseconds > 0 ? TimeAmount.nanoseconds($0.nanoseconds) : nil })
    }
}

extension RouteRule {
    /// Compiles one `route.rules` entry; errors are worded like Go's `parse route rule[i]: …`
    /// by the caller.
    package init(options: RuleOptions, ruleSets: [String: RuleSet] = [:]) throws(AdapterError) {
        let condition: HeadlessRule
        do {
            condition = try HeadlessRule(options: options, ruleSets: ruleSets)
        } catch {
            throw AdapterError(.other, error.message)
        }
        self.init(condition: condition, action: RouteAction(options: options.action))
    }
}

package import Rules

extension RouteAction {
    /// Go's `DirectActionOptions.Descriptions` folded as its `RuleActionDirect` prints them: nothing,
    /// `(a)`, `(a,b)` or `(a,b,...)`.
    static func directSuffix(_ dial: DialerOptions) -> String {
        var parts: [String] = []
        if let name = dial.bindInterface, !name.isEmpty { parts.append("bind_interface=\(name)") }
        if let address = dial.inet4BindAddress { parts.append("inet4_bind_address=\(address.text)") }
        if let address = dial.inet6BindAddress { parts.append("inet6_bind_address=\(address.text)") }
        if let mark = dial.routingMark, mark.value != 0 { parts.append("routing_mark=0x" + String(mark.value, radix: 16)) }
        if dial.reuseAddr { parts.append("reuse_addr") }
        if let timeout = dial.connectTimeout, timeout.nanoseconds != 0 {
            parts.append("connect_timeout=" + RouteOverrides.goDuration(.nanoseconds(timeout.nanoseconds)))
        }
        if dial.tcpFastOpen { parts.append("tcp_fast_open") }
        if dial.tcpMultiPath { parts.append("tcp_multi_path") }
        if let fragment = dial.udpFragment { parts.append("udp_fragment=\(fragment)") }
        if let strategy = dial.domainStrategy, strategy != .asIs { parts.append("domain_strategy=\(strategy.rawValue)") }
        if let delay = dial.fallbackDelay, delay.nanoseconds != 0 {
            parts.append("fallback_delay=" + RouteOverrides.goDuration(.nanoseconds(delay.nanoseconds)))
        }
        switch parts.count {
        case 0: return ""
        case 1: return "(\(parts[0]))"
        case 2: return "(\(parts[0]),\(parts[1]))"
        default: return "(\(parts[0]),\(parts[1]),...)"
        }
    }
}
