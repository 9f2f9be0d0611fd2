// Registration of the http inbound and outbound with the box's registry.
package import Adapter
import Config

extension HTTPProxyModule {
    /// Registers `http` (inbound and outbound).
    package static func register(in registry: AdapterRegistry) {
        registry.register(inbound: "http") { context, options in
            guard case .http(let http) = options.options else {
                throw AdapterError(.other, "http: unexpected options for \(options.type)")
            }
            return try HTTPInbound(tag: options.tag, options: http, flowHandler: context.router,
                                   logger: context.logger("inbound/http[\(options.tag)]"), group: context.group)
        }
        registry.register(outbound: "http") { context, options in
            guard case .http(let http) = options.options else {
                throw AdapterError(.other, "http: unexpected options for \(options.type)")
            }
            return try HTTPOutbound(tag: options.tag, options: http, dialer: context.dialerFactory.makeDialer(http.dial),
                                    logger: context.logger("outbound/http[\(options.tag)]"))
        }
    }
}
