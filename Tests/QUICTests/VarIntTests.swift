import NIOCore
@testable import QUIC
import Testing

/// RFC 9000 Appendix A.1's sample encodings.
let rfcVarInts: [([UInt8], UInt64)] = [
    ([0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c], 151_288_809_941_952_652),
    ([0x9d, 0x7f, 0x3e, 0x7d], 494_878_333),
    ([0x7b, 0xbd], 15293),
    ([0x25], 37),
    ([0x40, 0x25], 37),  // non-minimal, still valid
]

@Test(arguments: rfcVarInts)
func readsRFCVarInts(bytes: [UInt8], value: UInt64) {
    var buffer = ByteBuffer(bytes: bytes)
    #expect(buffer.readQUICVarInt() == value)
    #expect(buffer.readableBytes == 0)
}

@Test(arguments: [0, 63, 64, 16383, 16384, (1 << 30) - 1, 1 << 30, quicVarIntMax] as [UInt64])
func roundTripsVarInts(value: UInt64) {
    var buffer = ByteBuffer()
    let written = buffer.writeQUICVarInt(value)
    #expect(written == quicVarIntLength(value))
    #expect(buffer.readQUICVarInt() == value)
}

@Test func truncatedVarIntConsumesNothing() {
    for length in 0..<8 {
        var buffer = ByteBuffer(bytes: Array([0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c].prefix(length)))
        #expect(buffer.readQUICVarInt() == nil)
        #expect(buffer.readerIndex == 0)
    }
}
