// The `trojan` inbound (Go sing-box 1.12.12 protocol/trojan/inbound.go, read for facts): a
// `ProxyListener` whose connections run the TLS server (when `tls.enabled`; plain TCP otherwise,
// as Go allows) and then `TrojanServerHandler`.
// Go does not wrap this inbound's router in its UoT router (socks, http, mixed and shadowsocks
// do), so neither do we. `transport` ws, httpupgrade, grpc and http run after TLS (Transport; each
// HTTP/2 stream of grpc/http is a connection of its own); quic is refused at build time, never
// dropped. `multiplex` wraps the router in the sing-mux server (Transport's `MuxFlowHandler`), as
// Go's mux router.
package import Adapter
package import Config
package import NIOCore
package import Net
import TLS
import Transport

/// sing-box's `trojan` inbound. Owns its listener and the connections still in their handshake.
package final class TrojanInbound: ProxyListenerInbound {
    package let type = "trojan"
    package let tag: String
    /// The listener; exposed for the bound port in tests.
    package let listener: ProxyListener

    /// Throws Go's errors for duplicate passwords, bad fallback addresses and bad `tls` values;
    /// `not implemented` for `multiplex` and `transport`.
    package init(tag: String, options: TrojanInboundOptions, flowHandler: any FlowHandler,
                 logger: ContextLogger, group: any EventLoopGroup) throws {
        self.tag = tag
        var tlsOptions = options.tls
        if let transport = options.transport, let configured = tlsOptions?.alpn {
            tlsOptions?.alpn = V2RayTransportServer.alpn(for: transport, configured: configured)
        }
        let tls = try TLSServerConfiguration.make(tlsOptions, logger: logger)
        var fallback: Destination?
        var fallbackForALPN: [String: Destination] = [:]
        if let server = options.fallback, !server.server.isEmpty {
            fallback = Destination(host: Host(server.server), port: server.serverPort)
        }
        if !options.fallbackForALPN.entries.isEmpty {
            guard tls != nil else { throw AdapterError(.other, "fallback for ALPN is not supported without TLS") }
            for (proto, server) in options.fallbackForALPN.entries {
                let address = Destination(host: Host(server.server), port: server.serverPort)
                // Go's `Socksaddr.IsValid`: an address needs a host; port 0 passes.
                guard !server.server.isEmpty else {
                    throw AdapterError(.other, "invalid fallback address for ALPN \(proto): \(address)")
                }
                fallbackForALPN[proto] = address
            }
        }
        // Go's `UpdateUsers`: a password twice is refused, naming the first user's index.
        var users: [[UInt8]: Int] = [:]
        for (index, user) in options.users.enumerated() {
            let key = TrojanModule.key(password: user.password)
            if let earlier = users[key] { throw AdapterError(.other, "user already exists: password used by \(earlier)") }
            users[key] = index
        }
        var transport: V2RayTransportServer?
        if let transportOptions = options.transport {
            do { transport = try V2RayTransportServer(options: transportOptions) } catch {
                throw AdapterError.notImplemented("transport \(transportOptions.type) on trojan inbound")
            }
        }
        let upgrade = transport
        let parameters = try ListenParameters(options.listen)
        let context = TrojanServerContext(tag: tag, users: users, userNames: options.users.map(\.name), fallback: fallback,
                                          fallbackForALPN: fallbackForALPN, listenOptions: options.listen, logger: logger)
        // Go wraps the router in its mux router when `multiplex` is enabled.
        let flows = try MuxFlowHandler.wrap(flowHandler, logger: logger, options: options.multiplex)
        listener = ProxyListener(parameters: parameters, group: group, logger: logger, flowHandler: flows) { channel, flowID, handoff in
            try tls?.addServerHandler(to: channel, flowID: flowID, logger: logger)
            try V2RayTransportServer.serve(upgrade, on: channel, flowID: flowID, logger: logger) { stream, streamFlowID in
                try stream.pipeline.syncOperations.addHandler(TrojanServerHandler(context: context, flowID: streamFlowID, flowHandler: handoff))
            }
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
