// MuxCoolClientHandler: one stream in v2ray's mux.cool framing, as sing-vmess's MuxConnWrapper
// writes it for v2ray-plugin's `mux` (Go's transport/sip003/v2ray.go). Session 0 only.
// Out: the first write opens the session (New frame to `v1.mux.cool:666`, TCP, with data); later
// writes are Keep frames with data. In: Keep frames carry data, KeepAlive none, End is EOF (an
// input-closed event); a New frame, an error option or an unknown status fails the stream.
package import NIOCore

/// Why a mux.cool frame from the server was refused (sing-vmess's words).
package enum MuxCoolError: Error, Equatable, CustomStringConvertible {
    case unexpectedNew
    case unexpectedStatus(UInt8)
    case remoteClosed
    case badMetadataLength(Int)

    package var description: String {
        switch self {
        case .unexpectedNew: "unexpected frame new"
        case let .unexpectedStatus(status): "unexpected frame: \(status)"
        case .remoteClosed: "remote closed"
        case let .badMetadataLength(length): "mux.cool: metadata length \(length) below 4"
        }
    }
}

/// Client half of a single mux.cool stream. Loop-confined (`@unchecked Sendable` to reach the loop);
/// sits between the transport and the protocol above it.
package final class MuxCoolClientHandler: ChannelDuplexHandler, RemovableChannelHandler, @unchecked Sendable {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer
    package typealias OutboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    /// sing-vmess's `MuxDestination`, written port first with SOCKS-like type 2 (domain).
    static let destinationHost = Array("v1.mux.cool".utf8)
    static let destinationPort: UInt16 = 666
    /// The frame's 16-bit data length bounds a write's chunk.
    static let maxChunk = 0xFFFF
    static let statusNew: UInt8 = 1, statusKeep: UInt8 = 2, statusEnd: UInt8 = 3, statusKeepAlive: UInt8 = 4

    private enum ReadState {
        /// Waiting for metadata length + session + status + option (6 bytes).
        case frameHeader
        /// Skipping the rest of a frame's metadata, then reading a data length when `hasData`.
        case skipMetadata(Int, hasData: Bool)
        /// Waiting for the 2-byte data length.
        case dataLength
        /// Inside data, this many bytes left.
        case data(Int)
    }

    private var opened = false
    private var state = ReadState.frameHeader
    private(set) var pending = ByteBuffer()
    private var failed = false

    package init() {}

    package func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var payload = unwrapOutboundIn(data)
        guard payload.readableBytes > 0 else {
            context.write(data, promise: promise)
            return
        }
        var out = context.channel.allocator.buffer(capacity: payload.readableBytes + 32 + 8 * (payload.readableBytes / Self.maxChunk + 1))
        while payload.readableBytes > 0 {
            var chunk = payload.readSlice(length: min(Self.maxChunk, payload.readableBytes))!
            if !opened {
                opened = true
                // metadata: session 0, New, option data, network TCP, port, type 2 (domain), length, name
                out.writeInteger(UInt16(5 + 2 + 1 + 1 + Self.destinationHost.count))
                out.writeBytes([0, 0, Self.statusNew, 1, 1])
                out.writeInteger(Self.destinationPort)
                out.writeBytes([2, UInt8(Self.destinationHost.count)])
                out.writeBytes(Self.destinationHost)
            } else {
                out.writeBytes([0, 4, 0, 0, Self.statusKeep, 1])
            }
            out.writeInteger(UInt16(chunk.readableBytes))
            out.writeBuffer(&chunk)
        }
        context.write(wrapOutboundOut(out), promise: promise)
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        var incoming = unwrapInboundIn(data)
        if pending.readableBytes == 0 { pending = incoming } else { pending.writeBuffer(&incoming) }
        do {
            try drain(context: context)
        } catch {
            failed = true
            pending = ByteBuffer()
            context.fireErrorCaught(error)
            context.close(promise: nil)
            return
        }
        // What is left is a few bytes of a mux.cool header: keep those alone. The next read is appended
        // behind them, so keeping the read bytes too grew the buffer (and copied it) by a whole
        // read each time a read ended inside a header.
        if pending.readableBytes == 0 {
            pending = ByteBuffer()
        } else {
            pending.discardReadBytes()
        }
    }

    private func drain(context: ChannelHandlerContext) throws(MuxCoolError) {
        while !failed {
            switch state {
            case .frameHeader:
                guard pending.readableBytes >= 6 else { return }
                let length = Int(pending.readInteger(as: UInt16.self)!)
                pending.moveReaderIndex(forwardBy: 2)  // session id
                let status = pending.readInteger(as: UInt8.self)!, option = pending.readInteger(as: UInt8.self)!
                guard length >= 4 else { throw .badMetadataLength(length) }
                switch status {
                case Self.statusNew: throw .unexpectedNew
                case Self.statusEnd:
                    // sing-vmess reads End as EOF: the download is over, the upload may go on.
                    failed = true
                    pending = ByteBuffer()
                    context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
                    return
                case Self.statusKeep, Self.statusKeepAlive: break
                default: throw .unexpectedStatus(status)
                }
                if option & 2 == 2 { throw .remoteClosed }
                state = .skipMetadata(length - 4, hasData: option & 1 == 1)
            case let .skipMetadata(left, hasData):
                let skip = min(left, pending.readableBytes)
                pending.moveReaderIndex(forwardBy: skip)
                guard skip == left else {
                    state = .skipMetadata(left - skip, hasData: hasData)
                    return
                }
                state = hasData ? .dataLength : .frameHeader
            case .dataLength:
                guard let length = pending.readInteger(as: UInt16.self) else { return }
                state = length == 0 ? .frameHeader : .data(Int(length))
            case let .data(left):
                guard pending.readableBytes > 0 else { return }
                let take = min(left, pending.readableBytes)
                let slice = pending.readSlice(length: take)!
                state = take == left ? .frameHeader : .data(left - take)
                context.fireChannelRead(wrapInboundOut(slice))
            }
        }
    }
}
