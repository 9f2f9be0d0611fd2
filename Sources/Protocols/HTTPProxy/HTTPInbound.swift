// The `http` inbound: an HTTP/1.1 proxy (CONNECT and absolute-form forwarding) on one TCP port.
package import Adapter
package import Config
package import NIOCore
package import Net
import TLS
import Transport

/// sing-box's `http` inbound. `set_system_proxy` has no meaning on a Linux gateway and is ignored.
/// With `tls` the TLS server goes first in each connection's pipeline; the proxy handshake reads
/// plaintext after it (Go's `tls.ServerHandshake` before `http.HandleConnectionEx`).
package final class HTTPInbound: ProxyListenerInbound {
    package let type = "http"
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
        var context = HTTPInboundContext(tag: tag, type: "http",
                                         users: HTTPProxyUsers(options.users.map { (username: $0.username, password: $0.password) }),
                                         flowHandler: flowHandler, logger: logger)
        context.listenOptions = options.listen
        let shared = context
        listener = ProxyListener(parameters: parameters, group: group, logger: logger, flowHandler: flowHandler) { channel, flowID, handoff in
            var context = shared
            context.flowHandler = handoff
            try tls?.addServerHandler(to: channel, flowID: flowID, logger: logger)
            try channel.pipeline.syncOperations.addHandler(HTTPProxyServerHandler(context: context, flowID: flowID))
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
