// CacheFile: `experimental.cache_file` in a small format of ours — remote rule-sets and, with
// `store_fakeip`, the fakeip server's mappings.
//
// Go keeps both in its bbolt cache (bucket "rule_set": per tag content, last update time and ETag;
// the fakeip buckets: address ↔ domain and the allocator's position). We keep the same facts in our
// own file:
//
//   "SBCACHE2\n"                           magic (9 bytes)
//   repeated records, each a kind byte then:
//     1 rule-set: u32 tag length, tag, u32 etag length, etag, i64 last-updated (Unix ms),
//                 u32 content length, content
//     2 fakeip:   u32 length, the fakeip server's state (its own format, FakeIPStore.snapshot)
//   (all integers big-endian; "SBRSCACHE1\n" files of the first version, rule-set records without
//   kind bytes, are still read)
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

/// `experimental.cache_file`. Thread-safe; every method does blocking file I/O of one small file, so
/// callers run it off event loops (the box's control task, the update task, the fakeip saver).
final class CacheFile: Sendable {
    /// Everything the file holds.
    struct Contents: Equatable, Sendable {
        var ruleSets: [String: SavedRuleSet] = [:]
        var fakeIP: [UInt8]?
    }

    /// The file actually used (the configured path, or its sibling when that one is not ours).
    let path: String
    private let contents: Mutex<Contents>
    private let logger: ContextLogger
    static let magic = Array("SBCACHE2\n".utf8)
    static let firstMagic = Array("SBRSCACHE1\n".utf8)
    /// Go's bbolt meta page magic, little-endian at offset 16 of page 0.
    static let bboltMagic: UInt32 = 0xED0C_DAED

    /// Opens (or plans to create) the cache at `configuredPath` (default "cache.db", relative to
    /// the working directory, as Go). Never fails: an unreadable file is kept and logged.
    init(configuredPath: String?, logger: ContextLogger) {
        var path = configuredPath.flatMap { $0.isEmpty ? nil : $0 } ?? "cache.db"
        var loaded = Contents()
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
        self.contents = Mutex(loaded)
        self.logger = logger
    }

    /// The saved copy of `tag`, if any.
    func load(_ tag: String) -> SavedRuleSet? {
        contents.withLock { $0.ruleSets[tag] }
    }

    /// Stores `saved` for `tag` and rewrites the file atomically. Throws with the errno text.
    func save(_ tag: String, _ saved: SavedRuleSet) throws(BoxError) {
        // Written under the lock: two savers at once must not share `<path>.tmp`.
        try contents.withLock { (contents) throws(BoxError) in
            contents.ruleSets[tag] = saved
            try Self.writeAtomically(Self.serialize(contents), to: path)
        }
    }

    /// The fakeip slot for `AdapterContext.fakeIPStorage` (`store_fakeip`); write errors are logged.
    var fakeIPStorage: FakeIPStorage {
        FakeIPStorage(load: { [self] in contents.withLock { $0.fakeIP } },
                      save: { [self] state in
                          do {
                              try contents.withLock { (contents) throws(BoxError) in
                                  guard contents.fakeIP != state else { return }
                                  contents.fakeIP = state
                                  try Self.writeAtomically(Self.serialize(contents), to: path)
                              }
                          } catch {
                              logger.error("cache-file: save fakeip: \(error)")
                          }
                      })
    }

    static func isBbolt(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 20 else { return false }
        let value = UInt32(bytes[16]) | UInt32(bytes[17]) << 8 | UInt32(bytes[18]) << 16 | UInt32(bytes[19]) << 24
        return value == bboltMagic
    }

    static func serialize(_ contents: Contents) -> [UInt8] {
        var out = magic
        func put32(_ value: Int) { out += withUnsafeBytes(of: UInt32(value).bigEndian, Array.init) }
        for tag in contents.ruleSets.keys.sorted() {
            guard let entry = contents.ruleSets[tag] else { continue }
            out.append(1)
            put32(tag.utf8.count)
            out += tag.utf8
            put32(entry.etag.utf8.count)
            out += entry.etag.utf8
            out += withUnsafeBytes(of: entry.lastUpdated.bigEndian, Array.init)
            put32(entry.content.count)
            out += entry.content
        }
        if let fakeIP = contents.fakeIP {
            out.append(2)
            put32(fakeIP.count)
            out += fakeIP
        }
        return out
    }

    /// Parses our format (either version); nil for anything else (wrong magic, truncated, bad UTF-8).
    static func parse(_ bytes: [UInt8]) -> Contents? {
        let kinded: Bool
        if bytes.starts(with: magic) {
            kinded = true
        } else if bytes.starts(with: firstMagic) {
            kinded = false
        } else {
            return nil
        }
        var offset = kinded ? magic.count : firstMagic.count
        func take(_ count: Int) -> ArraySlice<UInt8>? {
            guard count >= 0, bytes.count - offset >= count else { return nil }
            defer { offset += count }
            return bytes[offset..<offset + count]
        }
        func integer(_ width: Int) -> UInt64? {
            take(width).map { $0.reduce(UInt64(0)) { $0 << 8 | UInt64($1) } }
        }
        var out = Contents()
        while offset < bytes.count {
            let kind = kinded ? integer(1) : 1
            switch kind {
            case 1:
                guard let tagLength = integer(4), let tag = take(Int(tagLength)),
                      let etagLength = integer(4), let etag = take(Int(etagLength)),
                      let updated = integer(8), let contentLength = integer(4), let content = take(Int(contentLength)),
                      let tagText = String(validating: tag, as: UTF8.self),
                      let etagText = String(validating: etag, as: UTF8.self) else { return nil }
                out.ruleSets[tagText] = SavedRuleSet(content: Array(content), lastUpdated: Int64(bitPattern: updated), etag: etagText)
            case 2:
                guard let length = integer(4), let state = take(Int(length)) else { return nil }
                out.fakeIP = Array(state)
            default:
                return nil
            }
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
