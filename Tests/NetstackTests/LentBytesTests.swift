import Testing
import NIOCore
import NetstackWire
import NetstackNIO

/// The zero-copy edge: a chunk the stack read is lent to NIO as a ByteBuffer over the same bytes.
@Suite("LentBytes: stack chunks lent to NIO without a copy")
struct LentBytesTests {
    let allocator = ByteBufferAllocator()

    /// NIO buffers holding a loan of `chunk`'s bytes.
    func loans(of chunk: PacketBuffer) -> Int {
        chunk.withUnsafeReadableBytes { LentBytes.loanCount(at: $0.baseAddress) }
    }

    /// A packet block with a header in front of a 4000-byte payload and a second chunk behind it.
    func block() -> (whole: PacketBuffer, first: PacketBuffer, second: PacketBuffer) {
        var whole = PacketBuffer(capacity: 9000)
        whole.writeRepeatingByte(0xee, count: 60)  // "headers"
        for i in 0..<8000 { whole.writeInteger(UInt8(truncatingIfNeeded: i)) }
        return (whole, whole.getSlice(at: 60, length: 4000)!, whole.getSlice(at: 4060, length: 4000)!)
    }

    @Test func aLargeChunkIsLentAndItsBytesAreTheStacks() {
        let (_, first, _) = block()
        do {
            let lent = ByteBuffer(lending: first, allocator: allocator)
            #expect(loans(of: first) == 1)
            #expect(lent.readableBytes == 4000)
            let same = lent.withUnsafeReadableBytes { nio in first.withUnsafeReadableBytes { ours in nio.baseAddress == ours.baseAddress } }
            #expect(same, "the lent buffer reads the stack's own memory")
            #expect(Array(lent.readableBytesView) == Array(first.readableBytesView))
        }
        #expect(loans(of: first) == 0, "the loan ends when NIO frees its buffer")
    }

    @Test func nioWritesNeverReachTheStacksOtherBytes() {
        let (whole, first, second) = block()
        let secondBefore = Array(second.readableBytesView)
        do {
            var lent = ByteBuffer(lending: first, allocator: allocator)
            lent.writeString("appended past the lent bytes")  // capacity ends at the loan: NIO copies first
            lent.setInteger(UInt8(1), at: 0)
            #expect(lent.readableBytes == 4000 + 28)
            var slice = lent.getSlice(at: 0, length: 10)!
            slice.setInteger(UInt8(2), at: 0)
            #expect(lent.getInteger(at: 0, as: UInt8.self) == 1)
        }
        #expect(Array(second.readableBytesView) == secondBefore)
        #expect(whole.getInteger(at: 59, as: UInt8.self) == 0xee)
        #expect(loans(of: first) == 0, "growing a lent buffer ends its loan")
    }

    @Test func aLoanKeepsTheBlockAliveAfterTheStackLetsGo() {
        var lent: ByteBuffer
        let address: UnsafeRawPointer?
        do {
            let (_, first, _) = block()
            lent = ByteBuffer(lending: first, allocator: allocator)
            address = first.withUnsafeReadableBytes { $0.baseAddress }
        }
        #expect(lent.getInteger(at: 3999, as: UInt8.self) == UInt8(truncatingIfNeeded: 3999))
        var copy = lent  // NIO's own sharing: one loan, two ByteBuffers
        copy.moveReaderIndex(forwardBy: 100)
        lent = ByteBuffer()
        #expect(LentBytes.loanCount(at: address) == 1)
        #expect(copy.readableBytes == 3900)
        copy = ByteBuffer()
        #expect(LentBytes.loanCount(at: address) == 0)
    }

    @Test func smallChunksAndEmptyOnesAreCopied() {
        let small = PacketBuffer(bytes: [1, 2, 3])
        let copied = ByteBuffer(lending: small, allocator: allocator)
        #expect(Array(copied.readableBytesView) == [1, 2, 3])
        #expect(ByteBuffer(lending: PacketBuffer(), allocator: allocator).readableBytes == 0)
        #expect(loans(of: small) == 0)
    }

    @Test func theStackCopiesBeforeWritingIntoALentBlock() {
        var (whole, first, _) = block()
        let lent = ByteBuffer(lending: first, allocator: allocator)
        whole.setInteger(UInt8(0x77), at: 60)  // the lent bytes' first byte, written through the parent
        #expect(lent.getInteger(at: 0, as: UInt8.self) == 0, "the loan makes the block shared: the stack wrote a copy")
        #expect(whole.getInteger(at: 60, as: UInt8.self) == 0x77)
    }
}
