// What every SOCKS server handler of one inbound shares.
package import Adapter
package import Config
package import NIOCore

/// The inbound-wide settings a `SOCKSServerHandler` needs. Built once per inbound; copied into
/// each accepted connection's handler.
package struct SOCKSInboundContext: Sendable {
    /// The inbound's tag (`mixed-in`) for `FlowMetadata.inbound`.
    package var tag: String
    /// The inbound's type (`socks` or `mixed`) for `FlowMetadata.inboundType`.
    package var type: String
    /// Who may connect; empty lets everyone in.
    package var users: SOCKSUsers
    /// Where finished handshakes go (the router).
    package var flowHandler: any FlowHandler
    /// `inbound/socks[tag]`-named logger.
    package var logger: ContextLogger
    /// The inbound's listen fields, for the legacy per-flow ones (`sniff`, `domain_strategy`, …).
    package var listenOptions: ListenOptions?
    /// How long a client may take from accept to a complete request before it is closed.
    package var handshakeTimeout: TimeAmount
    /// Opens the UDP socket for an ASSOCIATE, bound to `address` port 0, on `eventLoop`, with
    /// `initializer` run on it. Nil refuses UDP ASSOCIATE (REP 7). The inbound passes
    /// `Listener.listenUDP`; tests may pass their own.
    package var openUDP: (@Sendable (_ address: Adapter.IPAddress, _ eventLoop: any EventLoop,
                                     _ initializer: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>)
                          async throws -> any Channel)?

    package init(tag: String, type: String, users: SOCKSUsers, flowHandler: any FlowHandler,
                 logger: ContextLogger, handshakeTimeout: TimeAmount = .seconds(30),
                 openUDP: (@Sendable (Adapter.IPAddress, any EventLoop, @escaping @Sendable (any Channel) -> EventLoopFuture<Void>)
                           async throws -> any Channel)? = nil) {
        self.tag = tag
        self.type = type
        self.users = users
        self.flowHandler = flowHandler
        self.logger = logger
        self.handshakeTimeout = handshakeTimeout
        self.openUDP = openUDP
    }

    /// A fresh flow's metadata from this inbound, with the legacy listen fields applied.
    package func metadata(network: NetworkKind, source: Destination?, destination: Destination, user: String?,
                          flowID: FlowID) -> FlowMetadata {
        var metadata = FlowMetadata(inbound: tag, inboundType: type, network: network, source: source,
                                    destination: destination, flowID: flowID)
        metadata.user = user
        if let listenOptions { metadata.applyListenOptions(listenOptions) }
        return metadata
    }
}
