// HTTP/1.x message heads (RFC 9112 §2–§5): a start line, header lines, an empty line. Lines may
// end in CRLF or bare LF (§2.2 lets a recipient accept LF). Header field values are trimmed of
// optional whitespace; names keep their case for forwarding and compare case-insensitively.
import Config
package import NIOCore

/// One header field, in arrival order and original case.
package struct HTTPHeader: Hashable, Sendable {
    package var name: String
    package var value: String

    package init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// Header fields with case-insensitive lookup.
package struct HTTPHeaders: Hashable, Sendable, Sequence {
    package var fields: [HTTPHeader]

    package init(_ fields: [HTTPHeader] = []) { self.fields = fields }

    /// The first value of `name`, compared ignoring ASCII case.
    package subscript(name: String) -> String? {
        fields.first { Self.same($0.name, name) }?.value
    }

    /// Every value of `name`.
    package func values(_ name: String) -> [String] {
        fields.filter { Self.same($0.name, name) }.map(\.value)
    }

    /// Appends a field.
    package mutating func add(_ name: String, _ value: String) { fields.append(HTTPHeader(name, value)) }

    /// Removes every field named `name`.
    package mutating func remove(_ name: String) { fields.removeAll { Self.same($0.name, name) } }

    /// Replaces every field named `name` with one field.
    package mutating func set(_ name: String, _ value: String) {
        remove(name)
        add(name, value)
    }

    /// True when `name` has a comma-separated token equal to `token` (ASCII case-insensitive),
    /// as `Connection: keep-alive, Upgrade` has `upgrade`.
    package func hasToken(_ name: String, _ token: String) -> Bool {
        values(name).contains { value in
            value.split(separator: ",").contains { Self.same($0.trimmingSpaces, token) }
        }
    }

    package func makeIterator() -> IndexingIterator<[HTTPHeader]> { fields.makeIterator() }

    /// ASCII case-insensitive equality, as header names compare.
    package static func same(_ a: some StringProtocol, _ b: some StringProtocol) -> Bool {
        let a = a.utf8, b = b.utf8
        guard a.count == b.count else { return false }
        return zip(a, b).allSatisfy { lower($0) == lower($1) }
    }

    @inline(__always) private static func lower(_ c: UInt8) -> UInt8 {
        (c >= 0x41 && c <= 0x5A) ? c | 0x20 : c
    }

    /// Writes `Name: value\r\n` for each field.
    package func write(to buffer: inout ByteBuffer) {
        for field in fields {
            buffer.writeString(field.name)
            buffer.writeStaticString(": ")
            buffer.writeString(field.value)
            buffer.writeStaticString("\r\n")
        }
    }
}


/// Where the scan of one head stopped, so that the next read's scan starts there instead of at the
/// head's first byte: a head trickling in byte by byte (up to the 64 KiB limit) then costs time
/// linear in its length, not quadratic. Offsets count from the buffer's reader index, which must
/// not move until the head is complete; a fresh value per head (the scanner resets it on success).
package struct HTTPHeadProgress: Sendable {
    /// Bytes already scanned.
    var scanned = 0
    /// Where the start line begins (after the empty lines a client may send first); nil until a
    /// byte other than CR or LF arrived.
    var start: Int?
    /// Where the line being scanned begins.
    var lineStart = 0
    /// Every byte the scans looked at over this value's life: a test hook for linearity.
    package internal(set) var examinedByteCount = 0

    package init() {}
}

/// Finds a complete head in a buffer and splits it into lines.
enum HTTPHeadScanner {
    /// The lines of the head at the reader index (without line endings, without the empty line)
    /// and the index just past the empty line; nil while incomplete. Throws once `limit` bytes
    /// have arrived without the end of the head. Leading empty lines are skipped (RFC 9112 §2.2).
    ///
    /// `progress` carries the scan from one call to the next (see `HTTPHeadProgress`): every byte
    /// is looked at once however the head is cut into reads.
    static func lines(in buffer: ByteBuffer, limit: Int, resume progress: inout HTTPHeadProgress) throws(HTTPProxyError) -> ([Substring], Int)? {
        let result: (found: (String, Int)?, overLimit: Bool) = buffer.withUnsafeReadableBytes { raw in
            var index = progress.scanned
            defer {
                progress.examinedByteCount += max(0, index - progress.scanned)
                progress.scanned = index
            }
            // Skip CRLFs before the start line, as servers SHOULD.
            if progress.start == nil {
                while index < raw.count, raw[index] == 0x0D || raw[index] == 0x0A { index += 1 }
                guard index < raw.count else { return (nil, index >= limit) }
                progress.start = index
                progress.lineStart = index
            }
            while index < raw.count {
                // The limit counts from the reader index, so even endless blank lines end.
                if index >= limit { return (nil, true) }
                if raw[index] == 0x0A {
                    // An empty line (LF or CRLF alone) ends the head.
                    let lineStart = progress.lineStart
                    let length = index - lineStart
                    if length == 0 || (length == 1 && raw[lineStart] == 0x0D) {
                        let start = progress.start ?? 0
                        let text = String(decoding: UnsafeRawBufferPointer(rebasing: raw[start..<lineStart]), as: UTF8.self)
                        index += 1
                        return ((text, index), false)
                    }
                    progress.lineStart = index + 1
                }
                index += 1
            }
            return (nil, index >= limit)
        }
        if result.overLimit { throw .headTooLarge(limit: limit) }
        if result.found != nil {
            // The next head starts afresh; the hook keeps counting.
            progress.scanned = 0
            progress.start = nil
            progress.lineStart = 0
        }
        guard let (text, end) = result.found else { return nil }
        // Split on bytes: as Characters, "\r\n" is one grapheme and would not split on "\n".
        var lines: [Substring] = []
        var lineStart = text.utf8.startIndex
        for index in text.utf8.indices where text.utf8[index] == 0x0A {
            var lineEnd = index
            if lineEnd > lineStart, text.utf8[text.utf8.index(before: lineEnd)] == 0x0D { lineEnd = text.utf8.index(before: lineEnd) }
            lines.append(Substring(text.utf8[lineStart..<lineEnd]))
            lineStart = text.utf8.index(after: index)
        }
        return (lines, buffer.readerIndex + end)
    }

    /// Parses `Name: value` lines. Rejects empty names and whitespace before the colon
    /// (RFC 9112 §5.1 says a server MUST reject it) and obsolete line folding.
    static func headers(_ lines: ArraySlice<Substring>) throws(HTTPProxyError) -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.fields.reserveCapacity(lines.count)
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { throw .malformedHeader }
            let name = line[..<colon]
            guard !name.isEmpty, !name.contains(" "), !name.contains("\t"),
                  line.first != " ", line.first != "\t" else { throw .malformedHeader }
            headers.add(String(name), String(line[line.index(after: colon)...].trimmingSpaces))
        }
        return headers
    }

    /// `HTTP/1.0` or `HTTP/1.1` as (major, minor).
    static func version(_ text: Substring) throws(HTTPProxyError) -> (Int, Int) {
        switch text {
        case "HTTP/1.1": return (1, 1)
        case "HTTP/1.0": return (1, 0)
        default:
            guard text.hasPrefix("HTTP/") else { throw .malformedStartLine }
            throw .unsupportedVersion
        }
    }
}

/// A request head: `METHOD SP request-target SP HTTP-version`, then headers.
package struct HTTPRequestHead: Hashable, Sendable {
    /// Longest head we buffer before answering 431 and closing (start line and headers together).
    /// Go's proxy reads heads without a bound; 64 KiB is four times what common servers allow.
    package static let maximumLength = 64 * 1024

    package var method: String
    package var target: String
    package var versionMajor: Int
    package var versionMinor: Int
    package var headers: HTTPHeaders

    package init(method: String, target: String, versionMajor: Int = 1, versionMinor: Int = 1,
                 headers: HTTPHeaders = HTTPHeaders()) {
        self.method = method
        self.target = target
        self.versionMajor = versionMajor
        self.versionMinor = versionMinor
        self.headers = headers
    }

    /// `HTTP/1.1` or `HTTP/1.0`, as the client spoke.
    package var version: String { "HTTP/\(versionMajor).\(versionMinor)" }

    /// Reads a whole head at the reader index. Nil (nothing consumed) until the empty line arrives;
    /// throws when it is malformed or longer than `limit`. On success the reader index is at the body.
    package static func read(from buffer: inout ByteBuffer,
                             limit: Int = maximumLength) throws(HTTPProxyError) -> HTTPRequestHead? {
        var resume = HTTPHeadProgress()
        return try read(from: &buffer, limit: limit, resume: &resume)
    }

    /// `read(from:limit:)` that resumes scanning where the last call stopped (see
    /// `HTTPHeadProgress`); `resume` is fresh for a new head and reset on success.
    package static func read(from buffer: inout ByteBuffer, limit: Int = maximumLength,
                             resume: inout HTTPHeadProgress) throws(HTTPProxyError) -> HTTPRequestHead? {
        guard let (lines, end) = try HTTPHeadScanner.lines(in: buffer, limit: limit, resume: &resume) else { return nil }
        guard let startLine = lines.first else { throw .malformedStartLine }
        let parts = startLine.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty,
              parts[0].utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { throw .malformedStartLine }
        let (major, minor) = try HTTPHeadScanner.version(parts[2])
        let headers = try HTTPHeadScanner.headers(lines.dropFirst())
        buffer.moveReaderIndex(to: end)
        return HTTPRequestHead(method: String(parts[0]), target: String(parts[1]),
                               versionMajor: major, versionMinor: minor, headers: headers)
    }

    /// Writes the head, ending with the empty line.
    package func write(to buffer: inout ByteBuffer) {
        buffer.writeString("\(method) \(target) \(version)\r\n")
        headers.write(to: &buffer)
        buffer.writeStaticString("\r\n")
    }
}

/// A response head: `HTTP-version SP status-code SP [reason-phrase]`, then headers.
package struct HTTPResponseHead: Hashable, Sendable {
    package var versionMajor: Int
    package var versionMinor: Int
    package var status: Int
    package var reason: String
    package var headers: HTTPHeaders

    package init(versionMajor: Int = 1, versionMinor: Int = 1, status: Int, reason: String,
                 headers: HTTPHeaders = HTTPHeaders()) {
        self.versionMajor = versionMajor
        self.versionMinor = versionMinor
        self.status = status
        self.reason = reason
        self.headers = headers
    }

    /// Reads a whole head; nil until complete; throws when malformed or longer than `limit`.
    package static func read(from buffer: inout ByteBuffer,
                             limit: Int = HTTPRequestHead.maximumLength) throws(HTTPProxyError) -> HTTPResponseHead? {
        var resume = HTTPHeadProgress()
        return try read(from: &buffer, limit: limit, resume: &resume)
    }

    /// `read(from:limit:)` resuming where the last call stopped.
    package static func read(from buffer: inout ByteBuffer, limit: Int = HTTPRequestHead.maximumLength,
                             resume: inout HTTPHeadProgress) throws(HTTPProxyError) -> HTTPResponseHead? {
        guard let (lines, end) = try HTTPHeadScanner.lines(in: buffer, limit: limit, resume: &resume) else { return nil }
        guard let startLine = lines.first else { throw .malformedStartLine }
        let parts = startLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2 else { throw .malformedStartLine }
        let (major, minor) = try HTTPHeadScanner.version(parts[0])
        guard parts[1].utf8.count == 3, let status = Int(parts[1]), status >= 100 else { throw .malformedStartLine }
        let headers = try HTTPHeadScanner.headers(lines.dropFirst())
        buffer.moveReaderIndex(to: end)
        return HTTPResponseHead(versionMajor: major, versionMinor: minor, status: status,
                                reason: parts.count == 3 ? String(parts[2]) : "", headers: headers)
    }

    /// Writes the head, ending with the empty line.
    package func write(to buffer: inout ByteBuffer) {
        buffer.writeString("HTTP/\(versionMajor).\(versionMinor) \(status) \(reason)\r\n")
        headers.write(to: &buffer)
        buffer.writeStaticString("\r\n")
    }
}
