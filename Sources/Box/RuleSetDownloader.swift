// RuleSetDownloader: the HTTP/1.1 GET a remote rule-set needs, over a flow the box's own outbound
// dials (`download_detour`), in plain text or TLS (OpenSSL through memory BIOs).
//
// 1. parse the URL (http or https, host, port, path with query)
// 2. dial `host:port` through the outbound (direct, socks, …): the channel comes back with autoRead
//    off and early bytes held by a FlowBufferHandler; we append a `DownloadStreamHandler`, drop the
//    holder (its bytes replay into ours) and turn autoRead on — without that, nothing is ever read
// 3. https: run the TLS handshake over that byte stream (system roots, which OpenSSL reads from
//    SSL_CERT_FILE / SSL_CERT_DIR when set; SNI; host name or IP verification)
// 4. send `GET` with `If-None-Match` when an ETag is known and `Connection: close`
// 5. read the status line and headers, then the body: chunked, Content-Length or until close,
//    never more than `maximumBodySize`
// 6. follow up to 10 redirects (Go's http.Client does), then return status, ETag and body
//
// Control plane only: one download per update interval, so it uses async/await and arrays.

import Config
import Adapter
import COpenSSL
import DNS
import Net
import NIOCore
import Rules

/// A parsed `http://` or `https://` URL.
struct DownloadURL: Equatable, Sendable {
    var isTLS: Bool
    var host: String
    var port: UInt16
    /// Path and query, at least "/".
    var target: String

    /// Parses `text`; throws Go-worded errors for what `net/url` and `http.Client` reject.
    init(_ text: String) throws(BoxError) {
        let scheme: String
        var rest: Substring
        if let range = text.firstRange(of: "://") {
            scheme = text[..<range.lowerBound].lowercased()
            rest = text[range.upperBound...]
        } else {
            throw BoxError(.start, "Get \"\(text)\": unsupported protocol scheme \"\"")
        }
        switch scheme {
        case "http": isTLS = false
        case "https": isTLS = true
        default: throw BoxError(.start, "Get \"\(text)\": unsupported protocol scheme \"\(scheme)\"")
        }
        if let fragment = rest.firstIndex(of: "#") { rest = rest[..<fragment] }
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        let path = rest[authorityEnd...]
        target = path.isEmpty ? "/" : (path.first == "?" ? "/" + path : String(path))
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        var portText: Substring?
        if authority.first == "[" {
            guard let close = authority.firstIndex(of: "]") else { throw BoxError(.start, "parse \"\(text)\": missing ']' in host") }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.first == ":" { portText = after.dropFirst() }
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            portText = authority[authority.index(after: colon)...]
        } else {
            host = String(authority)
        }
        guard !host.isEmpty else { throw BoxError(.start, "Get \"\(text)\": http: no Host in request URL") }
        if let portText, !portText.isEmpty {
            guard let value = UInt16(portText) else { throw BoxError(.start, "parse \"\(text)\": invalid port \":\(portText)\" after host") }
            port = value
        } else {
            port = isTLS ? 443 : 80
        }
    }

    /// The `Host` header: the port only when it is not the scheme's default.
    var hostHeader: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return port == (isTLS ? 443 : 80) ? name : "\(name):\(port)"
    }
}

/// What a GET returned.
struct DownloadResponse: Sendable {
    var status: Int
    /// The status line's text after the code (`Not Modified`), for Go's `unexpected status: 404 Not Found`.
    var statusText: String
    var etag: String?
    /// `Location`, for redirects.
    var location: String?
    var body: [UInt8]
}

/// Downloads over one outbound. Stateless; one call is one request (plus redirects).
struct RuleSetDownloader: Sendable {
    /// Go's `http.Client` default (1.12.12 sets none of its own for rule-sets).
    static let userAgent = "Go-http-client/1.1"
    let outbound: any Outbound
    let group: any EventLoopGroup
    var maximumBodySize = 32 << 20
    var timeout: TimeAmount = .seconds(60)

    /// GETs `url`, sending `If-None-Match: etag` when given. Throws `BoxError` worded as Go's
    /// `http.Client` (`Get "<url>": …`) for transport failures; HTTP statuses are returned.
    func get(_ url: String, etag: String?) async throws(BoxError) -> DownloadResponse {
        var current = url
        for _ in 0..<10 {
            let parsed = try DownloadURL(current)
            let response: DownloadResponse
            do {
                response = try await fetchOnce(parsed, etag: etag)
            } catch let error as BoxError {
                throw error
            } catch {
                throw BoxError(.start, "Get \"\(current)\": \(error)")
            }
            guard [301, 302, 303, 307, 308].contains(response.status), let location = response.location else {
                return response
            }
            current = location.contains("://") ? location
                : "\(parsed.isTLS ? "https" : "http")://\(parsed.hostHeader)\(location.hasPrefix("/") ? "" : "/")\(location)"
        }
        throw BoxError(.start, "Get \"\(current)\": stopped after 10 redirects")
    }

    /// `HEAD url`, no redirect followed, done once the response head is read: the urltest probe
    /// (Go's `urltest.URLTest`). Throws `BoxError` worded as Go's `http.Client` on failure.
    func head(_ url: String) async throws(BoxError) {
        let parsed = try DownloadURL(url)
        do {
            _ = try await fetchOnce(parsed, etag: nil, method: "HEAD")
        } catch let error as BoxError {
            throw error
        } catch let error as DialFailure {
            // Go dials before its http.Client runs: a dial error comes unwrapped.
            throw BoxError(.start, error.description)
        } catch {
            throw BoxError(.start, "Head \"\(url)\": \(error)")
        }
    }

    private func fetchOnce(_ url: DownloadURL, etag: String?, method: String = "GET") async throws -> DownloadResponse {
        let loop = group.next()
        let metadata = FlowMetadata(inbound: "", inboundType: "", network: .tcp, source: nil,
                                    destination: Destination(host: Host(url.host), port: url.port))
        let channel: any Channel
        do { channel = try await outbound.dialTCP(metadata, on: loop) } catch { throw DialFailure(underlying: error) }
        let reader = DownloadStreamHandler(limit: maximumBodySize + 65_536)
        let timer = channel.eventLoop.scheduleTask(in: timeout) {
            reader.fail(DownloadError("timeout"), channel: channel)
        }
        defer {
            timer.cancel()
            channel.close(promise: nil)
        }
        // A cancelled start (another rule-set failed first) ends the download at once.
        return try await withTaskCancellationHandler {
            try await exchange(url, etag: etag, method: method, channel: channel, reader: reader)
        } onCancel: {
            reader.fail(DownloadError("canceled"), channel: channel)
        }
    }

    private func exchange(_ url: DownloadURL, etag: String?, method: String, channel: any Channel,
                          reader: DownloadStreamHandler) async throws -> DownloadResponse {
        try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandler(reader)
            if let holder = try? channel.pipeline.syncOperations.handler(type: FlowBufferHandler.self) {
                channel.pipeline.syncOperations.removeHandler(holder, promise: nil)
            }
            _ = try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
            channel.read()
        }.get()
        var stream: any DownloadStream = ChannelDownloadStream(channel: channel, reader: reader)
        if url.isTLS { stream = try await TLSDownloadStream.connect(over: stream, serverName: url.host) }
        var request = "\(method) \(url.target) HTTP/1.1\r\nHost: \(url.hostHeader)\r\nUser-Agent: \(Self.userAgent)\r\n"
        if let etag, !etag.isEmpty { request += "If-None-Match: \(etag)\r\n" }
        // Go's transport asks for gzip itself and inflates the body transparently.
        request += "Accept-Encoding: gzip\r\nConnection: close\r\n\r\n"
        try await stream.write(Array(request.utf8))
        var parser = HTTPResponseReader(stream: stream, maximumBodySize: maximumBodySize)
        parser.headersOnly = method == "HEAD"
        return try await parser.read()
    }
}

/// The outbound could not connect; reads as the underlying error.
struct DialFailure: Error, CustomStringConvertible {
    let underlying: any Error
    var description: String { "\(underlying)" }
}

/// A download failure below HTTP (timeout, truncated body, bad chunk, too large).
struct DownloadError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A byte stream a response is read from: the channel, or TLS over it.
protocol DownloadStream: Sendable {
    /// The next bytes; empty at end of stream.
    func read() async throws -> [UInt8]
    func write(_ bytes: [UInt8]) async throws
}

/// Collects what the outbound's channel reads, for one reader task. Loop-confined.
final class DownloadStreamHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    private var pending: [UInt8] = []
    private var ended = false
    private var failure: (any Error)?
    private var waiter: EventLoopPromise<[UInt8]>?
    private let limit: Int

    init(limit: Int) { self.limit = limit }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        pending.append(contentsOf: buffer.readableBytesView)
        // The consumer enforces the body limit; this bounds what may pile up before it runs.
        if pending.count > limit { return fail(DownloadError("response too large"), channel: context.channel) }
        wake()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            ended = true
            wake()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        ended = true
        wake()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error, channel: context.channel)
    }

    /// Ends the stream with `error` and closes the channel. Any thread.
    func fail(_ error: any Error, channel: any Channel) {
        channel.eventLoop.execute {
            if self.failure == nil { self.failure = error }
            self.ended = true
            self.wake()
            channel.close(promise: nil)
        }
    }

    /// The next bytes (empty at the end). Call on the loop, one read at a time.
    func next(on loop: any EventLoop) -> EventLoopFuture<[UInt8]> {
        if let failure { return loop.makeFailedFuture(failure) }
        if !pending.isEmpty || ended {
            defer { pending.removeAll(keepingCapacity: false) }
            return loop.makeSucceededFuture(pending)
        }
        let promise = loop.makePromise(of: [UInt8].self)
        waiter = promise
        return promise.futureResult
    }

    private func wake() {
        guard let waiter else { return }
        self.waiter = nil
        if let failure { return waiter.fail(failure) }
        let bytes = pending
        pending.removeAll(keepingCapacity: false)
        waiter.succeed(bytes)
    }
}

/// The channel as a `DownloadStream`.
struct ChannelDownloadStream: DownloadStream {
    let channel: any Channel
    let reader: DownloadStreamHandler

    func read() async throws -> [UInt8] {
        try await channel.eventLoop.flatSubmit { [reader, channel] in reader.next(on: channel.eventLoop) }.get()
    }

    func write(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes)).get()
    }
}

/// TLS over another stream with OpenSSL memory BIOs. Used by one task at a time.
final class TLSDownloadStream: DownloadStream, @unchecked Sendable {
    private let lower: any DownloadStream
    private let context: OpaquePointer
    private let ssl: OpaquePointer

    private init(lower: any DownloadStream, context: OpaquePointer, ssl: OpaquePointer) {
        self.lower = lower
        self.context = context
        self.ssl = ssl
    }

    deinit {
        SSL_free(ssl)
        SSL_CTX_free(context)
    }

    /// Handshakes over `lower`, verifying the certificate against the system roots (or
    /// SSL_CERT_FILE) for `serverName`. Throws `DownloadError("tls: …")`.
    static func connect(over lower: any DownloadStream, serverName: String) async throws -> TLSDownloadStream {
        guard let context = SSL_CTX_new(TLS_client_method()) else { throw DownloadError("tls: SSL_CTX_new failed") }
        SSL_CTX_ctrl(context, 123 /* SSL_CTRL_SET_MIN_PROTO_VERSION */, 0x0303, nil)  // Go: TLS 1.2 minimum
        SSL_CTX_set_verify(context, 0x01 /* SSL_VERIFY_PEER */, nil)
        SSL_CTX_set_default_verify_paths(context)
        guard let ssl = SSL_new(context) else {
            SSL_CTX_free(context)
            throw DownloadError("tls: SSL_new failed")
        }
        let stream = TLSDownloadStream(lower: lower, context: context, ssl: ssl)
        guard let readBIO = BIO_new(BIO_s_mem()), let writeBIO = BIO_new(BIO_s_mem()) else { throw DownloadError("tls: BIO_new failed") }
        SSL_set_bio(ssl, readBIO, writeBIO)
        SSL_set_connect_state(ssl)
        let isIP = Adapter.IPAddress(serverName) != nil
        serverName.withCString { name in
            if !isIP { SSL_ctrl(ssl, 55 /* SSL_CTRL_SET_TLSEXT_HOSTNAME */, 0, UnsafeMutableRawPointer(mutating: name)) }
            if isIP { X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) } else { SSL_set1_host(ssl, name) }
        }
        let alpn: [UInt8] = [8] + Array("http/1.1".utf8)
        alpn.withUnsafeBufferPointer { _ = SSL_set_alpn_protos(ssl, $0.baseAddress, UInt32($0.count)) }
        while true {
            // OpenSSL keeps errors per thread and this task may resume on another thread after
            // any await: clear, call and read the error with no await in between.
            ERR_clear_error()
            let result = SSL_do_handshake(ssl)
            let error = result == 1 ? 0 : SSL_get_error(ssl, result)
            let failure = result == 1 || error == 2 /* WANT_READ */ || error == 3 /* WANT_WRITE */ ? nil : stream.handshakeError()
            try await stream.flushCiphertext()
            if let failure { throw failure }
            if result == 1 { return stream }
            if error == 2 {
                let bytes = try await lower.read()
                guard !bytes.isEmpty else { throw DownloadError("tls: handshake: connection closed") }
                try stream.feed(bytes)
            }
        }
    }

    func read() async throws -> [UInt8] {
        var scratch = [UInt8](repeating: 0, count: 16_384)
        while true {
            ERR_clear_error()
            let count = scratch.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
            if count > 0 { return Array(scratch[0..<Int(count)]) }
            let error = SSL_get_error(ssl, count)
            let reason = error == 2 || error == 6 ? nil : OpenSSLErrors.reason() ?? "read failed"
            try await flushCiphertext()
            if error == 6 /* ZERO_RETURN: close_notify */ { return [] }
            if let reason { throw DownloadError("tls: \(reason)") }
            let bytes = try await lower.read()
            // Servers often close without close_notify after a Connection: close response; the
            // HTTP layer decides whether the body was complete.
            if bytes.isEmpty { return [] }
            try feed(bytes)
        }
    }

    func write(_ bytes: [UInt8]) async throws {
        ERR_clear_error()
        let written = bytes.withUnsafeBytes { SSL_write(ssl, $0.baseAddress, Int32($0.count)) }
        guard written == bytes.count else { throw DownloadError("tls: \(OpenSSLErrors.reason() ?? "write failed")") }
        try await flushCiphertext()
    }

    private func feed(_ bytes: [UInt8]) throws {
        let written = bytes.withUnsafeBytes { BIO_write(SSL_get_rbio(ssl), $0.baseAddress, Int32($0.count)) }
        guard written == bytes.count else { throw DownloadError("tls: BIO_write failed") }
    }

    private func flushCiphertext() async throws {
        guard let writeBIO = SSL_get_wbio(ssl) else { return }
        var out: [UInt8] = []
        var scratch = [UInt8](repeating: 0, count: 16_384)
        while BIO_ctrl_pending(writeBIO) > 0 {
            let count = scratch.withUnsafeMutableBytes { BIO_read(writeBIO, $0.baseAddress, Int32($0.count)) }
            guard count > 0 else { break }
            out += scratch[0..<Int(count)]
        }
        if !out.isEmpty { try await lower.write(out) }
    }

    /// The certificate check's reason when that failed, else OpenSSL's.
    private func handshakeError() -> DownloadError {
        if let failure = OpenSSLErrors.verifyFailure(ssl) {
            return DownloadError("tls: failed to verify certificate: \(failure)")
        }
        return DownloadError("tls: handshake: \(OpenSSLErrors.reason() ?? "connection closed")")
    }
}

/// Reads one HTTP/1.1 response from a stream.
struct HTTPResponseReader {
    let stream: any DownloadStream
    let maximumBodySize: Int
    private var buffer: [UInt8] = []
    private var offset = 0
    private var ended = false
    /// The answer to a HEAD: done after the head.
    var headersOnly = false
    static let maximumHeaderSize = 65_536

    init(stream: any DownloadStream, maximumBodySize: Int) {
        self.stream = stream
        self.maximumBodySize = maximumBodySize
    }

    /// Reads more into the buffer; false at the end of the stream.
    private mutating func fill() async throws -> Bool {
        guard !ended else { return false }
        if offset > 0 && offset == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            offset = 0
        }
        let bytes = try await stream.read()
        if bytes.isEmpty { ended = true; return false }
        buffer += bytes
        return true
    }

    /// One CRLF-terminated line (without the CRLF).
    private mutating func line(limit: Int) async throws -> String {
        while true {
            if let end = buffer[offset...].firstIndex(of: 0x0A) {
                var lineEnd = end
                if lineEnd > offset && buffer[lineEnd - 1] == 0x0D { lineEnd -= 1 }
                let text = String(decoding: buffer[offset..<lineEnd], as: UTF8.self)
                offset = end + 1
                return text
            }
            guard buffer.count - offset <= limit else { throw DownloadError("net/http: header too long") }
            guard try await fill() else { throw DownloadError("unexpected EOF") }
        }
    }

    mutating func read() async throws -> DownloadResponse {
        let statusLine = try await line(limit: Self.maximumHeaderSize)
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]), (100...999).contains(status) else {
            throw DownloadError("malformed HTTP response \"\(statusLine.prefix(64))\"")
        }
        var headers: [(String, String)] = []
        var headerBytes = 0
        while true {
            let text = try await line(limit: Self.maximumHeaderSize)
            if text.isEmpty { break }
            headerBytes += text.utf8.count
            guard headerBytes <= Self.maximumHeaderSize else { throw DownloadError("net/http: header too long") }
            guard let colon = text.firstIndex(of: ":") else { throw DownloadError("malformed MIME header line: \(text.prefix(64))") }
            headers.append((text[..<colon].lowercased(), String(text[text.index(after: colon)...].trimmingSpaces)))
        }
        func header(_ name: String) -> String? { headers.first { $0.0 == name }?.1 }
        var response = DownloadResponse(status: status, statusText: parts.count > 2 ? String(parts[2]) : "",
                                        etag: header("etag"), location: header("location"), body: [])
        // RFC 9112 §6.3: no body for 1xx, 204 and 304, nor for the answer to a HEAD.
        if headersOnly || status == 304 || status == 204 || status < 200 { return response }
        if header("transfer-encoding")?.lowercased().contains("chunked") == true {
            response.body = try await chunkedBody()
        } else if let lengthText = header("content-length") {
            guard let length = Int(lengthText), length >= 0 else { throw DownloadError("bad Content-Length \"\(lengthText)\"") }
            guard length <= maximumBodySize else { throw DownloadError("response too large: \(length) bytes (limit \(maximumBodySize))") }
            while buffer.count - offset < length {
                guard try await fill() else { throw DownloadError("unexpected EOF") }
            }
            response.body = Array(buffer[offset..<offset + length])
        } else {
            while try await fill() {
                guard buffer.count - offset <= maximumBodySize else { throw DownloadError("response too large (limit \(maximumBodySize) bytes)") }
            }
            response.body = Array(buffer[offset...])
        }
        if header("content-encoding")?.lowercased() == "gzip" {
            do {
                response.body = try Zlib.decompress(response.body[...], limit: maximumBodySize, gzip: true)
            } catch {
                throw DownloadError("gzip: \(error.message)")
            }
        }
        return response
    }

    private mutating func chunkedBody() async throws -> [UInt8] {
        var body: [UInt8] = []
        while true {
            let sizeLine = try await line(limit: 1024)
            let sizeText = sizeLine.split(separator: ";", maxSplits: 1).first.map { $0.trimmingSpaces } ?? ""
            guard let size = Int(sizeText, radix: 16), size >= 0 else { throw DownloadError("invalid byte in chunk length") }
            if size == 0 {
                // Trailers, then the empty line.
                while try await !line(limit: Self.maximumHeaderSize).isEmpty {}
                return body
            }
            guard body.count + size <= maximumBodySize else { throw DownloadError("response too large (limit \(maximumBodySize) bytes)") }
            while buffer.count - offset < size + 2 {
                guard try await fill() else { throw DownloadError("unexpected EOF") }
            }
            body += buffer[offset..<offset + size]
            offset += size
            guard buffer[offset] == 0x0D, buffer[offset + 1] == 0x0A else { throw DownloadError("malformed chunked encoding") }
            offset += 2
        }
    }
}

