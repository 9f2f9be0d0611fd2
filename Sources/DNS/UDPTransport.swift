// The `udp` DNS server (sing-box 1.12 dns/transport/udp.go), on a `PacketConnection` from a Dialer.
//
// 1. one socket per transport, opened on first use through the dialer and reopened after it closes
// 2. each query gets a random unused ID (sing-box counts up; RFC 5452 asks for unpredictable IDs)
// 3. a datagram is accepted only from the server's address, with a pending ID and the same question;
//    everything else is dropped and counted, never failing other queries (sing-box closes the socket
//    on a datagram it cannot unpack; a spoofed packet should not cost every waiting query)
// 4. no answer within `retryInterval`: the same datagram is sent again, `attempts` sends in all,
//    then the query fails with `DNSError.timeout`
// 5. a truncated answer (TC) is asked again over TCP, as sing-box does ("response truncated, retrying with TCP")

package import Adapter
package import NIOCore

/// The `udp` DNS server.
package final class UDPTransport: DNSTransport {
    package let tag: String
    package var type: String { "udp" }
    /// The server's address (port 53 unless the config gave one).
    package let server: Destination
    /// Used for answers with TC set, to the same server.
    package let tcp: TCPTransport
    private let core: UDPTransportCore

    /// A transport to `server` over sockets from `dialer`, all on `eventLoop`.
    /// Sends each query up to `attempts` times, `retryInterval` apart.
    package init(tag: String, server: Destination, dialer: any Dialer, eventLoop: any EventLoop,
                 attempts: Int = 2, retryInterval: Duration = .seconds(5)) {
        self.tag = tag
        self.server = server
        tcp = TCPTransport(tag: tag, server: server, dialer: dialer, eventLoop: eventLoop)
        core = UDPTransportCore(server: server, dialer: dialer, loop: eventLoop, attempts: max(1, attempts),
                                retryInterval: TimeAmount(retryInterval))
    }

    package func exchange(_ message: DNSMessage) async throws -> DNSMessage {
        let response = try await core.exchange(message)
        if response.isTruncated {
            return try await tcp.exchange(message)
        }
        return response
    }

    /// Datagrams dropped so far (garbage, strangers, wrong IDs or questions).
    package var droppedCount: Int {
        get async { (try? await core.loop.submit { self.core.pending.droppedCount }.get()) ?? 0 }
    }

    /// Queries waiting for an answer right now.
    package var pendingCount: Int {
        get async { (try? await core.loop.submit { self.core.pending.entries.count }.get()) ?? 0 }
    }

    package func close() async {
        try? await core.loop.submit { self.core.close() }.get()
        await tcp.close()
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

/// The loop-confined state of a `UDPTransport`; also the socket's receiver.
final class UDPTransportCore: PacketReceiver, @unchecked Sendable {
    let server: Destination
    let dialer: any Dialer
    let loop: any EventLoop
    let attempts: Int
    let retryInterval: TimeAmount
    // Loop-confined from here on.
    var pending = DNSPendingQueries()
    var connection: (any PacketConnection)?
    var opening: EventLoopFuture<any PacketConnection>?
    var isClosed = false

    init(server: Destination, dialer: any Dialer, loop: any EventLoop, attempts: Int, retryInterval: TimeAmount) {
        self.server = server
        self.dialer = dialer
        self.loop = loop
        self.attempts = attempts
        self.retryInterval = retryInterval
    }

    func exchange(_ message: DNSMessage) async throws -> DNSMessage {
        let serial = DNSQuerySerial.next()
        let promise = loop.makePromise(of: DNSMessage.self)
        return try await withTaskCancellationHandler {
            loop.execute { self.start(message, serial: serial, promise: promise) }
            return try await promise.futureResult.get()
        } onCancel: {
            loop.execute {
                self.pending.remove(serial: serial)?.promise.fail(CancellationError())
            }
            promise.fail(CancellationError())
        }
    }

    private func start(_ message: DNSMessage, serial: UInt64, promise: EventLoopPromise<DNSMessage>) {
        guard !isClosed else { return promise.fail(DNSError.closed) }
        guard let id = pending.freshID() else { return promise.fail(DNSError.rcode(.serverFailure)) }
        var query = message
        query.id = id
        let wire: [UInt8]
        do { wire = try query.encoded() } catch { return promise.fail(DNSError.malformedQuery(error)) }
        let entry = DNSPendingQueries.Entry(question: message.question, originalID: message.id, promise: promise, timer: nil,
                                            sendsLeft: attempts, wire: ByteBuffer(bytes: wire), serial: serial)
        pending.insert(entry, id: id)
        openConnection().whenComplete { result in
            switch result {
            case .success(let connection):
                self.send(id, on: connection)
            case .failure(let error):
                self.pending.remove(id: id)?.promise.fail(error)
            }
        }
    }

    /// Sends (or re-sends) query `id` and arms its next timer.
    private func send(_ id: UInt16, on connection: any PacketConnection) {
        guard let entry = pending.entries[id] else { return }
        let isLast = entry.sendsLeft <= 1
        connection.writePacket(entry.wire, to: server)
        connection.flush()
        let timer = loop.scheduleTask(in: retryInterval) {
            if isLast {
                self.pending.remove(id: id)?.promise.fail(DNSError.timeout)
            } else if let current = self.connection {
                self.send(id, on: current)
            } else {
                self.pending.remove(id: id)?.promise.fail(DNSError.closed)
            }
            return ()
        }
        pending.update(id) { entry in
            entry.sendsLeft -= 1
            entry.timer = timer
        }
    }

    private func openConnection() -> EventLoopFuture<any PacketConnection> {
        if let connection { return loop.makeSucceededFuture(connection) }
        if let opening { return opening }
        let dialer = self.dialer, loop = self.loop
        let future = loop.makeFutureWithTask { try await dialer.listenPacket(on: loop) }
            .hop(to: loop)
            .map { connection -> any PacketConnection in
                self.opening = nil
                if self.isClosed {
                    connection.close()
                } else {
                    connection.setReceiver(self)
                    self.connection = connection
                }
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
        pending.failAll(DNSError.closed)
    }

    // MARK: PacketReceiver (on the loop)

    func packetReceived(_ payload: ByteBuffer, from source: Destination) {
        // Only the server may answer (a connected socket would filter this in the kernel). A server
        // named by domain answers from whatever address the name resolved to: its port must match.
        guard source == server || source.ip?.unmapped == server.ip?.unmapped && source.port == server.port
                || server.isDomain && source.port == server.port else {
            pending.countDrop()
            return
        }
        _ = pending.deliver(payload)
    }

    func packetConnectionClosed() {
        connection = nil
        // Queries still waiting are sent again on a new socket by their timers; if none comes, they time out.
    }
}
