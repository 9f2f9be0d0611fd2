// The `shadowsocks` outbound: TCP through `ShadowsocksClientHandler` on a dialed server
// connection, UDP through `ShadowsocksClientPacketConnection` on a socket from the dialer. A SIP003
// `plugin` (obfs-local, v2ray-plugin) wraps every TCP server stream, UoT and mux ones included, never
// UDP (Go's shadowsocksDialer uses the plugin for TCP only).
package import Adapter
package import Config
package import NIOCore
import Net
import Transport

/// sing-box's `shadowsocks` outbound (sing-shadowsocks2 client).
package final class ShadowsocksOutbound: Outbound {
    package let type = "shadowsocks"
    package let tag: String
    package let networks: Set<NetworkKind>
    package let dependencies: [String]
    /// The method and key from the config.
    package let method: ShadowsocksMethod
    private let server: Destination
    private let dialer: any Dialer
    private let logger: ContextLogger
    /// `udp_over_tcp`: UDP flows ride a TCP stream to the magic address (sing's uot version 1 or 2).
    package let udpOverTCPVersion: UInt8?
    /// `multiplex`: flows ride sing-mux streams of sessions to the magic destination.
    private let mux: MuxClient?
    /// `plugin` / `plugin_opts`: wraps each TCP stream to the server.
    private let plugin: SIP003PluginDialer?

    /// Throws Go's errors for a bad method, key, plugin or plugin_opts, and `not implemented` for
    /// v2ray-plugin's quic mode and multiplex `brutal`, which this build does not carry.
    package init(tag: String, options: ShadowsocksOutboundOptions, dialer: any Dialer, logger: ContextLogger) throws {
        self.tag = tag
        method = try ShadowsocksMethod.client(name: options.method, password: options.password)
        if let name = options.plugin, !name.isEmpty {
            plugin = try SIP003PluginDialer(SIP003Plugin(name: name, options: options.pluginOptions ?? "", serverPort: options.server.serverPort),
                                            dialer: dialer, server: options.server)
        } else {
            plugin = nil
        }
        // sing's uot.Client: 0 and 2 are v2, 1 the legacy stream; another version fails each dial, as in Go.
        udpOverTCPVersion = options.udpOverTCP.flatMap { $0.enabled ? $0.version ?? 0 : nil }
        mux = try MuxClient.make(options.multiplex)
        let names = options.network.networks
        networks = names.isEmpty ? [.tcp, .udp] : Set(names.compactMap { NetworkKind(rawValue: $0) })
        dependencies = options.dial.detour.map { [$0] } ?? []
        server = Destination(host: Host(options.server.server), port: options.server.serverPort)
        self.dialer = dialer
        self.logger = logger
    }

    package func dialTCP(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any Channel {
        guard networks.contains(.tcp) else { throw AdapterError(.unsupportedNetwork, "TCP is not supported by outbound: \(tag)") }
        if let mux {
            return try await mux.dialTCP(metadata, logger: logger, on: eventLoop) { loop in
                try await self.dialStream(to: Mux.destination, on: loop)
            }
        }
        logger.info("outbound connection to \(metadata.destination)", flow: metadata.flowID)
        return try await dialStream(to: metadata.destination, on: eventLoop)
    }

    /// A shadowsocks stream to `destination` (a flow's, or the mux session's magic one).
    private func dialStream(to destination: Destination, on eventLoop: any EventLoop) async throws -> any Channel {
        let (channel, below) = try await dialServer(on: eventLoop)
        let method = self.method
        do {
            try await channel.eventLoop.submit {
                // First: the dialer's FlowBufferHandler at the end holds plaintext for the relay.
                let session = ShadowsocksClientSession(method: method, destination: destination)
                try channel.pipeline.syncOperations.addHandler(ShadowsocksClientHandler(session: session), position: below.map { .after($0) } ?? .first)
            }.get()
            return channel
        } catch {
            channel.close(promise: nil)
            throw error
        }
    }

    /// A TCP stream to the server, through the plugin when there is one: the shadowsocks handler
    /// goes right after the returned handler, or first when none.
    private func dialServer(on eventLoop: any EventLoop) async throws -> (any Channel, (any ChannelHandler)?) {
        if let plugin { return try await plugin.connect(on: eventLoop) }
        return (try await dialer.dialTCP(to: server, on: eventLoop), nil)
    }

    package func listenPacket(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any PacketConnection {
        guard networks.contains(.udp) else { throw AdapterError(.unsupportedNetwork, "UDP is not supported by outbound: \(tag)") }
        if let mux {
            return try await mux.listenPacket(metadata, logger: logger, on: eventLoop) { loop in
                try await self.dialStream(to: Mux.destination, on: loop)
            }
        }
        if let version = udpOverTCPVersion { return try await listenPacketOverTCP(metadata, version: version, on: eventLoop) }
        logger.info("outbound packet connection to \(metadata.destination)", flow: metadata.flowID)
        let socket = try await dialer.listenPacket(on: eventLoop)
        let (server, method, logger) = (self.server, self.method, self.logger)
        return try await socket.eventLoop.submit {
            ShadowsocksClientPacketConnection(socket: socket, server: server, method: method, logger: logger)
        }.get()
    }

    /// sing's UoT client over a shadowsocks stream to the magic name: the version 2 request (connect
    /// mode for `udp_connect` flows) goes out with the first packet, as Go's lazy UoT conn does.
    private func listenPacketOverTCP(_ metadata: FlowMetadata, version: UInt8, on eventLoop: any EventLoop) async throws -> any PacketConnection {
        let magic = try UDPOverTCP.requestDestination(version: version)
        let connectMode = metadata.udpConnect && version != UDPOverTCP.legacyVersion
        logger.info("outbound UoT \(connectMode ? "connect " : "")packet connection to \(metadata.destination)", flow: metadata.flowID)
        let (channel, below) = try await dialServer(on: eventLoop)
        let method = self.method
        let request = version == UDPOverTCP.legacyVersion ? nil : UDPOverTCPRequest(isConnect: connectMode, destination: metadata.destination)
        do {
            return try await channel.eventLoop.submit {
                let session = ShadowsocksClientSession(method: method, destination: magic)
                try channel.pipeline.syncOperations.addHandler(ShadowsocksClientHandler(session: session), position: below.map { .after($0) } ?? .first)
                return try UDPOverTCPConnection(client: channel, request: request)
            }.get()
        } catch {
            channel.close(promise: nil)
            throw error
        }
    }
}

extension ShadowsocksOutbound {
    /// Closes the mux sessions (Go's `Close` of the multiplex dialer).
    package func close() async throws {
        mux?.close()
    }
}
