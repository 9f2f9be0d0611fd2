// Serving hijacked DNS flows (sing-box route/dns.go, `hijack-dns`): queries arrive on a flow the router
// took over, are answered through `exchange` (the DNS router, or a client and one transport), and the
// answer goes back on the same flow.
//
// UDP: each datagram is one query; its answer is cut to the query's EDNS size (512 without EDNS) and
//      sent back to the address the client sent to. A datagram that is not a DNS query, or whose
//      exchange fails, gets no answer (sing-box logs "process DNS packet: …" and sends nothing).
//      Order per datagram: 1. a cache hit for a simple query, copied out in wire form before any parsing
//      (DNSCachedWire.swift); 2. parse; 3. a cache hit as a message; 4. the exchange in a task. Answers
//      written while the loop handles one read burst leave with one flush (NIO: one sendmmsg).
// TCP: length-prefixed queries (RFC 1035 §4.2.2), answered in the order they complete (RFC 7766 §7);
//      the flow closes after `idleTimeout` without a query (sing-box sets a 10 s read deadline), on a
//      malformed frame, or when an exchange fails.

package import Adapter
package import NIOCore
import Net
import Synchronization

/// Answers DNS on hijacked flows. Thread-safe; flows are served on their own event loops.
package final class DNSHijackHandler: DNSHijacker {
    /// Answers one query for a flow; throwing means "no answer".
    package typealias Exchange = @Sendable (DNSMessage, FlowMetadata) async throws -> DNSMessage

    private let exchange: Exchange
    /// Answers from the cache without a task, on the flow's loop; nil falls back to `exchange`.
    let cachedAnswer: (@Sendable (DNSMessage) -> DNSMessage?)?
    /// `cachedAnswer` for a UDP query still in wire form, tried before parsing it: the answer's octets,
    /// or nil to go on with the parsed message (DNSRouter.cachedWireAnswer).
    let cachedWireAnswer: (@Sendable (ByteBuffer) -> ByteBuffer?)?
    private let logger: ContextLogger?
    /// How long a TCP flow may sit without a query (sing-box's `C.DNSTimeout` read deadline).
    package let idleTimeout: TimeAmount
    /// Queries answered concurrently per flow; more are dropped (UDP) or wait in the socket (TCP).
    package let maxInFlight: Int

    /// `cachedAnswer`, when given, is tried first for every UDP query (it must not block: a cache
    /// lookup, as Go's router does before any rule); `exchange` answers the rest in a task.
    /// `cachedWireAnswer`, when given, comes before both for UDP queries; it must give exactly what
    /// `cachedAnswer` and `encodedForUDP` would, or nil.
    package init(logger: ContextLogger? = nil, idleTimeout: TimeAmount = .seconds(10), maxInFlight: Int = 256,
                 cachedAnswer: (@Sendable (DNSMessage) -> DNSMessage?)? = nil,
                 cachedWireAnswer: (@Sendable (ByteBuffer) -> ByteBuffer?)? = nil, exchange: @escaping Exchange) {
        self.exchange = exchange
        self.cachedAnswer = cachedAnswer
        self.cachedWireAnswer = cachedWireAnswer
        self.logger = logger
        self.idleTimeout = idleTimeout
        self.maxInFlight = maxInFlight
    }

    /// A handler answering every query through `client` and `transport` (no DNS rules).
    package convenience init(client: DNSClient, transport: any DNSTransport, logger: ContextLogger? = nil) {
        self.init(logger: logger) { message, _ in try await client.exchange(message, transport: transport) }
    }

    /// May be called from any thread: the router decides in a task, off the connection's loop,
    /// and `setReceiver` must run on that loop.
    package func hijackUDP(_ connection: any PacketConnection, metadata: FlowMetadata) {
        let receiver = DNSHijackPacketReceiver(connection: connection, metadata: metadata, handler: self)
        if connection.eventLoop.inEventLoop {
            connection.setReceiver(receiver)
        } else {
            connection.eventLoop.execute { connection.setReceiver(receiver) }
        }
    }

    /// `channel` is active with autoRead off, as the router hands flows over (Adapter.FlowHandler).
    package func hijackTCP(_ channel: any Channel, metadata: FlowMetadata) {
        let stream = DNSHijackStreamHandler(metadata: metadata, handler: self)
        channel.eventLoop.execute {
            do {
                try channel.pipeline.syncOperations.addHandler(stream)
                // Bytes the inbound held since accept are queries: let them through to us.
                if let held = try? channel.pipeline.syncOperations.handler(type: FlowBufferHandler.self) {
                    channel.pipeline.syncOperations.removeHandler(held, promise: nil)
                }
                _ = try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
                channel.read()
                // A flow closed before this point ends through its idle timer (closing a closed
                // channel is harmless); nothing else is held for it.
            } catch {
                channel.close(promise: nil)
            }
        }
    }

    /// Answers `query`; nil (after logging) when it cannot be answered.
    func answer(_ query: DNSMessage, metadata: FlowMetadata) async -> DNSMessage? {
        do {
            return try await exchange(query, metadata)
        } catch {
            logger?.error("process DNS packet: \(error)", flow: metadata.flowID)
            return nil
        }
    }

    func logDrop(_ reason: String, metadata: FlowMetadata) {
        logger?.debug("process DNS packet: \(reason)", flow: metadata.flowID)
    }
}

/// Receives a hijacked UDP flow's datagrams. Loop-confined to the connection's loop.
final class DNSHijackPacketReceiver: PacketReceiver, @unchecked Sendable {
    let connection: any PacketConnection
    let metadata: FlowMetadata
    let handler: DNSHijackHandler
    var inFlight = 0
    /// A flush is queued on the loop: answers written in the meantime leave in one batch
    /// (NIO sends pending datagrams with sendmmsg), not one syscall each.
    var flushScheduled = false

    init(connection: any PacketConnection, metadata: FlowMetadata, handler: DNSHijackHandler) {
        self.connection = connection
        self.metadata = metadata
        self.handler = handler
    }

    func packetReceived(_ payload: ByteBuffer, from source: Destination) {
        // A cached answer to a simple query is copied out in wire form, before any parsing.
        if let wire = handler.cachedWireAnswer?(payload) {
            send(wire, to: source)
            return
        }
        guard let query = try? DNSMessage(parsing: payload), !query.isResponse else {
            handler.logDrop("unpack request", metadata: metadata)
            return
        }
        // Cached answers go straight back: no task, no hop (the common case under load).
        if let cached = handler.cachedAnswer?(query), let wire = try? cached.encodedForUDP(replyingTo: query) {
            send(ByteBuffer(bytes: wire), to: source)
            return
        }
        guard inFlight < handler.maxInFlight else {
            handler.logDrop("too many queries in flight", metadata: metadata)
            return
        }
        inFlight += 1
        let loop = connection.eventLoop
        let promise = loop.makePromise(of: [UInt8]?.self)
        let handler = self.handler, metadata = self.metadata
        promise.completeWithTask {
            guard let response = await handler.answer(query, metadata: metadata) else { return nil }
            return try? response.encodedForUDP(replyingTo: query)
        }
        promise.futureResult.whenComplete { result in
            self.inFlight -= 1
            guard case .success(let wire?) = result else { return }
            self.send(ByteBuffer(bytes: wire), to: source)
        }
    }

    /// Writes one answer; the flush runs once the loop has handled the datagrams it read.
    private func send(_ wire: ByteBuffer, to destination: Destination) {
        connection.writePacket(wire, to: destination)
        guard !flushScheduled else { return }
        flushScheduled = true
        connection.eventLoop.execute {
            self.flushScheduled = false
            self.connection.flush()
        }
    }

    func packetConnectionClosed() {}
}

/// Serves a hijacked TCP flow: frames in, answers out. Loop-confined.
final class DNSHijackStreamHandler: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let metadata: FlowMetadata
    let handler: DNSHijackHandler
    private var buffer: ByteBuffer?
    private var inFlight = 0
    private var idleTimer: Scheduled<Void>?
    private var isClosed = false

    init(metadata: FlowMetadata, handler: DNSHijackHandler) {
        self.metadata = metadata
        self.handler = handler
    }

    func handlerAdded(context: ChannelHandlerContext) { armIdleTimer(context) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if var pending = buffer {
            buffer = nil
            pending.writeBuffer(&incoming)
            buffer = pending
        } else {
            buffer = incoming
        }
        while var current = buffer, let length = current.getInteger(at: current.readerIndex, as: UInt16.self) {
            guard current.readableBytes >= 2 + Int(length) else { break }
            current.moveReaderIndex(forwardBy: 2)
            guard let frame = current.readSlice(length: Int(length)) else { break }
            buffer = current.readableBytes > 0 ? current : nil
            guard let query = try? DNSMessage(parsing: frame), !query.isResponse else {
                handler.logDrop("unpack request", metadata: metadata)
                close(context)
                return
            }
            serve(query, context: context)
        }
        // Stop reading while the flow has many queries unanswered (back-pressure on a flooding client).
        if inFlight >= handler.maxInFlight { _ = try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false) }
    }

    private func serve(_ query: DNSMessage, context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = nil
        // Cached answers go straight back, as for UDP (answers may come in any order: RFC 7766 §7).
        if let cached = handler.cachedAnswer?(query), let wire = try? cached.encoded() {
            var frame = context.channel.allocator.buffer(capacity: wire.count + 2)
            frame.writeInteger(UInt16(wire.count))
            frame.writeBytes(wire)
            context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
            if inFlight == 0 { armIdleTimer(context) }
            return
        }
        inFlight += 1
        let loop = context.eventLoop
        let promise = loop.makePromise(of: [UInt8]?.self)
        let handler = self.handler, metadata = self.metadata
        promise.completeWithTask {
            guard let response = await handler.answer(query, metadata: metadata) else { return nil }
            return try? response.encoded()
        }
        let boundContext = NIOLoopBound(context, eventLoop: loop)
        promise.futureResult.whenComplete { result in
            let context = boundContext.value
            self.inFlight -= 1
            guard !self.isClosed else { return }
            guard case .success(let wire?) = result else {
                self.close(context)
                return
            }
            var frame = context.channel.allocator.buffer(capacity: wire.count + 2)
            frame.writeInteger(UInt16(wire.count))
            frame.writeBytes(wire)
            context.writeAndFlush(self.wrapOutboundOut(frame), promise: nil)
            _ = try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
            if self.inFlight == 0 { self.armIdleTimer(context) }
        }
    }

    private func armIdleTimer(_ context: ChannelHandlerContext) {
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        idleTimer = context.eventLoop.scheduleTask(in: handler.idleTimeout) { () -> Void in
            self.close(bound.value)
        }
    }

    private func close(_ context: ChannelHandlerContext) {
        guard !isClosed else { return }
        isClosed = true
        idleTimer?.cancel()
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        isClosed = true
        idleTimer?.cancel()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        close(context)
    }
}
