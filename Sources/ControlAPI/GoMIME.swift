// GoMIME: the Content-Type Go's http.FileServer gives a file, so a dashboard is served as by Go.
//
// 1. by extension (Go's mime.TypeByExtension): Go's built-in table, then the system's database
//    read as Go reads it on Linux — the first of /usr/local/share/mime/globs2 and
//    /usr/share/mime/globs2 that opens (never overriding an extension already known), or else every
//    mime.types file (overriding); text types get `; charset=utf-8`. Exact case first, then lower case.
// 2. otherwise by content (Go's http.DetectContentType, the WHATWG MIME sniffing table) over the
//    first 512 bytes.
import Glibc

/// Content types by extension and by sniffing, as Go's `mime` and `net/http` packages give them.
enum GoMIME {
    /// Go 1.25's `builtinTypesLower`.
    private static let builtin: [String: String] = [
        ".avif": "image/avif", ".css": "text/css; charset=utf-8", ".gif": "image/gif",
        ".htm": "text/html; charset=utf-8", ".html": "text/html; charset=utf-8", ".jpeg": "image/jpeg",
        ".jpg": "image/jpeg", ".js": "text/javascript; charset=utf-8", ".json": "application/json",
        ".mjs": "text/javascript; charset=utf-8", ".pdf": "application/pdf", ".png": "image/png",
        ".svg": "image/svg+xml", ".wasm": "application/wasm", ".webp": "image/webp", ".xml": "text/xml; charset=utf-8",
    ]

    /// Extension → type, exact and lower-cased keys, loaded once.
    private static let tables: (exact: [String: String], lower: [String: String]) = load()

    /// The type for `.ext` (with its dot); nil when neither table knows it.
    static func type(forExtension ext: String) -> String? {
        guard !ext.isEmpty else { return nil }
        return tables.exact[ext] ?? tables.lower[ext.lowercased()]
    }

    private static func load() -> (exact: [String: String], lower: [String: String]) {
        var exact = builtin, lower = builtin
        func set(_ ext: String, _ type: String) {
            // Go's setExtensionType: the type must parse; text gets a charset.
            guard let slash = type.firstIndex(of: "/"), slash != type.startIndex, type.index(after: slash) != type.endIndex else { return }
            var value = type
            if type.hasPrefix("text/"), !type.lowercased().contains("charset=") { value = type.lowercased() + "; charset=utf-8" }
            exact[ext] = value
            lower[ext.lowercased()] = value
        }
        for path in ["/usr/local/share/mime/globs2", "/usr/share/mime/globs2"] {
            guard let text = readText(path) else { continue }
            for line in text.split(separator: "\n") {
                // weight:type:glob[:flags]; only plain `*.ext` globs, the first (heaviest) wins.
                let fields = line.split(separator: ":", omittingEmptySubsequences: false)
                guard fields.count >= 3, !fields[0].isEmpty, fields[2].utf8.count >= 3, fields[0].first != "#",
                      fields[2].hasPrefix("*.") else { continue }
                let ext = String(fields[2].dropFirst())
                if ext.contains(where: { "?*[".contains($0) }) || exact[ext] != nil { continue }
                set(ext, String(fields[1]))
            }
            return (exact, lower)
        }
        for path in ["/etc/mime.types", "/etc/apache2/mime.types", "/etc/apache/mime.types", "/etc/httpd/conf/mime.types"] {
            guard let text = readText(path) else { continue }
            for line in text.split(separator: "\n") {
                let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
                guard fields.count > 1, fields[0].first != "#" else { continue }
                for ext in fields.dropFirst() {
                    if ext.first == "#" { break }
                    set("." + ext, String(fields[0]))
                }
            }
        }
        return (exact, lower)
    }

    private static func readText(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if count == 0 { break }
            bytes += chunk[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: Sniffing (Go's net/http/sniff.go)

    private enum Signature {
        /// Case-insensitive tag after leading white space, then a space or `>`.
        case html(String)
        /// `pattern` under `mask`, optionally after leading white space.
        case masked(mask: [UInt8], pattern: [UInt8], skipWhiteSpace: Bool, type: String)
        case exact([UInt8], String)
        case mp4
        case text
    }

    private static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    private static let signatures: [Signature] = {
        var list: [Signature] = ["<!DOCTYPE HTML", "<HTML", "<HEAD", "<SCRIPT", "<IFRAME", "<H1", "<DIV", "<FONT", "<TABLE", "<A",
                                 "<STYLE", "<TITLE", "<B", "<BODY", "<BR", "<P", "<!--"].map { .html($0) }
        list += [
            .masked(mask: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF], pattern: bytes("<?xml"), skipWhiteSpace: true, type: "text/xml; charset=utf-8"),
            .exact(bytes("%PDF-"), "application/pdf"),
            .exact(bytes("%!PS-Adobe-"), "application/postscript"),
            .masked(mask: [0xFF, 0xFF, 0, 0], pattern: [0xFE, 0xFF, 0, 0], skipWhiteSpace: false, type: "text/plain; charset=utf-16be"),
            .masked(mask: [0xFF, 0xFF, 0, 0], pattern: [0xFF, 0xFE, 0, 0], skipWhiteSpace: false, type: "text/plain; charset=utf-16le"),
            .masked(mask: [0xFF, 0xFF, 0xFF, 0], pattern: [0xEF, 0xBB, 0xBF, 0], skipWhiteSpace: false, type: "text/plain; charset=utf-8"),
            .exact([0, 0, 1, 0], "image/x-icon"),
            .exact([0, 0, 2, 0], "image/x-icon"),
            .exact(bytes("BM"), "image/bmp"),
            .exact(bytes("GIF87a"), "image/gif"),
            .exact(bytes("GIF89a"), "image/gif"),
            .masked(mask: [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
                    pattern: bytes("RIFF") + [0, 0, 0, 0] + bytes("WEBPVP"), skipWhiteSpace: false, type: "image/webp"),
            .exact([0x89] + bytes("PNG\r\n") + [0x1A, 0x0A], "image/png"),
            .exact([0xFF, 0xD8, 0xFF], "image/jpeg"),
            .masked(mask: [0xFF, 0xFF, 0xFF, 0xFF], pattern: bytes(".snd"), skipWhiteSpace: false, type: "audio/basic"),
            .masked(mask: [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF],
                    pattern: bytes("FORM") + [0, 0, 0, 0] + bytes("AIFF"), skipWhiteSpace: false, type: "audio/aiff"),
            .masked(mask: [0xFF, 0xFF, 0xFF], pattern: bytes("ID3"), skipWhiteSpace: false, type: "audio/mpeg"),
            .masked(mask: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF], pattern: bytes("OggS") + [0], skipWhiteSpace: false, type: "application/ogg"),
            .masked(mask: [UInt8](repeating: 0xFF, count: 8), pattern: bytes("MThd") + [0, 0, 0, 6], skipWhiteSpace: false,
                    type: "audio/midi"),
            .masked(mask: [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF],
                    pattern: bytes("RIFF") + [0, 0, 0, 0] + bytes("AVI "), skipWhiteSpace: false, type: "video/avi"),
            .masked(mask: [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF],
                    pattern: bytes("RIFF") + [0, 0, 0, 0] + bytes("WAVE"), skipWhiteSpace: false, type: "audio/wave"),
            .mp4,
            .exact([0x1A, 0x45, 0xDF, 0xA3], "video/webm"),
            .masked(mask: [UInt8](repeating: 0, count: 34) + [0xFF, 0xFF], pattern: [UInt8](repeating: 0, count: 34) + bytes("LP"),
                    skipWhiteSpace: false, type: "application/vnd.ms-fontobject"),
            .exact([0, 1, 0, 0], "font/ttf"),
            .exact(bytes("OTTO"), "font/otf"),
            .exact(bytes("ttcf"), "font/collection"),
            .exact(bytes("wOFF"), "font/woff"),
            .exact(bytes("wOF2"), "font/woff2"),
            .exact([0x1F, 0x8B, 0x08], "application/x-gzip"),
            .exact(bytes("PK") + [3, 4], "application/zip"),
            .exact(bytes("Rar!") + [0x1A, 0x07, 0x00], "application/x-rar-compressed"),
            .exact(bytes("Rar!") + [0x1A, 0x07, 0x01, 0x00], "application/x-rar-compressed"),
            .exact([0x00, 0x61, 0x73, 0x6D], "application/wasm"),
            .text,
        ]
        return list
    }()

    /// Go's `http.DetectContentType` of (at most) the first 512 bytes.
    static func sniff(_ data: ArraySlice<UInt8>) -> String {
        let data = Array(data.prefix(512))
        var firstNonWhiteSpace = 0
        while firstNonWhiteSpace < data.count, [0x09, 0x0A, 0x0C, 0x0D, 0x20].contains(data[firstNonWhiteSpace]) {
            firstNonWhiteSpace += 1
        }
        for signature in signatures {
            if let type = match(signature, data, firstNonWhiteSpace) { return type }
        }
        return "application/octet-stream"
    }

    private static func match(_ signature: Signature, _ data: [UInt8], _ firstNonWhiteSpace: Int) -> String? {
        switch signature {
        case .html(let tag):
            let rest = data[firstNonWhiteSpace...]
            let tagBytes = Array(tag.utf8)
            guard rest.count >= tagBytes.count + 1 else { return nil }
            for (index, byte) in tagBytes.enumerated() {
                var value = rest[rest.startIndex + index]
                if (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) { value &= 0xDF }
                if value != byte { return nil }
            }
            let next = rest[rest.startIndex + tagBytes.count]
            return next == UInt8(ascii: " ") || next == UInt8(ascii: ">") ? "text/html; charset=utf-8" : nil
        case .masked(let mask, let pattern, let skip, let type):
            let rest = skip ? data[firstNonWhiteSpace...] : data[...]
            guard rest.count >= pattern.count else { return nil }
            for index in pattern.indices where rest[rest.startIndex + index] & mask[index] != pattern[index] { return nil }
            return type
        case .exact(let pattern, let type):
            return data.starts(with: pattern) ? type : nil
        case .mp4:
            // WHATWG 6.2.1: an ftyp box whose brands include "mp4".
            guard data.count >= 12 else { return nil }
            let boxSize = Int(data[0]) << 24 | Int(data[1]) << 16 | Int(data[2]) << 8 | Int(data[3])
            guard data.count >= boxSize, boxSize % 4 == 0, data[4..<8].elementsEqual(Array("ftyp".utf8)) else { return nil }
            var start = 8
            while start < boxSize {
                if start != 12, data[start..<start + 3].elementsEqual(Array("mp4".utf8)) { return "video/mp4" }
                start += 4
            }
            return nil
        case .text:
            for byte in data[firstNonWhiteSpace...] {
                switch byte {
                case 0x00...0x08, 0x0B, 0x0E...0x1A, 0x1C...0x1F: return nil
                default: continue
                }
            }
            return "text/plain; charset=utf-8"
        }
    }
}
