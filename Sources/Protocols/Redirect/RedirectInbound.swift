// RedirectInbound: TCP listener whose flows carry the pre-redirect destination.
package import Adapter
package import Config
package import NIOCore
package import Net

/// The `redirect` inbound (TCP only, as in sing-box). Each accepted connection's destination is its
/// SO_ORIGINAL_DST; a connection that was not redirected is closed with Go's error line
/// (`process connection from <src>: get redirect destination: …`).
package final class RedirectInbound: Inbound, @unchecked Sendable {
    package let type = "redirect"
    package let tag: String
    package let listen: ListenParameters
    /// The config's listen fields, for the legacy per-flow ones (`sniff`, `domain_strategy`, …).
    package let listenOptions: ListenOptions?
    let sockets: any TransparentSockets
    let group: any EventLoopGroup
    let router: any FlowHandler
    let logger: ContextLogger
    // Set in start, read in close; both on the box's control task.
    private var server: (any Channel)?

    package init(tag: String, listen: ListenParameters, listenOptions: ListenOptions? = nil, sockets: any TransparentSockets,
                 group: any EventLoopGroup, router: any FlowHandler, logger: ContextLogger) {
        self.tag = tag
        self.listen = listen
        self.listenOptions = listenOptions
        self.sockets = sockets
        self.group = group
        self.router = router
        self.logger = logger.named("inbound/redirect[\(tag)]")
    }

    /// The bound address (tests bind port 0).
    package var localAddress: SocketAddress? { server?.localAddress }

    package func start(_ stage: StartStage) async throws {
        guard stage == .start else { return }
        let server = try await Listener.listenTCP(listen, group: group, accept: { [self] child in self.accept(child) })
        self.server = server
        logger.info("tcp server started at \(server.localAddress.flatMap(Destination.init) ?? listen.destination)")
    }

    private func accept(_ child: any Channel) {
        guard let source = child.remoteAddress.flatMap(Destination.init).map(Self.unmapped) else {
            child.close(promise: nil)
            return
        }
        let flowID = FlowID()
        logger.info("inbound connection from \(source)", flow: flowID)
        sockets.originalDestination(of: child).hop(to: child.eventLoop).whenComplete { [self] result in
            switch result {
            case .failure(let error):
                logger.error("process connection from \(source): get redirect destination: \(error)", flow: flowID)
                child.close(promise: nil)
            case .success(let original):
                let destination = Self.unmapped(original)
                var metadata = FlowMetadata(inbound: tag, inboundType: type, network: .tcp, source: source,
                                            destination: destination, flowID: flowID)
                if let listenOptions { metadata.applyListenOptions(listenOptions) }
                logger.info("inbound connection to \(destination)", flow: flowID)
                router.handleTCP(child, metadata: metadata, responder: nil)
            }
        }
    }

    package func close() async throws {
        if let server { try? await server.close() }
        server = nil
    }

    static func unmapped(_ destination: Destination) -> Destination {
        var out = destination
        if let ip = destination.ip { out.host = .ip(ip.unmapped) }
        return out
    }
}
