// The handlers behind `V2RayTransportClient`: the HTTP upgrade exchange both transports start with,
// then raw bytes (httpupgrade) or WebSocket frames (ws). All loop-confined.
import Adapter
import COpenSSL
import Foundation
import NIOCore

/// A parsed HTTP/1.1 response head.
struct HTTPResponseHead: Sendable {
    let status: Int
    let statusLine: String
    /// Header names lowercased; the last value of a repeated header.
    let headers: [String: String]

    /// Parses the head in front of `buffer` (through the blank line), consuming it; nil when the
    /// blank line has not arrived. Throws on a head over 16 KiB or a malformed status line.
    static func read(from buffer: inout ByteBuffer) throws(AdapterError) -> HTTPResponseHead? {
        var headEnd = HTTPHeadEnd()
        return try read(from: &buffer, headEnd: &headEnd)
    }

    /// `read(from:)` for a head gathered across reads: `headEnd` carries the search from one call
    /// to the next (the reader index stays put until the head is complete).
    static func read(from buffer: inout ByteBuffer, headEnd: inout HTTPHeadEnd) throws(AdapterError) -> HTTPResponseHead? {
        guard let length = headEnd.find(in: buffer) else {
            if buffer.readableBytes > 16_384 { throw AdapterError(.other, "transport: response head too large") }
            return nil
        }
        let text = buffer.readString(length: length) ?? ""
        var lines = text.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        guard !lines.isEmpty else { throw AdapterError(.other, "transport: malformed HTTP response") }
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw AdapterError(.other, "transport: malformed HTTP response: \(statusLine)")
        }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return HTTPResponseHead(status: status, statusLine: String(parts.dropFirst().joined(separator: " ")), headers: headers)
    }

    /// `Connection: Upgrade` and `Upgrade: websocket`, compared as Go does (ignoring case).
    var upgradesToWebSocket: Bool {
        headers["connection"]?.lowercased() == "upgrade" && headers["upgrade"]?.lowercased() == "websocket"
    }
}

/// httpupgrade: sends the request when active, checks the 101, then passes bytes both ways.
final class HTTPUpgradeClientHandler: ChannelDuplexHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let request: String
    private let ready: EventLoopPromise<Void>
    private var buffered = ByteBuffer()
    /// The search for the end of the response head in `buffered`.
    private(set) var headEnd = HTTPHeadEnd()
    private var upgraded = false

    init(request: String, ready: EventLoopPromise<Void>) {
        self.request = request
        self.ready = ready
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { sendRequest(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        sendRequest(context)
        context.fireChannelActive()
    }

    private var sent = false
    private func sendRequest(_ context: ChannelHandlerContext) {
        guard !sent else { return }
        sent = true
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: request)), promise: nil)
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !upgraded else { context.fireChannelRead(data); return }
        var bytes = unwrapInboundIn(data)
        buffered.writeBuffer(&bytes)
        do {
            guard let head = try HTTPResponseHead.read(from: &buffered, headEnd: &headEnd) else { context.read(); return }
            guard head.status == 101, head.upgradesToWebSocket else {
                throw AdapterError(.other, "v2ray-http-upgrade: unexpected status: \(head.statusLine)")
            }
            upgraded = true
            ready.succeed(())
            if buffered.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(buffered)) }
            buffered = ByteBuffer()
        } catch {
            ready.fail(error)
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !upgraded { ready.fail(AdapterError(.other, "v2ray-http-upgrade: connection closed before the response")) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !upgraded { ready.fail(error) }
        context.fireErrorCaught(error)
    }
}

/// RFC 6455 client: the handshake (now, or with the first write when early data is on), then each
/// write becomes one masked binary frame and each data frame's payload is read on.
final class WebSocketClientHandler: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    /// RFC 6455 §1.3.
    static let acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    private let client: V2RayTransportClient
    private let maxEarlyData: Int
    private let earlyDataHeader: String?
    private let ready: EventLoopPromise<Void>
    private var key = ""
    private var state = State.idle
    private var inbound = ByteBuffer()
    /// The search for the end of the handshake response in `inbound`.
    private(set) var headEnd = HTTPHeadEnd()
    /// Writes waiting for the 101 (the part of the first write past the early data, and later ones).
    private var pending: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    private var sawClose = false
    private var frames = WebSocketFrameReader()

    enum State { case idle, handshaking, open, failed }

    init(client: V2RayTransportClient, maxEarlyData: Int, earlyDataHeader: String?, ready: EventLoopPromise<Void>) {
        self.client = client
        self.maxEarlyData = maxEarlyData
        self.earlyDataHeader = earlyDataHeader
        self.ready = ready
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if maxEarlyData > 0 {
            // Go's EarlyWebsocketConn: the dial completes now, the handshake with the first write.
            ready.succeed(())
        } else if context.channel.isActive {
            handshake(context, early: nil)
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        if maxEarlyData == 0 { handshake(context, early: nil) }
        context.fireChannelActive()
    }

    private func handshake(_ context: ChannelHandlerContext, early: [UInt8]?) {
        guard state == .idle else { return }
        state = .handshaking
        var nonce = [UInt8](repeating: 0, count: 16)
        _ = RAND_bytes(&nonce, 16)
        key = Data(nonce).base64EncodedString()
        var path = client.path
        var extra: [(String, String)] = []
        if let early, !early.isEmpty {
            let encoded = Self.base64URL(early)
            if let earlyDataHeader { extra.append((earlyDataHeader, encoded)) } else { path += encoded }
        }
        extra += [("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13")]
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: client.requestHead(extra: extra, path: path))), promise: nil)
        context.read()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let bytes = unwrapOutboundIn(data)
        switch state {
        case .open:
            context.write(wrapOutboundOut(frame(opcode: 0x2, payload: bytes, allocator: context.channel.allocator)), promise: promise)
        case .idle where maxEarlyData > 0:
            var rest = bytes
            let early = rest.readBytes(length: min(maxEarlyData, rest.readableBytes)) ?? []
            handshake(context, early: early)
            pending.append((rest, promise))
        case .idle, .handshaking:
            pending.append((bytes, promise))
        case .failed:
            promise?.fail(AdapterError(.other, "websocket: handshake failed"))
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        inbound.writeBuffer(&bytes)
        if state == .handshaking {
            do {
                guard let head = try HTTPResponseHead.read(from: &inbound, headEnd: &headEnd) else { context.read(); return }
                guard head.status == 101, head.upgradesToWebSocket else {
                    throw AdapterError(.other, "websocket: bad handshake: unexpected HTTP response status: \(head.status)")
                }
                guard head.headers["sec-websocket-accept"] == Self.accept(key) else {
                    throw AdapterError(.other, "websocket: bad handshake: unexpected Sec-WebSocket-Accept")
                }
                state = .open
                ready.succeed(())
                let queued = pending
                pending = []
                for (payload, promise) in queued where payload.readableBytes > 0 || promise != nil {
                    if payload.readableBytes == 0 { promise?.succeed(()); continue }
                    context.write(wrapOutboundOut(frame(opcode: 0x2, payload: payload, allocator: context.channel.allocator)), promise: promise)
                }
                context.flush()
            } catch {
                state = .failed
                ready.fail(error)
                for (_, promise) in pending { promise?.fail(error) }
                pending = []
                context.close(promise: nil)
                return
            }
        }
        guard state == .open else { return }
        deliverFrames(context)
    }

    /// RFC 6455 §5.2: frames from the server are unmasked; a masked one is still read.
    private func deliverFrames(_ context: ChannelHandlerContext) {
        do {
            while let received = try frames.next(from: &inbound) {
                switch received.opcode {
                case 0x0, 0x1, 0x2:
                    if received.payload.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(received.payload)) }
                case 0x8:
                    // Close: answer once, then the stream ends.
                    if !sawClose {
                        sawClose = true
                        context.writeAndFlush(wrapOutboundOut(frame(opcode: 0x8, payload: ByteBuffer(), allocator: context.channel.allocator)), promise: nil)
                    }
                    context.close(promise: nil)
                    return
                case 0x9:
                    context.writeAndFlush(wrapOutboundOut(frame(opcode: 0xA, payload: received.payload, allocator: context.channel.allocator)), promise: nil)
                case 0xA:
                    break
                default:
                    protocolError(context, "unknown opcode \(received.opcode)")
                    return
                }
            }
            inbound.discardReadBytes()
        } catch {
            protocolError(context, "\(error)")
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Reads complete per delivered batch above; pass the event on only once open.
        if state == .open { context.fireChannelReadComplete() }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .output, state == .open {
            // Half-close: a WebSocket has no FIN of its own; Go closes the whole stream.
            context.close(mode: .all, promise: promise)
            return
        }
        context.close(mode: mode, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if state != .open {
            ready.fail(AdapterError(.other, "websocket: connection closed during the handshake"))
            for (_, promise) in pending { promise?.fail(ChannelError.ioOnClosedChannel) }
            pending = []
        }
        context.fireChannelInactive()
    }

    private func protocolError(_ context: ChannelHandlerContext, _ message: String) {
        context.fireErrorCaught(AdapterError(.other, "websocket: \(message)"))
        context.close(promise: nil)
    }

    /// One client frame: FIN, `opcode`, the mask bit and key, the masked payload (RFC 6455 §5.3).
    private func frame(opcode: UInt8, payload: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        WebSocketFrameReader.frame(opcode: opcode, payload: payload, masked: true, allocator: allocator)
    }

    /// Sec-WebSocket-Accept for `key` (RFC 6455 §4.2.2): base64 of SHA-1 of key ‖ GUID.
    static func accept(_ key: String) -> String {
        let input = Array((key + acceptGUID).utf8)
        var digest = [UInt8](repeating: 0, count: 20)
        var length: UInt32 = 0
        _ = EVP_Digest(input, input.count, &digest, &length, EVP_sha1(), nil)
        return Data(digest).base64EncodedString()
    }

    /// Go's `base64.RawURLEncoding`.
    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
