// Registration of the vless outbound with the box's registry.
package import Adapter
import Config

extension VLESSModule {
    /// Registers `vless` (outbound; the inbound stays `not implemented`).
    package static func register(in registry: AdapterRegistry) {
        registry.register(outbound: "vless") { context, options in
            guard case .vless(let vless) = options.options else {
                throw AdapterError(.other, "vless: unexpected options for \(options.type)")
            }
            return try VLESSOutbound(tag: options.tag, options: vless, dialer: context.dialerFactory.makeDialer(vless.dial),
                                     logger: context.logger("outbound/vless[\(options.tag)]"))
        }
    }
}
