// The outbound's stream codec, right after TLS (or the socket):
//
// 1. First write: the sealed request header goes out with that payload's chunks (Go's early conn).
//    TCP: if nothing is written within 300 ms (Go's `C.ReadPayloadTimeout`), or the relay
//    half-closes first, the header goes out alone so server-first protocols work.
// 2. Reads: the response length and header are opened (legacy: 4 bytes of AES-CFB; the response
//    byte must be ours either way), then the
//    body's chunks; each chunk's payload is passed on (for UDP one chunk is one datagram).
// A bad tag, length or response byte fails the channel with the error.
package import NIOCore

/// Client-side VMess stream codec; loop-confined.
package final class VMessClientHandler: ChannelDuplexHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer
    package typealias OutboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    private let request: VMessRequest
    private var header: [UInt8]?
    private var sealer: VMessChunkSealer
    private var opener: VMessChunkOpener
    private let isPacket: Bool
    private var timer: Scheduled<Void>?
    private var readState = ReadState.responseLength
    private var pending = ByteBuffer()
    private var payloads: [ByteBuffer] = []
    private var failed = false

    private enum ReadState { case responseLength, response(Int), legacyResponse, skip(Int), body }

    /// `header` is the sealed request (`VMessHeader.sealRequest`) for `request`. `isPacket`: command
    /// UDP, one datagram per write and per chunk. Throws for a security byte we cannot speak.
    package init(request: VMessRequest, header: [UInt8], isPacket: Bool) throws(VMessError) {
        self.request = request
        self.header = header
        self.isPacket = isPacket
        if request.legacy { readState = .legacyResponse }
        sealer = try VMessChunkSealer(.request(request))
        opener = try VMessChunkOpener(.response(request))
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        guard !isPacket else { return }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: .milliseconds(VMessModule.firstPayloadWait)) {
            let (handler, context) = bound.value
            handler.sendRequestAlone(context)
        }
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    package func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let payload = unwrapOutboundIn(data)
        // An empty write is the relay's marker: pass it on untouched.
        guard payload.readableBytes > 0 else {
            context.write(data, promise: promise)
            return
        }
        var out = context.channel.allocator.buffer(capacity: (header?.count ?? 0) + sealer.sealedLength(payload.readableBytes))
        if let header {
            out.writeBytes(header)
            self.header = nil
            timer?.cancel()
            timer = nil
        }
        // A datagram too large for one chunk is dropped, as the kernel drops an oversized one.
        sealer.seal(payload, into: &out, asOnePacket: isPacket)
        context.write(wrapOutboundOut(out), promise: promise)
    }

    package func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        // Go writes the header even for an empty upload before CloseWrite.
        if mode == .output { sendRequestAlone(context) }
        context.close(mode: mode, promise: promise)
    }

    private func sendRequestAlone(_ context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        guard let header, !failed, context.channel.isActive else { return }
        self.header = nil
        var out = context.channel.allocator.buffer(capacity: header.count)
        out.writeBytes(header)
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
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
            try receive()
        } catch {
            failed = true
            payloads.removeAll()
            context.fireErrorCaught(error)
            context.close(promise: nil)
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

    private func receive() throws(VMessError) {
        while true {
            switch readState {
            case .responseLength:
                guard let sealed = pending.readBytes(length: 18) else { return }
                readState = .response(try VMessHeader.openResponseLength(sealed, responseKey: request.responseKey,
                                                                         responseNonce: request.responseNonce))
            case .response(let length):
                guard let sealed = pending.readBytes(length: length + 16) else { return }
                let response = try VMessHeader.openResponse(sealed, responseKey: request.responseKey, responseNonce: request.responseNonce)
                guard response.first == request.responseHeader else { throw .badResponseHeader }
                readState = .body
            case .legacyResponse:
                // (response byte, option, command, command length) under AES-128-CFB; a command's
                // bytes are skipped unread, as sing-vmess skips them.
                guard let sealed = pending.readBytes(length: 4) else { return }
                let stream = VMessCFB(key: request.responseKey, iv: request.responseNonce, encrypting: false)
                let response = stream.apply(sealed)
                guard response[0] == request.responseHeader else { throw .badResponseHeader }
                opener.continueStream(stream)
                readState = .skip(Int(response[3]))
            case .skip(let count):
                let skipped = min(count, pending.readableBytes)
                pending.moveReaderIndex(forwardBy: skipped)
                guard skipped == count else {
                    readState = .skip(count - skipped)
                    return
                }
                readState = .body
            case .body:
                try opener.open(&pending, into: &payloads)
                return
            }
        }
    }
}
