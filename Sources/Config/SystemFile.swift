#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole-file reads for the control plane (configs, rule-sets, hosts, resolv.conf, the rule-set cache)
/// with plain POSIX calls, and the (mtime, size) pair used to notice edits. Returns nil when the file
/// cannot be opened or read.
package enum SystemFile {
    /// What identifies a version of a file: its modification time in nanoseconds, size and inode (a
    /// file replaced by rename is another inode even with the same time and size).
    package struct Stamp: Equatable, Sendable {
        package var modified: Int64
        package var size: Int64
        package var inode: UInt64

        package init(modified: Int64, size: Int64, inode: UInt64 = 0) {
            self.modified = modified
            self.size = size
            self.inode = inode
        }
    }

    /// The file's stamp, or nil when `stat` fails.
    package static func stamp(_ path: String) -> Stamp? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        #if canImport(Darwin)
        let modified = Int64(info.st_mtimespec.tv_sec) * 1_000_000_000 + Int64(info.st_mtimespec.tv_nsec)
        #else
        let modified = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        #endif
        return Stamp(modified: modified, size: Int64(info.st_size), inode: UInt64(info.st_ino))
    }

    /// The file's bytes, at most about `limit` of them.
    package static func read(_ path: String, limit: Int = 1 << 30) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return readAll(fd, limit: limit)
    }

    /// Everything `fd` yields until end of file, at most about `limit` bytes.
    package static func readAll(_ fd: Int32, limit: Int = 1 << 30) -> [UInt8]? {
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while result.count < limit {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if count == 0 { break }
            result.append(contentsOf: chunk[0..<count])
        }
        return result
    }

    /// The lines of a text file split on LF, with a trailing CR dropped.
    package static func lines(_ bytes: [UInt8]) -> [Substring] {
        String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map {
            $0.hasSuffix("\r") ? $0.dropLast() : $0
        }
    }
}
