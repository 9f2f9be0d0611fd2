// RuleSetCache: `experimental.cache_file` storage for remote rule-sets, in a small format of ours.
//
// Go keeps downloaded rule-sets in its bbolt cache (bucket "rule_set", per tag: content, last
// update time, ETag). We keep the same three facts per tag in our own file:
//
//   "SBRSCACHE1\n"                      magic (11 bytes)
//   repeated: u32 tag length, tag, u32 etag length, etag, i64 last-updated (Unix ms),
//             u32 content length, content          (all integers big-endian)
//
// Every save rewrites the whole file as `<path>.tmp` and renames it over the old one, so a crash
// leaves the old or the new file, never half of one. A file at `path` that is not ours (Go's
// bbolt cache.db, magic 0xED0CDAED in its meta page, or anything else) is never overwritten: we
// warn once and use the sibling `<path>.swift-rule-sets` instead.

import Adapter
import Config
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One cached download: Go's `adapter.SavedBinary`.
struct SavedRuleSet: Equatable, Sendable {
    var content: [UInt8]
    var lastUpdated: Int64  // Unix milliseconds
    var etag: String
}

/// The rule-set part of `experimental.cache_file`. Thread-safe; every method does blocking file
/// I/O of one small file, so callers run it off event loops (the box's control task, the update task).
final class RuleSetCache: Sendable {
    /// The file actually used (the configured path, or its sibling when that one is not ours).
    let path: String
    private let entries: Mutex<[String: SavedRuleSet]>
    static let magic = Array("SBRSCACHE1\n".utf8)
    /// Go's bbolt meta page magic, little-endian at offset 16 of page 0.
    static let bboltMagic: UInt32 = 0xED0C_DAED

    /// Opens (or plans to create) the cache at `configuredPath` (default "cache.db", relative to
    /// the working directory, as Go). Never fails: an unreadable file is kept and logged.
    init(configuredPath: String?, logger: ContextLogger) {
        var path = configuredPath.flatMap { $0.isEmpty ? nil : $0 } ?? "cache.db"
        var loaded: [String: SavedRuleSet] = [:]
        if let bytes = SystemFile.read(path), !bytes.isEmpty {
            if let parsed = Self.parse(bytes) {
                loaded = parsed
            } else {
                let what = Self.isBbolt(bytes) ? "a bbolt cache (Go sing-box's)" : "not a rule-set cache of ours"
                let sibling = path + ".swift-rule-sets"
                logger.warn("cache-file: \(path) is \(what); kept as is, rule-sets cached in \(sibling)")
                path = sibling
                if let other = SystemFile.read(path), let parsed = Self.parse(other) { loaded = parsed }
            }
        }
        self.path = path
        self.entries = Mutex(loaded)
    }

    /// The saved copy of `tag`, if any.
    func load(_ tag: String) -> SavedRuleSet? {
        entries.withLock { $0[tag] }
    }

    /// Stores `saved` for `tag` and rewrites the file atomically. Throws with the errno text.
    func save(_ tag: String, _ saved: SavedRuleSet) throws(BoxError) {
        // Written under the lock: two sets saving at once must not share `<path>.tmp`.
        try entries.withLock { (entries) throws(BoxError) in
            entries[tag] = saved
            try Self.writeAtomically(Self.serialize(entries), to: path)
        }
    }

    static func isBbolt(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 20 else { return false }
        let value = UInt32(bytes[16]) | UInt32(bytes[17]) << 8 | UInt32(bytes[18]) << 16 | UInt32(bytes[19]) << 24
        return value == bboltMagic
    }

    static func serialize(_ entries: [String: SavedRuleSet]) -> [UInt8] {
        var out = magic
        func put32(_ value: Int) { out += withUnsafeBytes(of: UInt32(value).bigEndian, Array.init) }
        for tag in entries.keys.sorted() {
            guard let entry = entries[tag] else { continue }
            put32(tag.utf8.count)
            out += tag.utf8
            put32(entry.etag.utf8.count)
            out += entry.etag.utf8
            out += withUnsafeBytes(of: entry.lastUpdated.bigEndian, Array.init)
            put32(entry.content.count)
            out += entry.content
        }
        return out
    }

    /// Parses our format; nil for anything else (wrong magic, truncated, bad UTF-8).
    static func parse(_ bytes: [UInt8]) -> [String: SavedRuleSet]? {
        guard bytes.count >= magic.count, Array(bytes[0..<magic.count]) == magic else { return nil }
        var offset = magic.count
        func take(_ count: Int) -> ArraySlice<UInt8>? {
            guard count >= 0, bytes.count - offset >= count else { return nil }
            defer { offset += count }
            return bytes[offset..<offset + count]
        }
        func integer(_ width: Int) -> UInt64? {
            take(width).map { $0.reduce(UInt64(0)) { $0 << 8 | UInt64($1) } }
        }
        var out: [String: SavedRuleSet] = [:]
        while offset < bytes.count {
            guard let tagLength = integer(4), let tag = take(Int(tagLength)),
                  let etagLength = integer(4), let etag = take(Int(etagLength)),
                  let updated = integer(8), let contentLength = integer(4), let content = take(Int(contentLength)),
                  let tagText = String(validating: tag, as: UTF8.self),
                  let etagText = String(validating: etag, as: UTF8.self) else { return nil }
            out[tagText] = SavedRuleSet(content: Array(content), lastUpdated: Int64(bitPattern: updated), etag: etagText)
        }
        return out
    }


    /// Writes `<path>.tmp`, fsyncs it and renames it over `path`.
    static func writeAtomically(_ bytes: [UInt8], to path: String) throws(BoxError) {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BoxError(.start, "open \(temporary): \(String(cString: strerror(errno)))") }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let reason = String(cString: strerror(errno))
                close(fd)
                unlink(temporary)
                throw BoxError(.start, "write \(temporary): \(reason)")
            }
            written += n
        }
        fsync(fd)
        close(fd)
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw BoxError(.start, "rename \(temporary) \(path): \(reason)")
        }
    }
}
