// ZipArchive: a .zip held in memory (PKWARE APPNOTE.TXT 6.3.x), as Go's archive/zip reads it for
// the external UI download.
//
// 1. find the end-of-central-directory record (4.3.16) in the last 64 KiB, as Go's
//    `readDirectoryEnd`, including its guess of a base offset for data prepended to the archive
// 2. read every central directory header (4.3.12); their count must match the record's
// 3. per entry on demand: the local header (4.3.7) says where the data starts; stored (0) or
//    deflated (8) data is inflated through the system zlib and checked against the size and
//    CRC-32 of the central directory, as Go's `checksumReader`
// Errors carry Go's words: `zip: not a valid zip file`, `zip: unsupported compression algorithm`,
// `zip: checksum error`, `unexpected EOF`. Not supported (refused with a clear error, where Go
// reads them): ZIP64 and encrypted entries — a dashboard is a few megabytes of plain files.
// Untrusted bytes: every offset and length is checked before use; nothing traps.
import Rules

/// Why a zip archive could not be read or extracted, in Go's words where Go has them.
struct ZipError: Error, CustomStringConvertible, Equatable {
    var description: String
    init(_ description: String) { self.description = description }
    /// Go's `zip.ErrFormat`.
    static let format = ZipError("zip: not a valid zip file")
    /// Go's `zip.ErrAlgorithm`.
    static let algorithm = ZipError("zip: unsupported compression algorithm")
    /// Go's `zip.ErrChecksum`.
    static let checksum = ZipError("zip: checksum error")
    /// Go's `io.ErrUnexpectedEOF`.
    static let unexpectedEOF = ZipError("unexpected EOF")
}

/// The entries of one archive and their contents.
struct ZipArchive {
    /// One central directory entry.
    struct Entry: Equatable {
        /// The name as stored: `/`-separated, a trailing `/` for a directory.
        var name: String
        /// Go's `FileInfo().IsDir()`: a trailing `/`, or the directory bit of the creator's attributes.
        var isDirectory: Bool
        var method: UInt16
        var flags: UInt16
        var crc32: UInt32
        var compressedSize: Int
        var uncompressedSize: Int
        /// Where the local header starts, base offset included.
        var localHeaderOffset: Int
    }

    private let bytes: [UInt8]
    /// In central directory order.
    let entries: [Entry]

    /// The largest entry unpacked: the archive is held in memory (Go streams it to disk), and a
    /// dashboard's largest file is a few megabytes; this keeps a hostile archive from inflating
    /// without bound.
    static let maximumEntrySize = 256 << 20
    static let endRecordSize = 22
    static let centralHeaderSize = 46
    static let localHeaderSize = 30

    /// Reads the central directory of `bytes`. Throws `ZipError` for anything that is not a zip Go
    /// would open.
    init(_ bytes: [UInt8]) throws(ZipError) {
        self.bytes = bytes
        guard let end = Self.findEndRecord(bytes) else { throw .format }
        let records = Int(Self.u16(bytes, end + 10))
        let directorySize = Int(Self.u32(bytes, end + 12))
        let directoryOffset = Int(Self.u32(bytes, end + 16))
        if records == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF {
            throw ZipError("zip: zip64 archives are not supported")
        }
        // Go: data before the archive (a self-extractor's stub) shifts every offset; trust the
        // record's offset when a central header is found there.
        var base = end - directorySize - directoryOffset
        guard base + directoryOffset >= 0, base + directoryOffset < bytes.count else { throw .format }
        if base > 0, Self.hasSignature(bytes, at: directoryOffset, 0x0201_4B50) { base = 0 }
        var entries: [Entry] = []
        var offset = base + directoryOffset
        // Go reads headers until one is not a header, then wants the count to match (mod 2^16).
        while Self.hasSignature(bytes, at: offset, 0x0201_4B50), offset + Self.centralHeaderSize <= bytes.count {
            let nameLength = Int(Self.u16(bytes, offset + 28))
            let extraLength = Int(Self.u16(bytes, offset + 30))
            let commentLength = Int(Self.u16(bytes, offset + 32))
            let nameStart = offset + Self.centralHeaderSize
            guard nameStart + nameLength + extraLength + commentLength <= bytes.count else { break }
            let name = String(decoding: bytes[nameStart..<nameStart + nameLength], as: UTF8.self)
            let creator = Self.u16(bytes, offset + 4) >> 8
            let external = Self.u32(bytes, offset + 38)
            var isDirectory = name.hasSuffix("/")
            switch creator {
            case 3, 19: isDirectory = isDirectory || (external >> 16) & 0o170000 == 0o040000  // unix, macOS: st_mode
            case 0, 11, 14: isDirectory = isDirectory || external & 0x10 != 0  // FAT, NTFS, VFAT: MS-DOS attributes
            default: break
            }
            let compressed = Int(Self.u32(bytes, offset + 20)), uncompressed = Int(Self.u32(bytes, offset + 24))
            let local = Int(Self.u32(bytes, offset + 42))
            if compressed == 0xFFFF_FFFF || uncompressed == 0xFFFF_FFFF || local == 0xFFFF_FFFF {
                throw ZipError("zip: zip64 archives are not supported")
            }
            entries.append(Entry(name: name, isDirectory: isDirectory, method: Self.u16(bytes, offset + 10),
                                 flags: Self.u16(bytes, offset + 8), crc32: Self.u32(bytes, offset + 16),
                                 compressedSize: compressed, uncompressedSize: uncompressed, localHeaderOffset: base + local))
            offset = nameStart + nameLength + extraLength + commentLength
        }
        guard UInt16(truncatingIfNeeded: entries.count) == UInt16(truncatingIfNeeded: records) else { throw .format }
        self.entries = entries
    }

    /// The uncompressed bytes of `entry`, size and CRC-32 checked.
    func contents(of entry: Entry) throws(ZipError) -> [UInt8] {
        let offset = entry.localHeaderOffset
        guard offset >= 0, offset + Self.localHeaderSize <= bytes.count else { throw .unexpectedEOF }
        guard Self.hasSignature(bytes, at: offset, 0x0403_4B50) else { throw .format }
        if entry.flags & 0x1 != 0 { throw ZipError("zip: encrypted entries are not supported") }
        guard entry.uncompressedSize <= Self.maximumEntrySize else {
            throw ZipError("zip: \(entry.name): \(entry.uncompressedSize) bytes is more than the \(Self.maximumEntrySize >> 20) MiB unpacked per file")
        }
        let start = offset + Self.localHeaderSize + Int(Self.u16(bytes, offset + 26)) + Int(Self.u16(bytes, offset + 28))
        guard start <= bytes.count, entry.compressedSize <= bytes.count - start else { throw .unexpectedEOF }
        let data = bytes[start..<start + entry.compressedSize]
        let output: [UInt8]
        switch entry.method {
        case 0:
            output = Array(data)
        case 8:
            do {
                output = try Zlib.decompress(data, limit: entry.uncompressedSize, raw: true)
            } catch let failure where failure.code == -5 /* Z_BUF_ERROR: the data ended first */ {
                throw .unexpectedEOF
            } catch let failure where failure.code == -4 /* Z_MEM_ERROR: more than the declared size */ {
                throw .format
            } catch {
                throw ZipError("flate: corrupt input (\(error.message))")
            }
        default:
            throw .algorithm
        }
        // Go's checksumReader: a short entry is an unexpected EOF, a long one a format error.
        if output.count < entry.uncompressedSize { throw .unexpectedEOF }
        if output.count > entry.uncompressedSize { throw .format }
        if entry.crc32 != 0, Zlib.crc32(output[...]) != entry.crc32 { throw .checksum }
        return output
    }

    // MARK: Bytes

    /// Go's `findSignatureInBlock`: the last end record whose comment fits in the file.
    private static func findEndRecord(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= endRecordSize else { return nil }
        let lowest = max(0, bytes.count - endRecordSize - 65_535)
        var index = bytes.count - endRecordSize
        while index >= lowest {
            if hasSignature(bytes, at: index, 0x0605_4B50) {
                let commentLength = Int(u16(bytes, index + 20))
                if index + endRecordSize + commentLength <= bytes.count { return index }
            }
            index -= 1
        }
        return nil
    }

    private static func hasSignature(_ bytes: [UInt8], at offset: Int, _ signature: UInt32) -> Bool {
        offset >= 0 && offset + 4 <= bytes.count && u32(bytes, offset) == signature
    }

    /// Little-endian loads; callers have checked the bounds.
    private static func u16(_ bytes: [UInt8], _ offset: Int) -> UInt16 {
        UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
    }

    private static func u32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(u16(bytes, offset)) | UInt32(u16(bytes, offset + 2)) << 16
    }
}
