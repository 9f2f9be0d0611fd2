// The `trojan` outbound (Go sing-box 1.12.12 protocol/trojan/outbound.go, read for facts).
//
// TCP: dial the server → TLS handshake (when `tls.enabled`; Go dials plain TCP otherwise) →
// `FirstWriteHeaderHandler` (Transport) sends the request with the first payload → the channel goes to the router.
// UDP: the same stream, command 3, frames both ways (`TrojanPacketConnection`).
// `multiplex` carries flows in sing-mux streams (Transport's `MuxClient`); `transport` ws, httpupgrade,
// grpc and http carry the stream after TLS (Transport), quic is refused.
package import Adapter
package import Config
package import NIOCore
import Net
import TLS
import Transport

/// sing-box's `trojan` outbound.
package final class TrojanOutbound: Outbound {
    package let type = "trojan"
    package let tag: String
    package let networks: Set<NetworkKind>
    package let dependencies: [String]
    private let key: [UInt8]
    /// Dial, TLS, transport.
    private let streams: ProxyStreamDialer
    private let logger: ContextLogger
    /// `multiplex`: flows ride sing-mux streams of sessions to the magic destination.
    private let mux: MuxClient?

    /// `dialer` reaches the server (dial fields, `detour`). Throws for multiplex `brutal`, `transport`
    /// and TLS features this build lacks, and for bad `tls` values (Go's wording).
    package init(tag: String, options: TrojanOutboundOptions, dialer: any Dialer, logger: ContextLogger) throws {
        self.tag = tag
        mux = try MuxClient.make(options.multiplex)
        streams = try ProxyStreamDialer(dialer: dialer, server: options.server, tls: options.tls, transport: options.transport,
                                        protocolName: "trojan")
        let names = options.network.networks
        networks = names.isEmpty ? [.tcp, .udp] : Set(names.compactMap { NetworkKind(rawValue: $0) })
        dependencies = options.dial.detour.map { [$0] } ?? []
        key = TrojanModule.key(password: options.password)
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

    /// A trojan connect stream to `destination` (a flow's, or the mux session's magic one).
    private func dialStream(to destination: Destination, on eventLoop: any EventLoop) async throws -> any Channel {
        var request = ByteBuffer()
        request.reserveCapacity(TrojanCodec.requestLength(for: destination))
        try TrojanCodec.writeRequest(key: key, command: TrojanModule.commandConnect, destination: destination, to: &request)
        let header = request
        return try await streams.connect(on: eventLoop) { channel, position in
            let handler = FirstWriteHeaderHandler(request: header, wait: .milliseconds(TrojanModule.firstPayloadWait))
            try channel.pipeline.syncOperations.addHandler(handler, position: position)
            return channel
        }
    }

    package func listenPacket(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any PacketConnection {
        guard networks.contains(.udp) else { throw AdapterError(.unsupportedNetwork, "UDP is not supported by outbound: \(tag)") }
        if let mux {
            return try await mux.listenPacket(metadata, logger: logger, on: eventLoop) { loop in
                try await self.dialStream(to: Mux.destination, on: loop)
            }
        }
        logger.info("outbound packet connection to \(metadata.destination)", flow: metadata.flowID)
        let key = self.key
        return try await streams.connect(on: eventLoop) { channel, _ in
            // The reader goes last, then the holder leaves, replaying anything it held into it.
            let connection = try TrojanPacketConnection(channel: channel, key: key)
            if let holder = try? channel.pipeline.syncOperations.handler(type: FlowBufferHandler.self) {
                channel.pipeline.syncOperations.removeHandler(holder, promise: nil)
            }
            return connection
        }
    }

}

extension TrojanOutbound {
    /// Closes the mux sessions (Go's `Close` of the multiplex dialer).
    package func close() async throws {
        mux?.close()
    }
}
