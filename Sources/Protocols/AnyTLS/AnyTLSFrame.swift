// Session frames (sing-anytls session/frame.go): cmd (1 byte), stream id (u32 BE), length (u16 BE),
// then `length` bytes of data for the commands that carry data.
package import NIOCore

/// A frame command. Values are the wire bytes.
package enum AnyTLSCommand: UInt8, Sendable {
    /// Padding; the data is ignored.
    case waste = 0
    /// Opens a stream (client → server).
    case syn = 1
    /// Stream data.
    case push = 2
    /// Ends a stream, both ways.
    case fin = 3
    /// The client's settings (`v`, `client`, `padding-md5`).
    case settings = 4
    /// A fatal message; the session ends.
    case alert = 5
    /// A new padding scheme for the client (server → client).
    case updatePaddingScheme = 6
    /// Since v2: the stream's outbound is connected, or (with data) why it is not.
    case synAck = 7
    /// Since v2: keep-alive request; answered with `heartResponse`.
    case heartRequest = 8
    /// Since v2: keep-alive answer.
    case heartResponse = 9
    /// Since v2: the server's settings (`v`).
    case serverSettings = 10

    /// Whether Go's receive loop reads `length` bytes of data after this command's header. SYN,
    /// FIN and the heartbeats never do, nor an unknown command: their length field is ignored and
    /// the next frame starts right after the header (so do we, to read the same frames as Go).
    package var carriesData: Bool {
        switch self {
        case .waste, .push, .settings, .alert, .updatePaddingScheme, .synAck, .serverSettings: true
        case .syn, .fin, .heartRequest, .heartResponse: false
        }
    }
}

/// Frame layout and encoding.
package enum AnyTLSFrame {
    /// `headerOverHeadSize`: 1 + 4 + 2.
    package static let headerSize = 7
    /// The most data one frame's u16 length carries.
    package static let maximumData = Int(UInt16.max)

    /// Appends one frame; `data` must be at most `maximumData` bytes (callers split).
    package static func write(_ command: AnyTLSCommand, stream: UInt32, data: ByteBuffer? = nil, to out: inout ByteBuffer) {
        writeHeader(command.rawValue, stream: stream, length: data?.readableBytes ?? 0, to: &out)
        if var data { out.writeBuffer(&data) }
    }

    /// Appends one frame with bytes as data.
    package static func write(_ command: AnyTLSCommand, stream: UInt32, bytes: [UInt8], to out: inout ByteBuffer) {
        writeHeader(command.rawValue, stream: stream, length: bytes.count, to: &out)
        out.writeBytes(bytes)
    }

    /// Appends a waste frame of `length` zero bytes of data.
    package static func writeWaste(length: Int, to out: inout ByteBuffer) {
        writeHeader(AnyTLSCommand.waste.rawValue, stream: 0, length: length, to: &out)
        out.writeRepeatingByte(0, count: length)
    }

    /// Appends a header alone (tests write malformed frames with it).
    package static func writeHeader(_ command: UInt8, stream: UInt32, length: Int, to out: inout ByteBuffer) {
        precondition(length <= maximumData, "anytls frame data is split by the caller")
        out.writeInteger(command)
        out.writeInteger(stream)
        out.writeInteger(UInt16(length))
    }
}

/// One frame as read: command byte (unknown ones kept), stream id, data (empty unless it carries data).
package struct AnyTLSReceivedFrame: Equatable, Sendable {
    /// The command byte (unknown values kept).
    package var command: UInt8
    /// The stream id.
    package var stream: UInt32
    /// The header's length field (also for commands whose data Go does not read).
    package var length: UInt16
    /// The data read (empty for commands that carry none).
    package var data: ByteBuffer
}

/// Cuts frames from a byte stream the way Go's `recvLoop` reads them. Pure; never traps.
package struct AnyTLSFrameDecoder: Sendable {
    private var header: (command: UInt8, stream: UInt32, length: UInt16)?

    /// A decoder at a frame boundary.
    package init() {}

    /// The next whole frame at the reader index of `buffer`, nil (consuming what it has used) when
    /// more bytes are needed.
    package mutating func next(from buffer: inout ByteBuffer) -> AnyTLSReceivedFrame? {
        if header == nil {
            guard buffer.readableBytes >= AnyTLSFrame.headerSize,
                  let command = buffer.readInteger(as: UInt8.self), let stream = buffer.readInteger(as: UInt32.self),
                  let length = buffer.readInteger(as: UInt16.self) else { return nil }
            header = (command, stream, length)
        }
        guard let (command, stream, length) = header else { return nil }
        var data = ByteBuffer()
        if AnyTLSCommand(rawValue: command)?.carriesData == true, length > 0 {
            guard let slice = buffer.readSlice(length: Int(length)) else { return nil }
            data = slice
        }
        header = nil
        return AnyTLSReceivedFrame(command: command, stream: stream, length: length, data: data)
    }
}
