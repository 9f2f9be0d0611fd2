// The listening half shared by the `socks`, `http` and `mixed` inbounds: bind, accept, set up each
// connection's handshake handlers, track connections until the router takes them, close.
package import Adapter
package import Config
package import NIOCore
import Synchronization

extension ListenParameters {
    /// The kernel-facing listen fields of a sing-box `ListenOptions`. No `listen` means `::`
    /// (Go's default); a zone or an unparsable address throws with the field's JSON name.
    package init(_ options: ListenOptions) throws {
        var address = Adapter.IPAddress.v6(IPv6Bits(high: 0, low: 0))
        if let listen = options.listen {
            guard let parsed = Adapter.IPAddress(listen.text) else {
                throw AdapterError(.other, "listen: unsupported address \(listen.text)")
            }
            address = parsed
        }
        self.init(address: address, port: options.listenPort ?? 0, bindInterface: options.bindInterface,
                  routingMark: options.routingMark?.value,
                  reuseAddress: options.reuseAddr, tcpFastOpen: options.tcpFastOpen)
    }
}

/// A TCP listener whose connections run a handshake before the router takes them.
/// `close()` stops accepting and closes connections still in their handshake.
package final class ProxyListener: Sendable {
    /// Adds a connection's handshake handlers; runs on the connection's loop.
    package typealias Setup = @Sendable (_ channel: any Channel, _ flowID: FlowID, _ flowHandler: any FlowHandler) throws -> Void

    private let parameters: ListenParameters
    private let group: any EventLoopGroup
    private let logger: ContextLogger
    private let setup: Setup
    private let flowHandler: any FlowHandler
    /// Whether an accepted connection is logged (`inbound connection from …`); naive logs per request instead.
    private let logsAccept: Bool
    private let state = Mutex<(server: (any Channel)?, handshaking: [ObjectIdentifier: any Channel], closed: Bool)>((nil, [:], false))

    package init(parameters: ListenParameters, group: any EventLoopGroup, logger: ContextLogger,
                 flowHandler: any FlowHandler, logsAccept: Bool = true, setup: @escaping Setup) {
        self.parameters = parameters
        self.logsAccept = logsAccept
        self.group = group
        self.logger = logger
        self.flowHandler = flowHandler
        self.setup = setup
    }

    /// The bound address (the real port when `listen_port` was 0); nil before `start`.
    package var localAddress: Destination? {
        state.withLock { $0.server }?.localAddress.flatMap { Destination($0) }
    }

    /// Connections accepted and not yet handed to the router.
    package var handshakingCount: Int { state.withLock { $0.handshaking.count } }

    /// Binds and starts accepting. Logs `tcp server started at …` as Go does.
    package func start() async throws {
        let server = try await Listener.listenTCP(parameters, group: group, initializer: { [self] channel in
            channel.eventLoop.makeCompletedFuture { try accept(channel) }
        })
        let stillOpen = state.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.server = server
            return true
        }
        guard stillOpen else {
            try? await server.close()
            return
        }
        logger.info("tcp server started at \(server.localAddress.flatMap { Destination($0) }.map { "\($0)" } ?? "\(parameters.destination)")")
    }

    /// Tracks `channel` as handshaking until it closes or the router takes it; false (and the channel
    /// closed) once the listener is closed.
    private func admit(_ channel: any Channel) -> Bool {
        let key = ObjectIdentifier(channel)
        let admitted = state.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.handshaking[key] = channel
            return true
        }
        guard admitted else {
            channel.close(promise: nil)
            return false
        }
        channel.closeFuture.whenComplete { [self] _ in release(key) }
        return true
    }

    private func accept(_ channel: any Channel) throws {
        let flowID = FlowID()
        guard admit(channel) else { return }
        if logsAccept, let source = channel.remoteAddress.flatMap({ Destination($0) }) {
            logger.info("inbound connection from \(source)", flow: flowID)
        }
        try setup(channel, flowID, HandoffFlowHandler(listener: self, next: flowHandler))
    }

    /// Takes over a connection another inbound accepted (a listen `detour`): tracked and set up as
    /// if accepted here, on the channel's loop. The accepting inbound's `FlowBufferHandler` goes
    /// once the handshake handlers are in place, handing them anything it held.
    package func inject(_ channel: any Channel, flowID: FlowID, from inbound: String) {
        channel.eventLoop.execute { [self] in
            guard channel.isActive else {
                channel.close(promise: nil)
                return
            }
            guard admit(channel) else { return }
            do {
                try setup(channel, flowID, HandoffFlowHandler(listener: self, next: flowHandler, injectedFrom: inbound))
                let pipeline = channel.pipeline.syncOperations
                if let buffer = try? pipeline.handler(type: FlowBufferHandler.self) { pipeline.removeHandler(buffer, promise: nil) }
            } catch {
                logger.error("\(error)", flow: flowID)
                channel.close(promise: nil)
            }
        }
    }

    fileprivate func release(_ key: ObjectIdentifier) {
        _ = state.withLock { $0.handshaking.removeValue(forKey: key) }
    }

    /// Stops accepting and closes connections still in their handshake.
    package func close() async {
        let (server, pending) = state.withLock { state in
            state.closed = true
            let taken = (state.server, Array(state.handshaking.values))
            state.server = nil
            state.handshaking.removeAll()
            return taken
        }
        try? await server?.close()
        for channel in pending { channel.close(promise: nil) }
    }
}

/// An inbound whose connections run their handshake on a `ProxyListener` (`socks`, `http`, `mixed`):
/// a connection a listen `detour` hands over runs that handshake too.
package protocol ProxyListenerInbound: TCPInjectableInbound {
    var listener: ProxyListener { get }
}

extension ProxyListenerInbound {
    package func injectTCP(_ channel: any Channel, metadata: FlowMetadata) {
        listener.inject(channel, flowID: metadata.flowID, from: metadata.lastInbound ?? metadata.inbound)
    }
}

/// A packet connection that lives as long as a TCP control connection (SOCKS UDP ASSOCIATE): handing
/// it to the router ends the control connection's handshake.
package protocol ControlledPacketConnection: PacketConnection {
    /// The TCP connection whose handshake created this association.
    var control: any Channel { get }
}

/// Forgets a connection once the router owns it, then passes it on.
private final class HandoffFlowHandler: FlowHandler {
    let listener: ProxyListener
    let next: any FlowHandler
    /// For a connection a detour handed over: the inbound that accepted it. Its flows keep that as
    /// `lastInbound` and follow no detour of this inbound's (Go sets the detour only on accept).
    let injectedFrom: String?

    init(listener: ProxyListener, next: any FlowHandler, injectedFrom: String? = nil) {
        self.listener = listener
        self.next = next
        self.injectedFrom = injectedFrom
    }

    func handleTCP(_ channel: any Channel, metadata: FlowMetadata, responder: (any HandshakeResponder)?) {
        listener.release(ObjectIdentifier(channel))
        next.handleTCP(channel, metadata: injected(metadata), responder: responder)
    }

    func handleUDP(_ connection: any PacketConnection, metadata: FlowMetadata) {
        if let association = connection as? any ControlledPacketConnection {
            listener.release(ObjectIdentifier(association.control))
        }
        next.handleUDP(connection, metadata: injected(metadata))
    }

    private func injected(_ metadata: FlowMetadata) -> FlowMetadata {
        guard let injectedFrom else { return metadata }
        var out = metadata
        out.lastInbound = injectedFrom
        out.inboundDetour = nil
        return out
    }
}
