// Wiring of the `redirect` and `tproxy` inbounds: their modules register the constructors, and the
// box hands them Appliance/LinuxSockets' `TransparentSockets` (protocols never import Appliance).
import Adapter
import LinuxSockets
import Redirect
import TProxy

extension BoxRegistrations {
    /// Registers `redirect` and `tproxy` with the Linux socket calls in their context.
    @Sendable static func registerTransparent(in registry: AdapterRegistry) {
        RedirectModule.register(in: registry)
        TProxyModule.register(in: registry)
        for type in ["redirect", "tproxy"] {
            guard let constructor = registry.inbound(type) else { continue }
            registry.register(inbound: type) { context, options in
                var context = context
                if context.transparentSockets == nil { context.transparentSockets = LinuxTransparentSockets() }
                return try constructor(context, options)
            }
        }
    }
}
