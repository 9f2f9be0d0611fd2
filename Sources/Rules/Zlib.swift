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
    /// `gzip` reads a gzip member (RFC 1952: HTTP's `Content-Encoding: gzip`) instead of a zlib stream;
    /// `raw` reads bare deflate data (RFC 1951: a zip entry's method 8) without either wrapper.
    package static func decompress(_ input: ArraySlice<UInt8>, limit: Int = 1 << 30, gzip: Bool = false,
                                   raw: Bool = false) throws(Failure) -> [UInt8] {
        var stream = z_stream()
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        // windowBits 15, +16 for the gzip wrapper, negative for no wrapper (zlib.h, inflateInit2).
        var status = inflateInit2_(&stream, raw ? -15 : (gzip ? 15 + 16 : 15), ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
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

    /// The CRC-32 (ISO 3309, zip's and gzip's) of `bytes`.
    package static func crc32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        bytes.withUnsafeBufferPointer { buffer in
            // zlib's crc32 takes a uInt length: feed it in pieces below 4 GiB.
            var crc: uLong = CZlib.crc32(0, nil, 0)
            var offset = 0
            while offset < buffer.count {
                let length = min(buffer.count - offset, 1 << 30)
                crc = CZlib.crc32(crc, buffer.baseAddress.map { $0 + offset }, uInt(length))
                offset += length
            }
            return UInt32(truncatingIfNeeded: crc)
        }
    }
}
