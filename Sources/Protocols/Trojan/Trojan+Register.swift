// Registration of the trojan inbound and outbound with the box's registry.
package import Adapter
import Config

extension TrojanModule {
    /// Registers the `trojan` inbound and outbound.
    package static func register(in registry: AdapterRegistry) {
        registry.register(inbound: "trojan") { context, options in
            guard case .trojan(let trojan) = options.options else {
                throw AdapterError(.other, "trojan: unexpected options for \(options.type)")
            }
            return try TrojanInbound(tag: options.tag, options: trojan, flowHandler: context.router,
                                     logger: context.logger("inbound/trojan[\(options.tag)]"), group: context.group)
        }
        registry.register(outbound: "trojan") { context, options in
            guard case .trojan(let trojan) = options.options else {
                throw AdapterError(.other, "trojan: unexpected options for \(options.type)")
            }
            return try TrojanOutbound(tag: options.tag, options: trojan, dialer: context.dialerFactory.makeDialer(trojan.dial),
                                      logger: context.logger("outbound/trojan[\(options.tag)]"))
        }
    }
}
