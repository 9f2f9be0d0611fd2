// anytls session frames under arbitrary read splits (TestSupport/ReadSplits): settings, SYN, PUSH of
// 0, 1, 1000 and 65,535 bytes, waste, heartbeats, SYNACK, FIN and a frame of an unknown command
// (whose length Go ignores), cut one byte per read, at every point near each header, every pair of
// points over the first frames and at seeded random points, into one growing buffer (as the
// session reads) and into a fresh buffer per read.
import AnyTLS
import NIOCore
import Testing
import TestSupport

@Suite struct AnyTLSReadSplitTests {
    @Test func framesUnderEverySplit() throws {
        var wire: [UInt8] = []
        var boundaries: [Int] = []
        func append(_ build: (inout ByteBuffer) -> Void) {
            var out = ByteBuffer()
            build(&out)
            boundaries.append(wire.count)
            wire += out.readableBytesView
        }
        func data(_ count: Int, _ salt: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 17 &+ salt) } }
        append { AnyTLSFrame.write(.settings, stream: 0, bytes: Array("v=2\nclient=sing-box/1.12.12\npadding-md5=x".utf8), to: &$0) }
        append { AnyTLSFrame.write(.syn, stream: 1, to: &$0) }
        append { AnyTLSFrame.write(.push, stream: 1, bytes: [1, 127, 0, 0, 1, 0, 80], to: &$0) }
        append { AnyTLSFrame.write(.push, stream: 1, bytes: [], to: &$0) }
        append { AnyTLSFrame.writeWaste(length: 300, to: &$0) }
        append { AnyTLSFrame.write(.push, stream: 1, bytes: data(1, 1), to: &$0) }
        append { AnyTLSFrame.write(.heartRequest, stream: 0, to: &$0) }
        append { AnyTLSFrame.write(.push, stream: 1, bytes: data(65_535, 2), to: &$0) }
        append { AnyTLSFrame.writeHeader(0x42, stream: 9, length: 1234, to: &$0) }  // unknown: no data read
        append { AnyTLSFrame.write(.synAck, stream: 1, to: &$0) }
        append { AnyTLSFrame.write(.push, stream: 1, bytes: data(1000, 3), to: &$0) }
        append { AnyTLSFrame.write(.fin, stream: 1, to: &$0) }
        let schedules = ReadSplits.schedules(length: wire.count, boundaries: boundaries, pairRegion: 0..<40)
        let growing = ReadSplits.mismatches(wire, schedules: schedules) { reads in
            var decoder = AnyTLSFrameDecoder()
            var buffer = ByteBuffer()
            var frames: [AnyTLSReceivedFrame] = []
            for read in reads {
                buffer.writeBytes(read)
                while let frame = decoder.next(from: &buffer) { frames.append(frame) }
            }
            return frames
        }
        #expect(growing.isEmpty, "\(growing)")
        // The decoder keeps a header across reads itself: a fresh buffer per read holding only what
        // a partial frame left behind works too.
        let fresh = ReadSplits.mismatches(wire, schedules: schedules) { reads in
            var decoder = AnyTLSFrameDecoder()
            var rest = ByteBuffer()
            var frames: [AnyTLSReceivedFrame] = []
            for read in reads {
                var buffer = rest
                buffer.writeBytes(read)
                while let frame = decoder.next(from: &buffer) { frames.append(frame) }
                rest = ByteBuffer(bytes: buffer.readableBytesView)
            }
            return frames
        }
        #expect(fresh.isEmpty, "\(fresh)")
        // 12 frames, the unknown one with no data.
        var decoder = AnyTLSFrameDecoder()
        var whole = ByteBuffer(bytes: wire)
        var count = 0
        while let frame = decoder.next(from: &whole) {
            count += 1
            if frame.command == 0x42 { #expect(frame.data.readableBytes == 0 && frame.length == 1234) }
        }
        #expect(count == 12 && whole.readableBytes == 0)
    }
}
