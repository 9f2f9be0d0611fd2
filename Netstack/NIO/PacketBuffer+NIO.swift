@_spi(CustomByteBufferAllocator) package import NIOCore
package import NetstackWire
import Synchronization

// The edge between the stack's bytes (`PacketBuffer`) and the event loop's (`ByteBuffer`).
//
// Into the stack, flow data is copied (a TCP send buffer or a fresh datagram buffer takes it).
// Out of the stack, a large received chunk is lent, not copied: NIO gets a `ByteBuffer` over the very
// bytes the TUN read filled, through NIO's custom-allocator SPI. The loan keeps the PacketBuffer's
// block alive until NIO frees that storage; `LentBytes` maps the lent address back to its loan token.

extension ByteBuffer {
    /// A buffer holding a copy of `packet`'s readable bytes.
    package init(copying packet: PacketBuffer, allocator: ByteBufferAllocator) {
        self = allocator.buffer(capacity: packet.readableBytes)
        packet.withUnsafeReadableBytes { _ = self.writeBytes($0) }
    }

    /// A buffer over `packet`'s readable bytes themselves: no copy for chunks of `LentBytes.minimumLoan`
    /// bytes or more (smaller ones are copied, so a few bytes never pin a 64 KiB block). Its capacity
    /// ends at the last lent byte: a write past it, or any write while NIO shares the storage, copies
    /// into fresh memory first, so the stack's other bytes are never touched.
    package init(lending packet: PacketBuffer, allocator: ByteBufferAllocator) {
        guard packet.readableBytes >= LentBytes.minimumLoan,
              let lent = packet.withLoanedReadableBytes({ bytes, token in
                  LentBytes.register(bytes.baseAddress!, token: token)
                  return ByteBuffer(takingOwnershipOf: bytes, allocator: LentBytes.allocator)
              }) else {
            self.init(copying: packet, allocator: allocator)
            return
        }
        self = lent
    }

    /// A buffer over `packet`'s whole view, taken from it (left empty): no copy, and the headroom in
    /// front and the room behind come along, so a device can seal and frame the packet in place.
    package init(takingOver packet: inout PacketBuffer) {
        let taken = packet.lendWholeView { memory, readerIndex, writerIndex, token in
            LentBytes.register(memory.baseAddress!, token: token)
            return ByteBuffer(takingOwnershipOf: memory, allocator: LentBytes.allocator,
                              readerIndex: readerIndex, writerIndex: writerIndex)
        }
        self = taken ?? ByteBuffer()
    }
}

extension PacketBuffer {
    /// A buffer over `buffer`'s readable bytes themselves (no copy), keeping its storage alive. The
    /// caller hands the bytes over: nothing may read them through a ByteBuffer afterwards, because the
    /// stack writes into a packet it holds alone in place (an echo reply, a reassembled header).
    package init(adopting buffer: ByteBuffer) {
        guard buffer.readableBytes > 0 else {
            self.init()
            return
        }
        self = buffer.withUnsafeReadableBytesWithStorageManagement { bytes, storage in
            PacketBuffer(borrowing: UnsafeMutableRawBufferPointer(mutating: bytes), lender: storage.retain(),
                         readerIndex: 0, writerIndex: bytes.count)
        }
    }

    /// A buffer holding a copy of `buffer`'s readable bytes, with `headroom` free bytes before them.
    package init(copying buffer: ByteBuffer, headroom: Int = 0) {
        self.init(capacity: headroom + buffer.readableBytes)
        moveWriterIndex(forwardBy: headroom)
        moveReaderIndex(forwardBy: headroom)
        buffer.withUnsafeReadableBytes { _ = self.writeBytes($0) }
    }
}

/// The loans NIO holds: lent address → the PacketBuffer loan token (and how many buffers start there).
/// NIO may free a buffer on any thread, so the table is behind a mutex; one lookup per lent chunk.
package enum LentBytes {
    /// Chunks smaller than this are copied instead of lent.
    package static let minimumLoan = 1024

    private struct Loan {
        var token: UInt  // the loan token's address (pointers are not Sendable; addresses are)
        var count: Int
    }

    private static let loans = Mutex<[UInt: Loan]>(Dictionary(minimumCapacity: 1024))

    /// Buffers NIO holds over bytes lent at `address` (for tests: every loan must end).
    package static func loanCount(at address: UnsafeRawPointer?) -> Int {
        guard let address else { return 0 }
        return loans.withLock { $0[UInt(bitPattern: address)]?.count ?? 0 }
    }

    static func register(_ address: UnsafeMutableRawPointer, token: UnsafeMutableRawPointer) {
        loans.withLock { table in
            let key = UInt(bitPattern: address)
            if var loan = table[key] {
                // The same bytes lent twice: each buffer holds its own retain of the block.
                PacketBuffer.endLoan(token)
                loan.count += 1
                table[key] = loan
            } else {
                table[key] = Loan(token: UInt(bitPattern: token), count: 1)
            }
        }
    }

    /// Ends the loan for `address` if it is a lent one; false for memory NIO allocated itself.
    static func endLoan(at address: UnsafeMutableRawPointer) -> Bool {
        enum Found { case notLent, stillLent, ended(UInt) }
        let found: Found = loans.withLock { table in
            let key = UInt(bitPattern: address)
            guard var loan = table[key] else { return .notLent }
            guard loan.count == 1 else {
                loan.count -= 1
                table[key] = loan
                return .stillLent
            }
            table[key] = nil
            return .ended(loan.token)
        }
        switch found {
        case .notLent: return false
        case .stillLent: return true
        case .ended(let token):
            PacketBuffer.endLoan(UnsafeMutableRawPointer(bitPattern: token)!)  // outside the lock: the block's deinit frees memory
            return true
        }
    }

    /// The allocator of lent buffers: memory NIO allocates for them (a copy on write, a growth) is its
    /// own; freeing or growing lent memory ends the loan instead of calling free.
    static let allocator = ByteBufferAllocator(
        allocate: { size in UnsafeMutableRawPointer.allocate(byteCount: Swift.max(Int(size), 1), alignment: 16) },
        reallocate: { pointer, oldSize, newSize in
            let fresh = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(Int(newSize), 1), alignment: 16)
            if let pointer {
                fresh.copyMemory(from: pointer, byteCount: Swift.min(Int(oldSize), Int(newSize)))
                if !LentBytes.endLoan(at: pointer) { pointer.deallocate() }
            }
            return fresh
        },
        deallocate: { pointer in
            if !LentBytes.endLoan(at: pointer) { pointer.deallocate() }
        },
        copy: { destination, source, count in destination.copyMemory(from: source, byteCount: Int(count)) }
    )
}
