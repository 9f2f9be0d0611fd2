// ZipArchive and the external UI's extraction: archives built here byte by byte (APPNOTE 4.3.7,
// 4.3.12, 4.3.16), read back, cut at every length and flipped at every byte without trapping,
// unpacked with the single top directory dropped, and refused when an entry climbs out.
@testable import ControlAPI
import Foundation
import Rules
import Testing

/// Builds a zip of `entries` (name, contents, deflated?); directories are names ending in `/`.
private func makeZip(_ entries: [(String, [UInt8], Bool)], comment: [UInt8] = []) -> [UInt8] {
    func u16(_ value: Int) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF)] }
    func u32(_ value: Int) -> [UInt8] { u16(value & 0xFFFF) + u16(value >> 16 & 0xFFFF) }
    var out: [UInt8] = [], central: [UInt8] = []
    for (name, contents, deflate) in entries {
        // A zlib stream is a 2-byte header, raw deflate, then a 4-byte Adler-32.
        let data = deflate ? Array(Zlib.compress(contents).dropFirst(2).dropLast(4)) : contents
        let crc = Int(Zlib.crc32(contents[...]))
        let nameBytes = Array(name.utf8)
        let fields = u16(20) + u16(0) + u16(deflate ? 8 : 0) + u16(0) + u16(0x21) + u32(crc) + u32(data.count) + u32(contents.count)
            + u16(nameBytes.count) + u16(0)
        let offset = out.count
        out += u32(0x0403_4B50) + fields + nameBytes + data
        // Made by unix (3), directories with st_mode 040755.
        let mode = name.hasSuffix("/") ? 0o040755 : 0o100644
        central += u32(0x0201_4B50) + u16(3 << 8 | 20) + fields + u16(0) + u16(0) + u16(0) + u32(mode << 16) + u32(offset) + nameBytes
    }
    let centralOffset = out.count
    out += central
    out += u32(0x0605_4B50) + u16(0) + u16(0) + u16(entries.count) + u16(entries.count) + u32(central.count) + u32(centralOffset)
        + u16(comment.count) + comment
    return out
}

private let site: [(String, [UInt8], Bool)] = [
    ("dash/", [], false),
    ("dash/index.html", Array("<html>hello</html>\n".utf8), true),
    ("dash/assets/app.js", Array(String(repeating: "console.log(1);\n", count: 50).utf8), true),
    ("dash/assets/raw.txt", Array("stored bytes\n".utf8), false),
]

/// A fresh temporary directory, removed by the caller.
private func temporaryDirectory() throws -> String {
    var template = Array("/tmp/sbx-zip-XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { throw CocoaError(.fileWriteUnknown) }
    return String(cString: made)
}

@Suite struct ZipArchiveTests {
    @Test func readsStoredAndDeflatedEntries() throws {
        let archive = try ZipArchive(makeZip(site, comment: Array("a comment".utf8)))
        #expect(archive.entries.map(\.name) == site.map(\.0))
        #expect(archive.entries.map(\.isDirectory) == [true, false, false, false])
        for (entry, expected) in zip(archive.entries, site) {
            #expect(try archive.contents(of: entry) == expected.1, "\(entry.name)")
        }
    }

    @Test func refusesWhatIsNotAZip() {
        #expect(throws: ZipError.format) { try ZipArchive(Array("this is not a zip archive\n".utf8)) }
        #expect(throws: ZipError.format) { try ZipArchive([]) }
    }

    /// Go's errors for a bad checksum, an unknown method, a size that lies.
    @Test func checksEveryEntry() throws {
        var bytes = makeZip([("d/a.txt", Array("hello checksum world".utf8), false)])
        bytes[30 + 7] ^= 0x20  // the first data byte, after the 30-byte header and the 7-byte name
        var archive = try ZipArchive(bytes)
        #expect(throws: ZipError.checksum) { try archive.contents(of: archive.entries[0]) }
        bytes = makeZip([("d/a.txt", Array("abc".utf8), false)])
        bytes[8] = 12  // method 12, bzip2, in the local header
        let centralMethod = bytes.count - 22 - (46 + 7) + 10
        bytes[centralMethod] = 12
        archive = try ZipArchive(bytes)
        #expect(throws: ZipError.algorithm) { try archive.contents(of: archive.entries[0]) }
        // Declared larger than the data inflates to: short; smaller: too long.
        var entry = try ZipArchive(makeZip(site)).entries[2]
        let full = try ZipArchive(makeZip(site))
        entry.uncompressedSize += 1
        #expect(throws: ZipError.unexpectedEOF) { try full.contents(of: entry) }
        entry.uncompressedSize -= 2
        #expect(throws: ZipError.format) { try full.contents(of: entry) }
        // A size no dashboard has (a zip bomb's) is refused before inflating.
        entry.uncompressedSize = ZipArchive.maximumEntrySize + 1
        #expect(throws: ZipError("zip: dash/assets/app.js: 268435457 bytes is more than the 256 MiB unpacked per file")) {
            try full.contents(of: entry)
        }
    }

    /// Cut anywhere, or with any byte flipped, the archive is refused or read, never a trap.
    @Test func survivesEveryCutAndFlip() throws {
        let bytes = makeZip(site)
        for length in 0..<bytes.count {
            if let archive = try? ZipArchive(Array(bytes[..<length])) {
                for entry in archive.entries { _ = try? archive.contents(of: entry) }
            }
        }
        for index in bytes.indices {
            var flipped = bytes
            flipped[index] ^= 0xFF
            if let archive = try? ZipArchive(flipped) {
                for entry in archive.entries { _ = try? archive.contents(of: entry) }
            }
        }
    }

    @Test func extractsWithoutTheTopDirectory() throws {
        let output = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: output) }
        try ClashAPIExternalUI.extract(makeZip(site), into: output + "/ui")
        #expect(try String(contentsOfFile: output + "/ui/index.html", encoding: .utf8) == "<html>hello</html>\n")
        #expect(try String(contentsOfFile: output + "/ui/assets/raw.txt", encoding: .utf8) == "stored bytes\n")
        #expect(!FileManager.default.fileExists(atPath: output + "/ui/dash"))
        // Two top directories: kept. A lone top-level file: kept (Go panics there).
        try ClashAPIExternalUI.extract(makeZip([("a/x", [1], false), ("b/y", [2], false)]), into: output + "/two")
        #expect(FileManager.default.fileExists(atPath: output + "/two/a/x") && FileManager.default.fileExists(atPath: output + "/two/b/y"))
        try ClashAPIExternalUI.extract(makeZip([("index.html", [3], false)]), into: output + "/one")
        #expect(FileManager.default.fileExists(atPath: output + "/one/index.html"))
    }

    @Test(arguments: ["dash/../escaped.txt", "dash/a/../../../escaped.txt", "../escaped.txt"])
    func refusesEntriesOutsideTheDirectory(name: String) throws {
        let output = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: output) }
        let bytes = makeZip([("dash/index.html", [1], false), (name, Array("outside\n".utf8), false)])
        #expect(throws: ZipError("zip: insecure file path: \(name)")) {
            try ClashAPIExternalUI.extract(bytes, into: output + "/deep/ui")
        }
        // Refused before anything was written.
        #expect(!FileManager.default.fileExists(atPath: output + "/deep"))
        #expect((try? FileManager.default.contentsOfDirectory(atPath: output)) == [])
    }

    /// `a/../b` stays inside: Go's filepath.Join resolves it, and so do we.
    @Test func resolvesDotDotThatStaysInside() throws {
        let output = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: output) }
        try ClashAPIExternalUI.extract(makeZip([("top/a/../b.txt", [7], false)]), into: output)
        #expect(FileManager.default.contents(atPath: output + "/b.txt") == Data([7]))
    }
}
