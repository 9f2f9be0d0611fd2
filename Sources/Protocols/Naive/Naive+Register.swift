// Registration of the naive inbound with the box's registry.
package import Adapter
import Config

extension NaiveModule {
    /// Registers the `naive` inbound.
    package static func register(in registry: AdapterRegistry) {
        registry.register(inbound: "naive") { context, options in
            guard case .naive(let naive) = options.options else {
                throw AdapterError(.other, "naive: unexpected options for \(options.type)")
            }
            return try NaiveInbound(tag: options.tag, options: naive, flowHandler: context.router,
                                    logger: context.logger("inbound/naive[\(options.tag)]"), group: context.group)
        }
    }
}
