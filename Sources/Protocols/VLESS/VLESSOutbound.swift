// The `vless` outbound (see VLESS.swift for the wire format and what is left out).
package import Adapter
package import Config
package import NIOCore
import Net
import TLS
import Transport
import VMess

/// sing-box's `vless` outbound.
package final class VLESSOutbound: Outbound {
    package let type = "vless"
    package let tag: String
    package let networks: Set<NetworkKind>
    package let dependencies: [String]
    private let uuid: [UInt8]
    /// Dial, TLS, transport.
    private let streams: ProxyStreamDialer
    /// `packet_encoding`: xudp (Go's default when unset) or plain (`""`).
    private let xudp: Bool
    private let logger: ContextLogger
    /// `multiplex`: flows ride sing-mux streams of sessions to the magic destination.
    private let mux: MuxClient?

    /// Throws Go's errors for bad values and `not implemented` for what this build lacks.
    package init(tag: String, options: VLESSOutboundOptions, dialer: any Dialer, logger: ContextLogger) throws {
        self.tag = tag
        if let flow = options.flow, !flow.isEmpty {
            guard flow == "xtls-rprx-vision" else { throw AdapterError(.other, "unsupported flow: \(flow)") }
            throw AdapterError.notImplemented("flow xtls-rprx-vision on vless outbound")
        }
        mux = try MuxClient.make(options.multiplex)
        switch options.packetEncoding {
        case nil, "xudp"?: xudp = true
        case ""?: xudp = false
        case "packetaddr"?: throw AdapterError.notImplemented("packet_encoding packetaddr on vless outbound")
        case let other?: throw AdapterError(.other, "unknown packet encoding: \(other)")
        }
        streams = try ProxyStreamDialer(dialer: dialer, server: options.server, tls: options.tls, transport: options.transport,
                                        protocolName: "vless")
        uuid = VMessModule.userID(options.uuid)
        let names = options.network.networks
        networks = names.isEmpty ? [.tcp, .udp] : Set(names.compactMap { NetworkKind(rawValue: $0) })
        dependencies = options.dial.detour.map { [$0] } ?? []
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

    /// A vless TCP stream to `destination` (a flow's, or the mux session's magic one).
    private func dialStream(to destination: Destination, on eventLoop: any EventLoop) async throws -> any Channel {
        let request = try VLESSModule.request(uuid: uuid, command: VLESSModule.commandTCP, destination: destination)
        return try await streams.connect(on: eventLoop) { channel, position in
            let sync = channel.pipeline.syncOperations
            let header = FirstWriteHeaderHandler(request: request)
            try sync.addHandler(header, position: position)
            try sync.addHandler(VLESSResponseReader(), position: .after(header))
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
        let destination = metadata.destination
        let xudp = self.xudp
        let request = try VLESSModule.request(uuid: uuid, command: xudp ? VLESSModule.commandMux : VLESSModule.commandUDP,
                                              destination: destination)
        return try await streams.connect(on: eventLoop) { channel, position throws -> any PacketConnection in
            let sync = channel.pipeline.syncOperations
            let reader = VLESSResponseReader()
            if xudp {
                // sing-vmess writes the mux request at once (`Write(nil)`), then XUDP frames.
                try sync.addHandler(reader, position: position)
                channel.writeAndFlush(request, promise: nil)
                let connection = try VMessXUDPPacketConnection(channel: channel, destination: destination)
                // The reader went last: the dialer's holder leaves, replaying what it held into it.
                if let holder = try? sync.handler(type: FlowBufferHandler.self) { sync.removeHandler(holder, promise: nil) }
                return connection
            }
            let header = FirstWriteHeaderHandler(request: request)
            try sync.addHandler(header, position: position)
            try sync.addHandler(reader, position: .after(header))
            return try UDPOverTCPConnection(lengthPrefixed: channel, destination: destination)
        }
    }

}

extension VLESSOutbound {
    /// Closes the mux sessions (Go's `Close` of the multiplex dialer).
    package func close() async throws {
        mux?.close()
    }
}
