// The `http` outbound: TCP through an HTTP proxy's CONNECT, over TLS when `tls.enabled` (Go's
// `tls.NewDialerFromOptions` wraps the dialer: handshake first, then CONNECT inside it).
package import Adapter
package import Config
package import NIOCore
import Net
import TLS

/// sing-box's `http` outbound (TCP only, as sing's).
package final class HTTPOutbound: Outbound {
    package let type = "http"
    package let tag: String
    package let networks: Set<NetworkKind> = [.tcp]
    package let dependencies: [String]
    private let server: Destination
    private let username: String?
    private let password: String?
    private let path: String?
    private let headers: [(String, [String])]
    private let dialer: any Dialer
    private let tls: TLSClientConfiguration?
    private let logger: ContextLogger

    package init(tag: String, options: HTTPOutboundOptions, dialer: any Dialer, logger: ContextLogger) throws {
        self.tag = tag
        tls = try TLSClientConfiguration.make(options.tls, serverAddress: options.server.server)
        dependencies = options.dial.detour.map { [$0] } ?? []
        server = Destination(host: Host(options.server.server), port: options.server.serverPort)
        username = options.username
        password = options.password
        path = options.path
        // Go's http.Header sorts its keys when it writes them.
        headers = options.headers.entries.map { ($0.key, $0.values) }.sorted { $0.0 < $1.0 }
        self.dialer = dialer
        self.logger = logger
    }

    package func dialTCP(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any Channel {
        logger.info("outbound connection to \(metadata.destination)", flow: metadata.flowID)
        let request = try HTTPConnectClientHandler.request(to: metadata.destination, path: path, headers: headers,
                                                           username: username, password: password)
        let channel = try await dialer.dialTCP(to: server, on: eventLoop)
        var tlsHandler: TLSClientHandler?
        if let tls {
            // TLS right before the dialer's holder (above whatever a detour stacked), else last.
            tlsHandler = try await tls.handshake(on: channel) {
                if let holder = try? channel.pipeline.syncOperations.handler(type: FlowBufferHandler.self) { return .before(holder) }
                return .last
            }.handler
        }
        let result = eventLoop.makePromise(of: Void.self)
        let below = tlsHandler
        eventLoop.execute {
            do {
                // First (or right after TLS): the dialer's FlowBufferHandler at the end holds bytes for the relay.
                let handler = HTTPConnectClientHandler(request: request, result: result)
                if let below {
                    try channel.pipeline.syncOperations.addHandler(handler, position: .after(below))
                } else {
                    try channel.pipeline.syncOperations.addHandler(handler, position: .first)
                }
            } catch {
                result.fail(error)
            }
        }
        do {
            try await result.futureResult.get()
            return channel
        } catch {
            channel.close(promise: nil)
            throw error
        }
    }

    package func listenPacket(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any PacketConnection {
        throw AdapterError(.unsupportedNetwork, "UDP is not supported by outbound: \(tag)")
    }
}
