// Runs `SOCKSClientHandshake` on a freshly dialed channel to a SOCKS server.
//
// 1. on add: send the first message, ask for a read (the dialer hands channels over with
//    autoRead off)
// 2. each read: advance the machine, send what it says; an error fails `result` and closes
// 3. done: complete `result`; bytes the server sent after its reply are kept and handed to
//    whoever reads next (the relay), then the handler leaves the pipeline
package import Adapter
package import NIOCore

/// Client handshake handler; `result` completes with BND once the server accepted.
package final class SOCKSClientHandler: ChannelDuplexHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer
    package typealias OutboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    private var machine: SOCKSClientHandshake
    private let result: EventLoopPromise<Destination>
    private var buffer = ByteBuffer()
    private var finished = false
    /// The server half-closed right after its reply: replayed after the held bytes.
    private var heldInputClosed = false

    package init(handshake: SOCKSClientHandshake, result: EventLoopPromise<Destination>) {
        self.machine = handshake
        self.result = result
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        do {
            let first = try machine.start()
            context.writeAndFlush(wrapOutboundOut(first), promise: nil)
            context.read()
        } catch {
            fail(context: context, error: error)
        }
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        if !finished {
            finished = true
            result.fail(ChannelError.ioOnClosedChannel)
        }
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        buffer.writeBuffer(&bytes)
        guard !finished else { return }
        do {
            while true {
                switch try machine.advance(&buffer) {
                case .needMore:
                    context.read()
                    return
                case .send(let out):
                    context.writeAndFlush(wrapOutboundOut(out), promise: nil)
                case .done(let bind):
                    finished = true
                    result.succeed(bind)
                    if buffer.readableBytes == 0 { context.pipeline.syncOperations.removeHandler(context: context, promise: nil) }
                    return
                }
            }
        } catch {
            fail(context: context, error: error)
        }
    }

    package func read(context: ChannelHandlerContext) {
        if finished, buffer.readableBytes > 0 {
            let early = buffer
            buffer = ByteBuffer()
            context.fireChannelRead(wrapInboundOut(early))
            context.fireChannelReadComplete()
            if heldInputClosed {
                heldInputClosed = false
                context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            }
            // Read before leaving: a removed context drops what it is given.
            context.read()
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        context.read()
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, event == .inputClosed else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        if !finished {
            fail(context: context, error: AdapterError(.other, "EOF"))
        } else if buffer.readableBytes > 0 {
            heldInputClosed = true
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    package func channelInactive(context: ChannelHandlerContext) {
        if !finished {
            // sing reports a server that hangs up mid-handshake as EOF.
            fail(context: context, error: AdapterError(.other, "EOF"))
        }
        context.fireChannelInactive()
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard finished else { fail(context: context, error: error); return }
        context.fireErrorCaught(error)
    }

    private func fail(context: ChannelHandlerContext, error: any Error) {
        guard !finished else { return }
        finished = true
        result.fail(error)
        context.close(promise: nil)
    }
}
