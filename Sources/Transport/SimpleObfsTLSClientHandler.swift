// SimpleObfsTLSClientHandler: simple-obfs `obfs=tls` on the client side (Go's
// transport/simple-obfs/tls.go). Nothing is encrypted; the bytes only look like TLS 1.2.
// Out: writes are cut into 16 KiB chunks; the very first chunk rides a fake ClientHello as its
// session-ticket extension, every later one an application-data record (17 03 03 len).
// In: the server's first reply is ServerHello (96 bytes) + ChangeCipherSpec (6) + a handshake
// record header (3) whose 2-byte length covers the first data; then application-data records.
import Foundation
package import NIOCore

/// Client half of simple-obfs TLS. Loop-confined (hence `@unchecked Sendable`, to be handed to the
/// loop); sits next to the socket, below shadowsocks.
package final class SimpleObfsTLSClientHandler: ChannelDuplexHandler, RemovableChannelHandler, @unchecked Sendable {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer
    package typealias OutboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    /// Go's `chunkSize`: 2^14, the TLS record limit.
    static let chunkSize = 1 << 14
    /// Bytes before the first data length: ServerHello 5+91, ChangeCipherSpec 5+1, then type+version.
    static let firstResponsePrefix = 105

    private enum ReadState {
        /// Waiting for the ServerHello … prefix and the first length.
        case firstResponse
        /// Waiting for a record header.
        case recordHeader
        /// Inside a record's payload, this many bytes left.
        case payload(Int)
    }

    private let host: String
    private var helloSent = false
    private var state = ReadState.firstResponse
    private(set) var pending = ByteBuffer()
    private var failed = false
    /// We closed the channel: its end is no news.
    private var closingLocally = false

    /// `host` is `obfs-host`, sent as the ClientHello's server name.
    package init(host: String) {
        self.host = host
    }

    package func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var payload = unwrapOutboundIn(data)
        guard payload.readableBytes > 0 else {
            context.write(data, promise: promise)
            return
        }
        var out = context.channel.allocator.buffer(capacity: payload.readableBytes + 5 * (payload.readableBytes / Self.chunkSize + 1) + 256)
        while payload.readableBytes > 0 {
            var chunk = payload.readSlice(length: min(Self.chunkSize, payload.readableBytes))!
            if !helloSent {
                helloSent = true
                writeClientHello(carrying: chunk, into: &out)
            } else {
                out.writeBytes([0x17, 0x03, 0x03])
                out.writeInteger(UInt16(chunk.readableBytes))
                out.writeBuffer(&chunk)
            }
        }
        context.write(wrapOutboundOut(out), promise: promise)
    }

    /// Go's `makeClientHelloMsg`: a TLS 1.0 record holding a TLS 1.2 ClientHello with fixed cipher
    /// suites and extensions; `data` is the session ticket, `host` the SNI.
    private func writeClientHello(carrying data: ByteBuffer, into out: inout ByteBuffer) {
        let server = Array(host.utf8)
        var generator = SystemRandomNumberGenerator()
        out.writeBytes([22, 0x03, 0x01])
        out.writeInteger(UInt16(truncatingIfNeeded: 212 + data.readableBytes + server.count))
        out.writeBytes([1, 0])
        out.writeInteger(UInt16(truncatingIfNeeded: 208 + data.readableBytes + server.count))
        out.writeBytes([0x03, 0x03])
        out.writeInteger(UInt32(truncatingIfNeeded: Int(Date().timeIntervalSince1970)))
        for _ in 0..<28 { out.writeInteger(UInt8.random(in: 0...255, using: &generator)) }
        out.writeInteger(UInt8(32))
        for _ in 0..<32 { out.writeInteger(UInt8.random(in: 0...255, using: &generator)) }
        out.writeBytes([0x00, 0x38])
        out.writeBytes(Self.cipherSuites)
        out.writeBytes([0x01, 0x00])  // compression: null only
        out.writeInteger(UInt16(truncatingIfNeeded: 79 + data.readableBytes + server.count))
        out.writeBytes([0x00, 0x23])  // session ticket
        out.writeInteger(UInt16(data.readableBytes))
        out.writeImmutableBuffer(data)
        out.writeBytes([0x00, 0x00])  // server name
        out.writeInteger(UInt16(truncatingIfNeeded: server.count + 5))
        out.writeInteger(UInt16(truncatingIfNeeded: server.count + 3))
        out.writeInteger(UInt8(0))
        out.writeInteger(UInt16(truncatingIfNeeded: server.count))
        out.writeBytes(server)
        out.writeBytes(Self.trailingExtensions)
    }

    /// 28 suites as Go lists them (ends with the renegotiation SCSV 00 ff).
    static let cipherSuites: [UInt8] = [
        0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa, 0xc0, 0x2b, 0xc0, 0x2f,
        0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b, 0xc0, 0x23, 0xc0, 0x27, 0x00, 0x67, 0xc0, 0x0a,
        0xc0, 0x14, 0x00, 0x39, 0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d, 0x00, 0x9c, 0x00, 0x3d,
        0x00, 0x3c, 0x00, 0x35, 0x00, 0x2f, 0x00, 0xff,
    ]
    /// ec_point_formats, supported_groups, signature_algorithms, encrypt_then_mac, extended_master_secret.
    static let trailingExtensions: [UInt8] = [
        0x00, 0x0b, 0x00, 0x04, 0x03, 0x01, 0x00, 0x02,
        0x00, 0x0a, 0x00, 0x0a, 0x00, 0x08, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x19, 0x00, 0x18,
        0x00, 0x0d, 0x00, 0x20, 0x00, 0x1e, 0x06, 0x01, 0x06, 0x02, 0x06, 0x03, 0x05,
        0x01, 0x05, 0x02, 0x05, 0x03, 0x04, 0x01, 0x04, 0x02, 0x04, 0x03, 0x03, 0x01,
        0x03, 0x02, 0x03, 0x03, 0x02, 0x01, 0x02, 0x02, 0x02, 0x03,
        0x00, 0x16, 0x00, 0x00,
        0x00, 0x17, 0x00, 0x00,
    ]

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        var incoming = unwrapInboundIn(data)
        if pending.readableBytes == 0 {
            pending = incoming
        } else {
            pending.writeBuffer(&incoming)
        }
        do {
            try drain(context: context)
        } catch {
            failed = true
            pending = ByteBuffer()
            context.fireErrorCaught(error)
            context.close(promise: nil)
            return
        }
        // What is left is a few bytes of a record header: keep those alone. The next read is appended
        // behind them, so keeping the read bytes too grew the buffer (and copied it) by a whole
        // read each time a read ended inside a header.
        if pending.readableBytes == 0 {
            pending = ByteBuffer()
        } else {
            pending.discardReadBytes()
        }
    }

    /// Passes on every payload byte in `pending`, stepping through record headers. Go reads the
    /// headers without looking at them; we check the record types so garbage fails clearly.
    private func drain(context: ChannelHandlerContext) throws(SimpleObfsError) {
        while pending.readableBytes > 0 {
            switch state {
            case .firstResponse:
                guard pending.readableBytes >= Self.firstResponsePrefix + 2 else {
                    if let type = pending.getInteger(at: pending.readerIndex, as: UInt8.self), type != 22 {
                        throw .unexpectedTLSRecord(type: type, expected: "ServerHello")
                    }
                    return
                }
                let base = pending.readerIndex
                let hello = pending.getInteger(at: base, as: UInt8.self)!, change = pending.getInteger(at: base + 96, as: UInt8.self)!
                let finished = pending.getInteger(at: base + 102, as: UInt8.self)!
                guard hello == 22 else { throw .unexpectedTLSRecord(type: hello, expected: "ServerHello") }
                guard change == 20 else { throw .unexpectedTLSRecord(type: change, expected: "ChangeCipherSpec") }
                guard finished == 22 else { throw .unexpectedTLSRecord(type: finished, expected: "handshake") }
                pending.moveReaderIndex(forwardBy: Self.firstResponsePrefix)
                state = .payload(Int(pending.readInteger(as: UInt16.self)!))
            case .recordHeader:
                guard let type = pending.getInteger(at: pending.readerIndex, as: UInt8.self) else { return }
                guard type == 23 else { throw .unexpectedTLSRecord(type: type, expected: "application data") }
                guard pending.readableBytes >= 5 else { return }
                pending.moveReaderIndex(forwardBy: 3)
                state = .payload(Int(pending.readInteger(as: UInt16.self)!))
            case let .payload(left):
                if left == 0 {
                    state = .recordHeader
                    continue
                }
                let take = min(left, pending.readableBytes)
                let slice = pending.readSlice(length: take)!
                state = left == take ? .recordHeader : .payload(left - take)
                context.fireChannelRead(wrapInboundOut(slice))
                if failed { return }
            }
        }
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event, case .firstResponse = state, helloSent, !failed {
            failed = true
            context.fireErrorCaught(SimpleObfsError.closedBeforeResponse)
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    package func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .all { closingLocally = true }
        context.close(mode: mode, promise: promise)
    }

    /// A server that hangs up before its reply is an error; our own close is not.
    package func channelInactive(context: ChannelHandlerContext) {
        if case .firstResponse = state, helloSent, !failed, !closingLocally {
            failed = true
            context.fireErrorCaught(SimpleObfsError.closedBeforeResponse)
        }
        context.fireChannelInactive()
    }
}
