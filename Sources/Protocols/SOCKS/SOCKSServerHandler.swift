// The server side of SOCKS on one accepted connection.
//
// 1. read handshake bytes (autoRead is off: one `read()` per need), feed `SOCKSServerHandshake`,
//    write its replies; a failure writes its reply, logs one line and closes
// 2. CONNECT: hand the channel to the router with a `HandshakeResponder`; stop reading until it
//    answers. `succeed` writes the success reply; the bytes the client sent early are replayed
//    on the first read after that (when the relay is in place), then this handler leaves
// 3. UDP ASSOCIATE: bind a UDP socket on the address the client reached us at, reply with it,
//    wait for the first datagram (its destination routes the flow), then hand the association to
//    the router. The TCP connection stays open; its end ends the association and vice versa
// 4. a client that has not finished by `handshakeTimeout` is closed
package import Adapter
package import NIOCore
import Net

/// Runs the SOCKS server handshake on an accepted channel. One instance per connection; used
/// only on the channel's event loop.
package final class SOCKSServerHandler: ChannelDuplexHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer
    package typealias OutboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    private enum State {
        case handshaking
        /// The router is dialing; reads are held.
        case waitingForOutbound(version: UInt8)
        /// Replied; `buffer` is replayed on the next read, then the handler removes itself.
        case replaying
        /// UDP ASSOCIATE in progress or running.
        case associating
        case done
    }

    private let settings: SOCKSInboundContext
    private let flowID: FlowID
    private var machine: SOCKSServerHandshake
    private var state: State = .handshaking
    private var buffer: ByteBuffer
    private var timeout: Scheduled<Void>?
    /// A `read()` arrived while the router was dialing: whoever sits behind us (the relay) wants
    /// bytes, so the early payload is replayed as soon as the router answers.
    private var heldRead = false
    /// The client half-closed after its request: replayed after the early bytes, so the relay
    /// forwards the FIN (NIO reads to EOF even with autoRead off).
    private var heldInputClosed = false
    /// Writes and a close toward the client that arrive before our reply (the relay may forward a
    /// server's first bytes, or its hang-up, in the loop turn the router answers): sent after it.
    private let held = HeldOutput()
    private var source: Destination?
    private var association: SOCKSUDPAssociation?

    /// A handler for one connection; `flowID` names it in logs and in its `FlowMetadata`.
    package init(context settings: SOCKSInboundContext, flowID: FlowID = FlowID()) {
        self.settings = settings
        self.flowID = flowID
        self.machine = SOCKSServerHandshake(users: settings.users)
        self.buffer = ByteBuffer()
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        source = context.channel.remoteAddress.flatMap { Destination($0) }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timeout = context.eventLoop.scheduleTask(in: settings.handshakeTimeout) {
            let (handler, context) = bound.value
            handler.handshakeTimedOut(context: context)
        }
        if context.channel.isActive { context.read() }
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        timeout?.cancel()
        timeout = nil
    }

    package func channelActive(context: ChannelHandlerContext) {
        source = context.channel.remoteAddress.flatMap { Destination($0) }
        context.fireChannelActive()
        context.read()
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        switch state {
        case .handshaking:
            buffer.writeBuffer(&bytes)
            process(context: context)
        case .waitingForOutbound:
            // A read already in flight when we stopped asking: keep it for the replay.
            buffer.writeBuffer(&bytes)
        case .replaying:
            buffer.writeBuffer(&bytes)
            replay(context: context, thenRead: false)
        case .associating, .done:
            // Nothing is defined after UDP ASSOCIATE on the TCP connection: drop it.
            break
        }
    }

    package func read(context: ChannelHandlerContext) {
        switch state {
        case .waitingForOutbound:
            heldRead = true  // held until the router answers
        case .replaying:
            replay(context: context, thenRead: true)
        case .handshaking, .associating, .done:
            context.read()
        }
    }

    package func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        held.write(context: context, data: data, promise: promise, holding: waitingForOutbound)
    }

    package func flush(context: ChannelHandlerContext) {
        held.flush(context: context, holding: waitingForOutbound)
    }

    package func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        held.close(context: context, mode: mode, promise: promise, holding: waitingForOutbound) { [self] in
            guard waitingForOutbound else { return false }
            state = .done
            return true
        }
    }

    private var waitingForOutbound: Bool {
        if case .waitingForOutbound = state { return true }
        return false
    }

    package func channelInactive(context: ChannelHandlerContext) {
        timeout?.cancel()
        if case .handshaking = state {
            settings.logger.debug("connection closed: EOF", flow: flowID)
        }
        state = .done
        held.dropWrites()
        association?.close()
        association = nil
        context.fireChannelInactive()
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, event == .inputClosed else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        switch state {
        case .handshaking:
            // The client gave up mid-handshake (Go: "EOF").
            settings.logger.debug("connection closed: EOF", flow: flowID)
            state = .done
            context.close(promise: nil)
        case .waitingForOutbound, .replaying:
            heldInputClosed = true
        case .associating:
            // RFC 1928 §7: the association ends when its TCP connection does.
            settings.logger.debug("connection closed: EOF", flow: flowID)
            state = .done
            context.close(promise: nil)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch state {
        case .handshaking, .associating:
            settings.logger.debug("connection closed: \(error)", flow: flowID)
            state = .done
            context.close(promise: nil)
        default:
            context.fireErrorCaught(error)
        }
    }

    // MARK: Handshake

    private func process(context: ChannelHandlerContext) {
        while case .handshaking = state {
            switch machine.advance(&buffer) {
            case .needMore:
                context.read()
                return
            case .reply(let reply):
                context.writeAndFlush(wrapOutboundOut(reply), promise: nil)
            case .fail(let reply, let reason):
                fail(context: context, reply: reply, reason: "\(reason)")
            case .request(let request):
                timeout?.cancel()
                timeout = nil
                buffer.discardReadBytes()
                switch request.command {
                case SOCKS5.commandConnect: connect(context: context, request: request)
                default: associate(context: context, request: request)
                }
            }
        }
    }

    private func fail(context: ChannelHandlerContext, reply: ByteBuffer?, reason: String) {
        state = .done
        settings.logger.error("process connection from \(source.map { "\($0)" } ?? "unknown"): \(reason)", flow: flowID)
        if let reply {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(reply)).whenComplete { _ in channel.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }

    private func handshakeTimedOut(context: ChannelHandlerContext) {
        guard case .handshaking = state else { return }
        state = .done
        settings.logger.debug("connection closed: handshake timed out", flow: flowID)
        context.close(promise: nil)
    }

    private func metadata(network: NetworkKind, destination: Destination, user: String?) -> FlowMetadata {
        settings.metadata(network: network, source: source, destination: destination, user: user, flowID: flowID)
    }

    private func logUser(_ user: String?) -> String { user.map { "[\($0)] " } ?? "" }

    // MARK: CONNECT

    private func connect(context: ChannelHandlerContext, request: SOCKSServerRequest) {
        state = .waitingForOutbound(version: request.version)
        settings.logger.info("\(logUser(request.user))inbound connection to \(request.destination)", flow: flowID)
        let responder = SOCKSConnectResponder(handler: NIOLoopBound((self, context), eventLoop: context.eventLoop),
                                              version: request.version)
        settings.flowHandler.handleTCP(context.channel,
                                       metadata: metadata(network: .tcp, destination: request.destination, user: request.user),
                                       responder: responder)
    }

    /// The router connected: reply success; payload flows from the next read.
    fileprivate func outboundSucceeded(context: ChannelHandlerContext) -> EventLoopFuture<Void> {
        guard case .waitingForOutbound(let version) = state else { return context.eventLoop.makeSucceededVoidFuture() }
        state = .replaying
        // Go writes the outbound socket's local address here; the router gives us only our side,
        // and clients ignore BND for CONNECT, so 0.0.0.0:0 it is.
        let reply = SOCKSServerHandshake.successReply(version: version, bind: Destination(ip: .v4(0), port: 0))
        let written = context.writeAndFlush(wrapOutboundOut(reply))
        held.release(context: context)
        replayIfRead(context: context)
        return written
    }

    /// The router installed the relay before answering (its read is held): hand the bytes on now.
    private func replayIfRead(context: ChannelHandlerContext) {
        guard heldRead else { return }
        heldRead = false
        replay(context: context, thenRead: true)
    }

    /// The router could not connect: reply with the error's code.
    fileprivate func outboundFailed(context: ChannelHandlerContext, error: any Error) -> EventLoopFuture<Void> {
        guard case .waitingForOutbound(let version) = state else { return context.eventLoop.makeSucceededVoidFuture() }
        state = .done
        held.dropWrites()
        let written = context.writeAndFlush(wrapOutboundOut(SOCKSServerHandshake.failureReply(version: version, error: error)))
        held.releaseClose(context: context)
        return written
    }

    /// Hands the early payload on and leaves the pipeline.
    /// Every event goes out before the handler leaves: a removed context drops what it is given.
    private func replay(context: ChannelHandlerContext, thenRead: Bool) {
        guard case .replaying = state else { return }
        state = .done
        if buffer.readableBytes > 0 {
            let early = buffer
            buffer = ByteBuffer()
            context.fireChannelRead(wrapInboundOut(early))
            context.fireChannelReadComplete()
        }
        if heldInputClosed {
            heldInputClosed = false
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        }
        if thenRead { context.read() }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    // MARK: UDP ASSOCIATE

    private func associate(context: ChannelHandlerContext, request: SOCKSServerRequest) {
        guard let openUDP = settings.openUDP,
              let local = context.channel.localAddress.flatMap({ Destination($0) })?.ip,
              let clientIP = source?.ip else {
            fail(context: context, reply: SOCKSServerHandshake.socks5Reply(SOCKS5.replyCommandNotSupported),
                 reason: "socks5: unsupported command \(request.command)")
            return
        }
        state = .associating
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        let control = context.channel
        let association = SOCKSUDPAssociation(control: control, clientIP: clientIP.unmapped)
        self.association = association
        let readHandler = SOCKSAssociationReadHandler(association: association)
        let promise = loop.makePromise(of: (any Channel).self)
        promise.completeWithTask {
            try await openUDP(local.unmapped, loop) { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(readHandler) }
            }
        }
        promise.futureResult.whenComplete { result in
            let (handler, context) = bound.value
            handler.associationBound(context: context, request: request, association: association, result: result)
        }
    }

    private func associationBound(context: ChannelHandlerContext, request: SOCKSServerRequest,
                                  association: SOCKSUDPAssociation, result: Result<any Channel, any Error>) {
        switch result {
        case .failure(let error):
            association.close()
            fail(context: context, reply: SOCKSServerHandshake.socks5Reply(SOCKS5.replyGeneralFailure),
                 reason: "socks5: listen udp: \(error)")
        case .success(let udp):
            guard case .associating = state, let bind = udp.localAddress.flatMap({ Destination($0) }) else {
                udp.close(promise: nil)
                association.close()
                return
            }
            association.attach(udp)
            let user = request.user
            association.onFirstPacket = { [settings, flowID, source] destination in
                let metadata = settings.metadata(network: .udp, source: source, destination: destination, user: user, flowID: flowID)
                settings.logger.info("\(user.map { "[\($0)] " } ?? "")inbound packet connection to \(destination)", flow: flowID)
                settings.flowHandler.handleUDP(association, metadata: metadata)
            }
            _ = try? udp.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
            udp.read()
            context.writeAndFlush(wrapOutboundOut(SOCKSServerHandshake.socks5Reply(SOCKS5.replySucceeded, bind: bind)),
                                  promise: nil)
            // Keep reading the TCP side so its EOF ends the association.
            context.read()
        }
    }
}

/// Answers a CONNECT once the router has dialed (sing's LazyConn).
private struct SOCKSConnectResponder: HandshakeResponder {
    let handler: NIOLoopBound<(SOCKSServerHandler, ChannelHandlerContext)>
    let version: UInt8

    func succeed(_ channel: any Channel) -> EventLoopFuture<Void> {
        let (handler, context) = handler.value
        return handler.outboundSucceeded(context: context)
    }

    func fail(_ channel: any Channel, error: any Error) -> EventLoopFuture<Void> {
        let (handler, context) = handler.value
        return handler.outboundFailed(context: context, error: error)
    }
}
