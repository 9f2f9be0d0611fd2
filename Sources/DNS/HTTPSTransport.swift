// The `https` DNS server (sing-box 1.12 dns/transport/https.go), DNS over HTTPS (RFC 8484). Like
// Go, it offers h2 and http/1.1 by ALPN (unless `tls.alpn` says otherwise) and speaks whichever the
// server picks: HTTP/2 multiplexes every query over one connection (DoH2Connection.swift), HTTP/1.1
// carries one query at a time per connection, from a small keep-alive pool.
//
// exchange:
// 1. the query goes out with ID 0 (RFC 8484 §4.1), as a POST to `path` (default /dns-query) with
//    Content-Type and Accept `application/dns-message`, the configured headers and Host (:authority)
//    set to `tls.server_name`, else the server address (Go ignores `method`: it always POSTs)
// 2. the shared h2 connection is used while it is usable (no GOAWAY, not closed); else an idle
//    HTTP/1.1 connection; else a new TLS connection is dialed and its ALPN decides which it is
// 3. a status other than 200 fails with Go's `unexpected status: 404 Not Found`; the body is the
//    response, which gets the asker's ID back
// 4. an HTTP/1.1 connection returns to the idle pool unless the server said `Connection: close`;
//    a query on a reused connection that closed meanwhile is retried once on a fresh one

package import Adapter
package import Config
package import NIOCore
import NIOHPACK
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
    /// The request's HTTP/2 header block (pseudo-headers first, names lowercased), built once.
    private let h2Headers: HPACKHeaders
    private let idle = Mutex<[DoHConnection]>([])
    static let maxIdle = 4
    /// The HTTP/2 connection queries share, and a dial in progress that concurrent queries join.
    private let shared = Mutex<SharedConnection>(SharedConnection())

    struct SharedConnection {
        var http2: DoH2Connection?
        var dialing: Task<DoHNegotiated, any Error>?
        /// The server answered the last dial with HTTP/1.1: dial per query, do not join.
        var speaksHTTP1 = false
    }

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
        var h2: HPACKHeaders = [":method": "POST", ":scheme": "https", ":authority": host, ":path": requestPath]
        for (key, values) in headers.entries {
            let lower = key.lowercased()
            guard !["host", "content-type", "accept", "content-length", "connection"].contains(lower) else { continue }
            for value in values where !value.contains("\r") && !value.contains("\n") {
                head += "\(key): \(value)\r\n"
                // RFC 9113 §8.2.2: connection-specific fields are malformed in HTTP/2.
                if !["keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te"].contains(lower) && !lower.hasPrefix(":") {
                    h2.add(name: lower, value: value)
                }
            }
        }
        head += "Content-Type: application/dns-message\r\nAccept: application/dns-message\r\n"
        h2.add(name: "content-type", value: "application/dns-message")
        h2.add(name: "accept", value: "application/dns-message")
        requestHead = head
        h2Headers = h2
    }

    package func exchange(_ message: DNSMessage) async throws -> DNSMessage {
        var query = message
        query.id = 0
        let wire: [UInt8]
        do { wire = try query.encoded() } catch { throw DNSError.malformedQuery(error) }
        // HTTP/2: the shared connection, or one dial that concurrent queries wait for together.
        if let http2 = shared.withLock({ $0.http2?.isUsable == true ? $0.http2 : nil }) {
            do {
                return try await exchange2(wire, message: message, on: http2)
            } catch where !(error is DNSError) && (!http2.isUsable || error is DoHConnection.Failure) {
                // It closed or sent GOAWAY under us (the stream may end before the connection says
                // so): once more on a new connection.
                http2.close()
            }
        }
        let (dial, owned) = shared.withLock { state -> (Task<DoHNegotiated, any Error>?, Bool) in
            if let http2 = state.http2, !http2.isUsable { state.http2 = nil }
            if let dialing = state.dialing { return (dialing, false) }
            if state.speaksHTTP1 { return (nil, false) }
            let task = Task { try await self.connect() }
            state.dialing = task
            return (task, true)
        }
        var fresh: DoHConnection?
        if let dial {
            let negotiated: DoHNegotiated
            do {
                negotiated = try await dial.value
            } catch {
                if owned { shared.withLock { $0.dialing = nil } }
                throw error
            }
            switch negotiated {
            case .http2(let http2):
                if owned { shared.withLock { $0.dialing = nil; $0.http2 = http2; $0.speaksHTTP1 = false } }
                return try await exchange2(wire, message: message, on: http2)
            case .http1(let connection):
                if owned {
                    shared.withLock { $0.dialing = nil; $0.speaksHTTP1 = true }
                    fresh = connection
                }
            }
        }
        var request = ByteBuffer()
        request.writeString(requestHead)
        request.writeString("Content-Length: \(wire.count)\r\n\r\n")
        request.writeBytes(wire)
        if let fresh {
            // Closed before the answer (a server's idle or overload close): once more below.
            do { return try await exchange(request, message: message, on: fresh) } catch DoHConnection.Failure.closed {}
        }
        // A reused connection may have been closed by the server meanwhile: then a fresh one.
        if let reused = idle.withLock({ $0.popLast() }) {
            do { return try await exchange(request, message: message, on: reused) } catch DoHConnection.Failure.closed {}
        }
        switch try await connect() {
        case .http1(let connection):
            return try await exchange(request, message: message, on: connection)
        case .http2(let http2):
            // The server chose h2 this time: share it from now on.
            shared.withLock { $0.http2 = http2; $0.speaksHTTP1 = false }
            return try await exchange2(wire, message: message, on: http2)
        }
    }

    /// One query as one stream of `connection`.
    private func exchange2(_ wire: [UInt8], message: DNSMessage, on connection: DoH2Connection) async throws -> DNSMessage {
        var headers = h2Headers
        headers.add(name: "content-length", value: String(wire.count))
        let response = try await connection.send(headers: headers, body: ByteBuffer(bytes: wire), timeout: timeout)
        return try answer(response, to: message)
    }

    /// The DNS answer in a response: status 200, a parsable body, the asker's ID.
    private func answer(_ response: DoHResponse, to message: DNSMessage) throws -> DNSMessage {
        guard response.status == 200 else {
            throw AdapterError(.other, "unexpected status: \(response.status) \(response.reason)")
        }
        var answer: DNSMessage
        do { answer = try DNSMessage(parsing: response.body) } catch { throw DNSError.malformedResponse(error) }
        answer.id = message.id
        return answer
    }

    private func exchange(_ request: ByteBuffer, message: DNSMessage, on connection: DoHConnection) async throws -> DNSMessage {
        let response = try await connection.send(request, timeout: timeout)
        guard response.status == 200 else {
            connection.close()
            return try answer(response, to: message)
        }
        let answer = try answer(response, to: message)
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
        return answer
    }

    /// Dials, runs TLS, and sets the connection up for what ALPN chose. Fails with
    /// `DNSError.timeout` when the handshake takes longer than the query timeout.
    private func connect() async throws -> DoHNegotiated {
        let channel = try await dialer.dialTCP(to: server, on: eventLoop)
        let negotiated = channel.eventLoop.makePromise(of: DoHNegotiated.self)
        let tls = self.tls
        let timeout = self.timeout
        try await channel.eventLoop.submit {
            let sync = channel.pipeline.syncOperations
            try sync.addHandler(try DNSTLSClientHandler(context: tls))
            let negotiation = DoHNegotiationHandler(promise: negotiated)
            try sync.addHandler(negotiation)
            if let held = try? sync.handler(type: FlowBufferHandler.self) { sync.removeHandler(held, promise: nil) }
            if !channel.isActive { negotiation.settle(DoHConnection.Failure.closed) }
            let bound = NIOLoopBound(negotiation, eventLoop: channel.eventLoop)
            let timer = channel.eventLoop.scheduleTask(in: timeout) {
                bound.value.settle(DNSError.timeout)
                channel.close(promise: nil)
            }
            negotiated.futureResult.whenComplete { _ in timer.cancel() }
        }.get()
        try await channel.setOption(ChannelOptions.autoRead, value: true).get()
        return try await negotiated.futureResult.get()
    }

    package func close() async {
        let connections = idle.withLock { pool -> [DoHConnection] in
            defer { pool = [] }
            return pool
        }
        for connection in connections { connection.close() }
        let http2 = shared.withLock { state -> DoH2Connection? in
            defer { state = SharedConnection() }
            return state.http2
        }
        http2?.close()
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

/// Where the search for the end of a response head (CR LF CR LF) stands. Each search resumes three
/// bytes before where the last one stopped and the end, once found, is kept while the body comes:
/// a head or body trickling in byte by byte costs linear work, not a rescan of the head per read.
struct DoHHeadSearch {
    private var searched = 0
    private var found: Int?
    /// Every byte position looked at (a test hook for linearity).
    private(set) var examinedByteCount = 0

    /// The offset of the CR LF CR LF in `bytes`, nil while it has not arrived.
    mutating func find(in bytes: [UInt8]) -> Int? {
        if let found { return found }
        var index = max(0, searched - 3)
        while index + 4 <= bytes.count {
            examinedByteCount += 1
            if bytes[index + 3] == 10, bytes[index + 2] == 13, bytes[index + 1] == 10, bytes[index] == 13 {
                found = index
                return index
            }
            index += 1
        }
        searched = bytes.count
        return nil
    }
}

/// Reads HTTP/1.1 responses (status line, headers, a Content-Length or chunked body) for a
/// `DoHConnection`. Bounded: heads over 16 KiB or bodies over 64 KiB close the connection.
final class DoHResponseHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    let connection: DoHConnection
    private var buffer: [UInt8] = []
    /// The search for the end of the head of the response at the front of `buffer`.
    private(set) var headSearch = DoHHeadSearch()

    init(connection: DoHConnection) { self.connection = connection }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        buffer += bytes.readableBytesView
        do {
            while let (response, used) = try Self.parse(buffer, headSearch: &headSearch) {
                buffer.removeFirst(used)
                headSearch = DoHHeadSearch()
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
        var headSearch = DoHHeadSearch()
        return try parse(bytes, headSearch: &headSearch)
    }

    /// `parse(_:)` for bytes that grow read by read: `headSearch` carries the search for the end of
    /// the head from one call to the next (reset it once a response was taken off the front).
    static func parse(_ bytes: [UInt8], headSearch: inout DoHHeadSearch) throws -> (DoHResponse, Int)? {
        guard let headEnd = headSearch.find(in: bytes) else {
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

