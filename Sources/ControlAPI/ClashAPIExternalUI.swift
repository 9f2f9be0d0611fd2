// ClashAPIExternalUI: the Clash API's `external_ui`, as Go's clashapi serves it.
//
// - `/ui` answers 301 to `/ui/`, and `/ui/*` is the directory through Go's `http.FileServer` (index.html
//   for a directory, a listing without one, 301s to the canonical slash, Content-Type by extension or
//   sniffed, Last-Modified, If-Modified-Since and friends, byte ranges). Go mounts both outside the
//   secret's group, so they are answered before the secret is checked (`serve`).
// - Behind the secret (`route`): `GET /` redirects 307 to `/ui/` when a UI is configured, unless the
//   request's Content-Type is application/json (Go's `hello`); `POST /upgrade/ui` downloads the UI
//   again (Go's `updateExternalUI`, see ClashAPIExternalUI+Download.swift).
// The directory is `external_ui` with `$VAR`s expanded (Go's os.ExpandEnv), relative to the working
// directory (`-D`). Paths are percent-decoded and cleaned as rooted paths before they touch the file
// system, so neither `..` nor an encoded slash leaves the directory. Files are read whole (a
// dashboard's largest file is a few megabytes); this is control plane, off the event loop.
import Adapter
import Config
import Glibc
import NIOCore
import NIOHTTP1

/// `external_ui` of one Clash API server.
final class ClashAPIExternalUI: Sendable {
    /// `external_ui` is set (Go's `hello` redirect looks only at this).
    let isConfigured: Bool
    /// The directory served, `$VAR`s expanded; empty: nothing to serve or upgrade.
    let directory: String
    let setup: ClashAPISetup

    init(setup: ClashAPISetup) {
        self.setup = setup
        let configured = setup.options.externalUI ?? ""
        isConfigured = !configured.isEmpty
        directory = Self.expandEnvironment(configured)
    }

    // MARK: Routes

    /// `/ui` and `/ui/*` when a UI is configured (no secret, as Go mounts them); nil for other paths.
    func serve(_ head: HTTPRequestHead) -> ClashAPIResponse? {
        guard isConfigured, !directory.isEmpty else { return nil }
        let mark = head.uri.firstIndex(of: "?")
        let rawPath = mark.map { String(head.uri[..<$0]) } ?? head.uri
        let rawQuery = mark.map { String(head.uri[head.uri.index(after: $0)...]) } ?? ""
        if rawPath == "/ui" {
            // chi's `r.Get("/ui", http.RedirectHandler("/ui/", 301))`: other methods get 405.
            guard head.method == .GET else { return Self.methodNotAllowed(allow: "GET") }
            return Self.redirect(to: "/ui/", status: .movedPermanently)
        }
        guard rawPath.hasPrefix("/ui/") else { return nil }
        // Go's server refuses a target with a bad escape before any handler runs.
        guard let decoded = Self.percentDecoded(rawPath.dropFirst(4)) else {
            var response = Self.plainText(status: .badRequest, "400 Bad Request")
            response.headers.remove(name: "X-Content-Type-Options")
            return response
        }
        // http.StripPrefix("/ui/") then http.FileServer: the path is rooted, then cleaned.
        let urlPath = decoded.hasPrefix("/") ? decoded : "/" + decoded
        return serveFile(head, urlPath: urlPath, name: Self.cleanPath(urlPath), rawQuery: rawQuery)
    }

    /// The routes behind the secret that depend on the UI; nil for every other request.
    func route(_ head: HTTPRequestHead) async -> ClashAPIResponse? {
        let path = head.uri.firstIndex(of: "?").map { String(head.uri[..<$0]) } ?? head.uri
        if head.method == .GET, isConfigured, path.split(separator: "/").isEmpty,
           head.headers.first(name: "Content-Type") != "application/json" {
            return Self.redirect(to: "/ui/", status: .temporaryRedirect)
        }
        guard path == "/upgrade/ui" else { return nil }
        guard head.method == .POST else { return Self.methodNotAllowed(allow: "POST") }
        guard !directory.isEmpty else { return ClashAPIResponse(status: .notFound, message: "external UI not enabled") }
        setup.logger.info("upgrading external UI")
        do {
            try await download()
        } catch {
            setup.logger.error("upgrade external ui: \(error)")
            return ClashAPIResponse(status: .internalServerError, message: "\(error)")
        }
        setup.logger.info("updated external UI")
        return ClashAPIResponse(json: .object(JSONObject([("status", .string("ok"))])))
    }

    // MARK: http.FileServer

    /// Go's `serveFile(w, r, dir, name, redirect: true)`.
    private func serveFile(_ head: HTTPRequestHead, urlPath: String, name: String, rawQuery: String) -> ClashAPIResponse {
        // `…/index.html` goes to `…/` (relative, so it works under the prefix).
        if urlPath.hasSuffix("/index.html") { return Self.localRedirect("./", rawQuery: rawQuery) }
        guard !name.utf8.contains(0) else { return Self.notFound }
        var path = fileSystemPath(name)
        var info: Glibc.stat
        switch Self.fileStatus(path) {
        case .success(let value): info = value
        case .failure(let code): return Self.openError(code)
        }
        var isDirectory = info.st_mode & S_IFMT == S_IFDIR
        if isDirectory, !urlPath.hasSuffix("/") {
            return Self.localRedirect(Self.baseName(urlPath) + "/", rawQuery: rawQuery)
        }
        if !isDirectory, urlPath.hasSuffix("/") {
            let base = Self.baseName(urlPath)
            return Self.localRedirect("../" + (base == "/" || base == "." ? "" : base), rawQuery: rawQuery)
        }
        var fileName = Self.baseName(name)
        if isDirectory {
            // A directory's index.html is served in its place when there is one.
            let index = (name.hasSuffix("/") ? String(name.dropLast()) : name) + "/index.html"
            if case .success(let value) = Self.fileStatus(fileSystemPath(index)) {
                info = value
                path = fileSystemPath(index)
                fileName = "index.html"
                isDirectory = info.st_mode & S_IFMT == S_IFDIR
            }
        }
        let modified = Int(info.st_mtim.tv_sec)
        if isDirectory {
            if Self.ifModifiedSince(head, modified: modified) == false { return ClashAPIResponse(status: .notModified) }
            guard let listing = Self.listing(path) else {
                return Self.plainText(status: .internalServerError, "Error reading directory")
            }
            var response = ClashAPIResponse(status: .ok, headers: HTTPHeaders([("Content-Type", "text/html; charset=utf-8"),
                                                                             ("Last-Modified", HTTPDate.format(modified))]))
            response.body = Array(listing.utf8)
            return response
        }
        let content: [UInt8]
        switch Self.readFile(path) {
        case .success(let bytes): content = bytes
        case .failure(let code): return Self.openError(code)
        }
        return serveContent(head, name: fileName, modified: modified, content: content)
    }

    /// Go's `serveContent`: Content-Type, Last-Modified, the preconditions (RFC 7232 §6), ranges.
    private func serveContent(_ head: HTTPRequestHead, name: String, modified: Int, content: [UInt8]) -> ClashAPIResponse {
        var headers = HTTPHeaders()
        let type = GoMIME.type(forExtension: Self.extensionOf(name)) ?? GoMIME.sniff(content.prefix(512))
        headers.add(name: "Last-Modified", value: HTTPDate.format(modified))
        // No ETag is ever set, so If-Match fails unless it is `*` and If-None-Match only matches `*`.
        if let ifMatch = head.headers.first(name: "If-Match"), !ifMatch.isEmpty {
            if !ifMatch.split(separator: ",").contains(where: { $0.trimmingSpaces == "*" }) {
                return ClashAPIResponse(status: .preconditionFailed, headers: headers)
            }
        } else if let text = head.headers.first(name: "If-Unmodified-Since"), let since = HTTPDate.parse(text), modified > since {
            return ClashAPIResponse(status: .preconditionFailed, headers: headers)
        }
        if let ifNoneMatch = head.headers.first(name: "If-None-Match"), !ifNoneMatch.isEmpty {
            if ifNoneMatch.split(separator: ",").contains(where: { $0.trimmingSpaces == "*" }) {
                let isRead = head.method == .GET || head.method == .HEAD
                return ClashAPIResponse(status: isRead ? .notModified : .preconditionFailed, headers: headers)
            }
        } else if Self.ifModifiedSince(head, modified: modified) == false {
            return ClashAPIResponse(status: .notModified, headers: headers)
        }
        var rangeHeader = head.headers.first(name: "Range") ?? ""
        if !rangeHeader.isEmpty, let ifRange = head.headers.first(name: "If-Range"), head.method == .GET || head.method == .HEAD {
            // Without an ETag only a date equal to the file's keeps the range.
            if ifRange.hasPrefix("\"") || ifRange.hasPrefix("W/") || HTTPDate.parse(ifRange) != modified { rangeHeader = "" }
        }
        let size = content.count
        var ranges: [Range<Int>]
        switch HTTPByteRanges.parse(rangeHeader, size: size) {
        case .success(let parsed): ranges = parsed
        case .failure(.noOverlap) where size == 0: ranges = []
        case .failure(let error):
            // Go's reason phrase is RFC 2616's.
            var response = Self.plainText(status: .custom(code: 416, reasonPhrase: "Requested Range Not Satisfiable"), error.description)
            if error == .noOverlap { response.headers.add(name: "Content-Range", value: "bytes */\(size)") }
            return response
        }
        // Go: ranges adding up to more than the file are ignored (an attack or a confused client).
        if ranges.reduce(0, { $0 + $1.count }) > size { ranges = [] }
        var response = ClashAPIResponse(status: ranges.isEmpty ? .ok : .partialContent, headers: headers)
        response.headers.add(name: "Accept-Ranges", value: "bytes")
        switch ranges.count {
        case 0:
            response.headers.add(name: "Content-Type", value: type)
            response.body = content
        case 1:
            response.headers.add(name: "Content-Type", value: type)
            response.headers.add(name: "Content-Range", value: HTTPByteRanges.contentRange(ranges[0], size: size))
            response.body = Array(content[ranges[0]])
        default:
            let (boundary, body) = HTTPByteRanges.multipart(ranges, of: content, type: type)
            response.headers.add(name: "Content-Type", value: "multipart/byteranges; boundary=\(boundary)")
            response.body = body
        }
        return response
    }

    /// Go's `checkIfModifiedSince` as a Bool: false when the file is not newer (so 304); nil when
    /// the header is absent, unreadable or the method is not GET or HEAD.
    private static func ifModifiedSince(_ head: HTTPRequestHead, modified: Int) -> Bool? {
        guard head.method == .GET || head.method == .HEAD, let text = head.headers.first(name: "If-Modified-Since"),
              let since = HTTPDate.parse(text) else { return nil }
        return modified > since
    }

    /// Go's `dirList`: names sorted by bytes, a slash after directories, escaped twice over.
    private static func listing(_ path: String) -> String? {
        guard let handle = opendir(path) else { return nil }
        defer { closedir(handle) }
        var names: [(name: String, isDirectory: Bool)] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            // Go's Readdir reads each entry with lstat: a link to a directory is not shown as one.
            var info = Glibc.stat()
            let isDirectory = lstat(path + "/" + name, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
            names.append((name, isDirectory))
        }
        names.sort { Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8)) }
        var html = "<!doctype html>\n<meta name=\"viewport\" content=\"width=device-width\">\n<pre>\n"
        for entry in names {
            let name = entry.isDirectory ? entry.name + "/" : entry.name
            html += "<a href=\"\(escapedURLPath(name))\">\(escapedHTML(name))</a>\n"
        }
        return html + "</pre>\n"
    }

    // MARK: Files

    private func fileSystemPath(_ name: String) -> String {
        name == "/" ? directory : directory + name
    }

    private static func fileStatus(_ path: String) -> Result<Glibc.stat, Errno> {
        var info = Glibc.stat()
        return fstatat(AT_FDCWD, path, &info, 0) == 0 ? .success(info) : .failure(Errno(errno))
    }

    private static func readFile(_ path: String) -> Result<[UInt8], Errno> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(Errno(errno)) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(Errno(errno))
            }
            if count == 0 { return .success(bytes) }
            bytes += chunk[0..<count]
        }
    }

    /// An `errno` from opening a path.
    struct Errno: Error {
        var code: Int32
        init(_ code: Int32) { self.code = code }
    }

    /// Go's `toHTTPError` after `mapOpenError` (a file where a directory should be is "not found").
    private static func openError(_ error: Errno) -> ClashAPIResponse {
        switch error.code {
        case ENOENT, ENOTDIR, ENAMETOOLONG: return notFound
        case EACCES, EPERM: return plainText(status: .forbidden, "403 Forbidden")
        default: return plainText(status: .internalServerError, "500 Internal Server Error")
        }
    }

    // MARK: Responses

    private static var notFound: ClashAPIResponse { plainText(status: .notFound, "404 page not found") }

    /// Go's `http.Error`.
    private static func plainText(status: HTTPResponseStatus, _ text: String) -> ClashAPIResponse {
        var response = ClashAPIResponse(status: status, headers: HTTPHeaders([("Content-Type", "text/plain; charset=utf-8"),
                                                                             ("X-Content-Type-Options", "nosniff")]))
        response.body = Array((text + "\n").utf8)
        return response
    }

    /// Go's `http.Redirect` for a GET: an HTML body naming the target (printed with Fprintln, so
    /// two newlines).
    private static func redirect(to location: String, status: HTTPResponseStatus) -> ClashAPIResponse {
        var response = ClashAPIResponse(status: status, headers: HTTPHeaders([("Content-Type", "text/html; charset=utf-8"),
                                                                             ("Location", location)]))
        response.body = Array("<a href=\"\(escapedHTML(location))\">\(status.reasonPhrase)</a>.\n\n".utf8)
        return response
    }

    /// Go's `localRedirect`: a relative Location keeping the query, no body.
    private static func localRedirect(_ location: String, rawQuery: String) -> ClashAPIResponse {
        ClashAPIResponse(status: .movedPermanently,
                         headers: HTTPHeaders([("Location", rawQuery.isEmpty ? location : location + "?" + rawQuery)]))
    }

    /// chi's answer to a known path with another method.
    private static func methodNotAllowed(allow: String) -> ClashAPIResponse {
        ClashAPIResponse(status: .methodNotAllowed, headers: HTTPHeaders([("Allow", allow)]))
    }

    // MARK: Paths

    /// Go's `path.Clean` of a rooted path: no `.`, `..` or empty elements, no trailing slash but "/".
    static func cleanPath(_ path: String) -> String {
        var elements: [Substring] = []
        for element in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch element {
            case ".": continue
            case "..": if !elements.isEmpty { elements.removeLast() }
            default: elements.append(element)
            }
        }
        return "/" + elements.joined(separator: "/")
    }

    /// Go's `path.Base`: the last element, "/" for the root.
    static func baseName(_ path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        if trimmed.isEmpty { return "." }
        if trimmed == "/" { return "/" }
        return String(trimmed.split(separator: "/").last ?? trimmed)
    }

    /// Go's `filepath.Ext`: from the last dot of the last element, or "".
    static func extensionOf(_ name: String) -> String {
        for index in name.indices.reversed() {
            if name[index] == "/" { return "" }
            if name[index] == "." { return String(name[index...]) }
        }
        return ""
    }

    /// `%XX` decoded (the bytes as UTF-8); nil for a bad escape, as Go's URL parser.
    static func percentDecoded(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else { bytes.append(byte); continue }
            guard let high = iterator.next().flatMap(asciiHexValue), let low = iterator.next().flatMap(asciiHexValue) else { return nil }
            bytes.append(high << 4 | low)
        }
        return String(decoding: bytes, as: UTF8.self)
    }


    /// Go's `url.URL{Path: name}.String()`: escaped for a path, `./` before a first segment with a colon.
    static func escapedURLPath(_ name: String) -> String {
        var out = ""
        for byte in name.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                out.append(Character(Unicode.Scalar(byte)))
            case _ where "-_.~$&+,/:;=@".utf8.contains(byte):
                out.append(Character(Unicode.Scalar(byte)))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                out += "%" + String(decoding: [hex[Int(byte >> 4)], hex[Int(byte & 15)]], as: UTF8.self)
            }
        }
        if let colon = out.firstIndex(of: ":"), !out[..<colon].contains("/") { out = "./" + out }
        return out
    }

    /// Go's `htmlReplacer`.
    static func escapedHTML(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&#34;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    /// Go's `os.ExpandEnv`: `$NAME`, `${NAME}` and the shell's one-character specials; a bad
    /// `${…` is dropped, a lone `$` kept.
    static func expandEnvironment(_ text: String) -> String {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        var index = 0
        func isSpecial(_ byte: UInt8) -> Bool { "*#$@!?-0123456789".utf8.contains(byte) }
        func isNameByte(_ byte: UInt8) -> Bool {
            byte == UInt8(ascii: "_") || (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte)
        }
        func value(_ name: ArraySlice<UInt8>) -> [UInt8] {
            getenv(String(decoding: name, as: UTF8.self)).map { Array(String(cString: $0).utf8) } ?? []
        }
        while index < bytes.count {
            guard bytes[index] == UInt8(ascii: "$"), index + 1 < bytes.count else {
                out.append(bytes[index])
                index += 1
                continue
            }
            let rest = bytes[(index + 1)...]
            let first = rest.first ?? 0
            if first == UInt8(ascii: "{") {
                if rest.count > 2, isSpecial(rest[rest.startIndex + 1]), rest[rest.startIndex + 2] == UInt8(ascii: "}") {
                    out += value(rest[(rest.startIndex + 1)...(rest.startIndex + 1)])
                    index += 4
                } else if let close = rest.firstIndex(of: UInt8(ascii: "}")) {
                    if close > rest.startIndex + 1 { out += value(rest[(rest.startIndex + 1)..<close]) }  // `${}` is eaten
                    index = close + 1
                } else {
                    index += 2  // `${` without a close is eaten
                }
            } else if isSpecial(first) {
                out += value(rest.prefix(1))
                index += 2
            } else {
                let name = rest.prefix(while: isNameByte)
                if name.isEmpty { out.append(UInt8(ascii: "$")) } else { out += value(name) }
                index += 1 + name.count
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// HTTP dates (RFC 9110 §5.6.7) as Go's `http.TimeFormat` writes them and `http.ParseTime` reads them.
enum HTTPDate {
    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// `Thu, 26 Nov 2026 17:41:03 GMT`.
    static func format(_ seconds: Int) -> String {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }

    /// Seconds since the epoch of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), RFC 850
    /// (`Sunday, 06-Nov-94 08:49:37 GMT`) or ANSI C (`Sun Nov  6 08:49:37 1994`) date, the three Go
    /// accepts; nil for anything else.
    static func parse(_ text: String) -> Int? {
        let fields = text.split(separator: " ", omittingEmptySubsequences: false)
        func number(_ text: Substring, digits: ClosedRange<Int>) -> Int? {
            guard digits.contains(text.count), text.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            return Int(text)
        }
        let day: Int?, month: Int?, year: Int?, clock: Substring
        if fields.count == 6, fields[0].hasSuffix(","), fields[5] == "GMT" {
            (day, month, year, clock) = (number(fields[1], digits: 2...2), months.firstIndex(of: String(fields[2])),
                                         number(fields[3], digits: 4...4), fields[4])
        } else if fields.count == 4, fields[0].hasSuffix(","), fields[3] == "GMT" {
            let date = fields[1].split(separator: "-", omittingEmptySubsequences: false)
            guard date.count == 3, let short = number(date[2], digits: 2...2) else { return nil }
            // Go's two-digit years: 69–99 are 19xx, the rest 20xx.
            (day, month, year, clock) = (number(date[0], digits: 2...2), months.firstIndex(of: String(date[1])),
                                         short >= 69 ? 1900 + short : 2000 + short, fields[2])
        } else if fields.count == 5 || (fields.count == 6 && fields[2].isEmpty) {
            // ANSI C pads a one-digit day with a space; Go's `_2` also takes it unpadded.
            let rest = fields.count == 6 ? Array(fields[3...]) : Array(fields[2...])
            guard days.contains(String(fields[0])) else { return nil }
            (day, month, year, clock) = (number(rest[0], digits: fields.count == 6 ? 1...1 : 1...2),
                                         months.firstIndex(of: String(fields[1])), number(rest[2], digits: 4...4), rest[1])
        } else {
            return nil
        }
        let time = clock.split(separator: ":", omittingEmptySubsequences: false)
        guard let day, let month, let year, time.count == 3, let hour = number(time[0], digits: 2...2),
              let minute = number(time[1], digits: 2...2), let second = number(time[2], digits: 2...2),
              (1...31).contains(day), hour < 24, minute < 60, second < 60 else { return nil }
        return daysSinceEpoch(year: year, month: month + 1, day: day) * 86_400 + hour * 3600 + minute * 60 + second
    }

    /// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
    private static func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}

/// `Range: bytes=…` as Go's `parseRange` reads it.
enum HTTPByteRanges {
    enum Failure: Error, Equatable, CustomStringConvertible {
        case invalid, noOverlap
        var description: String { self == .invalid ? "invalid range" : "invalid range: failed to overlap" }
    }

    static func parse(_ text: String, size: Int) -> Result<[Range<Int>], Failure> {
        guard !text.isEmpty else { return .success([]) }
        guard text.hasPrefix("bytes=") else { return .failure(.invalid) }
        var ranges: [Range<Int>] = []
        var noOverlap = false
        for item in text.dropFirst(6).split(separator: ",", omittingEmptySubsequences: false) {
            let spec = item.trimmingSpaces
            if spec.isEmpty { continue }
            guard let dash = spec.firstIndex(of: "-") else { return .failure(.invalid) }
            let start = spec[..<dash].trimmingSpaces, end = spec[spec.index(after: dash)...].trimmingSpaces
            if start.isEmpty {
                // `-N`: the last N bytes.
                guard !end.isEmpty, !end.hasPrefix("-"), let count = Int(end), count >= 0 else { return .failure(.invalid) }
                ranges.append((size - min(count, size))..<size)
            } else {
                guard let first = Int(start), first >= 0 else { return .failure(.invalid) }
                if first >= size {
                    noOverlap = true
                    continue
                }
                var last = size - 1
                if !end.isEmpty {
                    guard let value = Int(end), first <= value else { return .failure(.invalid) }
                    last = min(value, size - 1)
                }
                ranges.append(first..<(last + 1))
            }
        }
        if noOverlap, ranges.isEmpty { return .failure(.noOverlap) }
        return .success(ranges)
    }

    /// `bytes 2-5/15`.
    static func contentRange(_ range: Range<Int>, size: Int) -> String {
        "bytes \(range.lowerBound)-\(range.upperBound - 1)/\(size)"
    }

    /// A multipart/byteranges body as Go's mime/multipart writer lays it out (a random 60-hex-digit
    /// boundary; each part's headers in sorted order).
    static func multipart(_ ranges: [Range<Int>], of content: [UInt8], type: String) -> (boundary: String, body: [UInt8]) {
        var generator = SystemRandomNumberGenerator()
        let boundary = (0..<30).map { _ -> String in
            let byte = UInt8.random(in: 0...255, using: &generator)
            return (byte < 16 ? "0" : "") + String(byte, radix: 16)
        }.joined()
        var body: [UInt8] = []
        for (index, range) in ranges.enumerated() {
            body += Array(((index == 0 ? "" : "\r\n") + "--\(boundary)\r\n").utf8)
            body += Array("Content-Range: \(contentRange(range, size: content.count))\r\nContent-Type: \(type)\r\n\r\n".utf8)
            body += content[range]
        }
        body += Array("\r\n--\(boundary)--\r\n".utf8)
        return (boundary, body)
    }
}

