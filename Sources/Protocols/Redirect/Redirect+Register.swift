// Registration of the redirect inbound with the box's registry.
package import Adapter
import Config
import Net

extension RedirectModule {
    /// Registers `redirect` (inbound only). Needs `context.transparentSockets` (Linux).
    package static func register(in registry: AdapterRegistry) {
        registry.register(inbound: "redirect") { context, options in
            guard case .redirect(let redirect) = options.options else {
                throw AdapterError(.other, "redirect: unexpected options for \(options.type)")
            }
            guard let sockets = context.transparentSockets else {
                throw AdapterError(.other, "redirect is only supported on Linux")
            }
            return RedirectInbound(tag: options.tag, listen: ListenParameters(options: redirect.listen),
                                   listenOptions: redirect.listen, sockets: sockets, group: context.group,
                                   router: context.router, logger: context.logger(""))
        }
    }
}
