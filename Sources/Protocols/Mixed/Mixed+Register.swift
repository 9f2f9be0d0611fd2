// Registration of the mixed inbound with the box's registry.
package import Adapter
import Config

extension MixedModule {
    /// Registers `mixed` (inbound only, as sing-box has no mixed outbound).
    package static func register(in registry: AdapterRegistry) {
        registry.register(inbound: "mixed") { context, options in
            guard case .mixed(let mixed) = options.options else {
                throw AdapterError(.other, "mixed: unexpected options for \(options.type)")
            }
            return try MixedInbound(tag: options.tag, options: mixed, flowHandler: context.router,
                                    logger: context.logger("inbound/mixed[\(options.tag)]"), group: context.group)
        }
    }
}
