// Registration of the ssh outbound with the box's registry.
package import Adapter
import Config

extension SSHModule {
    /// Registers `ssh` (outbound only, as in Go).
    package static func register(in registry: AdapterRegistry) {
        registry.register(outbound: "ssh") { context, options in
            guard case .ssh(let ssh) = options.options else {
                throw AdapterError(.other, "ssh: unexpected options for \(options.type)")
            }
            return try SSHOutbound(tag: options.tag, options: ssh, dialer: context.dialerFactory.makeDialer(ssh.dial),
                                   logger: context.logger("outbound/ssh[\(options.tag)]"))
        }
    }
}
