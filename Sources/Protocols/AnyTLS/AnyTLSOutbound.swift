// The `anytls` outbound (Go sing-box 1.12.12 protocol/anytls/outbound.go, read for facts).
//
// TCP: a stream on an idle session of the flow's loop, else on a new session (dial → TLS →
// authentication); the stream's first data is the destination. The channel goes to the router.
// UDP: a stream to `sp.v2.udp-over-tcp.arpa` carrying UDP-over-TCP version 2 (connect mode for
// `udp_connect` flows, as Go's uot client's DialContext; addresses per packet otherwise).
// TLS is required and `tcp_fast_open` refused (Go's errors; the config check says them first).
package import Adapter
package import Config
package import NIOCore
import Net
import Transport

/// sing-box's `anytls` outbound.
package final class AnyTLSOutbound: Outbound {
    package let type = "anytls"
    package let tag: String
    package let networks: Set<NetworkKind> = [.tcp, .udp]
    package let dependencies: [String]
    /// The session pool (tests read its counts).
    package let pool: AnyTLSSessionPool
    private let passwordHash: [UInt8]
    private let padding = AnyTLSPaddingState()
    private let connector: ProxyStreamDialer
    private let group: any EventLoopGroup
    private let logger: ContextLogger

    /// `dialer` reaches the server (dial fields, `detour`). Throws Go's errors for missing TLS,
    /// `tcp_fast_open` and bad `tls` values.
    package init(tag: String, options: AnyTLSOutboundOptions, dialer: any Dialer, group: any EventLoopGroup,
                 logger: ContextLogger) throws {
        self.tag = tag
        guard options.tls?.enabled == true else { throw AdapterError(.other, "TLS required") }
        if options.dial.tcpFastOpen { throw AdapterError(.other, "tcp_fast_open is not supported with anytls outbound") }
        connector = try ProxyStreamDialer(dialer: dialer, server: options.server, tls: options.tls, transport: nil,
                                          protocolName: "anytls")
        dependencies = options.dial.detour.map { [$0] } ?? []
        passwordHash = AnyTLSModule.passwordHash(options.password ?? "")
        pool = AnyTLSSessionPool(checkInterval: options.idleSessionCheckInterval.map { .nanoseconds($0.nanoseconds) },
                                 idleTimeout: options.idleSessionTimeout.map { .nanoseconds($0.nanoseconds) },
                                 minIdleSession: options.minIdleSession ?? 0)
        self.group = group
        self.logger = logger
    }

    package func start(_ stage: StartStage) async throws {
        guard stage == .start else { return }
        pool.startSweeping(on: group.next())
    }

    package func close() async throws {
        pool.close()
    }

    package func dialTCP(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any Channel {
        logger.info("outbound connection to \(metadata.destination)", flow: metadata.flowID)
        return try await openStream(to: metadata.destination, on: eventLoop)
    }

    package func listenPacket(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any PacketConnection {
        logger.info("outbound UoT packet connection to \(metadata.destination)", flow: metadata.flowID)
        let request = UDPOverTCPRequest(isConnect: metadata.udpConnect, destination: metadata.destination)
        let stream = try await openStream(to: try UDPOverTCP.requestDestination(version: UDPOverTCP.version), on: eventLoop)
        do {
            return try await eventLoop.submit { try UDPOverTCPConnection(client: stream, request: request) }.get()
        } catch {
            stream.close(promise: nil)
            throw error
        }
    }

    /// Go's `CreateStream`: an idle session, else a new one (`failed to create session: …`); a
    /// stream on it (`failed to create stream: …`, and the session closes). An idle session that
    /// closed while being taken is passed over for a new one.
    private func openStream(to destination: Destination, on loop: any EventLoop) async throws -> AnyTLSStreamChannel {
        // An address the SOCKS form cannot carry fails before any session is taken or dialed.
        var scratch = ByteBuffer()
        do { try AddressSerializer.socks.write(destination, to: &scratch) } catch {
            throw AdapterError.cause(error, "failed to create stream")
        }
        if let session = pool.takeIdle(on: loop) {
            if let stream = try? await loop.submit({ try self.open(session, to: destination) }).get() {
                return stream
            }
            loop.execute { session.close() }  // closed meanwhile (or broken): not kept
        }
        let session: AnyTLSSession
        do {
            session = try await createSession(on: loop)
        } catch {
            throw AdapterError.cause(error, "failed to create session")
        }
        do {
            return try await loop.submit { try self.open(session, to: destination) }.get()
        } catch {
            loop.execute { session.close() }
            throw AdapterError.cause(error, "failed to create stream")
        }
    }

    /// On the session's loop: the stream, its early-bytes holder, and the hook that returns the
    /// session to the idle list when the stream ends.
    private func open(_ session: AnyTLSSession, to destination: Destination) throws -> AnyTLSStreamChannel {
        let stream = try session.openStream(to: destination)
        do {
            try stream.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
            try stream.pipeline.syncOperations.addHandler(FlowBufferHandler())
        } catch {
            stream.close(promise: nil)
            throw error
        }
        let pool = self.pool
        stream.onClose = { pool.streamEnded(on: session) }
        stream.activate()
        return stream
    }

    /// Dials the server, runs TLS, puts the session after it and writes the authentication.
    private func createSession(on loop: any EventLoop) async throws -> AnyTLSSession {
        let (channel, tlsHandler) = try await connector.connect(on: loop)
        let tls = HandlerReference(handler: tlsHandler)
        let (pool, padding, hash, logger) = (self.pool, self.padding, passwordHash, self.logger)
        do {
            return try await loop.submit {
                // Sessions outlive the flow that opened them: their log lines carry no flow id (Go logs them without one).
                let session = AnyTLSSession(role: .client(padding), eventLoop: loop, logger: logger)
                let sync = channel.pipeline.syncOperations
                try sync.addHandler(session, position: ProxyStreamDialer.position(channel, after: tls.handler))
                if let holder = try? sync.handler(type: FlowBufferHandler.self) { sync.removeHandler(holder, promise: nil) }
                guard pool.add(session) else {
                    session.close()
                    throw AnyTLSError.closedPipe
                }
                session.writeAuthentication(passwordHash: hash, padding: padding.scheme)
                return session
            }.get()
        } catch {
            channel.close(promise: nil)
            throw error
        }
    }
}

/// Carries the TLS handler to its own loop (touched only there).
private struct HandlerReference: @unchecked Sendable {
    let handler: (any ChannelHandler)?
}
