// Picks SOCKS or HTTP from the first byte of a mixed connection, then steps aside.
package import Adapter
package import HTTPProxy
package import NIOCore
package import SOCKS

/// The first handler of a mixed connection: on the first bytes it puts the SOCKS or the HTTP
/// handler after itself, passes the bytes on and leaves. Loop-confined.
package final class MixedSniffHandler: ChannelInboundHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer

    private let socks: SOCKSInboundContext
    private let http: HTTPInboundContext
    private let flowID: FlowID
    private var decided = false
    private var timeout: Scheduled<Void>?

    package init(socks: SOCKSInboundContext, http: HTTPInboundContext, flowID: FlowID = FlowID()) {
        self.socks = socks
        self.http = http
        self.flowID = flowID
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        // A client that connects and says nothing is closed like one that stalls mid-handshake.
        let channel = context.channel
        let logger = socks.logger, flowID = self.flowID
        timeout = context.eventLoop.scheduleTask(in: socks.handshakeTimeout) {
            logger.debug("connection closed: peek first byte: timed out", flow: flowID)
            channel.close(promise: nil)
        }
        if context.channel.isActive { context.read() }
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        timeout?.cancel()
    }

    package func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        context.read()
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        guard !decided, let first = bytes.getInteger(at: bytes.readerIndex, as: UInt8.self) else {
            if bytes.readableBytes == 0 { context.read() }
            context.fireChannelRead(data)
            return
        }
        decided = true
        timeout?.cancel()
        timeout = nil
        let next: any ChannelHandler
        if first == SOCKS4.version || first == SOCKS5.version {
            next = SOCKSServerHandler(context: socks, flowID: flowID)
        } else {
            next = HTTPProxyServerHandler(context: http, flowID: flowID)
        }
        do {
            try context.pipeline.syncOperations.addHandler(next, position: .after(self))
        } catch {
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    package func channelInactive(context: ChannelHandlerContext) {
        timeout?.cancel()
        if !decided { socks.logger.debug("connection closed: peek first byte: EOF", flow: flowID) }
        context.fireChannelInactive()
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if !decided, let event = event as? ChannelEvent, event == .inputClosed {
            // Connected and hung up without a byte (port probes): Go reads EOF and closes.
            socks.logger.debug("connection closed: peek first byte: EOF", flow: flowID)
            decided = true
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard decided else {
            socks.logger.debug("connection closed: \(error)", flow: flowID)
            context.close(promise: nil)
            return
        }
        context.fireErrorCaught(error)
    }
}
