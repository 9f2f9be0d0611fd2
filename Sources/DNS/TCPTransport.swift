// The `tcp` DNS server (sing-box 1.12 dns/transport/tcp.go): messages framed by a two-octet length
// (RFC 1035 §4.2.2), over a channel from a Dialer.
//
// sing-box dials a connection per query. We keep one connection and pipeline queries on it (RFC 7766
// §6.2.1: clients may send several queries without waiting; answers may come in any order and are
// matched by ID and question). The connection closes after `idleTimeout` without queries. If the
// server closes a reused connection while queries are waiting (servers close idle connections,
// RFC 7766 §6.2.3), those queries are sent once more on a fresh connection; on a fresh connection a
// close fails them.

package import Adapter
package import NIOCore
import Net
import Synchronization

/// The `tcp` DNS server.
package final class TCPTransport: DNSTransport {
    package let tag: String
    package var type: String { "tcp" }
    package let server: Destination
    private let core: TCPTransportCore

    /// A transport to `server` over connections from `dialer`, on `eventLoop`. A query not answered
    /// within `timeout` fails with `DNSError.timeout`.
    package init(tag: String, server: Destination, dialer: any Dialer, eventLoop: any EventLoop,
                 timeout: Duration = .seconds(10), idleTimeout: Duration = .seconds(30)) {
        self.tag = tag
        self.server = server
        core = TCPTransportCore(server: server, dialer: dialer, loop: eventLoop, timeout: TimeAmount(timeout),
                                idleTimeout: TimeAmount(idleTimeout))
    }

    package func exchange(_ message: DNSMessage) async throws -> DNSMessage {
        try await core.exchange(message, retryOnClose: true)
    }

    /// Connections opened so far (reuse keeps this at one for sequential or pipelined queries).
    package var connectionsOpened: Int {
        get async { (try? await core.loop.submit { self.core.connectionsOpened }.get()) ?? 0 }
    }

    package func close() async {
        try? await core.loop.submit { self.core.close() }.get()
    }
}

/// The loop-confined state of a `TCPTransport`.
final class TCPTransportCore: @unchecked Sendable {
    let server: Destination
    let dialer: any Dialer
    let loop: any EventLoop
    let timeout: TimeAmount
    let idleTimeout: TimeAmount
    /// Set for DNS over TLS: each connection gets a TLS client under the framing.
    let tls: DNSTLSContext?
    // Loop-confined from here on.
    var connection: TCPConnection?
    var opening: EventLoopFuture<TCPConnection>?
    var connectionsOpened = 0
    var isClosed = false

    init(server: Destination, dialer: any Dialer, loop: any EventLoop, timeout: TimeAmount, idleTimeout: TimeAmount,
         tls: DNSTLSContext? = nil) {
        self.tls = tls
        self.server = server
        self.dialer = dialer
        self.loop = loop
        self.timeout = timeout
        self.idleTimeout = idleTimeout
    }

    func exchange(_ message: DNSMessage, retryOnClose: Bool) async throws -> DNSMessage {
        let serial = DNSQuerySerial.next()
        let promise = loop.makePromise(of: DNSMessage.self)
        let reused = DNSFlag()
        do {
            return try await withTaskCancellationHandler {
                loop.execute { self.start(message, serial: serial, promise: promise, reused: reused) }
                return try await promise.futureResult.get()
            } onCancel: {
                loop.execute { self.connection?.pending.remove(serial: serial)?.promise.fail(CancellationError()) }
                promise.fail(CancellationError())
            }
        } catch TCPConnection.Closed.closed {
            guard retryOnClose, reused.isSet, !Task.isCancelled else { throw DNSError.closed }
            return try await exchange(message, retryOnClose: false)
        }
    }

    private func start(_ message: DNSMessage, serial: UInt64, promise: EventLoopPromise<DNSMessage>, reused: DNSFlag) {
        guard !isClosed else { return promise.fail(DNSError.closed) }
        if connection != nil { reused.set() }
        connect().whenComplete { result in
            switch result {
            case .failure(let error):
                promise.fail(error)
            case .success(let connection):
                connection.send(message, serial: serial, promise: promise, timeout: self.timeout)
            }
        }
    }

    private func connect() -> EventLoopFuture<TCPConnection> {
        if let connection, connection.isOpen { return loop.makeSucceededFuture(connection) }
        if let opening { return opening }
        let dialer = self.dialer, loop = self.loop, server = self.server, tls = self.tls
        let future = loop.makeFutureWithTask { try await dialer.dialTCP(to: server, on: loop) }
            .hop(to: loop)
            .flatMap { channel -> EventLoopFuture<TCPConnection> in
                let connection = TCPConnection(channel: channel, idleTimeout: self.idleTimeout)
                return channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(try DNSTLSClientHandler(context: tls)) }
                    try channel.pipeline.syncOperations.addHandler(TCPFrameHandler(connection: connection))
                    // The dialer holds early bytes in a FlowBufferHandler (Net); they are ours now.
                    if let held = try? channel.pipeline.syncOperations.handler(type: FlowBufferHandler.self) {
                        channel.pipeline.syncOperations.removeHandler(held, promise: nil)
                    }
                    // Closed before our handler was there: its channelInactive will not come.
                    if !channel.isActive { connection.closed() }
                }.flatMap {
                    channel.setOption(ChannelOptions.autoRead, value: true)
                }.map { connection }
            }
            .map { connection -> TCPConnection in
                self.opening = nil
                self.connectionsOpened += 1
                if self.isClosed { connection.close() } else { self.connection = connection }
                return connection
            }
        future.whenFailure { _ in self.opening = nil }
        opening = future
        return future
    }

    func close() {
        isClosed = true
        connection?.close()
        connection = nil
    }
}

/// A boolean set once from any thread.
final class DNSFlag: Sendable {
    private let state = Mutex(false)
    var isSet: Bool { state.withLock { $0 } }
    func set() { state.withLock { $0 = true } }
}

/// One TCP connection to the server with its pipelined queries. Loop-confined.
final class TCPConnection: @unchecked Sendable {
    enum Closed: Error { case closed }

    let channel: any Channel
    let idleTimeout: TimeAmount
    var pending = DNSPendingQueries()
    var isOpen = true
    /// Why the connection failed (a TLS error), reported to the queries it fails.
    var failure: (any Error)?
    var idleTimer: Scheduled<Void>?

    init(channel: any Channel, idleTimeout: TimeAmount) {
        self.channel = channel
        self.idleTimeout = idleTimeout
    }

    func send(_ message: DNSMessage, serial: UInt64, promise: EventLoopPromise<DNSMessage>, timeout: TimeAmount) {
        guard isOpen else { return promise.fail(Closed.closed) }
        guard let id = pending.freshID() else { return promise.fail(DNSError.rcode(.serverFailure)) }
        var query = message
        query.id = id
        let wire: [UInt8]
        do { wire = try query.encoded() } catch { return promise.fail(DNSError.malformedQuery(error)) }
        var frame = channel.allocator.buffer(capacity: wire.count + 2)
        frame.writeInteger(UInt16(wire.count))
        frame.writeBytes(wire)
        idleTimer?.cancel()
        idleTimer = nil
        let timer = channel.eventLoop.scheduleTask(in: timeout) { () -> Void in
            self.pending.remove(id: id)?.promise.fail(DNSError.timeout)
            self.armIdleTimer()
        }
        pending.insert(DNSPendingQueries.Entry(question: message.question, originalID: message.id, promise: promise, timer: timer,
                                               sendsLeft: 1, wire: ByteBuffer(), serial: serial), id: id)
        channel.writeAndFlush(frame, promise: nil)
    }

    /// A whole frame arrived.
    func received(_ frame: ByteBuffer) {
        _ = pending.deliver(frame)
        armIdleTimer()
    }

    func armIdleTimer() {
        guard pending.isEmpty, isOpen, idleTimer == nil else { return }
        idleTimer = channel.eventLoop.scheduleTask(in: idleTimeout) { self.close() }
    }

    func closed() {
        isOpen = false
        idleTimer?.cancel()
        pending.failAll(failure ?? Closed.closed)
    }

    func close() {
        isOpen = false
        channel.close(promise: nil)
    }
}

/// Splits the TCP byte stream into length-prefixed DNS messages for a `TCPConnection`.
/// A length under 12 (shorter than a header) closes the connection (sing-box: `ErrShortRead`).
final class TCPFrameHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    let connection: TCPConnection
    private var buffer: ByteBuffer?

    init(connection: TCPConnection) { self.connection = connection }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if var pending = buffer {
            buffer = nil  // one owner, so appending does not copy the storage
            pending.writeBuffer(&incoming)
            buffer = pending
        } else {
            buffer = incoming
        }
        while var current = buffer, let length = current.getInteger(at: current.readerIndex, as: UInt16.self) {
            guard length >= 12 else {
                context.close(promise: nil)
                return
            }
            guard current.readableBytes >= 2 + Int(length) else { break }
            current.moveReaderIndex(forwardBy: 2)
            guard let frame = current.readSlice(length: Int(length)) else { break }
            buffer = current.readableBytes > 0 ? current : nil
            connection.received(frame)
        }
        // The buffer never holds more than one frame plus a partial one: at most 2 + 65535 octets pending.
        if let current = buffer, current.readerIndex > 65_536 {
            var compacted = current
            compacted.discardReadBytes()
            buffer = compacted
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.closed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is DNSTLSError { connection.failure = error }
        context.close(promise: nil)
    }
}
