// The `https` DNS server (sing-box 1.12 dns/transport/https.go), DNS over HTTPS (RFC 8484) over
// HTTP/1.1: Go offers h2 and http/1.1 by ALPN; HTTP/2 needs swift-nio-http2, which this package does
// not have yet, so we offer http/1.1 only (unless `tls.alpn` says otherwise) and servers answer in it.
//
// exchange:
// 1. the query goes out with ID 0 (RFC 8484 §4.1), as a POST to `path` (default /dns-query) with
//    Content-Type and Accept `application/dns-message`, the configured headers and Host set to
//    `tls.server_name`, else the server address (Go ignores `method`: it always POSTs)
// 2. an idle keep-alive connection is reused, else a new TLS connection is dialed
// 3. a status other than 200 fails with Go's `unexpected status: 404 Not Found`; the body is the
//    response, which gets the asker's ID back
// 4. the connection returns to the idle pool unless the server said `Connection: close`

package import Adapter
package import Config
package import NIOCore
import Net
import Synchronization

/// The `https` DNS server.
package final class HTTPSTransport: DNSTransport {
    package let tag: String
    package var type: String { "https" }
    package let server: Destination
    private let tls: DNSTLSContext
    private let dialer: any Dialer
    private let eventLoop: any EventLoop
    private let timeout: TimeAmount
    /// The request head up to (not including) Content-Length, built once.
    private let requestHead: String
    private let idle = Mutex<[DoHConnection]>([])
    static let maxIdle = 4

    /// `path` defaults to /dns-query; `headers` are sent with every request.
    package init(tag: String, server: Destination, tls: DNSTLSContext, path: String?, headers: ListableMap,
                 dialer: any Dialer, eventLoop: any EventLoop, timeout: Duration = .seconds(10)) {
        self.tag = tag
        self.server = server
        self.tls = tls
        self.dialer = dialer
        self.eventLoop = eventLoop
        self.timeout = TimeAmount(timeout)
        var host = tls.serverName
        if host.contains(":") && !host.hasPrefix("[") { host = "[\(host)]" }
        if server.port != 443 { host += ":\(server.port)" }
        let requestPath = path.flatMap { $0.isEmpty ? nil : ($0.hasPrefix("/") ? $0 : "/" + $0) } ?? "/dns-query"
        var head = "POST \(requestPath) HTTP/1.1\r\nHost: \(host)\r\n"
        for (key, values) in headers.entries {
            let lower = key.lowercased()
            guard !["host", "content-type", "accept", "content-length", "connection"].contains(lower) else { continue }
            for value in values where !value.contains("\r") && !value.contains("\n") { head += "\(key): \(value)\r\n" }
        }
        head += "Content-Type: application/dns-message\r\nAccept: application/dns-message\r\n"
        requestHead = head
    }

    package func exchange(_ message: DNSMessage) async throws -> DNSMessage {
        var query = message
        query.id = 0
        let wire: [UInt8]
        do { wire = try query.encoded() } catch { throw DNSError.malformedQuery(error) }
        var request = ByteBuffer()
        request.writeString(requestHead)
        request.writeString("Content-Length: \(wire.count)\r\n\r\n")
        request.writeBytes(wire)
        // A reused connection may have been closed by the server meanwhile: one retry on a fresh one.
        let reused = idle.withLock { $0.popLast() }
        let connection: DoHConnection
        if let reused { connection = reused } else { connection = try await connect() }
        do {
            return try await exchange(request, message: message, on: connection)
        } catch DoHConnection.Failure.closed where reused != nil {
            return try await exchange(request, message: message, on: try await connect())
        }
    }

    private func exchange(_ request: ByteBuffer, message: DNSMessage, on connection: DoHConnection) async throws -> DNSMessage {
        let response = try await connection.send(request, timeout: timeout)
        guard response.status == 200 else {
            connection.close()
            throw AdapterError(.other, "unexpected status: \(response.status) \(response.reason)")
        }
        var answer: DNSMessage
        do { answer = try DNSMessage(parsing: response.body) } catch { throw DNSError.malformedResponse(error) }
        if response.keepAlive {
            let kept = idle.withLock { pool -> Bool in
                guard pool.count < Self.maxIdle else { return false }
                pool.append(connection)
                return true
            }
            if !kept { connection.close() }
        } else {
            connection.close()
        }
        answer.id = message.id
        return answer
    }

    private func connect() async throws -> DoHConnection {
        let channel = try await dialer.dialTCP(to: server, on: eventLoop)
        let connection = DoHConnection(channel: channel)
        let tls = self.tls
        try await channel.eventLoop.submit {
            let sync = channel.pipeline.syncOperations
            try sync.addHandler(try DNSTLSClientHandler(context: tls))
            try sync.addHandler(DoHResponseHandler(connection: connection))
            if let held = try? sync.handler(type: FlowBufferHandler.self) { sync.removeHandler(held, promise: nil) }
            if !channel.isActive { connection.closed(nil) }
        }.get()
        try await channel.setOption(ChannelOptions.autoRead, value: true).get()
        return connection
    }

    package func close() async {
        let connections = idle.withLock { pool -> [DoHConnection] in
            defer { pool = [] }
            return pool
        }
        for connection in connections { connection.close() }
    }
}

/// One HTTP/1.1 response.
struct DoHResponse {
    var status: Int
    var reason: String
    var keepAlive: Bool
    var body: [UInt8]
}

/// One TLS connection carrying one request at a time. Its promise lives on the channel's loop.
final class DoHConnection: @unchecked Sendable {
    enum Failure: Error { case closed }

    let channel: any Channel
    // Loop-confined.
    var current: EventLoopPromise<DoHResponse>?
    var failure: (any Error)?
    var isOpen = true

    init(channel: any Channel) { self.channel = channel }

    func send(_ request: ByteBuffer, timeout: TimeAmount) async throws -> DoHResponse {
        let loop = channel.eventLoop
        let promise = loop.makePromise(of: DoHResponse.self)
        loop.execute {
            guard self.isOpen, self.current == nil else { return promise.fail(self.failure ?? Failure.closed) }
            self.current = promise
            let timer = loop.scheduleTask(in: timeout) {
                guard self.current?.futureResult === promise.futureResult else { return }
                self.current = nil
                promise.fail(DNSError.timeout)
                self.channel.close(promise: nil)
            }
            promise.futureResult.whenComplete { _ in timer.cancel() }
            self.channel.writeAndFlush(request, promise: nil)
        }
        return try await promise.futureResult.get()
    }

    /// On the loop: a whole response arrived.
    func received(_ response: DoHResponse) {
        let promise = current
        current = nil
        promise?.succeed(response)
    }

    /// On the loop: the connection ended (`error` when TLS or the parser failed).
    func closed(_ error: (any Error)?) {
        isOpen = false
        if let error { failure = error }
        let promise = current
        current = nil
        promise?.fail(failure ?? Failure.closed)
    }

    func close() {
        channel.close(promise: nil)
    }
}

/// Reads HTTP/1.1 responses (status line, headers, a Content-Length or chunked body) for a
/// `DoHConnection`. Bounded: heads over 16 KiB or bodies over 64 KiB close the connection.
final class DoHResponseHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    let connection: DoHConnection
    private var buffer: [UInt8] = []

    init(connection: DoHConnection) { self.connection = connection }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        buffer += bytes.readableBytesView
        do {
            while let (response, used) = try Self.parse(buffer) {
                buffer.removeFirst(used)
                connection.received(response)
            }
            if buffer.count > 16_384 + 65_536 { throw BadResponse(reason: "response too large") }
        } catch {
            connection.closed(error)
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.closed(nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        connection.closed(error)
        context.close(promise: nil)
    }

    struct BadResponse: Error, CustomStringConvertible {
        var reason: String
        var description: String { "https: bad response: \(reason)" }
    }

    /// One response from the front of `bytes` and how many octets it used; nil when incomplete.
    static func parse(_ bytes: [UInt8]) throws -> (DoHResponse, Int)? {
        guard let headEnd = find(bytes, [13, 10, 13, 10], from: 0) else {
            if bytes.count > 16_384 { throw BadResponse(reason: "head too large") }
            return nil
        }
        let head = String(decoding: bytes[0..<headEnd], as: UTF8.self)
        var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false).makeIterator()
        guard let statusLine = lines.next() else { throw BadResponse(reason: "no status line") }
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw BadResponse(reason: "status line \(statusLine.prefix(64))")
        }
        var contentLength: Int?
        var chunked = false
        var keepAlive = parts[0] == "HTTP/1.1"
        while let line = lines.next() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingSpaces
            switch name {
            case "content-length":
                guard let length = Int(value), length >= 0, length <= 65_536 else { throw BadResponse(reason: "content-length \(value)") }
                contentLength = length
            case "transfer-encoding": chunked = value.lowercased().contains("chunked")
            case "connection":
                if value.lowercased() == "close" { keepAlive = false }
                if value.lowercased() == "keep-alive" { keepAlive = true }
            default: break
            }
        }
        let bodyStart = headEnd + 4
        let reason = parts.count > 2 ? String(parts[2]) : ""
        if chunked {
            var body: [UInt8] = []
            var index = bodyStart
            while true {
                guard let lineEnd = find(bytes, [13, 10], from: index) else { return nil }
                let sizeText = String(decoding: bytes[index..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
                guard let size = Int(sizeText.trimmingSpaces, radix: 16), size >= 0, body.count + size <= 65_536 else {
                    throw BadResponse(reason: "chunk size")
                }
                let dataStart = lineEnd + 2
                if size == 0 {
                    // Trailers are not expected; the body ends at the next empty line.
                    guard let end = find(bytes, [13, 10], from: dataStart) else { return nil }
                    return (DoHResponse(status: status, reason: reason, keepAlive: keepAlive, body: body), end + 2)
                }
                guard bytes.count >= dataStart + size + 2 else { return nil }
                body += bytes[dataStart..<dataStart + size]
                index = dataStart + size + 2
            }
        }
        guard let length = contentLength else {
            // No length: the body runs to the close; DNS answers always carry one, so refuse.
            throw BadResponse(reason: "no content-length")
        }
        guard bytes.count >= bodyStart + length else { return nil }
        return (DoHResponse(status: status, reason: reason, keepAlive: keepAlive, body: Array(bytes[bodyStart..<bodyStart + length])),
                bodyStart + length)
    }

    private static func find(_ bytes: [UInt8], _ needle: [UInt8], from start: Int) -> Int? {
        guard bytes.count >= needle.count, start <= bytes.count - needle.count else { return nil }
        var index = start
        while index <= bytes.count - needle.count {
            if bytes[index] == needle[0] && Array(bytes[index..<index + needle.count]) == needle { return index }
            index += 1
        }
        return nil
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs.
    var trimmingSpaces: Substring {
        var result = self
        while let first = result.first, first == " " || first == "\t" { result = result.dropFirst() }
        while let last = result.last, last == " " || last == "\t" { result = result.dropLast() }
        return result
    }
}
