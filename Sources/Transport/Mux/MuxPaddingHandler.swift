// sing-mux's padding (padding.go) for a session whose request set the padding flag: the first 16
// writes each way go out as data length u16 BE ‖ padding length u16 BE ‖ data ‖ 256–767 padding
// bytes (a write over 65,535 bytes is split, each piece counting as one write); after that the
// bytes pass plain. The reader undoes the same framing for the first 16 frames.
package import NIOCore

/// Sits right above the session's proxy stream, below the multiplexer. Loop-confined.
package final class MuxPaddingHandler: ChannelDuplexHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer
    package typealias OutboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    /// sing-mux's `kFirstPaddings`.
    static let paddedFrames = 16

    private var framesWritten = 0
    private var framesRead = 0
    /// Data bytes of the current read frame still to come.
    private var dataRemaining = 0
    /// Padding bytes of the current read frame still to skip.
    private var paddingRemaining = 0
    /// A partial frame header.
    private var header: ByteBuffer?

    package init() {}

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        while bytes.readableBytes > 0 {
            if dataRemaining > 0 {
                let count = min(dataRemaining, bytes.readableBytes)
                dataRemaining -= count
                if let slice = bytes.readSlice(length: count) { context.fireChannelRead(wrapInboundOut(slice)) }
                continue
            }
            if paddingRemaining > 0 {
                let count = min(paddingRemaining, bytes.readableBytes)
                paddingRemaining -= count
                bytes.moveReaderIndex(forwardBy: count)
                continue
            }
            guard framesRead < Self.paddedFrames else {
                context.fireChannelRead(wrapInboundOut(bytes))
                return
            }
            // A frame header, possibly split across reads.
            var pending = header ?? context.channel.allocator.buffer(capacity: 4)
            let need = 4 - pending.readableBytes
            if var piece = bytes.readSlice(length: min(need, bytes.readableBytes)) { pending.writeBuffer(&piece) }
            guard pending.readableBytes == 4, let dataLength = pending.readInteger(as: UInt16.self),
                  let paddingLength = pending.readInteger(as: UInt16.self) else {
                header = pending
                continue
            }
            header = nil
            framesRead += 1
            dataRemaining = Int(dataLength)
            paddingRemaining = Int(paddingLength)
        }
    }

    package func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard framesWritten < Self.paddedFrames else {
            context.write(data, promise: promise)
            return
        }
        var bytes = unwrapOutboundIn(data)
        var out = context.channel.allocator.buffer(capacity: bytes.readableBytes + 4 + 768)
        repeat {
            let count = min(bytes.readableBytes, Int(UInt16.max))
            guard var piece = bytes.readSlice(length: count) else { break }
            if framesWritten < Self.paddedFrames {
                let paddingLength = Int.random(in: 256..<768)
                out.writeInteger(UInt16(count))
                out.writeInteger(UInt16(paddingLength))
                out.writeBuffer(&piece)
                out.writeRepeatingByte(0, count: paddingLength)
                framesWritten += 1
            } else {
                out.writeBuffer(&piece)
            }
        } while bytes.readableBytes > 0
        context.write(wrapOutboundOut(out), promise: promise)
    }
}
