// The listener of the Clash API (see ControlAPI.swift).
package import Adapter
import Config
package import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Transport

/// The Clash API server of one box: started and closed with it.
package final class ClashAPIServer: Lifecycle, @unchecked Sendable {
    // Invariant: `channel` is set by `start` and cleared by `close`, never concurrently (the box's
    // staged start and close run one at a time).
    private let setup: ClashAPISetup
    private let routes: ClashAPIRoutes
    private var channel: (any Channel)?
    /// Accepted connections, closed with the server (Go's `http.Server.Close`): a stream would
    /// otherwise keep pushing a closed box's numbers after a reload.
    private let connections = Mutex<(next: Int, open: [Int: any Channel])>((0, [:]))

    /// Reads the listen address; nothing is bound before `start(.start)`.
    package init(setup: ClashAPISetup) throws {
        self.setup = setup
        routes = ClashAPIRoutes(setup: setup)
        _ = try Self.bindAddress(setup.options.externalController ?? "")
    }

    /// `host:port`; an empty host is every address, as Go's `net.Listen`.
    static func bindAddress(_ text: String) throws -> SocketAddress {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65_535).contains(port) else {
            throw AdapterError(.other, "external controller listen error: listen tcp \(text): address \(text): missing port in address")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty { host = "::" }
        if host == "localhost" { host = "127.0.0.1" }
        do { return try SocketAddress(ipAddress: host, port: port) } catch {
            throw AdapterError(.other, "external controller listen error: listen tcp \(text): lookup \(host): not an IP address")
        }
    }

    package func start(_ stage: StartStage) async throws {
        // Go listens once everything has started, after fetching a missing external UI (through
        // an outbound, so that one must be running).
        guard stage == .started else { return }
        await routes.externalUI.prepare()
        let text = setup.options.externalController ?? ""
        let address = try Self.bindAddress(text)
        let routes = self.routes
        let setup = self.setup
        let bootstrap = ServerBootstrap(group: setup.group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                let id = connections.withLock { state in
                    state.next += 1
                    state.open[state.next] = channel
                    return state.next
                }
                channel.closeFuture.whenComplete { [self] _ in _ = connections.withLock { $0.open.removeValue(forKey: id) } }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(ClashAPIConnectionHandler(routes: routes, setup: setup))
                }
            }
        do {
            channel = try await bootstrap.bind(to: address).get()
        } catch {
            throw AdapterError(.other, "external controller listen error: listen tcp \(text): \(error)")
        }
        setup.logger.info("restful api listening at \(channel?.localAddress.map(Self.describe) ?? text)")
    }

    package func close() async throws {
        let open = channel
        channel = nil
        try? await open?.close()
        for connection in connections.withLock({ Array($0.open.values) }) { try? await connection.close() }
    }

    /// The bound port (tests bind port 0).
    package var port: Int? { channel?.localAddress?.port }

    private static func describe(_ address: SocketAddress) -> String {
        Destination(address)?.description ?? "\(address)"
    }
}

/// One HTTP connection: requests in order, each answered before the next is read. A stream answer
/// keeps the connection (chunked lines until the client goes) or hands it to WebSocket framing.
final class ClashAPIConnectionHandler: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    /// The largest request body read (a PATCH of `/configs` or a PUT of a proxy is a few bytes).
    static let maximumBody = 1 << 20
    private let routes: ClashAPIRoutes
    private let setup: ClashAPISetup
    /// The chunked stream this connection is serving, if any.
    private var pump: ClashAPIStreamPump?
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private var tooLarge = false

    init(routes: ClashAPIRoutes, setup: ClashAPISetup) {
        self.routes = routes
        self.setup = setup
    }

    func channelInactive(context: ChannelHandlerContext) {
        pump?.stop()
        pump = nil
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        pump?.writabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let requestHead):
            head = requestHead
            body.clear()
            tooLarge = false
        case .body(var part):
            if body.readableBytes + part.readableBytes > Self.maximumBody { tooLarge = true } else { body.writeBuffer(&part) }
        case .end:
            guard let request = head else { return }
            head = nil
            let bodyBytes = Array(body.readableBytesView)
            if tooLarge {
                respond(context: context, request: request, ClashAPIResponse(status: .payloadTooLarge, message: "Body invalid"))
                return
            }
            let loop = context.eventLoop
            let bound = NIOLoopBound((self, context), eventLoop: loop)
            let routes = self.routes
            Task {
                let response = await routes.respond(to: request, body: bodyBytes)
                loop.execute {
                    let (handler, context) = bound.value
                    handler.respond(context: context, request: request, response)
                }
            }
        }
    }

    private func respond(context: ChannelHandlerContext, request: HTTPRequestHead, _ response: ClashAPIResponse) {
        guard context.channel.isActive else { return }
        if let stream = response.stream {
            startStream(context: context, request: request, stream, headers: response.headers)
            return
        }
        var headers = response.headers
        let keepAlive = request.isKeepAlive
        // A 304 has no body and, from Go, no length; a HEAD gets the length of what a GET would.
        if response.status != .notModified { headers.replaceOrAdd(name: "Content-Length", value: String(response.body.count)) }
        if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: response.status, headers: headers))), promise: nil)
        if !response.body.isEmpty, request.method != .HEAD, response.status != .notModified {
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: response.body)))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive { done.whenComplete { _ in context.close(promise: nil) } }
    }

    // MARK: Streams

    /// Answers a stream request: a WebSocket upgrade when asked for, else a chunked 200 whose body is
    /// the pump's lines.
    private func startStream(context: ChannelHandlerContext, request: HTTPRequestHead, _ stream: ClashAPIStream, headers: HTTPHeaders) {
        let pump = ClashAPIStreamPump(stream: stream, setup: setup, loop: context.eventLoop)
        if ClashAPIRoutes.wantsWebSocket(request) {
            upgrade(context: context, request: request, pump: pump)
            return
        }
        self.pump = pump
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: .ok, headers: headers))), promise: nil)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        pump.start(isWritable: { bound.value.1.channel.isWritable }) { line in
            let (handler, context) = bound.value
            guard context.channel.isActive else { return }
            context.writeAndFlush(handler.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: line)))), promise: nil)
        }
    }

    /// RFC 6455 §4.2: checks the handshake headers (a bad one gets 400, as Go's `ws.UpgradeHTTP`),
    /// answers 101, then takes the HTTP handlers out and leaves the channel to WebSocket framing.
    private func upgrade(context: ChannelHandlerContext, request: HTTPRequestHead, pump: ClashAPIStreamPump) {
        let connection = request.headers[canonicalForm: "Connection"].map { $0.lowercased() }
        guard request.method == .GET, request.version.major > 1 || request.version.minor >= 1, connection.contains("upgrade"),
              request.headers.first(name: "Sec-WebSocket-Version") == "13",
              let key = request.headers.first(name: "Sec-WebSocket-Key"), !key.isEmpty else {
            var response = ClashAPIResponse(status: .badRequest, headers: HTTPHeaders([("Content-Type", "text/plain; charset=utf-8")]))
            response.body = Array("Bad Request\n".utf8)
            var closing = request
            closing.headers.replaceOrAdd(name: "Connection", value: "close")
            respond(context: context, request: closing, response)
            return
        }
        let headers = HTTPHeaders([("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                   ("Sec-WebSocket-Accept", WebSocketFrameReader.acceptValue(forKey: key))])
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: .switchingProtocols,
                                                                     headers: headers))), promise: nil)
        // The 101 has passed the encoder: the HTTP handlers go, the WebSocket handler takes over.
        let pipeline = context.pipeline.syncOperations
        do {
            if let encoder = try? pipeline.handler(type: HTTPResponseEncoder.self) { pipeline.removeHandler(encoder, promise: nil) }
            if let decoder = try? pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self) {
                pipeline.removeHandler(decoder, promise: nil)
            }
            if let handler = try? pipeline.handler(type: HTTPServerPipelineHandler.self) { pipeline.removeHandler(handler, promise: nil) }
            if let handler = try? pipeline.handler(type: HTTPServerProtocolErrorHandler.self) { pipeline.removeHandler(handler, promise: nil) }
            if let handler = try? pipeline.handler(type: NIOHTTPResponseHeadersValidator.self) { pipeline.removeHandler(handler, promise: nil) }
            try pipeline.addHandler(ClashAPIWebSocketHandler(pump: pump), position: .last)
            pipeline.removeHandler(self, promise: nil)
        } catch {
            pump.stop()
            context.close(promise: nil)
        }
    }
}
