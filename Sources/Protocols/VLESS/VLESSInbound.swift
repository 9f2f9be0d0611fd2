// The `vless` inbound (Go sing-box 1.12.12 protocol/vless/inbound.go, read for facts): a
// `ProxyListener` whose connections run the TLS server (when `tls.enabled`), the v2ray transport's
// transport (ws, httpupgrade, grpc, http; each HTTP/2 stream is a connection of its own) and then
// `VLESSServerHandler`. As in Go the router is wrapped in the UoT router, so a stream to the UoT
// magic names becomes a UDP flow, and that in the sing-mux router when `multiplex` is enabled.
// Users with `flow` xtls-rprx-vision and the quic transport are refused at build time with a clear
// `not implemented`, never dropped.
package import Adapter
package import Config
package import NIOCore
package import Net
import TLS
import Transport

/// sing-box's `vless` inbound. Owns its listener and the connections still in their handshake.
package final class VLESSInbound: ProxyListenerInbound {
    package let type = "vless"
    package let tag: String
    /// The listener; exposed for the bound port in tests.
    package let listener: ProxyListener

    /// Throws Go's errors for bad `tls` values and `multiplex`; `not implemented` for vision and
    /// transports this build lacks.
    package init(tag: String, options: VLESSInboundOptions, router: any FlowHandler, logger: ContextLogger,
                 group: any EventLoopGroup) throws {
        self.tag = tag
        if options.users.contains(where: { $0.flow == VLESSModule.flowVision }) {
            throw AdapterError.notImplemented("flow \(VLESSModule.flowVision) on vless inbound")
        }
        var tlsOptions = options.tls
        if let transport = options.transport, let configured = tlsOptions?.alpn {
            tlsOptions?.alpn = V2RayTransportServer.alpn(for: transport, configured: configured)
        }
        let tls = try TLSServerConfiguration.make(tlsOptions, logger: logger)
        var transport: V2RayTransportServer?
        if let transportOptions = options.transport {
            do { transport = try V2RayTransportServer(options: transportOptions) } catch {
                throw AdapterError.notImplemented("transport \(transportOptions.type) on vless inbound")
            }
        }
        let upgrade = transport
        let context = VLESSServerContext(tag: tag, users: options.users, listenOptions: options.listen, logger: logger)
        let parameters = try ListenParameters(options.listen)
        // Go wraps the inbound's router in its UoT router (a stream to the magic names is a UDP
        // flow), and that in its mux router when `multiplex` is enabled.
        let streams = try MuxFlowHandler.wrap(UDPOverTCPFlowHandler(next: router, logger: logger), logger: logger,
                                              options: options.multiplex)
        listener = ProxyListener(parameters: parameters, group: group, logger: logger, flowHandler: streams) { channel, flowID, handoff in
            try tls?.addServerHandler(to: channel, flowID: flowID, logger: logger)
            try V2RayTransportServer.serve(upgrade, on: channel, flowID: flowID, logger: logger) { stream, streamFlowID in
                try stream.pipeline.syncOperations.addHandlers([
                    VLESSServerHandler(context: context, flowID: streamFlowID, flowHandler: handoff),
                    FlowBufferHandler(),
                ])
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
