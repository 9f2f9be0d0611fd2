// Registration of the vmess inbound and outbound with the box's registry.
package import Adapter
import Config

extension VMessModule {
    /// Registers `vmess` (inbound and outbound).
    package static func register(in registry: AdapterRegistry) {
        registry.register(inbound: "vmess") { context, options in
            guard case .vmess(let vmess) = options.options else {
                throw AdapterError(.other, "vmess: unexpected options for \(options.type)")
            }
            return try VMessInbound(tag: options.tag, options: vmess, router: context.router,
                                    logger: context.logger("inbound/vmess[\(options.tag)]"), group: context.group)
        }
        registry.register(outbound: "vmess") { context, options in
            guard case .vmess(let vmess) = options.options else {
                throw AdapterError(.other, "vmess: unexpected options for \(options.type)")
            }
            return try VMessOutbound(tag: options.tag, options: vmess, dialer: context.dialerFactory.makeDialer(vmess.dial),
                                     logger: context.logger("outbound/vmess[\(options.tag)]"))
        }
    }
}
