// The `anytls` inbound (Go sing-box 1.12.12 protocol/anytls/inbound.go, read for facts): a
// `ProxyListener` whose connections run the TLS server (when `tls.enabled`; plain TCP otherwise,
// as Go allows), then `AnyTLSServerHandler` and a server `AnyTLSSession`. Go wraps this inbound's
// router in its UoT router, so streams to the UoT magic names become UDP flows here too.
package import Adapter
package import Config
package import NIOCore
package import Net
import TLS
import Transport

/// sing-box's `anytls` inbound. Owns its listener; sessions live until their connections close
/// (the listener closes those still open when it closes).
package final class AnyTLSInbound: ProxyListenerInbound {
    package let type = "anytls"
    package let tag: String
    /// The listener; exposed for the bound port in tests.
    package let listener: ProxyListener

    /// Throws Go's `incorrect padding scheme format` and bad `tls` values.
    package init(tag: String, options: AnyTLSInboundOptions, flowHandler: any FlowHandler, logger: ContextLogger,
                 group: any EventLoopGroup) throws {
        self.tag = tag
        let tls = try TLSServerConfiguration.make(options.tls, logger: logger)
        var padding = AnyTLSPaddingScheme.default
        if !options.paddingScheme.isEmpty {
            guard let scheme = AnyTLSPaddingScheme(Array(options.paddingScheme.joined(separator: "\n").utf8)) else {
                throw AdapterError(.other, "incorrect padding scheme format")
            }
            padding = scheme
        }
        var users: [[UInt8]: String] = [:]
        for user in options.users {
            users[AnyTLSModule.passwordHash(user.password ?? "")] = user.name ?? ""
        }
        let context = AnyTLSServerContext(tag: tag, users: users, padding: padding, listenOptions: options.listen, logger: logger)
        let streams = UDPOverTCPFlowHandler(next: flowHandler, logger: logger)
        listener = ProxyListener(parameters: try ListenParameters(options.listen), group: group, logger: logger,
                                 flowHandler: streams) { channel, flowID, handoff in
            try tls?.addServerHandler(to: channel, flowID: flowID, logger: logger)
            try channel.pipeline.syncOperations.addHandler(AnyTLSServerHandler(context: context, flowID: flowID, flowHandler: handoff))
        }
    }

    package func start(_ stage: StartStage) async throws {
        guard stage == .start else { return }
        try await listener.start()
    }

    package func close() async throws {
        await listener.close()
    }
}
