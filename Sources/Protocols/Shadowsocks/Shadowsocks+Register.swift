// Registration of the shadowsocks inbound and outbound with the box's registry.
package import Adapter
import Config

extension ShadowsocksModule {
    /// Registers `shadowsocks` (inbound and outbound).
    package static func register(in registry: AdapterRegistry) {
        registry.register(inbound: "shadowsocks") { context, options in
            guard case .shadowsocks(let shadowsocks) = options.options else {
                throw AdapterError(.other, "shadowsocks: unexpected options for \(options.type)")
            }
            return try ShadowsocksInbound(tag: options.tag, options: shadowsocks, router: context.router,
                                          logger: context.logger("inbound/shadowsocks[\(options.tag)]"), group: context.group)
        }
        registry.register(outbound: "shadowsocks") { context, options in
            guard case .shadowsocks(let shadowsocks) = options.options else {
                throw AdapterError(.other, "shadowsocks: unexpected options for \(options.type)")
            }
            return try ShadowsocksOutbound(tag: options.tag, options: shadowsocks, dialer: context.dialerFactory.makeDialer(shadowsocks.dial),
                                           logger: context.logger("outbound/shadowsocks[\(options.tag)]"))
        }
    }
}
