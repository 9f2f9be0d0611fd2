// XUDP (`packet_encoding: "xudp"`, sing-vmess xudp.go): the request carries command 3 (mux) and no
// address; the body is a byte stream of mux.cool frames, each datagram one frame:
//   length u16 (of the metadata) ‖ session u16 (0) ‖ status (1 new for the first, 2 keep after) ‖
//   option (1 data, 2 error) ‖ network (2 UDP) ‖ address (port first, as in the header)
//   ‖ data length u16 ‖ data
// Frames from the server: keep frames with an address (or none: the first destination), end
// frames close the flow, an error option closes it too. The inbound's side is VMessMuxServer.
package import Adapter
package import NIOCore
import Net

/// A UDP flow through a VMess server over XUDP frames. Loop-confined to the stream's loop.
package final class VMessXUDPPacketConnection: PacketConnection, @unchecked Sendable {
    let channel: any Channel
    /// The flow's first destination: replies without an address come from it.
    let destination: Destination
    package var eventLoop: any EventLoop { channel.eventLoop }
    package var closeFuture: EventLoopFuture<Void> { closed.futureResult }
    private let closed: EventLoopPromise<Void>
    private var inbox = PacketInbox(maximumCount: 512, maximumBytes: 256 * 1024)
    private var pending = ByteBuffer()
    private var newSent = false
    private var isClosed = false

    /// Takes over `channel` (`VMessClientHandler` in stream mode installed): the reader goes last.
    package init(channel: any Channel, destination: Destination) throws {
        self.channel = channel
        self.destination = destination
        self.closed = channel.eventLoop.makePromise()
        try channel.pipeline.syncOperations.addHandler(VMessDatagramReader(sink: self), position: .last)
        channel.closeFuture.whenComplete { [self] _ in close() }
    }

    package func setReceiver(_ receiver: any PacketReceiver) {
        guard !isClosed else { receiver.packetConnectionClosed(); return }
        inbox.install(receiver)
        _ = try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        channel.read()
    }

    package func writePacket(_ payload: ByteBuffer, to destination: Destination) {
        guard !isClosed, channel.isWritable, payload.readableBytes <= Int(UInt16.max),
              let address = try? VMessHeader.encodeAddress(destination) else { return }
        var frame = channel.allocator.buffer(capacity: 9 + address.count + payload.readableBytes)
        frame.writeInteger(UInt16(5 + address.count))
        frame.writeInteger(UInt16(0))
        frame.writeInteger(newSent ? VMessXUDP.statusKeep : VMessXUDP.statusNew)
        frame.writeInteger(VMessXUDP.optionData)
        frame.writeInteger(VMessXUDP.networkUDP)
        frame.writeBytes(address)
        frame.writeInteger(UInt16(payload.readableBytes))
        frame.writeImmutableBuffer(payload)
        newSent = true
        channel.write(frame, promise: nil)
    }

    package func flush() { channel.flush() }

    package func close() {
        guard !isClosed else { return }
        isClosed = true
        channel.close(promise: nil)
        inbox.close()?.packetConnectionClosed()
        closed.succeed(())
    }
}

extension VMessXUDPPacketConnection: VMessDatagramSink {
    func received(_ payload: ByteBuffer) {
        var bytes = payload
        if pending.readableBytes == 0 {
            pending = bytes
        } else {
            pending.writeBuffer(&bytes)
        }
        do {
            while let frame = try VMessXUDP.readFrame(from: &pending, defaultSource: destination) {
                switch frame {
                case .packet(let data, let source): inbox.deliver(data, from: source)
                case .none: continue
                case .end:
                    close()
                    return
                }
            }
        } catch {
            close()
            return
        }
        if pending.readableBytes == 0 {
            pending = ByteBuffer()
        } else if pending.readerIndex > 1 << 16 {
            pending.discardReadBytes()
        }
    }
}

/// The mux.cool frame constants and reader.
package enum VMessXUDP {
    package static let statusNew: UInt8 = 1
    package static let statusKeep: UInt8 = 2
    package static let statusEnd: UInt8 = 3
    package static let statusKeepAlive: UInt8 = 4
    package static let optionData: UInt8 = 1
    package static let optionError: UInt8 = 2
    package static let networkUDP: UInt8 = 2

    /// What one frame from the server means.
    package enum Frame: Equatable {
        case packet(ByteBuffer, from: Destination)
        /// A frame without data (keep-alive, keep without data).
        case none
        /// End, or an error option: the flow is over.
        case end
    }

    /// Why a frame could not be read; the flow is closed.
    package enum FrameError: Error, Equatable {
        case unexpectedNew
        case unexpectedStatus(UInt8)
        case badAddress
    }

    /// Reads one whole frame off `buffer`: nil (nothing consumed) until it is all there.
    package static func readFrame(from buffer: inout ByteBuffer, defaultSource: Destination) throws(FrameError) -> Frame? {
        var view = buffer
        guard let length = view.readInteger(as: UInt16.self), length >= 4, view.readableBytes >= Int(length) else { return nil }
        var meta = view.readSlice(length: Int(length))!
        meta.moveReaderIndex(forwardBy: 2)  // session id
        let status = meta.readInteger(as: UInt8.self)!
        let option = meta.readInteger(as: UInt8.self)!
        var data: ByteBuffer?
        if option & optionData != 0 {
            guard let count = view.readInteger(as: UInt16.self), let bytes = view.readSlice(length: Int(count)) else { return nil }
            data = bytes
        }
        buffer.moveReaderIndex(to: view.readerIndex)
        switch status {
        case statusNew: throw .unexpectedNew
        case statusEnd: return .end
        case statusKeep, statusKeepAlive: break
        default: throw .unexpectedStatus(status)
        }
        if option & optionError != 0 { return .end }
        guard status == statusKeep, let data else { return Frame.none }
        var source = defaultSource
        if meta.readableBytes > 0 {
            // network byte, then the address (port first)
            let bytes = Array(meta.readableBytesView.dropFirst())
            var offset = 0
            do {
                source = try VMessHeader.decodeAddress(bytes, offset: &offset)
            } catch {
                throw .badAddress
            }
            if let ip = source.ip { source.host = .ip(ip.unmapped) }
        }
        return .packet(data, from: source)
    }
}
