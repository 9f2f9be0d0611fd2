// Route actions from the config's rule actions.
package import Config
package import Adapter
import NIOCore

extension RouteAction {
    /// Converts a rule's action. `direct` (dial fields inline) is not supported yet and throws.
    package init(options action: RuleAction) throws(AdapterError) {
        switch action {
        case .route(let o):
            self = .route(outbound: o.outbound ?? "", RouteOverrides(fields: o.options))
        case .routeOptions(let o):
            self = .routeOptions(RouteOverrides(fields: o.options))
        case .direct:
            throw AdapterError(.notImplemented, "not implemented: rule action direct")
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
        do {
            self.init(condition: condition, action: try RouteAction(options: options.action))
        } catch {
            throw AdapterError(error.kind, "action: \(error.message)")
        }
    }
}

package import Rules
