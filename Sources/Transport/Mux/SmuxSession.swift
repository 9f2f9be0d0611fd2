// smux protocol version 1 (github.com/xtaci/smux as forked in sagernet/smux, the `smux` protocol of
// sing-mux, keepalive off as sing-mux configures it). A frame is
//   version u8 (1) ‖ command u8 ‖ length u16 LE ‖ stream ID u32 LE ‖ payload
// with commands SYN 0 (open), FIN 1 (close: the sender neither writes nor reads any more), PSH 2
// (data, up to 32 KiB from Go), NOP 3. Version 2's UPD (4) is a protocol error in version 1, as any
// other command. The client's IDs are odd (Go's first is 3), the server's even; no per-stream
// windows: the session's TCP stream is the only back-pressure.
package import NIOCore

/// One smux session on its channel: client (opens streams) or server (accepts them).
package final class SmuxSession: MuxFramedSession {
    static let version: UInt8 = 1
    static let headerSize = 8
    /// sing-mux's smux `MaxFrameSize`.
    static let maxFrameSize = 32768

    enum Command: UInt8 {
        case syn = 0, fin = 1, psh = 2, nop = 3
    }

    private var nextStreamID: UInt32
    /// Streams whose FIN we sent.
    private var finished: Set<UInt32> = []

    /// A session; `isClient` picks the side.
    package init(client isClient: Bool) {
        nextStreamID = isClient ? 1 : 0
        super.init(isClient: isClient)
    }

    /// Opens a stream (SYN); nil when the session is closed or its IDs ran out.
    func openStream() -> MuxStreamChannel? {
        guard nextStreamID < UInt32.max - 2 else { return nil }
        nextStreamID += 2
        let id = nextStreamID
        guard let stream = makeStream(id) else { return nil }
        writeHeader(.syn, id: id, length: 0)
        flushFrames()
        return stream
    }

    override func parse(_ buffer: inout ByteBuffer) throws(MuxError) {
        while buffer.readableBytes >= Self.headerSize {
            let start = buffer.readerIndex
            guard let version = buffer.getInteger(at: start, as: UInt8.self),
                  let rawCommand = buffer.getInteger(at: start + 1, as: UInt8.self),
                  let length = buffer.getInteger(at: start + 2, endianness: .little, as: UInt16.self),
                  let id = buffer.getInteger(at: start + 4, endianness: .little, as: UInt32.self) else { return }
            // smux: "invalid protocol" for a wrong version or an unknown command.
            guard version == Self.version else { throw .badFrame("smux: invalid protocol version \(version)") }
            guard let command = Command(rawValue: rawCommand) else { throw .badFrame("smux: invalid protocol command \(rawCommand)") }
            switch command {
            case .nop:
                buffer.moveReaderIndex(forwardBy: Self.headerSize)
            case .syn:
                buffer.moveReaderIndex(forwardBy: Self.headerSize)
                // Only the server accepts; a client ignores a peer's SYN (Go's client never accepts).
                if streams[id] == nil && !isClient && !isClosed { acceptStream(id) }
            case .fin:
                buffer.moveReaderIndex(forwardBy: Self.headerSize)
                guard let stream = streams[id] else { continue }
                if finished.contains(id) {
                    streams[id] = nil
                    finished.remove(id)
                }
                stream.receiveFinish()
            case .psh:
                guard buffer.readableBytes >= Self.headerSize + Int(length) else { return }
                buffer.moveReaderIndex(forwardBy: Self.headerSize)
                if let payload = buffer.readSlice(length: Int(length)), length > 0 { deliver(payload, to: id) }
            }
        }
    }

    private func writeHeader(_ command: Command, id: UInt32, length: Int, payload: ByteBuffer? = nil) {
        guard let context else { return }
        var frame = context.channel.allocator.buffer(capacity: Self.headerSize + length)
        frame.writeInteger(Self.version)
        frame.writeInteger(command.rawValue)
        frame.writeInteger(UInt16(length), endianness: .little)
        frame.writeInteger(id, endianness: .little)
        if var payload { frame.writeBuffer(&payload) }
        writeFrame(frame)
    }

    package override func send(_ data: inout ByteBuffer, on id: UInt32) {
        guard streams[id] != nil, !finished.contains(id) else {
            data.moveReaderIndex(forwardBy: data.readableBytes)
            return
        }
        while data.readableBytes > 0 {
            let count = min(data.readableBytes, Self.maxFrameSize)
            guard let piece = data.readSlice(length: count) else { break }
            writeHeader(.psh, id: id, length: count, payload: piece)
        }
    }

    package override func finishOutput(_ id: UInt32) {
        guard streams[id] != nil, !finished.contains(id) else { return }
        finished.insert(id)
        writeHeader(.fin, id: id, length: 0)
    }

    package override func closeStream(_ id: UInt32, reset: Bool) {
        guard streams[id] != nil else { return }
        if !finished.contains(id) { writeHeader(.fin, id: id, length: 0) }
        finished.remove(id)
        streams[id] = nil
    }
}
