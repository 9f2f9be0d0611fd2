// Registration of the anytls inbound and outbound with the box's registry.
package import Adapter
import Config

extension AnyTLSModule {
    /// Registers the `anytls` inbound and outbound.
    package static func register(in registry: AdapterRegistry) {
        registry.register(inbound: "anytls") { context, options in
            guard case .anytls(let anytls) = options.options else {
                throw AdapterError(.other, "anytls: unexpected options for \(options.type)")
            }
            return try AnyTLSInbound(tag: options.tag, options: anytls, flowHandler: context.router,
                                     logger: context.logger("inbound/anytls[\(options.tag)]"), group: context.group)
        }
        registry.register(outbound: "anytls") { context, options in
            guard case .anytls(let anytls) = options.options else {
                throw AdapterError(.other, "anytls: unexpected options for \(options.type)")
            }
            return try AnyTLSOutbound(tag: options.tag, options: anytls, dialer: context.dialerFactory.makeDialer(anytls.dial),
                                      group: context.group, logger: context.logger("outbound/anytls[\(options.tag)]"))
        }
    }
}
