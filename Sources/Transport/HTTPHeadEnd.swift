// The end of an HTTP/1 head (the empty line, CR LF CR LF) in bytes that arrive read by read. The
// transports' handshakes (ws, httpupgrade, http over HTTP/1.1, simple-obfs http) gather a head of
// up to 16–32 KiB across reads; searching the whole gathered head again on every read makes a head
// that trickles in byte by byte cost quadratic time. Each search here starts three bytes before
// where the previous one stopped (a CR LF CR of the end may be there already) and goes on to the
// end of what has arrived: the bytes looked at over a whole head are linear in its length.
package import NIOCore

/// Where the search for the end of one HTTP/1 head stands. The offsets count from the buffer's
/// reader index, which must not move until the end is found; start a fresh value for every head
/// (`find` resets it once it found one).
package struct HTTPHeadEnd: Sendable {
    /// Bytes from the reader index already searched without a match.
    private var searched = 0
    /// Every byte position the searches looked at, over this value's life: a test hook proving
    /// that a head fed byte by byte costs linear time.
    package private(set) var examinedByteCount = 0

    package init() {}

    /// The head's length through its CR LF CR LF, or nil while that has not arrived.
    package mutating func find(in buffer: ByteBuffer) -> Int? {
        let from = max(0, searched - 3)
        let found: Int? = buffer.withUnsafeReadableBytes { raw in
            var index = from
            while index + 4 <= raw.count {
                examinedByteCount += 1
                if raw[index + 3] == 10, raw[index + 2] == 13, raw[index + 1] == 10, raw[index] == 13 { return index + 4 }
                index += 1
            }
            return nil
        }
        searched = found == nil ? buffer.readableBytes : 0
        return found
    }
}
