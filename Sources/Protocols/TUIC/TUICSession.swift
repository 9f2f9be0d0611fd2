// TUICSession: one TUIC connection (a QUIC connection, client or server) on its socket's event loop.
//
// 1. Handshake: the client waits for TLS, then writes Authenticate on a unidirectional stream
//    (token = TLS exporter, label = the UUID's 16 bytes, context = the password, 32 bytes) and
//    starts its heartbeat. The server starts its heartbeat and an `auth_timeout` timer at accept;
//    Connect streams and Packets wait for a valid Authenticate (Go's `authDone`).
// 2. Events from the driver: bidirectional streams become `TUICStreamChannel`s (the server reads
//    their Connect header first); unidirectional streams carry one command each (Authenticate,
//    Packet, Dissociate on the server; Packet on the client); DATAGRAMs carry Packet or Heartbeat.
// 3. UDP: an association id (`TUICPacketConnection`) per client flow; Packets go as DATAGRAMs
//    fragmented to the path's size (native) or one per unidirectional stream (quic).
// 4. Failures close the whole connection with Go's log line `connection failed: …` (server) — a
//    bad Authenticate, a garbled command, the auth timeout — and end every flow on it.
import Adapter
import Config
import NIOCore
import NetstackWire
@_implementationOnly import QUIC
@_implementationOnly import QUICNIO

/// The server's view of its users and where flows go.
final class TUICServerContext: @unchecked Sendable {
    let tag: String
    /// UUID bytes → (user index, password).
    let users: [[UInt8]: (index: Int, name: String, password: [UInt8])]
    let authTimeout: TimeAmount
    let heartbeat: TimeAmount
    let flowHandler: any FlowHandler
    let listenOptions: ListenOptions
    let logger: ContextLogger

    init(tag: String, users: [[UInt8]: (index: Int, name: String, password: [UInt8])], authTimeout: TimeAmount, heartbeat: TimeAmount,
         flowHandler: any FlowHandler, listenOptions: ListenOptions, logger: ContextLogger) {
        self.tag = tag
        self.users = users
        self.authTimeout = authTimeout
        self.heartbeat = heartbeat
        self.flowHandler = flowHandler
        self.listenOptions = listenOptions
        self.logger = logger
    }
}

/// The client's credentials and relay mode.
struct TUICClientSettings: Sendable {
    var uuid: [UInt8]
    var password: [UInt8]
    /// `udp_relay_mode: quic`: Packets on unidirectional streams.
    var udpStream: Bool
    var heartbeat: TimeAmount
}

/// Why a TUIC connection or flow ended.
package struct TUICSessionError: Error, CustomStringConvertible, Sendable {
    package var message: String
    package var description: String { message }
    init(_ message: String) { self.message = message }
}

/// One TUIC connection. Loop-confined: every method runs on `eventLoop`.
final class TUICSession: @unchecked Sendable {
    enum Role {
        case client(TUICClientSettings)
        case server(TUICServerContext)
    }

    let eventLoop: any EventLoop
    let driver: QUICDriver
    /// The UDP socket (the client's own; the server's shared one).
    let socket: any Channel
    let remoteAddress: SocketAddress?
    var localAddress: SocketAddress? { socket.localAddress }
    private(set) var connection: QUICConnection!
    let role: Role
    let logger: ContextLogger

    private var streams: [UInt64: TUICStreamChannel] = [:]
    private var uniStreams: [UInt64: ByteBuffer] = [:]
    private var associations: [UInt16: TUICPacketConnection] = [:]
    private var nextAssociationID: UInt16 = 0
    /// Server: the authenticated user (index, name); nil until Authenticate succeeded.
    private(set) var user: (index: Int, name: String)?
    private var waitingForAuthentication: [() -> Void] = []
    private var datagramsBeforeAuthentication: [ByteBuffer] = []
    private var heartbeatTask: RepeatedTask?
    private var authenticationTimer: Scheduled<Void>?
    private var handshakePromise: EventLoopPromise<Void>?
    /// Whether the connection ended (or is closing); no new flows.
    private(set) var isClosed = false
    /// Called once when the connection ended.
    var onClose: (() -> Void)?

    var isServer: Bool { if case .server = role { true } else { false } }

    /// Whether new flows may start here: not ended, and the connection neither closing nor
    /// draining (a peer's CONNECTION_CLOSE ends it for new streams at once; `.closed` comes
    /// only after the draining period).
    var isUsable: Bool { !isClosed && connection?.isEstablished == true }

    init(role: Role, driver: QUICDriver, socket: any Channel, remoteAddress: SocketAddress?, logger: ContextLogger) {
        self.role = role
        self.driver = driver
        self.socket = socket
        self.eventLoop = socket.eventLoop
        self.remoteAddress = remoteAddress
        self.logger = logger
    }

    // MARK: Client

    /// Dials `server` from a new UDP socket on `loop`; succeeds once TLS completed and Authenticate
    /// is written (flows may start at once: the server holds them until it checked the token).
    static func connect(to server: SocketAddress, configuration: QUICConfiguration, settings: TUICClientSettings,
                        on loop: any EventLoop, timeout: TimeAmount, logger: ContextLogger) -> EventLoopFuture<TUICSession> {
        let any: SocketAddress
        switch server {
        case .v6: any = try! SocketAddress(ipAddress: "::", port: 0)  // literal: cannot fail
        default: any = try! SocketAddress(ipAddress: "0.0.0.0", port: 0)
        }
        return QUICDriver.bind(group: loop, address: any).flatMap { socket, driver in
            let session = TUICSession(role: .client(settings), driver: driver, socket: socket, remoteAddress: server, logger: logger)
            let promise = loop.makePromise(of: Void.self)
            session.handshakePromise = promise
            driver.onEvent = { [weak session] _, event in session?.handle(event) }
            driver.onFlushed = { [weak session] _ in session?.checkWritability() }
            do {
                session.connection = try driver.connect(to: server, configuration: configuration)
            } catch {
                socket.close(promise: nil)
                return loop.makeFailedFuture(TUICSessionError("open connection: \(error)"))
            }
            let timer = loop.scheduleTask(in: timeout) { [weak session] in
                session?.fail("open connection: timeout: no recent network activity")
            }
            return promise.futureResult.map { timer.cancel(); return session }.flatMapErrorThrowing { error in
                timer.cancel()
                socket.close(promise: nil)
                throw error
            }
        }
    }

    /// Opens a bidirectional stream whose first bytes are Connect to `destination`.
    func openConnect(to destination: Destination) throws -> TUICStreamChannel {
        let header: ByteBuffer
        do { header = try TUICCodec.connect(destination) } catch { throw TUICSessionError("create new connection: \(error)") }
        guard !isClosed, let id = connection.openStream(bidirectional: true) else {
            throw TUICSessionError(isClosed ? "connection closed" : "too many open streams")
        }
        try connection.writeStream(id, header)
        let stream = TUICStreamChannel(session: self, id: id)
        streams[id] = stream
        return stream
    }

    /// A new client association (Go's `ListenPacket`).
    func openAssociation() throws -> TUICPacketConnection {
        guard !isClosed else { throw TUICSessionError("connection closed") }
        guard case .client(let settings) = role else { throw TUICSessionError("not a client") }
        let id = nextAssociationID
        nextAssociationID &+= 1
        let association = TUICPacketConnection(session: self, associationID: id, udpStream: settings.udpStream)
        associations[id] = association
        return association
    }

    // MARK: Server

    /// A server session for a connection the driver accepted; the auth timer starts now.
    func startServer(_ connection: QUICConnection) {
        self.connection = connection
        guard case .server(let context) = role else { return }
        startHeartbeat(every: context.heartbeat)
        authenticationTimer = eventLoop.scheduleTask(in: context.authTimeout) { [weak self] in
            guard let self, user == nil else { return }
            fail("authentication timeout")
        }
    }

    /// Runs `body` once the client authenticated (at once if it has); dropped if the connection ends first.
    func whenAuthenticated(_ body: @escaping () -> Void) {
        if user != nil { body() } else if !isClosed { waitingForAuthentication.append(body) }
    }

    // MARK: Events

    func handle(_ event: QUICConnectionEvent) {
        switch event {
        case .handshakeCompleted:
            guard case .client(let settings) = role else { return }
            sendAuthentication(settings)
            startHeartbeat(every: settings.heartbeat)
            handshakePromise?.succeed(())
            handshakePromise = nil
        case .datagram(let datagram):
            if isServer, user == nil {
                // Go reads DATAGRAMs only after authentication (quic-go queues them meanwhile).
                if datagramsBeforeAuthentication.count < 128 { datagramsBeforeAuthentication.append(datagram) }
                return
            }
            handleDatagram(datagram)
        case .streamOpened(let id):
            if QUICStreamID.isUnidirectional(id) {
                uniStreams[id] = ByteBuffer()
            } else if case .server(let context) = role {
                acceptConnect(id, context: context)
            }
            // A client is never offered bidirectional streams by a TUIC server; any that come stay unread.
        case .streamReadable(let id):
            if let stream = streams[id] { stream.readable() } else if uniStreams[id] != nil { readUni(id) }
        case .streamReset(let id, let code):
            uniStreams[id] = nil
            streams[id]?.terminate(TUICSessionError("stream reset by peer: error code \(code)"))
        case .streamStopSending(let id, _):
            streams[id]?.peerStoppedReading()
        case .closed(let reason):
            finish(reason.description)
        }
    }

    /// Acknowledgements may have drained stream buffers.
    func checkWritability() {
        for stream in streams.values { stream.checkWritability() }
    }

    /// Sends what the connection has now.
    func flush() {
        guard connection != nil else { return }
        driver.flush(connection)
    }

    /// A stream channel closed: forget it.
    func streamClosed(_ id: UInt64) { streams[id] = nil }

    // MARK: Commands

    private func sendAuthentication(_ settings: TUICClientSettings) {
        guard let token = connection.exportKeyingMaterial(label: settings.uuid, context: settings.password, length: 32),
              let id = connection.openStream(bidirectional: false) else {
            fail("authentication: export keying material")
            return
        }
        try? connection.writeStream(id, TUICCodec.authenticate(uuid: settings.uuid, token: token), fin: true)
        flush()
    }

    private func startHeartbeat(every interval: TimeAmount) {
        heartbeatTask = eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] _ in
            guard let self, !isClosed else { return }
            connection.sendDatagram(TUICCodec.heartbeat)
            flush()
        }
    }

    private func readUni(_ id: UInt64) {
        guard var buffer = uniStreams[id] else { return }
        while var data = connection.readStream(id) { buffer.writeBuffer(&data) }
        let finished = connection.isStreamFinished(id)
        do {
            guard let message = try TUICCodec.readUni(from: &buffer, finished: finished, server: isServer) else {
                uniStreams[id] = buffer
                return
            }
            uniStreams[id] = nil
            // Go's `defer stream.CancelRead(0)`: one command per stream, the rest is refused.
            if !finished { connection.stopSending(id, errorCode: 0) }
            try handleUni(message)
        } catch let error as TUICError {
            uniStreams[id] = nil
            if isServer, case .truncated = error {
                fail("handle uni stream: read request: EOF")
            } else {
                fail(isServer ? "handle uni stream: \(error)" : "\(error)")
            }
        } catch {
            uniStreams[id] = nil
            fail(isServer ? "handle uni stream: \(error)" : "\(error)")
        }
        flush()
    }

    private func handleUni(_ message: TUICUniMessage) throws {
        switch message {
        case .authenticate(let uuid, let token):
            guard case .server(let context) = role else { return }
            guard user == nil else { throw TUICSessionError("authentication: multiple authentication requests") }
            guard let entry = context.users[uuid] else { throw TUICSessionError("authentication: unknown user \(Self.formatUUID(uuid))") }
            guard let expected = connection.exportKeyingMaterial(label: uuid, context: entry.password, length: 32) else {
                throw TUICSessionError("authentication: export keying material")
            }
            guard expected == token else { throw TUICSessionError("authentication: token mismatch") }
            user = (entry.index, entry.name)
            authenticationTimer?.cancel()
            let waiting = waitingForAuthentication
            waitingForAuthentication = []
            for body in waiting { body() }
            let early = datagramsBeforeAuthentication
            datagramsBeforeAuthentication = []
            for datagram in early { handleDatagram(datagram) }
        case .packet(let header, let payload):
            if isServer {
                whenAuthenticated { [weak self] in self?.handlePacket(header, payload: payload, udpStream: true) }
            } else {
                handlePacket(header, payload: payload, udpStream: true)
            }
        case .dissociate(let id):
            whenAuthenticated { [weak self] in
                guard let self, let association = associations.removeValue(forKey: id) else { return }
                association.close()
            }
        }
    }

    private func handleDatagram(_ datagram: ByteBuffer) {
        do {
            switch try TUICCodec.readDatagram(datagram) {
            case .heartbeat: break
            case .packet(let header, let payload): handlePacket(header, payload: payload, udpStream: false)
            }
        } catch {
            // Go: `handle message: decode UDP message: …` for a bad Packet, `handle message: …` otherwise.
            switch error {
            case .unexpectedEOF, .address: fail("handle message: decode UDP message: \(error)")
            default: fail("handle message: \(error)")
            }
        }
    }

    private func handlePacket(_ header: TUICPacketHeader, payload: ByteBuffer, udpStream: Bool) {
        var association = associations[header.associationID]
        if association == nil, case .server = role {
            // Go's `handleUDPMessage`: a new association id is a new UDP flow, in the relay mode it came in.
            let created = TUICPacketConnection(session: self, associationID: header.associationID, udpStream: udpStream)
            associations[header.associationID] = created
            association = created
        }
        association?.input(header, payload: payload)
    }

    /// A server association's first whole datagram: its flow goes to the router.
    func routeAssociation(_ association: TUICPacketConnection, destination: Destination) {
        guard case .server(let context) = role, let user else { return }
        let flowID = FlowID()
        var metadata = FlowMetadata(inbound: context.tag, inboundType: "tuic", network: .udp,
                                    source: remoteAddress.flatMap { Destination($0) }, destination: destination, flowID: flowID)
        metadata.applyListenOptions(context.listenOptions)
        context.logger.info("inbound packet connection from \(metadata.source.map { "\($0)" } ?? "")", flow: flowID)
        if user.name.isEmpty {
            context.logger.info("inbound packet connection to \(destination)", flow: flowID)
        } else {
            metadata.user = user.name
            context.logger.info("[\(user.name)] inbound packet connection to \(destination)", flow: flowID)
        }
        context.flowHandler.handleUDP(association, metadata: metadata)
    }

    /// Sends one datagram of `association` to (client) or from (server) `destination`.
    func sendPacket(association: UInt16, packetID: UInt16, destination: Destination, payload: ByteBuffer, udpStream: Bool) {
        guard !isClosed, payload.readableBytes <= 0xffff else { return }
        if udpStream {
            // quic mode: the whole packet on its own unidirectional stream, never fragmented.
            let header = TUICPacketHeader(associationID: association, packetID: packetID, fragmentTotal: 1, fragmentID: 0,
                                          size: UInt16(payload.readableBytes), destination: destination)
            guard let message = try? TUICCodec.packet(header, payload: payload), let id = connection.openStream(bidirectional: false) else { return }
            try? connection.writeStream(id, message, fin: true)
            return
        }
        // native: Go starts at 1200 - 3 and learns the path's limit from DatagramTooLargeError; we
        // know ours (our packet size and the peer's max_datagram_frame_size) up front.
        let limit = min(1200 - 3, connection.maxDatagramPayloadSize ?? 1200 - 3)
        guard let fragments = try? TUICCodec.fragments(associationID: association, packetID: packetID, destination: destination,
                                                       payload: payload, maxPacketSize: limit) else { return }
        for fragment in fragments { connection.sendDatagram(fragment) }
    }

    /// An association closed: the client tells the server (Dissociate), as Go's `closeWithError`.
    func associationClosed(_ association: TUICPacketConnection) {
        guard associations[association.associationID] === association else { return }
        associations[association.associationID] = nil
        guard !isServer, !isClosed, let id = connection.openStream(bidirectional: false) else { return }
        try? connection.writeStream(id, TUICCodec.dissociate(association.associationID), fin: true)
        flush()
    }

    // MARK: Connect streams (server)

    private func acceptConnect(_ id: UInt64, context: TUICServerContext) {
        let stream = TUICStreamChannel(session: self, id: id)
        streams[id] = stream
        do {
            try stream.pipeline.syncOperations.addHandler(TUICConnectRequestHandler(session: self, context: context))
        } catch {
            stream.close(promise: nil)
            return
        }
        stream.activate()
    }

    // MARK: Ending

    /// Closes the connection with Go's `connection failed: …` line (server) or as the client's
    /// `closeWithError`; every flow on it ends.
    func fail(_ message: String) {
        guard !isClosed else { return }
        if isServer {
            logger.error("connection failed: \(message)")
        } else {
            logger.debug("connection closed: \(message)")
        }
        connection?.close(errorCode: 0, now: Instant(nanoseconds: NIODeadline.now().uptimeNanoseconds))
        flush()
        finish(message)
    }

    /// Closes without an error (the outbound or inbound closing).
    func close() {
        guard !isClosed else { return }
        connection?.close(errorCode: 0, now: Instant(nanoseconds: NIODeadline.now().uptimeNanoseconds))
        flush()
        finish("closed")
    }

    private func finish(_ reason: String) {
        guard !isClosed else {
            if case .client = role, connection?.isClosed ?? true { socket.close(promise: nil) }
            return
        }
        isClosed = true
        heartbeatTask?.cancel()
        authenticationTimer?.cancel()
        waitingForAuthentication = []
        datagramsBeforeAuthentication = []
        handshakePromise?.fail(TUICSessionError("open connection: \(reason)"))
        handshakePromise = nil
        let error = TUICSessionError(reason)
        for stream in Array(streams.values) { stream.terminate(error) }
        streams = [:]
        for association in Array(associations.values) { association.close() }
        associations = [:]
        uniStreams = [:]
        let hook = onClose
        onClose = nil
        hook?()
        // A client's socket is its own: closed once the connection is gone (after CONNECTION_CLOSE left).
        if case .client = role, connection?.isClosed ?? true { socket.close(promise: nil) }
    }

    /// `059032a9-7d40-4a96-9bb1-36823d848068`.
    static func formatUUID(_ bytes: [UInt8]) -> String {
        let hex = bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        var text = ""
        for (index, character) in hex.enumerated() {
            if [8, 12, 16, 20].contains(index) { text.append("-") }
            text.append(character)
        }
        return text
    }
}
