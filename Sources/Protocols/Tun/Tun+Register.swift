// Registration of the `tun` inbound; the box passes the Linux platform in.
package import Adapter
import Config

extension TunModule {
    /// Registers `tun` with the given platform (the box's Appliance-backed one).
    package static func register(in registry: AdapterRegistry, platform: any TunPlatform) {
        registry.register(inbound: "tun") { context, options in
            guard case .tun(let tun) = options.options else {
                throw AdapterError(.other, "tun: unexpected options for \(options.type)")
            }
            var settings = try TunSettings(tun)
            try settings.resolveRuleSets(context.ruleSetDestinations)
            return TunInbound(tag: options.tag, settings: settings, platform: platform,
                              group: context.group, router: context.router, logger: context.logger(""),
                              ruleSetDestinations: context.ruleSetDestinations, ruleSetUpdates: context.ruleSetUpdates)
        }
    }
}
