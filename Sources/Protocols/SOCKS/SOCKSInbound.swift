// The `socks` inbound: SOCKS4, SOCKS4A and SOCKS5 (CONNECT, UDP ASSOCIATE) on one TCP port.
package import Adapter
package import Config
package import NIOCore
package import Net
import Transport

/// sing-box's `socks` inbound. Owns its listener and the connections still in their handshake.
package final class SOCKSInbound: ProxyListenerInbound {
    package let type = "socks"
    package let tag: String
    /// The listener; exposed for the bound port in tests.
    package let listener: ProxyListener

    /// Builds the inbound from its options; nothing is bound before `start(.start)`.
    package init(tag: String, options: SOCKSInboundOptions, flowHandler: any FlowHandler,
                 logger: ContextLogger, group: any EventLoopGroup) throws {
        self.tag = tag
        // Go wraps these inbounds' router in its UoT router: a connect to the magic name is a UDP flow.
        let flowHandler = UDPOverTCPFlowHandler(next: flowHandler, logger: logger)
        let parameters = try ListenParameters(options.listen)
        var context = SOCKSInboundContext.forInbound(tag: tag, type: "socks", users: options.users, listen: parameters,
                                                     flowHandler: flowHandler, logger: logger)
        context.listenOptions = options.listen
        let shared = context
        listener = ProxyListener(parameters: parameters, group: group, logger: logger, flowHandler: flowHandler) { channel, flowID, handoff in
            var context = shared
            context.flowHandler = handoff
            try channel.pipeline.syncOperations.addHandler(SOCKSServerHandler(context: context, flowID: flowID))
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

extension SOCKSInboundContext {
    /// The context an inbound with `users` builds: UDP ASSOCIATE binds through `Listener.listenUDP`
    /// with the listener's interface and mark.
    package static func forInbound(tag: String, type: String, users: [AuthUser], listen: ListenParameters,
                                   flowHandler: any FlowHandler, logger: ContextLogger) -> SOCKSInboundContext {
        let bindInterface = listen.bindInterface, routingMark = listen.routingMark
        return SOCKSInboundContext(
            tag: tag, type: type, users: SOCKSUsers(users.map { (username: $0.username, password: $0.password) }),
            flowHandler: flowHandler, logger: logger,
            openUDP: { address, loop, initializer in
                let parameters = ListenParameters(address: address, port: 0, bindInterface: bindInterface, routingMark: routingMark)
                return try await Listener.listenUDP(parameters, group: loop, initializer: initializer)
            })
    }
}
