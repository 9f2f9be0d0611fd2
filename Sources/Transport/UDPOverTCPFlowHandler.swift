// The UoT server side of an inbound (Go's common/uot Router): a TCP flow to one of the magic names
// is not routed as TCP. Its handshake is answered, the version 2 request read, and the stream goes
// to the router as a UDP flow to the request's destination (version 1: 0.0.0.0:0, addresses per
// packet). Every other flow passes through untouched.
package import Adapter
package import NIOCore
import Net

/// Wraps the router for the inbounds that answer UoT (`socks`, `http`, `mixed`, `shadowsocks`).
package final class UDPOverTCPFlowHandler: FlowHandler {
    private let next: any FlowHandler
    private let logger: ContextLogger

    /// `next` gets every flow (UoT streams as UDP flows); `logger` is the inbound's.
    package init(next: any FlowHandler, logger: ContextLogger) {
        self.next = next
        self.logger = logger
    }

    package func handleTCP(_ channel: any Channel, metadata: FlowMetadata, responder: (any HandshakeResponder)?) {
        let legacy: Bool
        switch metadata.destination.domain {
        case UDPOverTCP.magicAddress?: legacy = false
        case UDPOverTCP.legacyMagicAddress?: legacy = true
        default:
            next.handleTCP(channel, metadata: metadata, responder: responder)
            return
        }
        let loop = channel.eventLoop
        loop.execute { [self] in
            do {
                try accept(channel, metadata: metadata, legacy: legacy, responder: responder)
            } catch {
                logger.error("process connection from \(metadata.source.map(\.description) ?? "?"): UoT: \(error)", flow: metadata.flowID)
                if let responder {
                    _ = responder.fail(channel, error: error).always { _ in channel.close(promise: nil) }
                } else {
                    channel.close(promise: nil)
                }
            }
        }
    }

    package func handleUDP(_ connection: any PacketConnection, metadata: FlowMetadata) {
        next.handleUDP(connection, metadata: metadata)
    }

    /// On the loop: a decoder at the end of the pipeline (the handshake handlers release what they
    /// hold into it when the responder removes them), the handshake answered, then the request.
    private func accept(_ channel: any Channel, metadata: FlowMetadata, legacy: Bool,
                        responder: (any HandshakeResponder)?) throws {
        let decoder = UDPOverTCPDecoder()
        try channel.pipeline.syncOperations.addHandler(decoder)
        if !legacy {
            decoder.onRequest = { [self] result in
                switch result {
                case .success(let request):
                    started(channel, decoder: decoder, metadata: metadata, request: request)
                case .failure(let error):
                    logger.error("process connection from \(metadata.source.map(\.description) ?? "?"): UoT read request: \(error)",
                                 flow: metadata.flowID)
                    channel.close(promise: nil)
                }
            }
        }
        // Bytes an inbound's buffer holds (shadowsocks: what followed its header) go to the decoder.
        let sync = channel.pipeline.syncOperations
        if let holder = try? sync.handler(type: FlowBufferHandler.self) { sync.removeHandler(holder, promise: nil) }
        let answered = responder?.succeed(channel) ?? channel.eventLoop.makeSucceededVoidFuture()
        let boundDecoder = NIOLoopBound(decoder, eventLoop: channel.eventLoop)
        answered.whenComplete { [self] result in
            guard case .success = result else {
                channel.close(promise: nil)
                return
            }
            if legacy {
                started(channel, decoder: boundDecoder.value, metadata: metadata, request: nil)
            } else {
                _ = try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
                channel.read()
            }
        }
    }

    /// The stream is a UDP flow from here: to the router, with what followed the request.
    private func started(_ channel: any Channel, decoder: UDPOverTCPDecoder, metadata: FlowMetadata, request: UDPOverTCPRequest?) {
        var flow = metadata
        flow.network = .udp
        if let request {
            flow.destination = request.destination
            flow.udpConnect = request.isConnect
            logger.info("inbound UoT \(request.isConnect ? "connect " : "")connection to \(request.destination)", flow: metadata.flowID)
        } else {
            flow.destination = Destination(ip: .v4(0), port: 0)
            logger.info("inbound legacy UoT connection", flow: metadata.flowID)
        }
        // Until the router installs its receiver, what arrives waits in the decoder.
        _ = try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
        let connect = request.flatMap { $0.isConnect ? $0.destination : nil }
        do {
            let connection = try UDPOverTCPConnection(channel: channel, framing: UDPOverTCPFraming(connectDestination: connect),
                                                      pendingRequest: nil, decoder: decoder)
            next.handleUDP(connection, metadata: flow)
        } catch {
            channel.close(promise: nil)
        }
    }
}
