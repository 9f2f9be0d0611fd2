// v2ray stream transports, server side (Go's v2raywebsocket and v2rayhttpupgrade servers): an
// inbound with `transport` first answers the HTTP upgrade on each accepted connection, then its
// protocol reads and writes through the stream.
//
// 1. Read the request head (at most 16 KiB). Check it as Go does: ws — the path (with early data in
//    the path, the path is a prefix and the rest is base64url early data; else exact) and the RFC
//    6455 headers; httpupgrade — `host` when configured, the path, GET, `Connection: upgrade`,
//    `Upgrade: websocket` and no `Sec-WebSocket-Key`. A bad request gets Go's status (404 or 400),
//    one log line, and the connection closes.
// 2. Answer 101, then raw bytes (httpupgrade) or WebSocket frames (ws: client frames are masked,
//    ours are not; early data is delivered first).
// `grpc` and `http` (Go's v2raygrpclite and v2rayhttp servers) run V2RayHTTPServerHandler instead:
// HTTP/2 (h2 or h2c) with one proxied connection per request stream, or one HTTP/1.1 request.
package import Adapter
package import Config
import Foundation
package import NIOCore

/// One inbound's transport, shared by its connections.
package struct V2RayTransportServer: Sendable {
    enum Kind: Sendable {
        case httpUpgrade(host: String?)
        case webSocket(maxEarlyData: Int, earlyDataHeader: String?)
        /// `grpc` and `http`: HTTP/2 streams (or one HTTP/1.1 request) per connection.
        case streams(V2RayHTTPRoute)
    }

    /// Puts an inbound's protocol handlers on a stream channel: the connection itself (ws,
    /// httpupgrade, HTTP/1.1) or one HTTP/2 stream of it, with that stream's flow id.
    package typealias StreamSetup = @Sendable (_ channel: any Channel, _ flowID: FlowID) throws -> Void

    let kind: Kind
    let path: String

    /// Go's server setup (the path gets a leading slash). Throws for transports this build lacks.
    package init(options: V2RayTransportOptions) throws(AdapterError) {
        func normalized(_ path: String?) -> String {
            let path = path ?? ""
            return path.hasPrefix("/") ? path : "/" + path
        }
        switch options {
        case .httpUpgrade(let upgrade):
            kind = .httpUpgrade(host: (upgrade.host ?? "").isEmpty ? nil : upgrade.host)
            path = normalized(upgrade.path)
        case .ws(let ws):
            kind = .webSocket(maxEarlyData: Int(ws.maxEarlyData ?? 0),
                              earlyDataHeader: (ws.earlyDataHeaderName ?? "").isEmpty ? nil : ws.earlyDataHeaderName)
            path = normalized(ws.path)
        case .grpc(let grpc):
            // Go compares the decoded request path with the raw service name.
            path = "/" + (grpc.serviceName ?? "") + "/Tun"
            var route = V2RayHTTPRoute(kind: .grpc, path: path)
            route.idleTimeout = grpc.idleTimeout.flatMap { $0.nanoseconds > 0 ? .nanoseconds($0.nanoseconds) : nil }
            kind = .streams(route)
        case .http(let http):
            path = normalized(http.path)
            let headers = http.headers.entries.flatMap { entry in entry.values.map { (entry.key, $0) } }
            var route = V2RayHTTPRoute(kind: .http(hosts: http.host, method: (http.method ?? "").isEmpty ? nil : http.method, headers: headers),
                                       path: path)
            route.idleTimeout = http.idleTimeout.flatMap { $0.nanoseconds > 0 ? .nanoseconds($0.nanoseconds) : nil }
            kind = .streams(route)
        default:
            throw AdapterError.notImplemented("transport \(options.type)")
        }
    }

    /// ALPN the inbound's TLS must offer (Go's Serve): grpc puts h2 first when missing; http
    /// offers h2 and http/1.1 when the config names none, else puts h2 first when missing.
    package static func alpn(for options: V2RayTransportOptions, configured: [String]) -> [String] {
        switch options {
        case .grpc:
            return configured.contains("h2") ? configured : ["h2"] + configured
        case .http:
            if configured.isEmpty { return ["h2", "http/1.1"] }
            return configured.contains("h2") ? configured : ["h2"] + configured
        default:
            return configured
        }
    }

    /// An inbound's connection: `setup` (the protocol's handlers) runs on the connection itself or,
    /// with `transport`, on each stream the transport yields after its upgrade. A second HTTP/2
    /// stream of grpc/http is logged as an inbound connection of its own; a refused upgrade is
    /// logged as Go's `process connection from <source>: <reason>`.
    package static func serve(_ transport: V2RayTransportServer?, on channel: any Channel, flowID: FlowID, logger: ContextLogger,
                              setup: @escaping StreamSetup) throws {
        guard let transport else { return try setup(channel, flowID) }
        let source = channel.remoteAddress.flatMap { Destination($0) }.map { "\($0)" } ?? "unknown"
        try transport.install(on: channel, flowID: flowID, onReject: { reason in
            logger.error("process connection from \(source): \(reason)", flow: flowID)
        }, setup: { stream, streamFlowID in
            if streamFlowID != flowID { logger.info("inbound connection from \(source)", flow: streamFlowID) }
            try setup(stream, streamFlowID)
        })
    }

    /// Installs the transport on an accepted connection (after TLS) and has `setup` put the
    /// protocol's handlers on each stream it yields: at once for ws and httpupgrade (after the
    /// transport's handler), per request for grpc and http. `onReject` logs a bad request.
    package func install(on channel: any Channel, flowID: FlowID, onReject: @escaping @Sendable (String) -> Void,
                         setup: @escaping StreamSetup) throws {
        switch kind {
        case .streams(let route):
            try channel.pipeline.syncOperations.addHandler(V2RayHTTPServerHandler(route: route, flowID: flowID, onReject: onReject, setup: setup))
        case .httpUpgrade, .webSocket:
            try channel.pipeline.syncOperations.addHandler(makeHandler(onReject: onReject))
            try setup(channel, flowID)
        }
    }

    /// The handler to put first on an accepted connection (after TLS); `onReject` logs a bad request.
    package func makeHandler(onReject: @escaping @Sendable (String) -> Void) -> any ChannelHandler {
        V2RayTransportServerHandler(server: self, onReject: onReject)
    }
}

/// Answers the upgrade, then carries the stream (see the file comment).
final class V2RayTransportServerHandler: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let server: V2RayTransportServer
    private let onReject: @Sendable (String) -> Void
    private var state = State.request
    private var inbound = ByteBuffer()
    /// The search for the end of the request head in `inbound`.
    private(set) var headEnd = HTTPHeadEnd()
    private var frames = WebSocketFrameReader()

    enum State { case request, raw, webSocket, closed }

    init(server: V2RayTransportServer, onReject: @escaping @Sendable (String) -> Void) {
        self.server = server
        self.onReject = onReject
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        switch state {
        case .raw:
            context.fireChannelRead(data)
        case .webSocket:
            inbound.writeBuffer(&bytes)
            if !readFrames(context) { context.read() }
        case .closed:
            break
        case .request:
            inbound.writeBuffer(&bytes)
            guard let length = headEnd.find(in: inbound) else {
                if inbound.readableBytes > 16_384 { reject(context, status: "400 Bad Request", "request head too large") } else { context.read() }
                return
            }
            let head = inbound.readString(length: length) ?? ""
            inbound.discardReadBytes()
            answer(context, head: head)
        }
    }

    private func answer(_ context: ChannelHandlerContext, head: String) {
        var lines = head.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        let requestLine = lines.isEmpty ? "" : lines.removeFirst()
        let parts = requestLine.split(separator: " ")
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else {
            reject(context, status: "400 Bad Request", "malformed HTTP request")
            return
        }
        let method = String(parts[0]), target = String(parts[1])
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let pathOnly = String(target.split(separator: "?", maxSplits: 1).first ?? "").removingPercentEncoding ?? target
        switch server.kind {
        case .streams:
            // grpc and http run V2RayHTTPServerHandler instead.
            reject(context, status: "400 Bad Request", "unexpected transport")
        case .httpUpgrade(let host):
            if let host, headers["host"] != host { reject(context, status: "400 Bad Request", "bad host: \(headers["host"] ?? "")"); return }
            guard pathOnly == server.path else { reject(context, status: "404 Not Found", "bad path: \(pathOnly)"); return }
            guard method == "GET" else { reject(context, status: "404 Not Found", "bad method: \(method)"); return }
            guard headers["connection"]?.lowercased() == "upgrade" else { reject(context, status: "404 Not Found", "not a upgrade request"); return }
            guard headers["upgrade"]?.lowercased() == "websocket" else { reject(context, status: "404 Not Found", "not a websocket request"); return }
            guard headers["sec-websocket-key"] == nil else { reject(context, status: "404 Not Found", "real websocket request received"); return }
            state = .raw
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n")),
                                  promise: nil)
            if inbound.readableBytes > 0 {
                let rest = inbound
                inbound = ByteBuffer()
                context.fireChannelRead(wrapInboundOut(rest))
                context.fireChannelReadComplete()
            } else {
                // The protocol's read request was spent on the request head: ask again for its bytes.
                context.read()
            }
        case .webSocket(let maxEarlyData, let earlyDataHeader):
            var earlyText = ""
            if maxEarlyData == 0 || earlyDataHeader != nil {
                guard pathOnly == server.path else { reject(context, status: "404 Not Found", "bad path: \(pathOnly)"); return }
                if let earlyDataHeader { earlyText = headers[earlyDataHeader.lowercased()] ?? "" }
            } else {
                guard target.hasPrefix(server.path) else { reject(context, status: "404 Not Found", "bad path: \(pathOnly)"); return }
                earlyText = String(target.dropFirst(server.path.count))
            }
            guard let early = Self.decodeBase64URL(earlyText) else {
                reject(context, status: "400 Bad Request", "decode early data: illegal base64 data")
                return
            }
            guard method == "GET", headers["upgrade"]?.lowercased() == "websocket",
                  headers["connection"]?.lowercased().contains("upgrade") == true,
                  let key = headers["sec-websocket-key"], headers["sec-websocket-version"] == "13" else {
                reject(context, status: "400 Bad Request", "upgrade websocket connection: bad request")
                return
            }
            state = .webSocket
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                                             + "Sec-WebSocket-Accept: \(WebSocketClientHandler.accept(key))\r\n\r\n")), promise: nil)
            if !early.isEmpty {
                context.fireChannelRead(wrapInboundOut(ByteBuffer(bytes: early)))
                context.fireChannelReadComplete()
            }
            if !readFrames(context) { context.read() }
        }
    }

    /// Delivers the whole frames buffered; true when it passed data on (else the protocol still waits
    /// and the caller asks for more).
    @discardableResult
    private func readFrames(_ context: ChannelHandlerContext) -> Bool {
        var delivered = false
        do {
            while let frame = try frames.next(from: &inbound) {
                switch frame.opcode {
                case 0x0, 0x1, 0x2:
                    if frame.payload.readableBytes > 0 {
                        context.fireChannelRead(wrapInboundOut(frame.payload))
                        delivered = true
                    }
                case 0x8:
                    state = .closed
                    context.writeAndFlush(wrapOutboundOut(WebSocketFrameReader.frame(opcode: 0x8, payload: ByteBuffer(), masked: false,
                                                                                    allocator: context.channel.allocator)), promise: nil)
                    context.close(promise: nil)
                    return true
                case 0x9:
                    context.writeAndFlush(wrapOutboundOut(WebSocketFrameReader.frame(opcode: 0xA, payload: frame.payload, masked: false,
                                                                                    allocator: context.channel.allocator)), promise: nil)
                default:
                    break
                }
            }
            inbound.discardReadBytes()
        } catch {
            state = .closed
            onReject("websocket: \(error)")
            context.close(promise: nil)
            return true
        }
        return delivered
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if state == .raw || state == .webSocket { context.fireChannelReadComplete() }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch state {
        case .webSocket:
            context.write(wrapOutboundOut(WebSocketFrameReader.frame(opcode: 0x2, payload: unwrapOutboundIn(data), masked: false,
                                                                    allocator: context.channel.allocator)), promise: promise)
        case .raw:
            context.write(data, promise: promise)
        case .request, .closed:
            promise?.fail(ChannelError.ioOnClosedChannel)
        }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        // A WebSocket has no half-close of its own: ending our side ends the stream.
        context.close(mode: state == .webSocket && mode == .output ? .all : mode, promise: promise)
    }

    private func reject(_ context: ChannelHandlerContext, status: String, _ reason: String) {
        state = .closed
        onReject(reason)
        let response = "HTTP/1.1 \(status)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: response))).whenComplete { _ in context.close(promise: nil) }
    }

    /// Go's `base64.RawURLEncoding` (no padding); nil for bad input.
    static func decodeBase64URL(_ text: String) -> [UInt8]? {
        if text.isEmpty { return [] }
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        guard !standard.contains("=") else { return nil }
        while standard.count % 4 != 0 { standard += "=" }
        return Data(base64Encoded: standard).map { Array($0) }
    }
}

/// RFC 6455 §5.2 frames: reads whole frames (unmasking masked ones) and builds them. Also used by
/// the Clash API's WebSocket streams (ControlAPI).
package struct WebSocketFrameReader {
    /// The largest payload accepted in one frame (64 MiB).
    static let maximumPayload: UInt64 = 1 << 26

    package struct Frame {
        package let opcode: UInt8
        package let payload: ByteBuffer
    }

    package struct FrameError: Error, CustomStringConvertible {
        package let description: String
    }

    package init() {}

    /// Sec-WebSocket-Accept for a client's `Sec-WebSocket-Key` (RFC 6455 §4.2.2).
    package static func acceptValue(forKey key: String) -> String { WebSocketClientHandler.accept(key) }

    /// The next whole frame at the reader index, consumed; nil (nothing consumed) when more bytes are
    /// needed. Throws on a frame over the limit.
    package mutating func next(from buffer: inout ByteBuffer) throws -> Frame? {
        let start = buffer.readerIndex
        guard let first = buffer.getInteger(at: start, as: UInt8.self), let second = buffer.getInteger(at: start + 1, as: UInt8.self) else { return nil }
        var offset = start + 2
        var length = UInt64(second & 0x7F)
        if length == 126 {
            guard let extended = buffer.getInteger(at: offset, as: UInt16.self) else { return nil }
            length = UInt64(extended)
            offset += 2
        } else if length == 127 {
            guard let extended = buffer.getInteger(at: offset, as: UInt64.self) else { return nil }
            length = extended
            offset += 8
        }
        guard length <= Self.maximumPayload else { throw FrameError(description: "frame too large (\(length) bytes)") }
        var mask: [UInt8]?
        if second & 0x80 != 0 {
            guard let bytes = buffer.getBytes(at: offset, length: 4) else { return nil }
            mask = bytes
            offset += 4
        }
        guard var payload = buffer.getSlice(at: offset, length: Int(length)) else { return nil }
        buffer.moveReaderIndex(to: offset + Int(length))
        if let mask { payload = Self.masked(payload, key: mask) }
        return Frame(opcode: first & 0x0F, payload: payload)
    }

    /// One final frame with `opcode`; masked when `masked` (a client's frames) with `maskingKey`, random
    /// unless given (a fuzzer passes its own draw).
    package static func frame(opcode: UInt8, payload: ByteBuffer, masked: Bool, allocator: ByteBufferAllocator,
                              maskingKey: UInt32 = .random(in: .min ... .max)) -> ByteBuffer {
        var out = allocator.buffer(capacity: payload.readableBytes + 14)
        out.writeInteger(0x80 | opcode)
        let count = payload.readableBytes
        let maskBit: UInt8 = masked ? 0x80 : 0
        if count < 126 {
            out.writeInteger(maskBit | UInt8(count))
        } else if count <= 0xFFFF {
            out.writeInteger(maskBit | 126)
            out.writeInteger(UInt16(count))
        } else {
            out.writeInteger(maskBit | 127)
            out.writeInteger(UInt64(count))
        }
        if masked {
            let key = (0..<4).map { UInt8(truncatingIfNeeded: maskingKey >> (24 - 8 * $0)) }
            out.writeBytes(key)
            var data = Self.masked(payload, key: key)
            out.writeBuffer(&data)
        } else {
            var data = payload
            out.writeBuffer(&data)
        }
        return out
    }

    /// XOR with the 4-byte key (RFC 6455 §5.3).
    static func masked(_ payload: ByteBuffer, key: [UInt8]) -> ByteBuffer {
        var out = payload
        out.withUnsafeMutableReadableBytes { raw in
            for index in 0..<raw.count { raw[index] ^= key[index & 3] }
        }
        return out
    }
}
