// ProxyStreamDialer: how the stream proxies (trojan, vmess, vless) reach their server — the
// dialer's TCP connection, then TLS when `tls.enabled`, then the v2ray transport's upgrade when
// `transport` is set — and where their own handlers go in the resulting pipeline.
package import Adapter
package import Config
package import NIOCore
import Net
package import TLS

/// One outbound's way to its server. Immutable; `connect` may run from any thread.
package struct ProxyStreamDialer: Sendable {
    package let dialer: any Dialer
    package let server: Destination
    /// The TLS client, nil for plain TCP.
    package let tls: TLSClientConfiguration?
    /// The v2ray transport, nil for none.
    package let transport: V2RayTransportClient?

    /// Builds TLS and the transport from the outbound's options; `protocolName` words Go's errors
    /// (`not implemented: transport grpc on vmess outbound`).
    package init(dialer: any Dialer, server: ServerOptions, tls: OutboundTLSOptions?, transport: V2RayTransportOptions?,
                 protocolName: String) throws {
        self.dialer = dialer
        self.server = Destination(host: Host(server.server), port: server.serverPort)
        var tlsOptions = tls
        if let transport, tlsOptions?.alpn.isEmpty == true {
            // Go's ws and httpupgrade clients offer http/1.1 when the config names no ALPN, grpc and http h2.
            tlsOptions?.alpn = V2RayTransportClient.defaultALPN(for: transport)
        }
        self.tls = try TLSClientConfiguration.make(tlsOptions, serverAddress: server.server)
        if let transport {
            do {
                self.transport = try V2RayTransportClient(options: transport, server: self.server,
                                                          tlsServerName: tls?.enabled == true ? tls?.serverName : nil,
                                                          tls: tls?.enabled == true)
            } catch {
                throw AdapterError.notImplemented("transport \(transport.type) on \(protocolName) outbound")
            }
        } else {
            self.transport = nil
        }
    }

    /// Dials, runs the TLS handshake and the transport's upgrade; returns the channel the protocol's
    /// handlers go on (the dialed one, or an HTTP/2 transport's stream) and the handler they go
    /// after (nil: before the early-bytes holder). The channel is closed on failure.
    package func connect(on eventLoop: any EventLoop) async throws -> (any Channel, (any ChannelHandler)?) {
        let channel = try await dialer.dialTCP(to: server, on: eventLoop)
        var last: (any ChannelHandler)?
        if let tls {
            last = try await tls.handshake(on: channel) { Self.position(channel, after: nil) }.handler
        }
        if let transport {
            // grpc and http over HTTP/2 hand back the stream's own channel.
            return try await transport.upgrade(channel, after: last)
        }
        return (channel, last)
    }

    /// `connect(on:)`, then `install` on the channel's loop with the position the protocol's first
    /// handler takes (`position(_:after:)` of the last layer); the channel is closed if `install` throws.
    package func connect<Result: Sendable>(
        on eventLoop: any EventLoop,
        install: @escaping @Sendable (_ channel: any Channel, _ position: ChannelPipeline.SynchronousOperations.Position) throws -> Result
    ) async throws -> Result {
        let (channel, last) = try await connect(on: eventLoop)
        do {
            return try await eventLoop.submit { try install(channel, Self.position(channel, after: last)) }.get()
        } catch {
            channel.close(promise: nil)
            throw error
        }
    }

    /// Right after `handler` when given, else before the dialer's early-bytes holder (so a layer sits
    /// above whatever a detour stacked below), else last. On the channel's loop.
    package static func position(_ channel: any Channel, after handler: (any ChannelHandler)?) -> ChannelPipeline.SynchronousOperations.Position {
        if let handler { return .after(handler) }
        if let holder = try? channel.pipeline.syncOperations.handler(type: FlowBufferHandler.self) { return .before(holder) }
        return .last
    }
}
