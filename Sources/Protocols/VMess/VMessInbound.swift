// The `vmess` inbound (Go sing-box 1.12.12 protocol/vmess/inbound.go, sing-vmess service.go):
// TCP connections run `VMessServerHandler` on a `ProxyListener`. As in Go the router is wrapped in
// the UoT router, so a stream to the UoT magic names becomes a UDP flow; command 2 streams are UDP
// flows of their own, and command 3 (mux) streams carry XUDP sessions (VMessMuxServer). Users with
// `alterId` > 0 may also use the legacy header. `transport` ws, httpupgrade, grpc and http run
// first (Transport), after `tls` when set (each HTTP/2 stream is a connection of its own); quic
// is refused at build time with a clear `not implemented`. `multiplex` wraps the router in the
// sing-mux server (Transport's `MuxFlowHandler`).
package import Adapter
package import Config
package import NIOCore
package import Net
import TLS
import Transport

/// sing-box's `vmess` inbound.
package final class VMessInbound: ProxyListenerInbound, @unchecked Sendable {
    package let type = "vmess"
    package let tag: String
    /// The TCP listener (connections in their handshake are tracked there).
    package let listener: ProxyListener

    /// Throws for what this build does not carry.
    package init(tag: String, options: VMessInboundOptions, router: any FlowHandler, logger: ContextLogger,
                 group: any EventLoopGroup, clock: @escaping VMessClock = vmessSystemClock) throws {
        var tlsOptions = options.tls
        if let transport = options.transport, let configured = tlsOptions?.alpn {
            tlsOptions?.alpn = V2RayTransportServer.alpn(for: transport, configured: configured)
        }
        let tls = try TLSServerConfiguration.make(tlsOptions, logger: logger)
        var transport: V2RayTransportServer?
        if let transportOptions = options.transport {
            do { transport = try V2RayTransportServer(options: transportOptions) } catch {
                throw AdapterError.notImplemented("transport \(transportOptions.type) on vmess inbound")
            }
        }
        self.tag = tag
        let users = options.users.enumerated().map { VMessServerUser(name: $0.element.name, index: $0.offset, uuid: $0.element.uuid) }
        let legacy = VMessLegacyTable(users: options.users.enumerated().map { ($0.offset, $0.element.uuid, $0.element.alterId ?? 0) })
        var context = VMessServerContext(tag: tag, users: users, legacy: legacy, listenOptions: options.listen, logger: logger, clock: clock)
        // Go: `ServiceWithDisableHeaderProtection` when the inbound has a transport.
        context.headerProtection = transport == nil
        let shared = context
        let parameters = try ListenParameters(options.listen)
        // Go wraps the inbound's router in its UoT router (a stream to the magic names is a UDP
        // flow), and that in its mux router when `multiplex` is enabled.
        let streams = try MuxFlowHandler.wrap(UDPOverTCPFlowHandler(next: router, logger: logger), logger: logger,
                                              options: options.multiplex)
        let upgrade = transport
        listener = ProxyListener(parameters: parameters, group: group, logger: logger, flowHandler: streams) { channel, flowID, handoff in
            try tls?.addServerHandler(to: channel, flowID: flowID, logger: logger)
            try V2RayTransportServer.serve(upgrade, on: channel, flowID: flowID, logger: logger) { stream, streamFlowID in
                try stream.pipeline.syncOperations.addHandlers([
                    VMessServerHandler(context: shared, flowID: streamFlowID, streams: handoff, packets: handoff),
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
