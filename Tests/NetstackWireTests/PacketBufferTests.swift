import Testing
import NetstackWire

@Suite("PacketBuffer: indices, slices and copy-on-write")
struct PacketBufferTests {
    @Test func integersRoundTripInBothByteOrders() {
        var buffer = PacketBuffer()
        buffer.writeInteger(UInt16(0x0102))
        buffer.writeInteger(UInt32(0x0304_0506), endianness: .little)
        buffer.writeInteger(UInt8(7))
        #expect(Array(buffer.readableBytesView) == [1, 2, 6, 5, 4, 3, 7])
        #expect(buffer.getInteger(at: 0, as: UInt16.self) == 0x0102)
        #expect(buffer.getInteger(at: 2, endianness: .little, as: UInt32.self) == 0x0304_0506)
        #expect(buffer.getInteger(at: 6, as: UInt16.self) == nil)  // runs past the writer index
        #expect(buffer.readInteger(as: UInt16.self) == 0x0102)
        #expect(buffer.readerIndex == 2 && buffer.readableBytes == 5)
    }

    @Test func aSliceNeverChangesWhenItsParentIsWritten() {
        var parent = PacketBuffer(bytes: [1, 2, 3, 4, 5, 6])
        let slice = parent.getSlice(at: 2, length: 3)!
        #expect(slice.readerIndex == 0 && slice.capacity == 3)
        parent.setInteger(UInt8(99), at: 3)
        parent.writeBytes([7, 8])
        #expect(Array(slice.readableBytesView) == [3, 4, 5])
        #expect(Array(parent.readableBytesView) == [1, 2, 3, 99, 5, 6, 7, 8])
    }

    @Test func writingToASliceCopiesAndLeavesTheParent() {
        let parent = PacketBuffer(bytes: [1, 2, 3, 4])
        var slice = parent.getSlice(at: 1, length: 2)!
        slice.writeInteger(UInt8(9))  // past the slice's capacity and into a shared block: copies
        slice.withUnsafeMutableReadableBytes { $0[0] = 42 }
        #expect(Array(slice.readableBytesView) == [42, 3, 9])
        #expect(Array(parent.readableBytesView) == [1, 2, 3, 4])
    }

    @Test func aUniqueBufferGrowsInPlaceAndKeepsItsBytes() {
        var buffer = PacketBuffer(capacity: 4)
        for i in 0..<1000 { buffer.writeInteger(UInt8(truncatingIfNeeded: i)) }
        #expect(buffer.readableBytes == 1000 && buffer.capacity >= 1000)
        #expect(buffer.getInteger(at: 999, as: UInt8.self) == UInt8(truncatingIfNeeded: 999))
    }

    @Test func headroomIsKeptAcrossACopy() {
        var buffer = PacketBuffer(capacity: 64)
        buffer.moveWriterIndex(forwardBy: 16)
        buffer.moveReaderIndex(forwardBy: 16)
        buffer.writeBytes([1, 2, 3])
        let holder = buffer  // shares the block
        buffer.writeBytes([4])  // copies: the copy must keep the 16 bytes in front
        buffer.moveReaderIndex(to: 0)
        #expect(buffer.readableBytes == 20)
        #expect(holder.readableBytes == 3)
    }

    @Test func discardReadBytesMovesTheRestToTheFront() {
        var buffer = PacketBuffer(bytes: [1, 2, 3, 4, 5])
        _ = buffer.readSlice(length: 2)
        let other = buffer
        buffer.discardReadBytes()
        #expect(buffer.readerIndex == 0 && Array(buffer.readableBytesView) == [3, 4, 5])
        #expect(Array(other.readableBytesView) == [3, 4, 5] && other.readerIndex == 2)
        var unique = PacketBuffer(bytes: [9, 8, 7])
        _ = unique.readInteger(as: UInt8.self)
        unique.discardReadBytes()
        #expect(Array(unique.readableBytesView) == [8, 7])
    }

    @Test func clearKeepsAUniqueBlockAndLeavesASharedOne() {
        var buffer = PacketBuffer(bytes: [1, 2, 3])
        let kept = buffer
        buffer.clear()
        buffer.writeBytes([4])
        #expect(Array(kept.readableBytesView) == [1, 2, 3])
        #expect(Array(buffer.readableBytesView) == [4])
    }

    @Test func outOfRangeRequestsAnswerNil() {
        var buffer = PacketBuffer(bytes: [1, 2, 3])
        #expect(buffer.getSlice(at: 2, length: 5) == nil)
        #expect(buffer.getSlice(at: -1, length: 1) == nil)
        #expect(buffer.readSlice(length: 4) == nil)
        #expect(buffer.getBytes(at: 1, length: 3) == nil)
        #expect(buffer.readBytes(length: 3) == [1, 2, 3])
        #expect(buffer.readInteger(as: UInt8.self) == nil)
        #expect(PacketBuffer().readableBytesSpan.byteCount == 0)
    }

    /// Reads reach only readable bytes, as NIO's ByteBuffer: the TCP code relies on a slice past the
    /// buffered data being nil, not the stale bytes that happen to lie there.
    @Test func getsReachOnlyReadableBytes() {
        var buffer = PacketBuffer(capacity: 64)
        buffer.writeBytes([1, 2, 3, 4])
        _ = buffer.readInteger(as: UInt8.self)
        #expect(buffer.getSlice(at: 0, length: 1) == nil)  // before the reader index
        #expect(buffer.getInteger(at: 0, as: UInt8.self) == nil)
        #expect(buffer.getBytes(at: 0, length: 1) == nil)
        #expect(buffer.getSlice(at: 3, length: 2) == nil)  // past the writer index, within capacity
        #expect(buffer.getSlice(at: 1, length: 3) == PacketBuffer(bytes: [2, 3, 4]))
        #expect(buffer.getSlice(at: 4, length: 0)?.readableBytes == 0)
    }

    @Test func writeBufferConsumesTheSource() {
        var source = PacketBuffer(string: "hello")
        var sink = PacketBuffer(repeating: 0x2d, count: 2)
        #expect(sink.writeBuffer(&source) == 5)
        #expect(source.readableBytes == 0)
        #expect(sink == PacketBuffer(string: "--hello"))
    }

    @Test func aRingQueueKeepsOrderAcrossGrowthAndWrap() {
        var queue = RingQueue<Int>(initialCapacity: 2)
        var expected: [Int] = []
        var next = 0
        for round in 0..<50 {
            for _ in 0..<(round % 5 + 1) {
                queue.append(next)
                expected.append(next)
                next += 1
            }
            for _ in 0..<(round % 3) where !expected.isEmpty {
                #expect(queue.popFirst() == expected.removeFirst())
            }
            #expect(queue.count == expected.count && queue.first == expected.first)
        }
        queue.first = -1
        #expect(queue.removeFirst() == -1)
        queue.removeAll()
        #expect(queue.isEmpty && queue.popFirst() == nil)
    }
}
