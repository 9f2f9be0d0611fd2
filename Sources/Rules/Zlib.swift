// Zlib: the zlib (RFC 1950) stream around a binary rule-set's body, through the system libz.
import CZlib

/// One-shot zlib compression and decompression of whole buffers (rule-sets are read and written
/// whole, never streamed). Control plane only.
package enum Zlib {
    /// Why a zlib stream could not be inflated: zlib's own return code and message.
    package struct Failure: Error, CustomStringConvertible, Sendable, Equatable {
        package var code: Int32
        package var message: String
        package var description: String { "zlib: \(message)" }
    }

    /// Compresses `input` at `level` (9 is Go's `zlib.BestCompression`, what sing-box writes).
    package static func compress(_ input: [UInt8], level: Int32 = 9) -> [UInt8] {
        var bound = Int(compressBound(uLong(input.count)))
        var output = [UInt8](repeating: 0, count: bound)
        let status = output.withUnsafeMutableBufferPointer { out in
            input.withUnsafeBufferPointer { inp in
                var length = uLongf(bound)
                let status = compress2(out.baseAddress, &length, inp.baseAddress, uLong(inp.count), level)
                bound = Int(length)
                return status
            }
        }
        // compress2 fails only on a bad level or a too-small buffer; both are our bugs.
        precondition(status == Z_OK, "compress2: \(status)")
        output.removeSubrange(bound...)
        return output
    }

    /// Inflates a zlib stream that starts at `input`. Bytes after the stream's end are ignored,
    /// as Go's reader never looks past what it needs. At most `limit` bytes are produced, so a
    /// hostile file cannot expand without bound.
    /// `gzip` reads a gzip member (RFC 1952: HTTP's `Content-Encoding: gzip`) instead of a zlib stream.
    package static func decompress(_ input: ArraySlice<UInt8>, limit: Int = 1 << 30, gzip: Bool = false) throws(Failure) -> [UInt8] {
        var stream = z_stream()
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        // windowBits 15, +16 for the gzip wrapper (zlib.h, inflateInit2).
        var status = inflateInit2_(&stream, gzip ? 15 + 16 : 15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else { throw Failure(code: status, message: "inflateInit: \(status)") }
        defer { inflateEnd(&stream) }
        var input = Array(input)
        let count = input.count
        status = input.withUnsafeMutableBufferPointer { inp -> Int32 in
            stream.next_in = inp.baseAddress
            stream.avail_in = uInt(count)
            while true {
                let produced = chunk.withUnsafeMutableBufferPointer { out -> (Int32, Int) in
                    stream.next_out = out.baseAddress
                    stream.avail_out = uInt(out.count)
                    let status = inflate(&stream, Z_NO_FLUSH)
                    return (status, out.count - Int(stream.avail_out))
                }
                output.append(contentsOf: chunk[0..<produced.1])
                if produced.0 == Z_STREAM_END { return Z_STREAM_END }
                if output.count > limit { return Z_MEM_ERROR }
                if produced.0 == Z_BUF_ERROR || (produced.0 == Z_OK && produced.1 == 0 && stream.avail_in == 0) {
                    return Z_BUF_ERROR  // input ended before the stream did
                }
                if produced.0 != Z_OK { return produced.0 }
            }
        }
        switch status {
        case Z_STREAM_END: return output
        case Z_BUF_ERROR: throw Failure(code: status, message: "unexpected EOF")
        case Z_MEM_ERROR: throw Failure(code: status, message: "inflated size exceeds \(limit) bytes")
        default:
            let text = stream.msg.map { String(cString: $0) } ?? "error \(status)"
            throw Failure(code: status, message: text)
        }
    }
}
