// VLESSServerHandler: reads a vless request on an accepted stream (after TLS and the v2ray
// transport, when the inbound has them) and hands the stream on (sing-vmess vless/service.go).
//
// 1. Bytes gather until the request is whole (`VLESSModule.readRequest`); a client that ends its
//    side first gets Go's `EOF` / `unexpected EOF`.
// 2. Then, in Go's order: the UUID names a user (`unknown UUID: …`), the flow must be the user's
//    (`flow mismatch: expected none, but got …`), the command is served:
//    TCP (1): the stream goes to the router (through the UoT flow handler, as Go's UoT router);
//    UDP (2): a length-prefixed `UDPOverTCPConnection` goes to the router (packetaddr: with
//    `VLESSPacketAddressConnection` over it when the request names the magic address);
//    mux (3): `VMessMuxServer` (XUDP sessions) reads the frames at the tail.
//    What followed the request goes on behind it (Net's `FlowBufferHandler` holds it for the router).
// 3. The handler stays for one write: the response header (version 0, no addons) goes in front of
//    the first bytes the server sends, as sing-vmess's `serverConn` does, and the handler leaves.
// A client that fails a check is reset (SO_LINGER 0, Go's `N.CloseOnHandshakeFailure`) with one
// line, `process connection from <source>: <cause>`.
package import Adapter
package import Config
package import NIOCore
import Net
import Transport
import VMess
#if canImport(Glibc)
import Glibc  // struct linger for SO_LINGER
#endif

/// Per-inbound settings every connection's handler shares.
package struct VLESSServerContext: Sendable {
    /// The inbound's tag for `FlowMetadata.inbound`.
    package var tag: String
    /// UUID bytes → index into `userNames`/`userFlows` (a later user with the same UUID wins, as Go's map).
    package var users: [[UInt8]: Int]
    /// Each user's `name` (empty: Go logs the index and sets no user).
    package var userNames: [String]
    /// Each user's `flow` (`""` for none).
    package var userFlows: [String]
    /// The legacy per-flow listen fields (`sniff`, `domain_strategy`, …).
    package var listenOptions: ListenOptions?
    /// `inbound/vless[tag]`-named logger.
    package var logger: ContextLogger

    /// Built once per inbound (and by tests) from the configured users.
    package init(tag: String, users: [VLESSUser], listenOptions: ListenOptions?, logger: ContextLogger) {
        self.tag = tag
        var byUUID: [[UInt8]: Int] = [:]
        for (index, user) in users.enumerated() { byUUID[VMessModule.userID(user.uuid)] = index }
        self.users = byUUID
        userNames = users.map(\.name)
        userFlows = users.map { $0.flow ?? "" }
        self.listenOptions = listenOptions
        self.logger = logger
    }
}

/// Server side of one vless stream's request and response header. Loop-confined.
package final class VLESSServerHandler: ChannelDuplexHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer
    package typealias OutboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    private let shared: VLESSServerContext
    private let flowID: FlowID
    /// TCP flows (the UoT flow handler around the router) and UDP flows.
    private let flowHandler: any FlowHandler
    private var buffer = ByteBuffer()
    private var state = State.request

    /// `served`: the response header is still to go; `responded`: pass-through until removed.
    private enum State { case request, served, responded, failed }

    /// One accepted stream; `flowHandler` takes it once the request is read.
    package init(context: VLESSServerContext, flowID: FlowID, flowHandler: any FlowHandler) {
        self.shared = context
        self.flowID = flowID
        self.flowHandler = flowHandler
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        // A stream handed over by a listen detour is already active.
        if context.channel.isActive { context.read() }
    }

    package func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        context.read()
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch state {
        case .served, .responded: return context.fireChannelRead(data)
        case .failed: return
        case .request: break
        }
        var bytes = unwrapInboundIn(data)
        if buffer.readableBytes == 0 { buffer = bytes } else { buffer.writeBuffer(&bytes) }
        parse(context, ended: false)
    }

    private func parse(_ context: ChannelHandlerContext, ended: Bool) {
        let parsed: (request: VLESSRequest, length: Int)?
        do {
            parsed = try VLESSModule.readRequest(buffer, ended: ended)
        } catch {
            return reject(context, "\(error)")
        }
        guard let (request, length) = parsed else { return context.read() }
        buffer.moveReaderIndex(forwardBy: length)
        serve(context, request: request)
    }

    /// Go's checks after the read, in its order, then the hand-off.
    private func serve(_ context: ChannelHandlerContext, request: VLESSRequest) {
        guard let user = shared.users[request.uuid] else {
            return reject(context, "unknown UUID: \(VLESSModule.uuidString(request.uuid))")
        }
        let userFlow = shared.userFlows[user]
        if request.flow == VLESSModule.flowVision && request.command == VLESSModule.commandUDP {
            return reject(context, "\(VLESSModule.flowVision) flow does not support UDP")
        }
        guard request.flow == userFlow else {
            return reject(context, "flow mismatch: expected \(flowName(userFlow)), but got \(flowName(request.flow))")
        }
        let name = shared.userNames[user]
        let logName = name.isEmpty ? String(user) : name
        var flow = metadata(context, network: request.command == VLESSModule.commandTCP ? .tcp : .udp,
                            destination: request.destination ?? Destination(ip: .v4(0), port: 0))
        if !name.isEmpty { flow.user = name }
        if request.command == VLESSModule.commandUDP, let destination = request.destination {
            return serveUDP(context, destination: destination, metadata: flow, logName: logName)
        }
        // Vision users are refused at start; another flow name Go takes at start and refuses here.
        guard userFlow.isEmpty else { return reject(context, "unknown flow: \(userFlow)") }
        switch request.command {
        case VLESSModule.commandTCP:
            guard let destination = request.destination else { return reject(context, "unknown command: \(request.command)") }
            state = .served
            shared.logger.info("[\(logName)] inbound connection to \(destination)", flow: flowID)
            passRest(context)
            flowHandler.handleTCP(context.channel, metadata: flow, responder: nil)
        case VLESSModule.commandMux:
            serveMux(context, metadata: flow, logName: logName)
        default:
            reject(context, "unknown command: \(request.command)")
        }
    }

    private func serveUDP(_ context: ChannelHandlerContext, destination: Destination, metadata: FlowMetadata, logName: String) {
        var metadata = metadata
        let stream: UDPOverTCPConnection
        do {
            stream = try UDPOverTCPConnection(lengthPrefixed: context.channel, destination: destination)
        } catch {
            return reject(context, "\(error)")
        }
        state = .served
        let connection: any PacketConnection
        if destination.domain == VMessPacketAddress.magicAddress {
            // packetaddr: the flow has no destination; each datagram names its own (Go).
            metadata.destination = Destination(ip: .v4(0), port: 0)
            connection = VLESSPacketAddressConnection(stream)
            shared.logger.info("[\(logName)] inbound packet addr connection", flow: flowID)
        } else {
            connection = stream
            shared.logger.info("[\(logName)] inbound packet connection to \(destination)", flow: flowID)
        }
        _ = try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
        // The buffer handler holds what followed the request until the connection gets its receiver.
        passRest(context)
        flowHandler.handleUDP(connection, metadata: metadata)
    }

    private func serveMux(_ context: ChannelHandlerContext, metadata: FlowMetadata, logName: String) {
        do {
            _ = try VMessMuxServer(channel: context.channel, metadata: metadata, userLogName: logName, logger: shared.logger,
                                   router: flowHandler)
        } catch {
            return reject(context, "\(error)")
        }
        state = .served
        let sync = context.pipeline.syncOperations
        if let holder = try? sync.handler(type: FlowBufferHandler.self) { sync.removeHandler(holder, promise: nil) }
        passRest(context)
        _ = try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        context.read()
    }

    /// Sends what followed the request down the pipeline.
    private func passRest(_ context: ChannelHandlerContext) {
        let rest = buffer
        buffer = ByteBuffer()
        if rest.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(rest)) }
    }

    private func metadata(_ context: ChannelHandlerContext, network: NetworkKind, destination: Destination) -> FlowMetadata {
        let source = context.channel.remoteAddress.flatMap { Destination($0) }.map { source -> Destination in
            var out = source
            if let ip = source.ip { out.host = .ip(ip.unmapped) }
            return out
        }
        var metadata = FlowMetadata(inbound: shared.tag, inboundType: "vless", network: network, source: source,
                                    destination: destination, flowID: flowID)
        if let listenOptions = shared.listenOptions { metadata.applyListenOptions(listenOptions) }
        return metadata
    }

    private func flowName(_ flow: String) -> String { flow.isEmpty ? "none" : flow }

    /// The first write carries the response header (version 0, no addons).
    package func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .served = state else { return context.write(data, promise: promise) }
        let payload = unwrapOutboundIn(data)
        var out = context.channel.allocator.buffer(capacity: 2 + payload.readableBytes)
        out.writeInteger(VLESSModule.version)
        out.writeInteger(UInt8(0))
        out.writeImmutableBuffer(payload)
        state = .responded
        context.write(wrapOutboundOut(out), promise: promise)
    }

    /// Leaves once the response header is flushed (not in `write`: a `writeAndFlush` still calls
    /// our `flush` after it, and a removed context would drop that flush).
    package func flush(context: ChannelHandlerContext) {
        context.flush()
        if case .responded = state {
            state = .failed  // gone: nothing reaches this handler any more
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .request = state, let event = event as? ChannelEvent, event == .inputClosed {
            // The client ended its side inside the request: Go's read of the field fails.
            return parse(context, ended: true)
        }
        context.fireUserInboundEventTriggered(event)
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard case .request = state else { return context.fireErrorCaught(error) }
        state = .failed
        shared.logger.debug("connection closed: \(error)", flow: flowID)
        context.close(promise: nil)
    }

    /// One error line (Go: `process connection from <source>: <cause>`), then a reset.
    private func reject(_ context: ChannelHandlerContext, _ cause: String) {
        state = .failed
        buffer = ByteBuffer()
        let source = context.channel.remoteAddress.flatMap { Destination($0) }.map { "\($0)" } ?? "unknown"
        shared.logger.error("process connection from \(source): \(cause)", flow: flowID)
        // Go closes a failed handshake with SO_LINGER 0 (`N.CloseOnHandshakeFailure`): a reset.
        let channel = context.channel
        if let provider = channel as? any SocketOptionProvider {
            provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }
}
