// The `mixed` inbound: SOCKS4/4A/5 and HTTP proxy on one TCP port, picked by the first byte.
package import Adapter
package import Config
import HTTPProxy
package import NIOCore
package import Net
import SOCKS
import TLS
import Transport

/// sing-box's `mixed` inbound. `set_system_proxy` is ignored on Linux. With `tls` the whole port is
/// TLS, as in Go: the TLS server goes first and the first plaintext byte picks SOCKS or HTTP.
package final class MixedInbound: ProxyListenerInbound {
    package let type = "mixed"
    package let tag: String
    /// The listener; exposed for the bound port in tests.
    package let listener: ProxyListener

    package init(tag: String, options: HTTPMixedInboundOptions, flowHandler: any FlowHandler,
                 logger: ContextLogger, group: any EventLoopGroup) throws {
        self.tag = tag
        // Go wraps these inbounds' router in its UoT router: a connect to the magic name is a UDP flow.
        let flowHandler = UDPOverTCPFlowHandler(next: flowHandler, logger: logger)
        let tls = try TLSServerConfiguration.make(options.tls, logger: logger)
        let parameters = try ListenParameters(options.listen)
        var socks = SOCKSInboundContext.forInbound(tag: tag, type: "mixed", users: options.users, listen: parameters,
                                                   flowHandler: flowHandler, logger: logger)
        var http = HTTPInboundContext(tag: tag, type: "mixed",
                                      users: HTTPProxyUsers(options.users.map { (username: $0.username, password: $0.password) }),
                                      flowHandler: flowHandler, logger: logger)
        socks.listenOptions = options.listen
        http.listenOptions = options.listen
        let (sharedSOCKS, sharedHTTP) = (socks, http)
        listener = ProxyListener(parameters: parameters, group: group, logger: logger, flowHandler: flowHandler) { channel, flowID, handoff in
            var socks = sharedSOCKS, http = sharedHTTP
            socks.flowHandler = handoff
            http.flowHandler = handoff
            // Go's mixed inbound logs a client that just hung up at debug level.
            try tls?.addServerHandler(to: channel, flowID: flowID, logger: logger, quietEOF: true)
            try channel.pipeline.syncOperations.addHandler(MixedSniffHandler(socks: socks, http: http, flowID: flowID))
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
