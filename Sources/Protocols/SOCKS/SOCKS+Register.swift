// Registration of the socks inbound and outbound with the box's registry.
package import Adapter
import Config

extension SOCKSModule {
    /// Registers `socks` (inbound and outbound).
    package static func register(in registry: AdapterRegistry) {
        registry.register(inbound: "socks") { context, options in
            guard case .socks(let socks) = options.options else {
                throw AdapterError(.other, "socks: unexpected options for \(options.type)")
            }
            return try SOCKSInbound(tag: options.tag, options: socks, flowHandler: context.router,
                                    logger: context.logger("inbound/socks[\(options.tag)]"), group: context.group)
        }
        registry.register(outbound: "socks") { context, options in
            guard case .socks(let socks) = options.options else {
                throw AdapterError(.other, "socks: unexpected options for \(options.type)")
            }
            return try SOCKSOutbound(tag: options.tag, options: socks, dialer: context.dialerFactory.makeDialer(socks.dial),
                                     resolver: context.resolver, logger: context.logger("outbound/socks[\(options.tag)]"))
        }
    }
}
