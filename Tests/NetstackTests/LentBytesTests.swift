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

    @Test func takingOverAPacketKeepsItsHeadroomAndRoomBehind() {
        var packet = PacketBuffer(capacity: 2048)
        packet.moveWriterIndex(forwardBy: 64)
        packet.moveReaderIndex(forwardBy: 64)
        packet.writeString("an IP packet")
        let address = packet.withUnsafeReadableBytes { $0.baseAddress! - 64 }
        var taken = ByteBuffer(takingOver: &packet)
        #expect(packet.capacity == 0, "the stack's buffer is given up")
        #expect(taken.readerIndex == 64 && taken.readableBytes == 12 && taken.capacity == 2048)
        #expect(LentBytes.loanCount(at: address) == 1)
        // A device frames in place: a header in the headroom and a tag behind, no copy.
        taken.moveReaderIndex(to: 48)
        taken.setInteger(UInt64(0x0400_0000_0000_0001), at: 48)
        taken.writeRepeatingByte(0, count: 16)
        let stillOurs = taken.withUnsafeReadableBytes { $0.baseAddress == UnsafeRawPointer(address + 48) }
        #expect(stillOurs)
        taken = ByteBuffer()
        #expect(LentBytes.loanCount(at: address) == 0)
    }

    @Test func takingOverASharedPacketCopiesItFirst() {
        var packet = PacketBuffer(bytes: [1, 2, 3])
        let other = packet
        var taken = ByteBuffer(takingOver: &packet)
        taken.setInteger(UInt8(9), at: 0)
        #expect(Array(other.readableBytesView) == [1, 2, 3])
        #expect(Array(taken.readableBytesView) == [9, 2, 3])
    }

    @Test func adoptingAByteBufferSharesItsStorageAndKeepsItAlive() {
        var nio = allocator.buffer(capacity: 256)
        nio.writeString("decrypted packet")
        nio.moveReaderIndex(forwardBy: 10)
        let nioAddress = nio.withUnsafeReadableBytes { $0.baseAddress }
        var adopted = PacketBuffer(adopting: nio)
        nio = ByteBuffer()
        #expect(adopted.readerIndex == 0 && adopted.readableBytes == 6)
        #expect(adopted.withUnsafeReadableBytes { $0.baseAddress } == nioAddress, "no copy")
        let slice = adopted.getSlice(at: 0, length: 6)!
        adopted = PacketBuffer()
        #expect(slice == PacketBuffer(string: "packet"), "a slice keeps the adopted storage alive")
    }

    @Test func anAdoptedPacketStillCopiesOnWriteAmongItsViews() {
        var nio = allocator.buffer(capacity: 64)
        nio.writeString("abc")
        var adopted = PacketBuffer(adopting: nio)
        nio = ByteBuffer()
        let view = adopted
        adopted.withUnsafeMutableReadableBytes { $0[0] = UInt8(ascii: "x") }
        #expect(view == PacketBuffer(string: "abc"))
        #expect(adopted == PacketBuffer(string: "xbc"))
    }
}
