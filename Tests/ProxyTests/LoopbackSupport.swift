// Real sockets on 127.0.0.1 for inbound/outbound tests: echo servers and a router stand-in that
// dials directly, as the box's router does with a `direct` outbound.
import Adapter
import Config
import NIOCore
import NIOPosix
import Net

/// Routes every flow straight to its destination through the kernel, like `FlowRouter` with a
/// lone `direct` outbound: dial, install the relay, answer the client in one loop turn.
final class DirectTestRouter: FlowHandler {
    let dialer = SystemDialer()

    func handleTCP(_ channel: any Channel, metadata: FlowMetadata, responder: (any HandshakeResponder)?) {
        let dialer = self.dialer
        Task {
            do {
                let remote = try await dialer.dialTCP(to: metadata.destination, on: channel.eventLoop)
                try await channel.eventLoop.submit {
                    _ = Relay.start(client: channel, remote: remote)
                    _ = responder?.succeed(channel)
                }.get()
            } catch {
                if let responder { _ = try? await channel.eventLoop.flatSubmit { responder.fail(channel, error: error) }.get() }
                try? await channel.close()
            }
        }
    }

    func handleUDP(_ connection: any PacketConnection, metadata: FlowMetadata) {
        let dialer = self.dialer
        Task {
            guard let remote = try? await dialer.listenPacket(on: connection.eventLoop) else {
                connection.eventLoop.execute { connection.close() }
                return
            }
            _ = PacketRelay.start(client: connection, remote: remote, idleTimeout: .seconds(30))
        }
    }
}

/// Echoes every TCP byte back.
final class EchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.write(data, promise: nil) }
    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelEvent { context.close(promise: nil) }
    }
}

/// Echoes every datagram to its sender.
final class UDPEchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: envelope.data)), promise: nil)
    }
}

/// A TCP echo server on 127.0.0.1 with an ephemeral port.
func startEchoServer(group: any EventLoopGroup) async throws -> any Channel {
    try await ServerBootstrap(group: group)
        .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(EchoHandler()) }
        }
        .bind(host: "127.0.0.1", port: 0).get()
}

/// A UDP echo server on 127.0.0.1 with an ephemeral port.
func startUDPEchoServer(group: any EventLoopGroup) async throws -> any Channel {
    try await DatagramBootstrap(group: group)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(UDPEchoHandler()) }
        }
        .bind(host: "127.0.0.1", port: 0).get()
}

/// The destination a bound channel listens at.
func boundDestination(_ channel: any Channel) -> Destination {
    Destination(channel.localAddress!)!
}

/// Listen options for 127.0.0.1 on an ephemeral port.
func loopbackListen() -> ListenOptions {
    var listen = ListenOptions()
    listen.listen = IPAddressOption("127.0.0.1")
    listen.listenPort = 0
    return listen
}

/// Collects what arrives on a client channel until `count` bytes came.
final class CollectHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    private var collected = ByteBuffer()
    private let expected: Int
    let done: EventLoopPromise<ByteBuffer>

    init(expected: Int, eventLoop: any EventLoop) {
        self.expected = expected
        self.done = eventLoop.makePromise()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        collected.writeBuffer(&bytes)
        if collected.readableBytes >= expected { done.succeed(collected) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        done.succeed(collected)
    }
}

/// Receives datagrams from a `PacketConnection` into a promise.
final class PacketCollector: PacketReceiver, @unchecked Sendable {
    let received: EventLoopPromise<(ByteBuffer, Destination)>
    init(eventLoop: any EventLoop) { received = eventLoop.makePromise() }
    func packetReceived(_ payload: ByteBuffer, from source: Destination) { received.succeed((payload, source)) }
    func packetConnectionClosed() { received.fail(ChannelError.ioOnClosedChannel) }
}
