// yamux (github.com/hashicorp/yamux v0.1.2, spec.md), the `yamux` protocol of sing-mux. A frame is
//   version u8 (0) ‖ type u8 ‖ flags u16 ‖ stream ID u32 ‖ length u32   (all big-endian)
// types: Data 0 (length = payload bytes), Window Update 1 (length = window delta), Ping 2 (length =
// opaque value, SYN asks, ACK answers), Go Away 3 (length = reason, stream ID 0). Flags on Data and
// Window Update: SYN 1 opens a stream, ACK 2 accepts it, FIN 4 half-closes, RST 8 resets.
// Each stream starts with a 256 KiB window each way; a sender never sends past the window it was
// given; the receiver grants more once half of it was read (Go's `sendWindowUpdate`). Client
// stream IDs are odd from 1, the server's even from 2.
package import NIOCore

/// One yamux session on its channel: client (opens streams) or server (accepts them).
package final class YamuxSession: MuxFramedSession {
    static let version: UInt8 = 0
    static let headerSize = 12
    /// yamux's `initialStreamWindow` (also Go's default `MaxStreamWindowSize`).
    static let initialWindow: UInt32 = 256 * 1024

    enum FrameType: UInt8 { case data = 0, windowUpdate = 1, ping = 2, goAway = 3 }
    static let flagSYN: UInt16 = 1, flagACK: UInt16 = 2, flagFIN: UInt16 = 4, flagRST: UInt16 = 8

    /// Per-stream flow control and close state.
    private struct State {
        var sendWindow = YamuxSession.initialWindow
        var receiveWindow = YamuxSession.initialWindow
        /// Bytes read by the pipeline since the last window update.
        var consumed: UInt32 = 0
        /// The stream was opened by the peer and our ACK has not gone out yet.
        var mustAcknowledge = false
        var finishSent = false
        var finishReceived = false
    }

    private var nextStreamID: UInt32
    private var states: [UInt32: State] = [:]

    /// A session; `isClient` picks the side.
    package init(client isClient: Bool) {
        nextStreamID = isClient ? 1 : 2
        super.init(isClient: isClient)
    }

    /// Opens a stream (a window update with SYN and delta 0, as Go's `OpenStream`).
    func openStream() -> MuxStreamChannel? {
        guard nextStreamID < UInt32.max - 2 else { return nil }
        let id = nextStreamID
        nextStreamID += 2
        guard let stream = makeStream(id) else { return nil }
        states[id] = State()
        writeHeader(.windowUpdate, flags: Self.flagSYN, id: id, length: 0)
        flushFrames()
        return stream
    }

    override func parse(_ buffer: inout ByteBuffer) throws(MuxError) {
        while buffer.readableBytes >= Self.headerSize {
            let start = buffer.readerIndex
            guard let version = buffer.getInteger(at: start, as: UInt8.self),
                  let rawType = buffer.getInteger(at: start + 1, as: UInt8.self),
                  let flags = buffer.getInteger(at: start + 2, as: UInt16.self),
                  let id = buffer.getInteger(at: start + 4, as: UInt32.self),
                  let length = buffer.getInteger(at: start + 8, as: UInt32.self) else { return }
            guard version == Self.version else { throw .badFrame("yamux: invalid protocol version \(version)") }
            guard let type = FrameType(rawValue: rawType) else { throw .badFrame("yamux: invalid msg type \(rawType)") }
            switch type {
            case .ping:
                buffer.moveReaderIndex(forwardBy: Self.headerSize)
                if flags & Self.flagSYN != 0 { writeHeader(.ping, flags: Self.flagACK, id: 0, length: length) }
            case .goAway:
                buffer.moveReaderIndex(forwardBy: Self.headerSize)
                fail(MuxError.badFrame("yamux: remote end is not accepting connections"))
                return
            case .windowUpdate:
                buffer.moveReaderIndex(forwardBy: Self.headerSize)
                try streamFlags(flags, id: id)
                if var state = states[id], length > 0 {
                    state.sendWindow &+= length
                    states[id] = state
                    streams[id]?.windowOpened()
                }
            case .data:
                // Go refuses a frame past the window it granted ("recv window exceeded"); no window
                // is ever larger than the initial one, so a longer frame is refused before it is
                // buffered.
                guard length <= Self.initialWindow else { throw .badFrame("yamux: recv window exceeded") }
                guard buffer.readableBytes >= Self.headerSize + Int(length) else { return }
                buffer.moveReaderIndex(forwardBy: Self.headerSize)
                try streamFlags(flags, id: id, dataFollows: true)
                guard let payload = buffer.readSlice(length: Int(length)) else { return }
                if length > 0, var state = states[id] {
                    guard length <= state.receiveWindow else { throw .badFrame("yamux: recv window exceeded") }
                    state.receiveWindow -= length
                    states[id] = state
                    deliver(payload, to: id)
                }
                if flags & Self.flagFIN != 0 { streams[id]?.receiveFinish() }
            }
        }
    }

    /// SYN, ACK, FIN and RST of a data or window-update frame (Go's `processFlags`, plus opening).
    private func streamFlags(_ flags: UInt16, id: UInt32, dataFollows: Bool = false) throws(MuxError) {
        if flags & Self.flagSYN != 0 {
            guard !isClient, id % 2 == 1 else { throw .badFrame("yamux: both yamux endpoints are clients") }
            guard states[id] == nil else { throw .badFrame("yamux: duplicate stream initiated") }
            if !isClosed {
                var state = State()
                state.mustAcknowledge = true
                states[id] = state
                acceptStream(id)
                // Go's Accept answers with a window update carrying ACK at once.
                acknowledge(id)
            }
        }
        if flags & Self.flagRST != 0 {
            states[id] = nil
            if let stream = streams.removeValue(forKey: id) { stream.terminate(MuxError.badFrame("yamux: stream reset")) }
            return
        }
        if flags & Self.flagFIN != 0 && !dataFollows {
            streams[id]?.receiveFinish()
        }
        if flags & Self.flagFIN != 0, var state = states[id] {
            state.finishReceived = true
            states[id] = state
            if state.finishSent { forget(id) }
        }
    }

    private func acknowledge(_ id: UInt32) {
        guard var state = states[id], state.mustAcknowledge else { return }
        state.mustAcknowledge = false
        states[id] = state
        writeHeader(.windowUpdate, flags: Self.flagACK, id: id, length: 0)
    }

    /// Both sides sent FIN: the stream is gone from the session (its channel may still drain).
    private func forget(_ id: UInt32) {
        states[id] = nil
        streams[id] = nil
    }

    private func writeHeader(_ type: FrameType, flags: UInt16, id: UInt32, length: UInt32, payload: ByteBuffer? = nil) {
        guard let context else { return }
        var frame = context.channel.allocator.buffer(capacity: Self.headerSize + Int(payload?.readableBytes ?? 0))
        frame.writeInteger(Self.version)
        frame.writeInteger(type.rawValue)
        frame.writeInteger(flags)
        frame.writeInteger(id)
        frame.writeInteger(length)
        if var payload { frame.writeBuffer(&payload) }
        writeFrame(frame)
    }

    package override func send(_ data: inout ByteBuffer, on id: UInt32) {
        guard var state = states[id], !state.finishSent else {
            data.moveReaderIndex(forwardBy: data.readableBytes)
            return
        }
        while data.readableBytes > 0 && state.sendWindow > 0 {
            let count = min(data.readableBytes, Int(state.sendWindow), 64 * 1024)
            guard let piece = data.readSlice(length: count) else { break }
            state.sendWindow -= UInt32(count)
            writeHeader(.data, flags: 0, id: id, length: UInt32(count), payload: piece)
        }
        states[id] = state
    }

    package override func finishOutput(_ id: UInt32) {
        guard var state = states[id], !state.finishSent else { return }
        state.finishSent = true
        states[id] = state
        writeHeader(.windowUpdate, flags: Self.flagFIN, id: id, length: 0)
        if state.finishReceived { forget(id) }
    }

    package override func closeStream(_ id: UInt32, reset: Bool) {
        if let state = states[id] {
            if reset {
                writeHeader(.windowUpdate, flags: Self.flagRST, id: id, length: 0)
            } else if !state.finishSent {
                writeHeader(.windowUpdate, flags: Self.flagFIN, id: id, length: 0)
            }
        }
        states[id] = nil
        streams[id] = nil
    }

    package override func consumed(_ byteCount: Int, on id: UInt32) {
        super.consumed(byteCount, on: id)
        guard var state = states[id], !state.finishReceived else { return }
        state.consumed &+= UInt32(clamping: byteCount)
        // Go grants more once the delta reaches half the window (`sendWindowUpdate`).
        if state.consumed >= Self.initialWindow / 2 {
            let delta = state.consumed
            state.consumed = 0
            state.receiveWindow &+= delta
            writeHeader(.windowUpdate, flags: 0, id: id, length: delta)
            flushFrames()
        }
        states[id] = state
    }
}
