// Listener: TCP and UDP listening sockets for inbounds, with sing-box's listen fields.
package import Adapter
package import NIOCore
import NIOPosix

/// The listen fields of sing-box's `ListenOptions` that reach a kernel socket.
package struct ListenParameters: Sendable, Equatable {
    /// `listen`: the address to bind (`::` listens dual-stack).
    package var address: IPAddress
    /// `listen_port`; 0 picks a free port.
    package var port: UInt16
    /// `bind_interface`.
    package var bindInterface: String?
    /// `routing_mark`.
    package var routingMark: UInt32?
    /// `reuse_addr` (SO_REUSEADDR is always on for TCP listeners, as Go's listener does).
    package var reuseAddress: Bool
    /// `tcp_fast_open`: TCP_FASTOPEN queue length on the listener.
    package var tcpFastOpen: Bool

    package init(address: IPAddress, port: UInt16, bindInterface: String? = nil, routingMark: UInt32? = nil,
                 reuseAddress: Bool = false, tcpFastOpen: Bool = false) {
        self.address = address
        self.port = port
        self.bindInterface = bindInterface
        self.routingMark = routingMark
        self.reuseAddress = reuseAddress
        self.tcpFastOpen = tcpFastOpen
    }

    /// `127.0.0.1:2080` as the bound address prints.
    package var destination: Destination { Destination(ip: address, port: port) }

    /// The address as Go's listen errors print it: Go listens on `::` as the dual-stack wildcard and
    /// reports it as `0.0.0.0:<port>`.
    package var errorAddress: String {
        address == IPAddress("::") ? "0.0.0.0:\(port)" : destination.description
    }
}

/// Opens listeners. The caller owns the returned server channel and closes it in `close()`.
package enum Listener {
    /// Binds a TCP listener. Each accepted child is created with `autoRead` OFF and passed to
    /// `initializer` on its own event loop before it becomes active; the inbound adds its
    /// handlers there (and turns reading on when it wants the handshake bytes).
    /// `serverSetup` runs on the server channel before it binds (a tproxy listener sets
    /// IP_TRANSPARENT there). Throws `listen tcp <addr>: bind: address already in use`-style errors,
    /// as Go words them.
    package static func listenTCP(_ parameters: ListenParameters, group: any EventLoopGroup,
                                  serverSetup: (@Sendable (any Channel) -> EventLoopFuture<Void>)? = nil,
                                  initializer: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>) async throws -> any Channel {
        var bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(ChannelOptions.backlog, value: 1024)
            .childChannelOption(ChannelOptions.autoRead, value: false)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
        if let mark = parameters.routingMark {
            bootstrap = bootstrap.serverChannelOption(SocketLevelOption.mark, value: Int(Int32(bitPattern: mark)))
        }
        if parameters.tcpFastOpen {
            bootstrap = bootstrap.serverChannelOption(SocketLevelOption.fastOpenQueue, value: 256)
        }
        let device = parameters.bindInterface
        if device != nil || serverSetup != nil {
            bootstrap = bootstrap.serverChannelInitializer { channel in
                let bound = device.map { SocketLevelOption.bindToDevice(channel, $0) } ?? channel.eventLoop.makeSucceededVoidFuture()
                return bound.flatMap { serverSetup?(channel) ?? channel.eventLoop.makeSucceededVoidFuture() }
            }
        }
        bootstrap = bootstrap.childChannelInitializer(initializer)
        do {
            return try await bootstrap.bind(to: SocketAddress(ip: parameters.address, port: parameters.port)).get()
        } catch {
            throw AdapterError(.other, "listen tcp \(parameters.errorAddress): \(SocketLevelOption.describe(error, operation: "bind"))")
        }
    }

    /// Binds a TCP listener and calls `accept` on the child's loop once the child is ACTIVE
    /// (addresses known), with `autoRead` still off and a `FlowBufferHandler` holding any early
    /// bytes (the relay drains it). An inbound with a handshake adds its handlers before it.
    package static func listenTCP(_ parameters: ListenParameters, group: any EventLoopGroup,
                                  serverSetup: (@Sendable (any Channel) -> EventLoopFuture<Void>)? = nil,
                                  accept: @escaping @Sendable (any Channel) -> Void) async throws -> any Channel {
        try await listenTCP(parameters, group: group, serverSetup: serverSetup) { child in
            child.eventLoop.makeCompletedFuture {
                try child.pipeline.syncOperations.addHandlers([FlowBufferHandler(), ActiveNotifier(accept)])
            }
        }
    }

    /// Binds a UDP socket for an inbound; reading starts when the caller turns `autoRead` on.
    package static func listenUDP(_ parameters: ListenParameters, group: any EventLoopGroup,
                                  initializer: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>) async throws -> any Channel {
        var bootstrap = DatagramBootstrap(group: group)
            .channelOption(ChannelOptions.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
        if parameters.reuseAddress {
            bootstrap = bootstrap.channelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
        }
        if let mark = parameters.routingMark {
            bootstrap = bootstrap.channelOption(SocketLevelOption.mark, value: Int(Int32(bitPattern: mark)))
        }
        let device = parameters.bindInterface
        bootstrap = bootstrap.channelInitializer { channel in
            guard let device else { return initializer(channel) }
            return SocketLevelOption.bindToDevice(channel, device).flatMap { initializer(channel) }
        }
        do {
            return try await bootstrap.bind(to: SocketAddress(ip: parameters.address, port: parameters.port)).get()
        } catch {
            throw AdapterError(.other, "listen udp \(parameters.errorAddress): \(SocketLevelOption.describe(error, operation: "bind"))")
        }
    }
}

/// Calls back once the channel is active, then leaves the pipeline.
final class ActiveNotifier: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = Any
    let callback: @Sendable (any Channel) -> Void

    init(_ callback: @escaping @Sendable (any Channel) -> Void) {
        self.callback = callback
    }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        context.fireChannelActive()
        callback(channel)
    }
}
