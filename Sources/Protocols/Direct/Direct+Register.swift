// Registration of the direct inbound and outbound with the box's registry.
package import Adapter
import Config
import Net

extension DirectModule {
    /// Registers `direct` (inbound and outbound).
    package static func register(in registry: AdapterRegistry) {
        registry.register(outbound: "direct") { context, options in
            guard case .direct(let direct) = options.options else {
                throw AdapterError(.other, "direct: unexpected options for \(options.type)")
            }
            if direct.proxyProtocol != nil {
                throw AdapterError(.other, "Proxy Protocol is deprecated and removed in sing-box 1.6.0")
            }
            let dialer = try context.dialerFactory.makeDialer(direct.dial)
            let override = DestinationOverride(host: direct.overrideAddress.flatMap { $0.isEmpty ? nil : Host($0) },
                                               port: direct.overridePort)
            return DirectOutbound(tag: options.tag, dialer: dialer, override: override,
                                  detour: direct.dial.detour, logger: context.logger(""))
        }
        registry.register(inbound: "direct") { context, options in
            guard case .direct(let direct) = options.options else {
                throw AdapterError(.other, "direct: unexpected options for \(options.type)")
            }
            let networks = Set(direct.network.effective.compactMap(NetworkKind.init(rawValue:)))
            let override = DestinationOverride(host: direct.overrideAddress.flatMap { $0.isEmpty ? nil : Host($0) },
                                               port: direct.overridePort)
            return DirectInbound(tag: options.tag, listen: ListenParameters(options: direct.listen), networks: networks,
                                 override: override, listenOptions: direct.listen, group: context.group, router: context.router,
                                 logger: context.logger(""))
        }
    }
}
