// The client side of sing-mux on an outbound (Go's sing-mux `Client`): flows ride streams of
// sessions that the outbound opens to `sp.mux.sing-box.arpa:444` through its own protocol.
// 1. A session is dialed through `dialSession`, its request written (with padding when set), the
//    multiplexer added (smux, yamux or h2mux).
// 2. A flow takes the session with the fewest streams, or a new one, as Go's `offer` decides with
//    max_connections / min_streams / max_streams. Sessions are kept per event loop (a relay joins
//    channels of one loop), so the limits count per loop.
// 3. A TCP stream sends its request at once and strips the server's status from what comes back
//    (`remote error: …` on status 1); a UDP stream uses packet addresses (Go's `ListenPacket`).
package import Adapter
package import Config
package import NIOCore
import NIOConcurrencyHelpers
import NIOHTTP2
import Net

/// One outbound's mux client. Thread-safe; sessions and streams live on their loops.
package final class MuxClient: Sendable {
    /// Dials a stream to `Mux.destination` through the outbound on the given loop (its handshake
    /// done, autoRead off, early bytes held, as an outbound's `dialTCP`).
    package typealias SessionDialer = @Sendable (any EventLoop) async throws -> any Channel

    private let streamProtocol: Mux.StreamProtocol
    private let padding: Bool
    private let maxConnections: Int
    private let minStreams: Int
    private let maxStreams: Int
    private let sessions = NIOLockedValueBox<[ObjectIdentifier: MuxLoopPool]>([:])

    /// Go's `NewClient` checks: the protocol name (`unknown protocol: …`); `brutal` is not in this build.
    package init(options: OutboundMultiplexOptions) throws {
        guard let kind = Mux.StreamProtocol(name: options.protocol ?? "") else {
            throw AdapterError(.other, "unknown protocol: \(options.protocol ?? "")")
        }
        if options.brutal?.enabled == true { throw AdapterError.notImplemented("multiplex brutal") }
        streamProtocol = kind
        padding = options.padding
        maxConnections = options.maxConnections ?? 0
        maxStreams = options.maxStreams ?? 0
        minStreams = maxStreams == 0 && maxConnections == 0 ? 8 : options.minStreams ?? 0
    }

    /// A client when `options` enables multiplex, else nil.
    package static func make(_ options: OutboundMultiplexOptions?) throws -> MuxClient? {
        guard let options, options.enabled else { return nil }
        return try MuxClient(options: options)
    }

    /// A TCP stream to the flow's destination, as an outbound's `dialTCP` returns it, logged as Go's
    /// outbounds log a multiplexed flow; a new session, when one is needed, comes from `dialSession`.
    package func dialTCP(_ metadata: FlowMetadata, logger: ContextLogger, on eventLoop: any EventLoop,
                         dialSession: SessionDialer) async throws -> any Channel {
        let destination = metadata.destination
        logger.info("outbound multiplex connection to \(destination)", flow: metadata.flowID)
        let request = MuxStreamRequest(isUDP: false, packetAddress: false, destination: destination)
        return try await openStream(on: eventLoop, dialSession: dialSession) { stream in
            try Self.sendRequest(request, on: stream)
            try stream.pipeline.syncOperations.addHandlers([MuxStreamResponseDecoder(), FlowBufferHandler()])
            return stream
        }
    }

    /// A UDP stream in packet-address mode (Go's `ListenPacket`), first named the flow's destination;
    /// for a `udp_connect` flow (which Go dials with `DialContext("udp")`) every packet goes to that
    /// destination and carries no address. Logged as Go's outbounds log a multiplexed packet flow.
    package func listenPacket(_ metadata: FlowMetadata, logger: ContextLogger, on eventLoop: any EventLoop,
                              dialSession: SessionDialer) async throws -> any PacketConnection {
        let (destination, connect) = (metadata.destination, metadata.udpConnect)
        logger.info("outbound multiplex packet connection to \(destination)", flow: metadata.flowID)
        let request = MuxStreamRequest(isUDP: true, packetAddress: !connect, destination: destination)
        return try await openStream(on: eventLoop, dialSession: dialSession) { stream in
            try Self.sendRequest(request, on: stream)
            try stream.pipeline.syncOperations.addHandlers([MuxStreamResponseDecoder(), FlowBufferHandler()])
            let framing = UDPOverTCPFraming(connectDestination: connect ? destination : nil, addresses: Mux.addresses)
            return try UDPOverTCPConnection(channel: stream, framing: framing, pendingRequest: nil)
        }
    }

    /// Closes every session (Go's `Reset`).
    package func close() {
        let pools = sessions.withLockedValue { table in
            defer { table.removeAll() }
            return Array(table.values)
        }
        for pool in pools {
            pool.loop.execute {
                for session in pool.sessions { session.channel.close(promise: nil) }
                pool.sessions.removeAll()
            }
        }
    }

    private static func sendRequest(_ request: MuxStreamRequest, on stream: any Channel) throws {
        var buffer = stream.allocator.buffer(capacity: 32)
        try request.write(to: &buffer)
        stream.writeAndFlush(buffer, promise: nil)
    }

    /// A stream on a session chosen for `eventLoop` (two attempts, as Go's `openStream`), set up by
    /// `configure` on the loop.
    private func openStream<T: Sendable>(on eventLoop: any EventLoop, dialSession: SessionDialer,
                                         _ configure: @escaping @Sendable (MuxStreamChannel) throws -> T) async throws -> T {
        var lastError: any Error = MuxError.truncated
        for _ in 0..<2 {
            do {
                let session = try await offer(on: eventLoop, dialSession: dialSession)
                let future: EventLoopFuture<T> = eventLoop.flatSubmit {
                    session.openStream().flatMapThrowing { stream in
                        do {
                            return try configure(stream)
                        } catch {
                            stream.close(promise: nil)
                            throw error
                        }
                    }
                }
                return try await future.get()
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    /// Go's `offer`: the least-loaded open session when the limits allow, else a new one. Offers on
    /// one loop are serialized as Go's `offer` holds its lock: while a session is being opened, the
    /// next flow waits for it and decides again.
    private func offer(on eventLoop: any EventLoop, dialSession: SessionDialer) async throws -> MuxClientSession {
        let key = ObjectIdentifier(eventLoop)
        let pool = sessions.withLockedValue { table in
            if let pool = table[key] { return pool }
            let pool = MuxLoopPool(loop: eventLoop)
            table[key] = pool
            return pool
        }
        while true {
            let decision = try await eventLoop.submit { () -> MuxLoopPool.Decision in
                pool.sessions.removeAll { $0.isClosed }
                if let creating = pool.creating { return .wait(creating) }
                if let session = self.choose(pool.sessions) { return .use(session) }
                let promise = eventLoop.makePromise(of: MuxClientSession.self)
                pool.creating = promise.futureResult
                return .create(promise)
            }.get()
            switch decision {
            case .use(let session):
                return session
            case .wait(let creating):
                _ = try? await creating.get()
            case .create(let promise):
                do {
                    let session = try await newSession(on: eventLoop, dialSession: dialSession)
                    try await eventLoop.submit {
                        pool.sessions.append(session)
                        pool.creating = nil
                    }.get()
                    promise.succeed(session)
                    return session
                } catch {
                    eventLoop.execute { pool.creating = nil }
                    promise.fail(error)
                    throw error
                }
            }
        }
    }

    /// On the loop: the session Go's `offer` would take, or nil for a new one.
    private func choose(_ open: [MuxClientSession]) -> MuxClientSession? {
        guard let (session, streamCount) = open.filter({ $0.canTakeNewRequest }).map({ ($0, $0.streamCount) }).min(by: { $0.1 < $1.1 }) else {
            return nil
        }
        if streamCount == 0 { return session }
        if maxConnections > 0 {
            if open.count >= maxConnections || streamCount < minStreams { return session }
        } else if maxStreams > 0 && streamCount < maxStreams {
            return session
        }
        return nil
    }

    private func newSession(on eventLoop: any EventLoop, dialSession: SessionDialer) async throws -> MuxClientSession {
        let channel = try await dialSession(eventLoop)
        let (kind, padding) = (streamProtocol, self.padding)
        do {
            return try await channel.eventLoop.submit {
                // The request goes out raw, ahead of the padded multiplexer bytes (Go wraps the
                // protocol conn in the padding conn).
                var request = channel.allocator.buffer(capacity: 800)
                MuxSessionRequest(streamProtocol: kind, padding: padding).write(to: &request)
                channel.write(request, promise: nil)
                let sync = channel.pipeline.syncOperations
                if padding { try sync.addHandler(MuxPaddingHandler()) }
                let session: MuxClientSession
                switch kind {
                case .smux:
                    let handler = SmuxSession(client: true)
                    try sync.addHandler(handler)
                    session = MuxClientSession(channel: channel, backend: .smux(handler))
                case .yamux:
                    let handler = YamuxSession(client: true)
                    try sync.addHandler(handler)
                    session = MuxClientSession(channel: channel, backend: .yamux(handler))
                case .h2mux:
                    let multiplexer = try H2MuxSession.addClient(to: channel)
                    session = MuxClientSession(channel: channel, backend: .h2mux(multiplexer))
                }
                // Bytes the dialer held flow into the session now; from here it reads by itself.
                if let holder = try? sync.handler(type: FlowBufferHandler.self) { sync.removeHandler(holder, promise: nil) }
                try channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
                channel.flush()
                channel.read()
                return session
            }.get()
        } catch {
            channel.close(promise: nil)
            throw error
        }
    }
}

/// The sessions of one event loop. Touched on that loop only.
final class MuxLoopPool: @unchecked Sendable {
    enum Decision: @unchecked Sendable {
        case use(MuxClientSession)
        case wait(EventLoopFuture<MuxClientSession>)
        case create(EventLoopPromise<MuxClientSession>)
    }

    var sessions: [MuxClientSession] = []
    /// The session being opened, if any.
    var creating: EventLoopFuture<MuxClientSession>?
    /// The loop the sessions live on.
    let loop: any EventLoop

    init(loop: any EventLoop) { self.loop = loop }
}

/// One client session: its channel and multiplexer. The stream state is read on the loop only.
final class MuxClientSession: @unchecked Sendable {
    enum Backend {
        case smux(SmuxSession)
        case yamux(YamuxSession)
        case h2mux(NIOHTTP2Handler.StreamMultiplexer)
    }

    let channel: any Channel
    private let backend: Backend
    private let closed = NIOLockedValueBox(false)
    /// h2mux streams opened and not yet closed (NIOHTTP2 keeps no count we can read).
    private var h2Streams = 0

    init(channel: any Channel, backend: Backend) {
        self.channel = channel
        self.backend = backend
        let flag = closed
        channel.closeFuture.whenComplete { _ in flag.withLockedValue { $0 = true } }
    }

    var isClosed: Bool { closed.withLockedValue { $0 } || !channel.isActive }

    /// On the loop: the open streams (Go's `NumStreams`).
    var streamCount: Int {
        switch backend {
        case .smux(let session): session.streamCount
        case .yamux(let session): session.streamCount
        case .h2mux: h2Streams
        }
    }

    /// On the loop: room for one more stream (h2mux: the server's stream limit).
    var canTakeNewRequest: Bool {
        switch backend {
        case .smux, .yamux: true
        case .h2mux: h2Streams < H2MuxSession.maxConcurrentStreams
        }
    }

    /// On the loop: a new stream, active and writable at once.
    func openStream() -> EventLoopFuture<MuxStreamChannel> {
        let loop = channel.eventLoop
        switch backend {
        case .smux(let session):
            guard let stream = session.openStream() else { return loop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
            return loop.makeSucceededFuture(stream)
        case .yamux(let session):
            guard let stream = session.openStream() else { return loop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
            return loop.makeSucceededFuture(stream)
        case .h2mux(let multiplexer):
            h2Streams += 1
            let opened = H2MuxSession.openStream(multiplexer, on: loop)
            opened.whenComplete { [self] result in
                switch result {
                case .success(let stream): stream.closeFuture.whenComplete { _ in self.h2Streams -= 1 }
                case .failure: h2Streams -= 1
                }
            }
            return opened
        }
    }
}

/// Client stream: strips the server's status byte from the first bytes, or fails the stream with
/// `remote error: <message>` (Go's `clientConn.readResponse`).
final class MuxStreamResponseDecoder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var buffered: ByteBuffer?
    private var answered = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else {
            context.fireChannelRead(data)
            return
        }
        var bytes = unwrapInboundIn(data)
        if buffered == nil { buffered = bytes } else { buffered!.writeBuffer(&bytes) }
        guard var buffer = buffered else { return }
        do {
            guard let response = try MuxStreamResponse.read(from: &buffer) else { return }
            buffered = nil
            answered = true
            if case .failure(let message) = response {
                context.fireErrorCaught(MuxError.remote(message))
                context.close(promise: nil)
                return
            }
            if buffer.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(buffer)) }
        } catch {
            buffered = nil
            context.fireErrorCaught(error)
            context.close(promise: nil)
        }
    }
}
