// The naive padding of a tunnel (Go's naiveH1Conn/naiveH2Conn in inbound_conn.go), both ways:
// - reads: the first 8 frames from the client are `[data length: u16 BE][padding length: u8]
//   [data][padding]`; the data goes on, the padding is dropped; after the 8th frame bytes are raw.
// - writes: the first 8 writes each become such frames (a write over 65,535 bytes is split, each
//   part one frame) with 0–255 zero bytes of padding; after that writes go out raw.
// Go's `Write` path (`write`) declares padding it never sends; its `WriteBuffer` path, the one its
// relay takes (the client tests decode Go's padded frames), sends it. We always send what we declare.
// Once both directions are past their 8 frames the handler leaves the pipeline.
import NIOCore

/// Frames the first 8 reads and writes of a naive tunnel. Loop-confined.
final class NaivePaddingHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Largest data a frame declares (its length field is 16 bits).
    static let maximumFrameData = 65_535

    private var framesRead = 0
    private var framesWritten = 0
    private var dataRemaining = 0
    private var paddingRemaining = 0
    /// A frame header split across reads.
    private var header: [UInt8] = []
    private var removing = false

    private var readDone: Bool {
        framesRead >= NaiveModule.firstPaddings && dataRemaining == 0 && paddingRemaining == 0
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var input = unwrapInboundIn(data)
        if readDone {
            context.fireChannelRead(data)
            return
        }
        var produced = false
        while input.readableBytes > 0 {
            if dataRemaining > 0 {
                let count = min(dataRemaining, input.readableBytes)
                if let slice = input.readSlice(length: count) {
                    dataRemaining -= count
                    produced = true
                    context.fireChannelRead(wrapInboundOut(slice))
                }
            } else if paddingRemaining > 0 {
                let count = min(paddingRemaining, input.readableBytes)
                input.moveReaderIndex(forwardBy: count)
                paddingRemaining -= count
            } else if framesRead < NaiveModule.firstPaddings {
                let count = min(3 - header.count, input.readableBytes)
                header += input.readBytes(length: count) ?? []
                if header.count == 3 {
                    dataRemaining = Int(header[0]) << 8 | Int(header[1])
                    paddingRemaining = Int(header[2])
                    header.removeAll(keepingCapacity: true)
                    framesRead += 1
                }
            } else {
                produced = true
                context.fireChannelRead(wrapInboundOut(input))
                break
            }
        }
        // Only framing arrived: the reader after us asked for bytes and got none, so ask again.
        if !produced { context.read() }
        removeIfDone(context)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var input = unwrapOutboundIn(data)
        guard framesWritten < NaiveModule.firstPaddings, input.readableBytes > 0 else {
            context.write(data, promise: promise)
            return
        }
        var out = context.channel.allocator.buffer(capacity: input.readableBytes + 3 + 255)
        while input.readableBytes > 0 {
            guard framesWritten < NaiveModule.firstPaddings else {
                out.writeBuffer(&input)
                break
            }
            let count = min(input.readableBytes, Self.maximumFrameData)
            let padding = Int.random(in: 0...255)
            out.writeInteger(UInt16(count))
            out.writeInteger(UInt8(padding))
            var chunk = input.readSlice(length: count) ?? ByteBuffer()
            out.writeBuffer(&chunk)
            out.writeRepeatingByte(0, count: padding)
            framesWritten += 1
        }
        context.write(wrapOutboundOut(out), promise: promise)
        removeIfDone(context)
    }

    private func removeIfDone(_ context: ChannelHandlerContext) {
        guard !removing, readDone, framesWritten >= NaiveModule.firstPaddings else { return }
        removing = true
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
