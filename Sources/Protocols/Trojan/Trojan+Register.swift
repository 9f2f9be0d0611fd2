// Registration of the trojan outbound with the box's registry. The inbound stays unregistered (the
// box's not-implemented stand-in answers for it) until inbound TLS exists.
package import Adapter
import Config

extension TrojanModule {
    /// Registers the `trojan` outbound.
    package static func register(in registry: AdapterRegistry) {
        registry.register(outbound: "trojan") { context, options in
            guard case .trojan(let trojan) = options.options else {
                throw AdapterError(.other, "trojan: unexpected options for \(options.type)")
            }
            return try TrojanOutbound(tag: options.tag, options: trojan, dialer: context.dialerFactory.makeDialer(trojan.dial),
                                      logger: context.logger("outbound/trojan[\(options.tag)]"))
        }
    }
}
