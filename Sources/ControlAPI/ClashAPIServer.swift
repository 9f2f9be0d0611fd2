// The listener of the Clash API (see ControlAPI.swift).
package import Adapter
import Config
package import NIOCore
import NIOHTTP1
import NIOPosix

/// The Clash API server of one box: started and closed with it.
package final class ClashAPIServer: Lifecycle, @unchecked Sendable {
    // Invariant: `channel` is set by `start` and cleared by `close`, never concurrently (the box's
    // staged start and close run one at a time).
    private let setup: ClashAPISetup
    private let routes: ClashAPIRoutes
    private var channel: (any Channel)?

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
        guard stage == .start else { return }
        let text = setup.options.externalController ?? ""
        let address = try Self.bindAddress(text)
        let routes = self.routes
        let bootstrap = ServerBootstrap(group: setup.group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(ClashAPIConnectionHandler(routes: routes))
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
    }

    /// The bound port (tests bind port 0).
    package var port: Int? { channel?.localAddress?.port }

    private static func describe(_ address: SocketAddress) -> String {
        Destination(address)?.description ?? "\(address)"
    }
}

/// One HTTP connection: requests in order, each answered before the next is read.
final class ClashAPIConnectionHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    /// The largest request body read (a PATCH of `/configs` or a PUT of a proxy is a few bytes).
    static let maximumBody = 1 << 20
    private let routes: ClashAPIRoutes
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private var tooLarge = false

    init(routes: ClashAPIRoutes) { self.routes = routes }

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
        var headers = response.headers
        let keepAlive = request.isKeepAlive
        headers.replaceOrAdd(name: "Content-Length", value: String(response.body.count))
        if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: response.status, headers: headers))), promise: nil)
        if !response.body.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: response.body)))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive { done.whenComplete { _ in context.close(promise: nil) } }
    }
}
