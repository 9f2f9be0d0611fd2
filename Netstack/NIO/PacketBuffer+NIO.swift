package import NIOCore
package import NetstackWire

// The edge between the stack's bytes (`PacketBuffer`) and the event loop's (`ByteBuffer`): one copy
// each way, made where a flow's data enters or leaves the stack.

extension ByteBuffer {
    /// A buffer holding a copy of `packet`'s readable bytes, with `headroom` free bytes before them and
    /// room for `tailroom` more after them.
    package init(copying packet: PacketBuffer, headroom: Int = 0, tailroom: Int = 0, allocator: ByteBufferAllocator) {
        self = allocator.buffer(capacity: headroom + packet.readableBytes + tailroom)
        if headroom > 0 {
            moveWriterIndex(forwardBy: headroom)
            moveReaderIndex(forwardBy: headroom)
        }
        packet.withUnsafeReadableBytes { _ = self.writeBytes($0) }
    }
}

extension PacketBuffer {
    /// A buffer holding a copy of `buffer`'s readable bytes, with `headroom` free bytes before them.
    package init(copying buffer: ByteBuffer, headroom: Int = 0) {
        self.init(capacity: headroom + buffer.readableBytes)
        moveWriterIndex(forwardBy: headroom)
        moveReaderIndex(forwardBy: headroom)
        buffer.withUnsafeReadableBytes { _ = self.writeBytes($0) }
    }
}
