// The `naive` inbound's lifecycle (Go's `NewInbound` and `Start`): the checks Go makes when it is
// built, then a `ProxyListener` whose connections run TLS (when `tls.enabled`) and
// `NaiveServerHandler`. Go's http.Server offers `h2` and `http/1.1` by ALPN on top of the
// configured list, so we do too.
// `network` udp is QUIC (HTTP/3), not in this build. As Go built without `with_quic` does (what it
// compiles in place of QUIC returns `QUIC is not included in this build`): udp alone fails at start
// (`not implemented`);
// tcp and udp together (the default) serve TCP and warn `naive http3 disabled: …`.
package import Adapter
package import Config
package import NIOCore
package import Net
import TLS

/// sing-box's `naive` inbound over TCP. Owns its listener and the connections still in their handshake.
package final class NaiveInbound: ProxyListenerInbound {
    package let type = "naive"
    package let tag: String
    /// The listener; exposed for the bound port in tests.
    package let listener: ProxyListener
    private let servesTCP: Bool
    private let servesUDP: Bool
    private let logger: ContextLogger

    /// Throws Go's errors: `TLS is required for QUIC server`, `missing users`, bad `tls` values.
    package init(tag: String, options: NaiveInboundOptions, flowHandler: any FlowHandler,
                 logger: ContextLogger, group: any EventLoopGroup) throws {
        self.tag = tag
        self.logger = logger
        let network = options.network.effective
        servesTCP = network.contains("tcp")
        servesUDP = network.contains("udp")
        if servesUDP, options.tls?.enabled != true { throw AdapterError(.other, "TLS is required for QUIC server") }
        if options.users.isEmpty { throw AdapterError(.other, "missing users") }
        var tlsOptions = options.tls
        if let configured = tlsOptions?.alpn {
            var alpn = configured
            for name in ["h2", "http/1.1"] where !alpn.contains(name) { alpn.append(name) }
            tlsOptions?.alpn = alpn
        }
        let tls = try TLSServerConfiguration.make(tlsOptions, logger: logger)
        let parameters = try ListenParameters(options.listen)
        let context = NaiveServerContext(tag: tag, users: NaiveUsers(options.users.map { (username: $0.username, password: $0.password) }),
                                         logger: logger, listenOptions: options.listen, tls: tls != nil)
        // Go's naive logs `inbound connection from` per request, with the user, not per accept.
        listener = ProxyListener(parameters: parameters, group: group, logger: logger, flowHandler: flowHandler,
                                 logsAccept: false) { channel, flowID, handoff in
            // Go's http.Server, not the inbound, runs the handshake: a client that hangs up in it is no
            // inbound error (a debug line here).
            try tls?.addServerHandler(to: channel, flowID: flowID, logger: logger, quietEOF: true)
            try channel.pipeline.syncOperations.addHandler(NaiveServerHandler(context: context, flowID: flowID, flowHandler: handoff))
        }
    }

    package func start(_ stage: StartStage) async throws {
        guard stage == .start else { return }
        if servesUDP {
            let error = AdapterError.notImplemented("naive QUIC (network udp): QUIC is not included in this build")
            guard servesTCP else { throw error }
            logger.warn("naive http3 disabled: \(error)")
        }
        try await listener.start()
    }

    package func close() async throws {
        await listener.close()
    }
}
