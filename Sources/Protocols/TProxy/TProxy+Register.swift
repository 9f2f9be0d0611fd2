// Registration of the tproxy inbound with the box's registry.
package import Adapter
import Config
import Net

extension TProxyModule {
    /// Registers `tproxy` (inbound only). Needs `context.transparentSockets` (Linux).
    package static func register(in registry: AdapterRegistry) {
        registry.register(inbound: "tproxy") { context, options in
            guard case .tproxy(let tproxy) = options.options else {
                throw AdapterError(.other, "tproxy: unexpected options for \(options.type)")
            }
            guard let sockets = context.transparentSockets else {
                throw AdapterError(.other, "tproxy is only supported on Linux")
            }
            let networks = Set(tproxy.network.effective.compactMap(NetworkKind.init(rawValue:)))
            return TProxyInbound(tag: options.tag, listen: ListenParameters(options: tproxy.listen), networks: networks,
                                 listenOptions: tproxy.listen, sockets: sockets, group: context.group,
                                 router: context.router, logger: context.logger(""))
        }
    }
}
