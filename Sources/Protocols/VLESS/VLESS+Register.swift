// Registration of the vless inbound and outbound with the box's registry.
package import Adapter
import Config

extension VLESSModule {
    /// Registers `vless` (inbound and outbound).
    package static func register(in registry: AdapterRegistry) {
        registry.register(inbound: "vless") { context, options in
            guard case .vless(let vless) = options.options else {
                throw AdapterError(.other, "vless: unexpected options for \(options.type)")
            }
            return try VLESSInbound(tag: options.tag, options: vless, router: context.router,
                                    logger: context.logger("inbound/vless[\(options.tag)]"), group: context.group)
        }
        registry.register(outbound: "vless") { context, options in
            guard case .vless(let vless) = options.options else {
                throw AdapterError(.other, "vless: unexpected options for \(options.type)")
            }
            return try VLESSOutbound(tag: options.tag, options: vless, dialer: context.dialerFactory.makeDialer(vless.dial),
                                     logger: context.logger("outbound/vless[\(options.tag)]"))
        }
    }
}
