// The `vmess` outbound (Go sing-box 1.12.12 protocol/vmess/outbound.go and sing-vmess client.go,
// read for facts).
//
// TCP: dial the server → TLS handshake (when `tls.enabled`) → `VMessClientHandler` sends the
// sealed request with the first payload → the channel goes to the router.
// UDP: the same on a new stream with command 2 (`VMessStreamPacketConnection`).
// Security: `auto` is aes-128-gcm here (Go on amd64) or `zero` under TLS; `none` and `zero` send
// `none` (TCP unframed, UDP in plain chunks); AEADs use chunk masking, `global_padding` and
// `authenticated_length` as asked. `transport` ws, httpupgrade, grpc and http carry the stream after TLS
// (Transport). Refused at build time, never silently dropped: quic. `multiplex` carries flows
// in sing-mux streams (Transport's `MuxClient`) of sessions opened to its magic destination. `alter_id` > 0 selects the legacy header; `aes-128-cfb` the legacy body. `packetaddr` and `xudp`
// carry datagrams to any destination on one stream (VMessPacketConnection.swift, VMessXUDPConnection.swift).
package import Adapter
package import Config
package import NIOCore
import Net
import TLS
import Transport

/// sing-box's `vmess` outbound.
package final class VMessOutbound: Outbound {
    package let type = "vmess"
    package let tag: String
    package let networks: Set<NetworkKind>
    package let dependencies: [String]
    private let commandKey: [UInt8]
    /// Dial, TLS, transport.
    private let streams: ProxyStreamDialer
    /// The header's security byte.
    package let security: UInt8
    /// Request options for TCP (UDP adds chunk stream for `none`).
    private let globalPadding: Bool
    private let authenticatedLength: Bool
    private let logger: ContextLogger
    private let clock: VMessClock
    /// `packet_encoding: "packetaddr"`.
    private let packetAddress: Bool
    /// `packet_encoding: "xudp"`.
    private let xudp: Bool
    /// `alter_id` > 0: the legacy header's alter ID.
    private let alterID: [UInt8]?
    /// `multiplex`: flows ride sing-mux streams of sessions to the magic destination.
    private let mux: MuxClient?

    /// `dialer` reaches the server. Throws Go's errors for bad values and `not implemented` for
    /// what this build does not carry.
    package init(tag: String, options: VMessOutboundOptions, dialer: any Dialer, logger: ContextLogger,
                 clock: @escaping VMessClock = vmessSystemClock) throws {
        self.tag = tag
        streams = try ProxyStreamDialer(dialer: dialer, server: options.server, tls: options.tls, transport: options.transport,
                                        protocolName: "vmess")
        mux = try MuxClient.make(options.multiplex)
        switch options.packetEncoding ?? "" {
        case "": (packetAddress, xudp) = (false, false)
        case "packetaddr": (packetAddress, xudp) = (true, false)
        case "xudp": (packetAddress, xudp) = (false, true)
        case let other: throw AdapterError(.other, "unknown packet encoding: \(other)")
        }
        var name = options.security.isEmpty ? "auto" : options.security
        if name == "auto" && streams.tls != nil { name = "zero" }
        switch name {
        // sing-vmess `AutoSecurityType`: AES-GCM on amd64, arm64 and s390x.
        case "auto":
            #if arch(x86_64) || arch(arm64) || arch(s390x)
            security = VMessModule.securityAES128GCM
            #else
            security = VMessModule.securityChaCha20Poly1305
            #endif
        case "none", "zero": security = VMessModule.securityNone
        case "aes-128-gcm": security = VMessModule.securityAES128GCM
        case "chacha20-poly1305": security = VMessModule.securityChaCha20Poly1305
        case "aes-128-cfb": security = VMessModule.securityLegacy
        default: throw AdapterError(.other, "vmess: unsupported security type: \(name)")
        }
        // sing-vmess: any alter_id > 0 selects the legacy header with the first alter ID.
        let userID = VMessModule.userID(options.uuid)
        alterID = (options.alterId ?? 0) > 0 ? VMessModule.alterID(userID) : nil
        globalPadding = options.globalPadding
        authenticatedLength = options.authenticatedLength
        let names = options.network.networks
        networks = names.isEmpty ? [.tcp, .udp] : Set(names.compactMap { NetworkKind(rawValue: $0) })
        dependencies = options.dial.detour.map { [$0] } ?? []
        commandKey = VMessModule.commandKey(userID: userID)
        self.logger = logger
        self.clock = clock
    }

    /// A fresh request (random body key, nonce and response byte) as sing-vmess `dialRaw` builds it.
    package func makeRequest(command: UInt8, destination: Destination?) -> VMessRequest {
        var option: UInt8 = 0
        switch security {
        case VMessModule.securityNone:
            if command == VMessModule.commandUDP { option = VMessModule.optionChunkStream }
        case VMessModule.securityLegacy:
            option = VMessModule.optionChunkStream
        default:
            option = VMessModule.optionChunkStream | VMessModule.optionChunkMasking
            if globalPadding { option |= VMessModule.optionGlobalPadding }
            if authenticatedLength { option |= VMessModule.optionAuthenticatedLength }
        }
        var request = VMessRequest(bodyKey: VMessCrypto.random(16), bodyNonce: VMessCrypto.random(16), responseHeader: VMessCrypto.random(1)[0],
                                   option: option, security: security, command: command, destination: destination)
        request.legacy = alterID != nil
        return request
    }

    /// The sealed request header: AEAD, or legacy with `alter_id`.
    private func seal(_ request: VMessRequest) throws -> [UInt8] {
        if let alterID { return try VMessHeader.sealLegacyRequest(request, commandKey: commandKey, alterID: alterID, time: clock()) }
        return try VMessHeader.sealRequest(request, commandKey: commandKey, time: clock())
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

    /// A command-1 stream to `destination` (a flow's, or the mux session's magic one).
    private func dialStream(to destination: Destination, on eventLoop: any EventLoop) async throws -> any Channel {
        let request = makeRequest(command: VMessModule.commandTCP, destination: destination)
        let header = try seal(request)
        return try await streams.connect(on: eventLoop) { channel, position in
            let handler = try VMessClientHandler(request: request, header: header, isPacket: false)
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
        if packetAddress && metadata.destination.isDomain {
            throw AdapterError(.other, "packetaddr: domain destination is not supported")
        }
        let target = packetAddress ? Destination(domain: VMessPacketAddress.magicAddress, port: 0) : metadata.destination
        let request = xudp ? makeRequest(command: VMessModule.commandMux, destination: nil)
                           : makeRequest(command: VMessModule.commandUDP, destination: target)
        let header = try seal(request)
        let (destination, packetAddress, xudp) = (metadata.destination, self.packetAddress, self.xudp)
        return try await streams.connect(on: eventLoop) { channel, position throws -> any PacketConnection in
            // XUDP frames are a byte stream over the body; plain UDP is one chunk per datagram.
            let handler = try VMessClientHandler(request: request, header: header, isPacket: !xudp)
            try channel.pipeline.syncOperations.addHandler(handler, position: position)
            // The reader goes last, then the holder leaves, replaying anything it held into it.
            let connection: any PacketConnection = xudp
                ? try VMessXUDPPacketConnection(channel: channel, destination: destination)
                : try VMessStreamPacketConnection(channel: channel, destination: destination, packetAddress: packetAddress)
            if let holder = try? channel.pipeline.syncOperations.handler(type: FlowBufferHandler.self) {
                channel.pipeline.syncOperations.removeHandler(holder, promise: nil)
            }
            return connection
        }
    }

}

extension VMessOutbound {
    /// Closes the mux sessions (Go's `Close` of the multiplex dialer).
    package func close() async throws {
        mux?.close()
    }
}
