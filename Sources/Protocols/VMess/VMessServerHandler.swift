// The inbound's codec and handshake: first in an accepted connection's pipeline, before Net's
// `FlowBufferHandler`.
//
// 1. The first read must hold a whole AEAD prefix (sing-vmess reads once and wants 100 bytes; with a
//    transport Go turns that protection off and the prefix may come in pieces):
//    the auth ID names the user (time within 120 s, not replayed), then the length opens. With
//    alterId users, an auth no AEAD key opens may be a legacy HMAC-MD5 of a recent second: the
//    header then follows under AES-128-CFB.
// 2. Once the sealed header is all there it is opened and decoded; TCP: `[user] inbound connection
//    to <destination>` and the channel goes to the router (through the UoT flow handler); UDP: a
//    `VMessStreamPacketConnection` goes to the router; mux: `VMessMuxServer` reads the frames.
// 3. From then on it opens the client's chunks and seals what the relay writes; the first write
//    carries the response header (sing-vmess writes it lazily too).
// A client that fails a check is reset (SO_LINGER 0, as Go) with one line, Go's
// `process connection from <source>: …`.
package import Adapter
package import Config
package import NIOCore
import Net
#if canImport(Glibc)
import Glibc  // struct linger for SO_LINGER
#endif

/// Per-inbound settings every connection's handler shares.
package struct VMessServerContext: Sendable {
    package var tag: String
    package var users: [VMessServerUser]
    package var filter: VMessReplayFilter
    /// Users with alter IDs (legacy header); empty: AEAD only.
    package var legacy: VMessLegacyTable
    package var listenOptions: ListenOptions?
    package var logger: ContextLogger
    package var clock: VMessClock
    /// sing-vmess `DisableHeaderProtection` (Go sets it when the inbound has a transport): the
    /// header may arrive over several reads instead of the first one holding its prefix.
    package var headerProtection = true

    package init(tag: String, users: [VMessServerUser], filter: VMessReplayFilter = VMessReplayFilter(),
                 legacy: VMessLegacyTable = VMessLegacyTable(users: []),
                 listenOptions: ListenOptions?, logger: ContextLogger, clock: @escaping VMessClock = vmessSystemClock) {
        self.tag = tag
        self.users = users
        self.filter = filter
        self.legacy = legacy
        self.listenOptions = listenOptions
        self.logger = logger
        self.clock = clock
    }
}

/// Server-side VMess handshake and stream codec; loop-confined.
package final class VMessServerHandler: ChannelDuplexHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer
    package typealias OutboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    private let shared: VMessServerContext
    private let flowID: FlowID
    /// TCP flows (the UoT flow handler around the router).
    private let streams: any FlowHandler
    /// UDP flows (the router itself, via the listener's hand-off).
    private let packets: any FlowHandler
    private var state = State.first
    private var pending = ByteBuffer()
    private var request: VMessRequest?
    private var sealer: VMessChunkSealer?
    private var opener: VMessChunkOpener?
    private var response: [UInt8]?
    private var payloads: [ByteBuffer] = []
    private var isPacket = false
    private var failed = false

    private enum State { case first, header(user: Int, length: Int), legacyHeader(user: Int, time: Int64), body }

    /// One accepted connection. `streams` takes TCP flows, `packets` UDP flows.
    package init(context: VMessServerContext, flowID: FlowID, streams: any FlowHandler, packets: any FlowHandler) {
        self.shared = context
        self.flowID = flowID
        self.streams = streams
        self.packets = packets
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { context.read() }
    }

    package func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        context.read()
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        var bytes = unwrapInboundIn(data)
        if pending.readableBytes == 0 {
            pending = bytes
        } else {
            pending.writeBuffer(&bytes)
        }
        do {
            if case .body = state {} else {
                guard try handshake(context: context) else {
                    context.read()
                    return
                }
            }
            try opener?.open(&pending, into: &payloads)
        } catch {
            fail(context: context, error: error)
            return
        }
        for payload in payloads { context.fireChannelRead(wrapInboundOut(payload)) }
        payloads.removeAll(keepingCapacity: true)
        if pending.readableBytes == 0 {
            pending = ByteBuffer()
        } else if pending.readerIndex > 1 << 16 {
            pending.discardReadBytes()
        }
    }

    /// Advances the handshake with what is pending; true once the request is read and handed off.
    private func handshake(context: ChannelHandlerContext) throws(VMessError) -> Bool {
        while true {
            switch state {
            case .first:
                // sing-vmess reads once and refuses a shorter first read (54 bytes when legacy users exist).
                let minimum = shared.legacy.isEmpty ? VMessModule.aeadMinimumHeaderLength : 16 + 38
                guard pending.readableBytes >= minimum else {
                    // Without header protection, wait for more (sing-vmess ReadAtLeastFrom).
                    if !shared.headerProtection { return false }
                    throw .badHeader
                }
                let auth = pending.getBytes(at: pending.readerIndex, length: 16)!
                let now = shared.clock()
                do throws(VMessError) {
                    let user = try VMessHeader.identify(authID: auth, users: shared.users, filter: shared.filter, now: now)
                    guard pending.readableBytes >= VMessModule.aeadMinimumHeaderLength else { throw VMessError.badHeader }
                    let prefix = pending.getBytes(at: pending.readerIndex, length: VMessHeader.headerIndex)!
                    let length = try VMessHeader.openLength(prefix, commandKey: shared.users[user].commandKey)
                    state = .header(user: user, length: length)
                } catch .badRequest {
                    guard let (user, time) = shared.legacy.lookup(auth, now: now) else { throw .badRequest }
                    pending.moveReaderIndex(forwardBy: 16)
                    state = .legacyHeader(user: user, time: time)
                } catch {
                    throw error
                }
            case .header(let user, let length):
                let total = VMessHeader.headerIndex + length + 16
                guard let bytes = pending.readBytes(length: total) else { return false }
                try accept(context: context, request: try VMessHeader.openRequest(bytes, length: length, commandKey: shared.users[user].commandKey),
                           user: user)
                return true
            case .legacyHeader(let user, let time):
                guard let (request, length) = try VMessHeader.openLegacyRequest(Array(pending.readableBytesView),
                                                                                commandKey: shared.users[user].commandKey, time: time) else {
                    return false
                }
                pending.moveReaderIndex(forwardBy: length)
                try accept(context: context, request: request, user: user)
                return true
            case .body:
                return true
            }
        }
    }

    /// The request is read: body codecs, the response to send with the first write, the hand-off.
    private func accept(context: ChannelHandlerContext, request: VMessRequest, user: Int) throws(VMessError) {
        sealer = try VMessChunkSealer(.response(request))
        opener = try VMessChunkOpener(.request(request))
        if request.legacy {
            let (bytes, stream) = VMessHeader.sealLegacyResponse(responseHeader: request.responseHeader, option: request.option,
                                                                 responseKey: request.responseKey, responseNonce: request.responseNonce)
            response = bytes
            sealer?.continueStream(stream)
        } else {
            response = VMessHeader.sealResponse(responseHeader: request.responseHeader, option: request.option,
                                                responseKey: request.responseKey, responseNonce: request.responseNonce)
        }
        self.request = request
        state = .body
        handOff(context: context, request: request, user: shared.users[user])
    }

    private func handOff(context: ChannelHandlerContext, request: VMessRequest, user: VMessServerUser) {
        let source = context.channel.remoteAddress.flatMap { Destination($0) }.map { source -> Destination in
            var out = source
            if let ip = source.ip { out.host = .ip(ip.unmapped) }
            return out
        }
        // Both commands other than mux carry an address (decodeRequest guarantees it).
        let destination = request.destination ?? Destination(ip: .v4(0), port: 0)
        if request.command == VMessModule.commandMux {
            // The frames are a stream over the body: the mux server reads them at the tail.
            let metadata = FlowMetadata(inbound: shared.tag, inboundType: "vmess", network: .udp, source: source,
                                        destination: destination, flowID: flowID)
            var flow = metadata
            if let listenOptions = shared.listenOptions { flow.applyListenOptions(listenOptions) }
            if !user.name.isEmpty { flow.user = user.name }
            do {
                _ = try VMessMuxServer(channel: context.channel, metadata: flow, userLogName: user.logName, logger: shared.logger, router: packets)
                let sync = context.pipeline.syncOperations
                if let holder = try? sync.handler(type: FlowBufferHandler.self) { sync.removeHandler(holder, promise: nil) }
                _ = try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
                context.read()
            } catch {
                context.close(promise: nil)
            }
            return
        }
        isPacket = request.command == VMessModule.commandUDP
        var metadata = FlowMetadata(inbound: shared.tag, inboundType: "vmess", network: isPacket ? .udp : .tcp, source: source,
                                    destination: destination, flowID: flowID)
        if let listenOptions = shared.listenOptions { metadata.applyListenOptions(listenOptions) }
        if !user.name.isEmpty { metadata.user = user.name }
        if isPacket {
            let packetAddress = destination.domain == VMessPacketAddress.magicAddress
            if packetAddress {
                // Go: the flow has no destination; each datagram names its own.
                metadata.destination = Destination(ip: .v4(0), port: 0)
                shared.logger.info("[\(user.logName)] inbound packet addr connection", flow: flowID)
            } else {
                shared.logger.info("[\(user.logName)] inbound packet connection to \(destination)", flow: flowID)
            }
            do {
                let connection = try VMessStreamPacketConnection(channel: context.channel, destination: destination,
                                                                 packetAddress: packetAddress)
                let sync = context.pipeline.syncOperations
                if let holder = try? sync.handler(type: FlowBufferHandler.self) { sync.removeHandler(holder, promise: nil) }
                _ = try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
                packets.handleUDP(connection, metadata: metadata)
            } catch {
                context.close(promise: nil)
            }
        } else {
            shared.logger.info("[\(user.logName)] inbound connection to \(destination)", flow: flowID)
            streams.handleTCP(context.channel, metadata: metadata, responder: nil)
        }
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .body = state {} else if let event = event as? ChannelEvent, event == .inputClosed {
            // The client gave up inside its header: Go's read fails with EOF.
            if !failed { fail(context: context, message: pending.readableBytes == 0 ? "EOF" : "unexpected EOF") }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    package func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let payload = unwrapOutboundIn(data)
        guard payload.readableBytes > 0, sealer != nil else {
            context.write(data, promise: promise)
            return
        }
        var out = context.channel.allocator.buffer(capacity: (response?.count ?? 0) + sealer!.sealedLength(payload.readableBytes))
        if let response {
            out.writeBytes(response)
            self.response = nil
        }
        sealer!.seal(payload, into: &out, asOnePacket: isPacket)
        context.write(wrapOutboundOut(out), promise: promise)
    }

    private func fail(context: ChannelHandlerContext, error: any Error) {
        fail(context: context, message: "\(error)", error: error)
    }

    private func fail(context: ChannelHandlerContext, message: String, error: (any Error)? = nil) {
        failed = true
        payloads.removeAll()
        let source = context.channel.remoteAddress.flatMap { Destination($0) }.map { "\($0)" } ?? "unknown"
        shared.logger.error("process connection from \(source): \(message)", flow: flowID)
        if case .body = state {
            if let error { context.fireErrorCaught(error) }
            context.close(promise: nil)
            return
        }
        // Go closes a failed handshake with SO_LINGER 0 (`N.CloseOnHandshakeFailure`): a reset, never
        // an answer.
        let channel = context.channel
        if let provider = channel as? any SocketOptionProvider {
            provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }
}
