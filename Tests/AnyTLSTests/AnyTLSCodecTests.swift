// The anytls codecs: padding schemes, string maps, frames (sing-anytls v0.0.11 behaviour).
import AnyTLS
import NIOCore
import Testing
import TestSupport

/// SplitMix64 (TestSupport), seeded so random tests reproduce.
typealias SeededGenerator = SplitMix

@Suite struct AnyTLSCodecTests {
    @Test func defaultSchemeMatchesGo() throws {
        let scheme = AnyTLSPaddingScheme.default
        #expect(scheme.stop == 8)
        // md5 of Go's DefaultPaddingScheme bytes (python3: hashlib.md5(...).hexdigest()).
        #expect(scheme.md5 == "75cff2ad89aadf5e257059ee571ebe11")
        #expect(scheme.recordSizes(for: 0) == [30])
        var generator = SeededGenerator(seed: 1)
        for _ in 0..<200 {
            let one = scheme.recordSizes(for: 1, using: &generator)
            #expect(one.count == 1 && (100..<400).contains(one[0]))
            let two = scheme.recordSizes(for: 2, using: &generator)
            #expect(two.count == 9 && (400..<500).contains(two[0]) && two[1] == AnyTLSPaddingScheme.checkMark)
            #expect(scheme.recordSizes(for: 3, using: &generator).first == 9)
        }
        #expect(scheme.recordSizes(for: 8).isEmpty)
    }

    @Test func schemeParsingFollowsGo() throws {
        // No line with '=', or no integer stop: refused (Go's NewPaddingFactory returns nil).
        #expect(AnyTLSPaddingScheme(Array("".utf8)) == nil)
        #expect(AnyTLSPaddingScheme(Array("garbage\n\u{0}\u{ff}".utf8)) == nil)
        #expect(AnyTLSPaddingScheme(Array("stop=x\n0=1-2".utf8)) == nil)
        #expect(AnyTLSPaddingScheme(Array("0=1-2".utf8)) == nil)
        // Reversed ranges swap, non-positive and non-numeric ones are skipped, unknown items too,
        // 'c' only exactly, sizes over 65535 are skipped (a waste frame could not carry them).
        let scheme = try #require(AnyTLSPaddingScheme(Array("stop=+3\n1=9-9,c,x,0-5,7-7,c ,99999-99999,a-b-c\n2=5-5\nnoequals".utf8)))
        #expect(scheme.stop == 3)
        #expect(scheme.recordSizes(for: 1) == [9, AnyTLSPaddingScheme.checkMark, 7])
        #expect(scheme.recordSizes(for: 2) == [5])
        var generator = SeededGenerator(seed: 7)
        let swapped = try #require(AnyTLSPaddingScheme(Array("stop=1\n0=20-10".utf8)))
        #expect((10..<20).contains(swapped.recordSizes(for: 0, using: &generator)[0]))
        // A negative stop wraps as Go's uint32 conversion does.
        #expect(AnyTLSPaddingScheme(Array("stop=-1".utf8))?.stop == UInt32.max)
    }

    @Test func stringMapLikeGo() {
        let map = AnyTLSStringMap.parse(Array("v=2\nclient=a=b\n\nbad\npadding-md5=\nv=3".utf8))
        #expect(map == ["v": "3", "client": "a=b", "padding-md5": ""])
        #expect(AnyTLSStringMap.encode([("v", "2"), ("x", "y")]) == Array("v=2\nx=y".utf8))
    }

    @Test func framesRoundTrip() {
        var out = ByteBuffer()
        AnyTLSFrame.write(.push, stream: 0x0102_0304, bytes: [0xaa, 0xbb], to: &out)
        // cmd 2 (PSH), sid 0x01020304, length 2, data aa bb
        #expect(Array(out.readableBytesView) == [2, 1, 2, 3, 4, 0, 2, 0xaa, 0xbb])
        var decoder = AnyTLSFrameDecoder()
        let frame = decoder.next(from: &out)
        #expect(frame?.command == 2 && frame?.stream == 0x0102_0304 && frame.map { Array($0.data.readableBytesView) } == [0xaa, 0xbb])
        #expect(out.readableBytes == 0)
    }

    /// SYN, FIN, heartbeats and unknown commands never read data: the next frame starts after the
    /// header even when the length field says otherwise (Go's recvLoop).
    @Test(arguments: [AnyTLSCommand.syn.rawValue, AnyTLSCommand.fin.rawValue, AnyTLSCommand.heartRequest.rawValue,
                      AnyTLSCommand.heartResponse.rawValue, 200])
    func headerOnlyCommands(command: UInt8) {
        // cmd, sid 1, length 5 (ignored) | waste sid 0 length 1, data 00
        var bytes = ByteBuffer(bytes: [command, 0, 0, 0, 1, 0, 5, 0, 0, 0, 0, 0, 0, 1, 0])
        var decoder = AnyTLSFrameDecoder()
        let first = decoder.next(from: &bytes)
        #expect(first?.command == command && first?.length == 5 && first?.data.readableBytes == 0)
        let second = decoder.next(from: &bytes)
        #expect(second?.command == AnyTLSCommand.waste.rawValue && second?.data.readableBytes == 1)
        #expect(decoder.next(from: &bytes) == nil)
    }

    /// Every truncation of a frame waits for more bytes and then yields the same frame.
    @Test func truncatedFramesWait() {
        var whole = ByteBuffer()
        AnyTLSFrame.write(.settings, stream: 0, bytes: Array("v=2".utf8), to: &whole)
        let bytes = Array(whole.readableBytesView)
        for cut in 0..<bytes.count {
            var decoder = AnyTLSFrameDecoder()
            var buffer = ByteBuffer(bytes: bytes[..<cut])
            #expect(decoder.next(from: &buffer) == nil)
            buffer.writeBytes(bytes[cut...])
            let frame = decoder.next(from: &buffer)
            #expect(frame.map { String(buffer: $0.data) } == "v=2", "cut at \(cut)")
        }
    }

    @Test func passwordHashIsSHA256() {
        // sha256("pw") = 30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4
        let digits = Array("0123456789abcdef")
        let hex = String(AnyTLSModule.passwordHash("pw").flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
        #expect(hex == "30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4")
    }
}
