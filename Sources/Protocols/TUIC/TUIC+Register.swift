// Registration of the tuic inbound and outbound with the box's registry.
package import Adapter
import Config

extension TUICModule {
    /// Registers the `tuic` inbound and outbound.
    package static func register(in registry: AdapterRegistry) {
        registry.register(inbound: "tuic") { context, options in
            guard case .tuic(let tuic) = options.options else {
                throw AdapterError(.other, "tuic: unexpected options for \(options.type)")
            }
            return try TUICInbound(tag: options.tag, options: tuic, flowHandler: context.router,
                                   logger: context.logger("inbound/tuic[\(options.tag)]"), group: context.group)
        }
        registry.register(outbound: "tuic") { context, options in
            guard case .tuic(let tuic) = options.options else {
                throw AdapterError(.other, "tuic: unexpected options for \(options.type)")
            }
            return try TUICOutbound(tag: options.tag, options: tuic, resolver: context.resolver,
                                    logger: context.logger("outbound/tuic[\(options.tag)]"))
        }
    }
}
