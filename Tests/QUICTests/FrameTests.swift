// Every RFC 9000 §19 frame (and RFC 9221 DATAGRAM): literal encodings, round trips, every
// truncation, and values the RFC forbids.
import NIOCore
@testable import QUIC
import Testing
import TestSupport

func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

let sampleFrames: [QUICFrame] = [
    .padding(count: 3),
    .ping,
    .ack(QUICACKFrame(ranges: [100...105, 90...95, 0...10], delay: 7)),
    .ack(QUICACKFrame(ranges: [5...5], delay: 0, ecn: .init(ect0: 1, ect1: 2, ce: 3))),
    .resetStream(streamID: 4, errorCode: 0x101, finalSize: 1 << 20),
    .stopSending(streamID: 8, errorCode: 3),
    .crypto(offset: 1000, data: buffer([1, 2, 3, 4])),
    .newToken(token: buffer([9, 9, 9])),
    .stream(streamID: 0, offset: 0, data: buffer(Array("hello".utf8)), fin: false),
    .stream(streamID: 3, offset: 70000, data: buffer([]), fin: true),
    .maxData(1 << 40),
    .maxStreamData(streamID: 2, maximum: 65536),
    .maxStreams(bidirectional: true, maximum: 100),
    .maxStreams(bidirectional: false, maximum: 1 << 60),
    .dataBlocked(limit: 5),
    .streamDataBlocked(streamID: 6, limit: 7),
    .streamsBlocked(bidirectional: true, limit: 8),
    .streamsBlocked(bidirectional: false, limit: 9),
    .newConnectionID(sequence: 2, retirePriorTo: 1, connectionID: QUICConnectionID([1, 2, 3, 4, 5, 6, 7, 8]),
                     resetToken: Array(0..<16)),
    .retireConnectionID(sequence: 1),
    .pathChallenge(data: 0x0102_0304_0506_0708),
    .pathResponse(data: 0x0807_0605_0403_0201),
    .connectionClose(errorCode: 0x0A, frameType: 0x08, reason: buffer(Array("bad".utf8))),
    .connectionClose(errorCode: 42, frameType: nil, reason: buffer([])),
    .handshakeDone,
    .datagram(data: buffer([0xde, 0xad])),
]

@Test(arguments: sampleFrames)
func roundTripsFrame(frame: QUICFrame) throws {
    var encoded = ByteBuffer()
    frame.write(to: &encoded)
    #expect(encoded.readableBytes == frame.encodedLength)
    var reader = encoded
    #expect(try QUICFrame.read(from: &reader) == frame)
    #expect(reader.readableBytes == 0)
}

/// Every strict prefix of a frame is rejected (PADDING and the length-less tails aside).
@Test(arguments: sampleFrames)
func rejectsTruncatedFrame(frame: QUICFrame) {
    var encoded = ByteBuffer()
    frame.write(to: &encoded)
    let bytes = encoded.bytes
    for length in 0..<bytes.count {
        var reader = buffer(Array(bytes.prefix(length)))
        let result = Result { () throws(QUICWireError) in try QUICFrame.read(from: &reader) }
        switch frame {
        case .padding, .ping, .handshakeDone:
            continue  // one-byte frames: a prefix is a shorter valid run or empty
        default:
            if case .success(let parsed) = result { Issue.record("prefix \(length) of \(frame) parsed as \(parsed)") }
        }
    }
}

@Test func readsLiteralFrames() throws {
    // STREAM 0x0e: OFF+LEN, stream 4, offset 0x40 0x10 (16), length 2, "hi"
    var stream = buffer([0x0e, 0x04, 0x40, 0x10, 0x02, 0x68, 0x69])
    #expect(try QUICFrame.read(from: &stream) == .stream(streamID: 4, offset: 16, data: buffer([0x68, 0x69]), fin: false))
    // STREAM 0x09: FIN, no length: the data runs to the end of the packet.
    var tail = buffer([0x09, 0x00, 0x61, 0x62, 0x63])
    #expect(try QUICFrame.read(from: &tail) == .stream(streamID: 0, offset: 0, data: buffer([0x61, 0x62, 0x63]), fin: true))
    // ACK: largest 10, delay 0, 1 extra range, first range 2 (8…10), gap 1, length 0 → 5…5
    var ack = buffer([0x02, 0x0a, 0x00, 0x01, 0x02, 0x01, 0x00])
    #expect(try QUICFrame.read(from: &ack) == .ack(QUICACKFrame(ranges: [8...10, 5...5], delay: 0)))
    // DATAGRAM 0x30: no length, to the end.
    var datagram = buffer([0x30, 0x01, 0x02])
    #expect(try QUICFrame.read(from: &datagram) == .datagram(data: buffer([1, 2])))
}

@Test func rejectsForbiddenValues() {
    func fails(_ bytes: [UInt8], _ expected: QUICWireError) {
        var reader = buffer(bytes)
        #expect(throws: expected) { try QUICFrame.read(from: &reader) }
    }
    fails([0x02, 0x05, 0x00, 0x00, 0x06], .frameEncoding(frameType: 0x02))  // first range > largest
    fails([0x02, 0x05, 0x00, 0x01, 0x00, 0x04, 0x00], .frameEncoding(frameType: 0x02))  // gap runs below 0
    fails([0x02, 0x05, 0x00, 0x01, 0x00, 0x02, 0x03], .frameEncoding(frameType: 0x02))  // range runs below 0
    fails([0x12, 0xd0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01], .frameEncoding(frameType: 0x12))  // MAX_STREAMS > 2^60
    fails([0x07, 0x00], .frameEncoding(frameType: 0x07))  // empty NEW_TOKEN
    fails([0x18, 0x01, 0x02, 0x04, 1, 2, 3, 4] + [UInt8](repeating: 0, count: 16), .frameEncoding(frameType: 0x18))  // retire > sequence
    fails([0x18, 0x01, 0x00, 0x15] + [UInt8](repeating: 0, count: 37), .frameEncoding(frameType: 0x18))  // CID of 21 bytes
    fails([0x18, 0x01, 0x00, 0x00] + [UInt8](repeating: 0, count: 16), .frameEncoding(frameType: 0x18))  // CID of 0 bytes
    fails([0x06, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00], .frameEncoding(frameType: 0x06))  // offset + length > 2^62-1
    fails([0x1f], .unknownFrame(frameType: 0x1f))
    fails([0x40, 0x40], .unknownFrame(frameType: 0x40))
}

/// Seeded random bytes never trap the frame parser.
@Test func randomBytesNeverTrap() {
    var generator = TestRandom(seed: 7)
    for _ in 0..<20000 {
        let length = Int.random(in: 0..<40, using: &generator)
        var reader = buffer((0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) })
        while reader.readableBytes > 0 {
            guard (try? QUICFrame.read(from: &reader)) != nil else { break }
        }
    }
}

/// SplitMix64 (TestSupport), seeded so random tests reproduce.
typealias TestRandom = SplitMix
