// DNSStubListener: the 127.0.0.53:53 stub, UDP and TCP, answering through the DNS router.
//
// UDP: each datagram is one query. Bytes that do not parse as a DNS message, and responses, are
//      dropped and counted (resolved drops them too); a query with other than one question gets
//      FORMERR (resolved's stub). The answer is cut to the query's EDNS size (512 without EDNS);
//      a failed exchange gets SERVFAIL, as resolved's stub answers (Go's service sends nothing).
// TCP: two-byte length frames (RFC 1035 §4.2.2), answered as they complete (RFC 7766 §7); a frame
//      that is not a DNS message closes the connection, as does 10 s without a query.
// Queries in flight are capped per listener; beyond the cap UDP queries are dropped.
package import Adapter
import DNS
package import NIOCore
import NIOPosix
import Synchronization

/// The stub's UDP and TCP sockets. Thread-safe; each socket lives on its own event loop.
package final class DNSStubListener: Sendable {
    /// Where both sockets listen (127.0.0.53:53 by default).
    package let address: Destination
    let queries: ResolveQueries
    private let channels = Mutex<[any Channel]>([])
    /// Datagrams that were not DNS queries.
    let dropped = Atomic<UInt64>(0)
    /// Queries being answered right now (both sockets).
    let inFlight = Atomic<Int>(0)
    /// The cap on `inFlight`.
    static let maxInFlight = 1024

    /// A listener for `address`; nothing is bound until `start`.
    package init(address: Destination, queries: ResolveQueries) {
        self.address = address
        self.queries = queries
    }

    /// Binds UDP and TCP on `address`. Throws the bind error (`bind: address already in use`).
    package func start(group: any EventLoopGroup, udp: Bool = true, tcp: Bool = true) async throws {
        guard let ip = address.ip else { throw Resolve1Error.system("stub listen address", EINVAL) }
        let socketAddress = try SocketAddress(ipAddress: ip.description, port: Int(address.port))
        if udp {
            let channel = try await DatagramBootstrap(group: group)
                .channelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                .channelOption(ChannelOptions.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
                .channelInitializer { [self] channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(StubDatagramHandler(listener: self))
                    }
                }
                .bind(to: socketAddress).get()
            channels.withLock { $0.append(channel) }
        }
        if tcp {
            let channel = try await ServerBootstrap(group: group)
                .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { [self] child in
                    child.eventLoop.makeCompletedFuture {
                        try child.pipeline.syncOperations.addHandler(StubStreamHandler(listener: self))
                    }
                }
                .bind(to: socketAddress).get()
            channels.withLock { $0.append(channel) }
        }
    }

    /// Closes both sockets.
    package func close() async {
        let list = channels.withLock { value -> [any Channel] in
            defer { value.removeAll() }
            return value
        }
        for channel in list { try? await channel.close() }
    }

    /// The answer to one query (FORMERR/SERVFAIL built here when needed), or nil for "drop it".
    func answer(_ bytes: ByteBuffer) async -> DNSMessage? {
        guard let query = try? DNSMessage(parsing: bytes), !query.isResponse else {
            dropped.add(1, ordering: .relaxed)
            return nil
        }
        guard query.questions.count == 1 else { return DNSFixedResponse.status(query, rcode: .formatError) }
        do {
            var response = try await queries.exchange(query)
            response.id = query.id
            return response
        } catch {
            return DNSFixedResponse.status(query, rcode: .serverFailure)
        }
    }
}

/// UDP side, all on the channel's loop: the query is checked once here, then handed to the
/// backend's datagram path, whose answer (already cut to the query's size) goes straight back.
private final class StubDatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>
    private let listener: DNSStubListener

    init(listener: DNSStubListener) { self.listener = listener }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard let query = try? DNSMessage(parsing: envelope.data), !query.isResponse else {
            listener.dropped.add(1, ordering: .relaxed)
            return
        }
        let channel = context.channel
        func reply(_ message: DNSMessage) {
            guard let bytes = try? message.encodedForUDP(replyingTo: query) else { return }
            channel.writeAndFlush(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: ByteBuffer(bytes: bytes)), promise: nil)
        }
        guard query.questions.count == 1 else {
            reply(DNSFixedResponse.status(query, rcode: .formatError))
            return
        }
        guard listener.inFlight.wrappingAdd(1, ordering: .relaxed).oldValue < DNSStubListener.maxInFlight else {
            listener.inFlight.subtract(1, ordering: .relaxed)
            listener.dropped.add(1, ordering: .relaxed)
            return
        }
        let listener = self.listener
        listener.queries.beginTransaction()
        // Cached: answered here, one parse and one encode, no flow and no promise.
        if let cached = listener.queries.backend.cachedAnswer(query) {
            listener.inFlight.subtract(1, ordering: .relaxed)
            listener.queries.endTransaction()
            reply(cached)
            return
        }
        listener.queries.backend.exchangeDatagram(envelope.data, on: context.eventLoop).whenComplete { result in
            listener.inFlight.subtract(1, ordering: .relaxed)
            listener.queries.endTransaction()
            guard case .success(let answer?) = result else {
                reply(DNSFixedResponse.status(query, rcode: .serverFailure))
                return
            }
            channel.writeAndFlush(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: answer), promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ICMP errors from earlier replies surface here; the socket stays open.
    }
}

/// TCP side: length-prefixed frames.
private final class StubStreamHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    /// sing-box's `C.DNSTimeout` read deadline between queries.
    static let idleTimeout = TimeAmount.seconds(10)
    private let listener: DNSStubListener
    private var pending: ByteBuffer?
    private var idleTimer: Scheduled<Void>?

    init(listener: DNSStubListener) { self.listener = listener }

    func channelActive(context: ChannelHandlerContext) {
        armIdleTimer(context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if pending == nil { pending = incoming } else { pending!.writeBuffer(&incoming) }
        while let length = pending?.getInteger(at: pending!.readerIndex, as: UInt16.self),
              pending!.readableBytes >= 2 + Int(length) {
            pending!.moveReaderIndex(forwardBy: 2)
            let frame = pending!.readSlice(length: Int(length))!
            armIdleTimer(context: context)
            let listener = self.listener
            let channel = context.channel
            Task {
                guard let response = await listener.answer(frame), let bytes = try? response.encoded(), bytes.count <= 65_535 else {
                    channel.close(promise: nil)
                    return
                }
                var buffer = channel.allocator.buffer(capacity: bytes.count + 2)
                buffer.writeInteger(UInt16(bytes.count))
                buffer.writeBytes(bytes)
                channel.writeAndFlush(buffer, promise: nil)
            }
        }
        pending?.discardReadBytes()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func armIdleTimer(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        let channel = context.channel
        idleTimer = context.eventLoop.scheduleTask(in: Self.idleTimeout) { channel.close(promise: nil) }
    }
}
