// The `vless` inbound (Go sing-box 1.12.12 protocol/vless/inbound.go, read for facts): a
// `ProxyListener` whose connections run the TLS server (when `tls.enabled`), the v2ray transport's
// upgrade (ws, httpupgrade) and then `VLESSServerHandler`. As in Go the router is wrapped in the
// UoT router, so a stream to the UoT magic names becomes a UDP flow. Users with `flow`
// xtls-rprx-vision, an enabled `multiplex` and other transports are refused at build time with a
// clear `not implemented`, never dropped.
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

    /// Throws Go's errors for bad `tls` values; `not implemented` for vision, `multiplex` and
    /// transports this build lacks.
    package init(tag: String, options: VLESSInboundOptions, router: any FlowHandler, logger: ContextLogger,
                 group: any EventLoopGroup) throws {
        self.tag = tag
        if options.users.contains(where: { $0.flow == VLESSModule.flowVision }) {
            throw AdapterError.notImplemented("flow \(VLESSModule.flowVision) on vless inbound")
        }
        if options.multiplex?.enabled == true { throw AdapterError.notImplemented("multiplex on vless inbound") }
        let tls = try TLSServerConfiguration.make(options.tls, logger: logger)
        var transport: V2RayTransportServer?
        if let transportOptions = options.transport {
            do { transport = try V2RayTransportServer(options: transportOptions) } catch {
                throw AdapterError.notImplemented("transport \(transportOptions.type) on vless inbound")
            }
        }
        let upgrade = transport
        let context = VLESSServerContext(tag: tag, users: options.users, listenOptions: options.listen, logger: logger)
        let parameters = try ListenParameters(options.listen)
        // Go wraps the inbound's router in its UoT router: a stream to the magic names is a UDP flow.
        let streams = UDPOverTCPFlowHandler(next: router, logger: logger)
        listener = ProxyListener(parameters: parameters, group: group, logger: logger, flowHandler: streams) { channel, flowID, handoff in
            let source = channel.remoteAddress.flatMap { Destination($0) }.map { "\($0)" } ?? "unknown"
            if let tls {
                try tls.addServerHandler(to: channel).whenFailure { error in
                    logger.error("process connection from \(source): TLS handshake: \(error)", flow: flowID)
                }
            }
            if let upgrade {
                try channel.pipeline.syncOperations.addHandler(upgrade.makeHandler { reason in
                    logger.error("process connection from \(source): \(reason)", flow: flowID)
                })
            }
            try channel.pipeline.syncOperations.addHandlers([
                VLESSServerHandler(context: context, flowID: flowID, flowHandler: handoff),
                FlowBufferHandler(),
            ])
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
