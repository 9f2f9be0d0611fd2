// TLSHandler: one connection's TLS over a channel, OpenSSL behind memory BIOs, as the client of an
// outbound (`TLSClientConfiguration`) or the server of an inbound (`TLSServerConfiguration`).
//
// 1. added (or active): SSL_do_handshake puts the ClientHello in the write BIO (a client) or
//    finds nothing to read (a server); we send what it wrote and ask for a read ourselves
//    (dialers and listeners hand channels over with autoRead off)
// 2. channelRead: ciphertext goes into the read BIO; the handshake advances (more reads asked for)
//    or, once established, SSL_read turns records into plaintext
// 3. plaintext is held until the handler after us asks for a read, then handed on; a read that
//    yields no whole record asks the channel for another (back-pressure stays with the reader)
// 4. write: plaintext waits until the handshake finished, then SSL_write seals it; each write's
//    records go out with that write's promise
// 5. close(mode: .output) sends close_notify, then half-closes; the peer's close_notify or FIN
//    becomes `inputClosed`, after the plaintext before it
// 6. a failed handshake fails the handshake promise with OpenSSL's reason and closes the channel
//    (OpenSSL's alert, if it wrote one, goes out first)
// A server's handlers after this one (an inbound's protocol handshake) see plaintext only: their
// reads wait until the handshake finished, so they need not know TLS is there.
import COpenSSL
package import NIOCore

/// The client of an outbound's connection (the name the outbounds use).
package typealias TLSClientHandler = TLSHandler

/// The TLS client or server for one connection. Loop-confined to its channel's loop; owns its SSL
/// object (the unchecked `Sendable` only lets a reference travel to its loop, to place handlers after it).
package final class TLSHandler: ChannelDuplexHandler, RemovableChannelHandler, @unchecked Sendable {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer
    package typealias OutboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    private enum State { case idle, handshaking, established, closed }

    private var ssl: OpaquePointer?
    /// A server reports failures without the client's `tls handshake: ` prefix (the inbound logs
    /// `TLS handshake: …` itself, as Go does) and never has a certificate to verify.
    private let isServer: Bool
    private var state = State.idle
    private let handshakeDone: EventLoopPromise<TLSConnection>
    /// Plaintext written before the handshake finished, with its promises.
    private var waitingWrites: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    /// Plaintext not yet asked for, and whether the input ended after it.
    private var held: CircularBuffer<ByteBuffer> = []
    private var heldInputClosed = false
    private var inputClosedDelivered = false
    /// The next handler asked for a read we have not answered yet.
    private var readRequested = false
    /// Inside `deliver`'s loop (a read asked for from there is answered by the next delivery).
    private var isDelivering = false
    private var outputClosed = false

    init(configuration: TLSClientConfiguration, handshake: EventLoopPromise<TLSConnection>) throws(TLSError) {
        self.handshakeDone = handshake
        self.ssl = try configuration.makeSession()
        self.isServer = false
    }

    init(server configuration: TLSServerConfiguration, handshake: EventLoopPromise<TLSConnection>) throws(TLSError) {
        self.handshakeDone = handshake
        self.ssl = try configuration.makeSession()
        self.isServer = true
    }

    /// The protocol chosen by ALPN, once established (nil when none); on the channel's loop.
    package private(set) var negotiatedProtocol: String?

    deinit { if let ssl { SSL_free(ssl) } }

    // MARK: Lifecycle

    package func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { startHandshake(context) }
    }

    package func channelActive(context: ChannelHandlerContext) {
        startHandshake(context)
        context.fireChannelActive()
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        handshakeDone.fail(TLSError("tls handshake: handler removed"))
        release()
    }

    package func channelInactive(context: ChannelHandlerContext) {
        if state != .established {
            handshakeDone.fail(handshakeError(fallback: "EOF"))
        }
        state = .closed
        release()
        for (_, promise) in waitingWrites { promise?.fail(ChannelError.ioOnClosedChannel) }
        waitingWrites.removeAll()
        context.fireChannelInactive()
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard state == .established else {
            handshakeDone.fail(error)
            context.close(promise: nil)
            return
        }
        context.fireErrorCaught(error)
    }

    private func release() {
        if let ssl { SSL_free(ssl) }
        ssl = nil
    }

    // MARK: Inbound

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let ssl, state == .handshaking || state == .established else { return }
        let ciphertext = unwrapInboundIn(data)
        let written = ciphertext.withUnsafeReadableBytes { raw -> Int32 in
            raw.isEmpty ? 0 : BIO_write(SSL_get_rbio(ssl), raw.baseAddress, Int32(raw.count))
        }
        guard written == ciphertext.readableBytes else { return fail(context, TLSError("tls: BIO_write failed")) }
        if state == .handshaking {
            advanceHandshake(context)
        } else {
            readPlaintext(context)
        }
    }

    package func channelReadComplete(context: ChannelHandlerContext) {
        // A read that brought no whole record: the reader is still waiting, so read on.
        if state == .established, readRequested { context.read() }
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, event == .inputClosed else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        switch state {
        case .idle, .handshaking:
            fail(context, handshakeError(fallback: "EOF"))
        case .established:
            heldInputClosed = true
            deliver(context)
        case .closed:
            break
        }
    }

    package func read(context: ChannelHandlerContext) {
        readRequested = true
        if state == .established { deliver(context) }
        context.read()
    }

    // MARK: Outbound

    package func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let plaintext = unwrapOutboundIn(data)
        switch state {
        case .idle, .handshaking:
            waitingWrites.append((plaintext, promise))
        case .established:
            seal(plaintext, context, promise: promise)
        case .closed:
            promise?.fail(ChannelError.ioOnClosedChannel)
        }
    }

    package func flush(context: ChannelHandlerContext) {
        // Before the handshake ends, writes wait and are flushed when it does.
        if state == .established { context.flush() }
    }

    package func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if state == .established, !outputClosed, let ssl, mode != .input {
            // close_notify, so the server reads a clean end of our stream (Go's tls.Conn.CloseWrite).
            outputClosed = true
            SSL_shutdown(ssl)
            ERR_clear_error()
            if let records = drainWriteBIO(context) { context.write(wrapOutboundOut(records), promise: nil) }
            context.flush()
        }
        context.close(mode: mode, promise: promise)
    }

    // MARK: Handshake

    private func startHandshake(_ context: ChannelHandlerContext) {
        guard state == .idle else { return }
        state = .handshaking
        advanceHandshake(context)
    }

    private func advanceHandshake(_ context: ChannelHandlerContext) {
        guard let ssl else { return }
        let result = SSL_do_handshake(ssl)
        if result != 1 {
            let error = SSL_get_error(ssl, result)
            // Our flight (or the alert OpenSSL sends on failure) goes out either way.
            if let records = drainWriteBIO(context) { context.writeAndFlush(wrapOutboundOut(records), promise: nil) }
            if error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE {
                context.read()
                return
            }
            return fail(context, handshakeError(fallback: "connection closed"))
        }
        state = .established
        negotiatedProtocol = selectedALPN(ssl)
        if let records = drainWriteBIO(context) { context.write(wrapOutboundOut(records), promise: nil) }
        let pending = waitingWrites
        waitingWrites.removeAll()
        for (plaintext, promise) in pending { seal(plaintext, context, promise: promise) }
        // Always: the client's Finished is in the first write above.
        context.flush()
        handshakeDone.succeed(TLSConnection(handler: self, alpn: negotiatedProtocol,
                                            version: String(cString: SSL_get_version(ssl)),
                                            cipher: SSL_get_current_cipher(ssl).flatMap { SSL_CIPHER_get_name($0) }.map { String(cString: $0) } ?? ""))
        // Records that came with the server's last flight (tickets, early data) are read now.
        readPlaintext(context)
    }

    private func handshakeError(fallback: String) -> TLSError {
        isServer ? TLSError.serverHandshake(fallback: fallback) : TLSError.handshake(ssl, fallback: fallback)
    }

    private func selectedALPN(_ ssl: OpaquePointer) -> String? {
        var name: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &name, &length)
        guard let name, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: name, count: Int(length)), as: UTF8.self)
    }

    // MARK: Records

    /// Decrypts every whole record in the read BIO into `held`, then hands on what was asked for.
    private func readPlaintext(_ context: ChannelHandlerContext) {
        guard let ssl else { return }
        let available = BIO_ctrl_pending(SSL_get_rbio(ssl))
        var out = context.channel.allocator.buffer(capacity: max(16_384, min(available, 1 << 18)))
        while true {
            if out.writableBytes < 4096 {
                held.append(out)
                out = context.channel.allocator.buffer(capacity: 16_384)
            }
            var result: Int32 = 0
            out.writeWithUnsafeMutableBytes(minimumWritableBytes: 1) { raw -> Int in
                result = SSL_read(ssl, raw.baseAddress, Int32(min(raw.count, Int(Int32.max))))
                return result > 0 ? Int(result) : 0
            }
            if result > 0 { continue }
            let error = SSL_get_error(ssl, result)
            if error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE { break }
            if error == SSL_ERROR_ZERO_RETURN {  // the server's close_notify
                heldInputClosed = true
                break
            }
            if out.readableBytes > 0 { held.append(out) }
            return fail(context, TLSError("tls: \(OpenSSLText.reason() ?? "read failed")"))
        }
        if out.readableBytes > 0 { held.append(out) }
        // Post-handshake messages OpenSSL answers (key updates) go out now.
        if let records = drainWriteBIO(context) { context.writeAndFlush(wrapOutboundOut(records), promise: nil) }
        deliver(context)
    }

    /// Hands held plaintext (then a held end of input) to the next handler if it asked for a read.
    /// The request is answered before the reads are fired: a handler that asks for the next read
    /// while handling this one (a proxy handshake, step by step) keeps its request.
    private func deliver(_ context: ChannelHandlerContext) {
        guard readRequested, !isDelivering else { return }
        if !held.isEmpty {
            readRequested = false
            isDelivering = true
            while let chunk = held.popFirst() {
                context.fireChannelRead(wrapInboundOut(chunk))
            }
            isDelivering = false
            context.fireChannelReadComplete()
        }
        if heldInputClosed, held.isEmpty, !inputClosedDelivered {
            inputClosedDelivered = true
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        }
    }

    /// Seals `plaintext` and writes the records with `promise`. An empty write passes through
    /// empty (a relay uses one to learn that everything before it went out).
    private func seal(_ plaintext: ByteBuffer, _ context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        guard let ssl, !outputClosed else {
            promise?.fail(ChannelError.outputClosed)
            return
        }
        var remaining = plaintext
        while remaining.readableBytes > 0 {
            let written = remaining.withUnsafeReadableBytes { raw in
                SSL_write(ssl, raw.baseAddress, Int32(min(raw.count, Int(Int32.max))))
            }
            guard written > 0 else {
                promise?.fail(TLSError("tls: \(OpenSSLText.reason() ?? "write failed")"))
                return fail(context, TLSError("tls: \(OpenSSLText.reason() ?? "write failed")"))
            }
            remaining.moveReaderIndex(forwardBy: Int(written))
        }
        let records = drainWriteBIO(context) ?? context.channel.allocator.buffer(capacity: 0)
        context.write(wrapOutboundOut(records), promise: promise)
    }

    /// What OpenSSL put in the write BIO, as one buffer; nil when empty.
    private func drainWriteBIO(_ context: ChannelHandlerContext) -> ByteBuffer? {
        guard let ssl, let writeBIO = SSL_get_wbio(ssl) else { return nil }
        var pending = Int(BIO_ctrl_pending(writeBIO))
        guard pending > 0 else { return nil }
        var out = context.channel.allocator.buffer(capacity: pending)
        while pending > 0 {
            let count = out.writeWithUnsafeMutableBytes(minimumWritableBytes: pending) { raw -> Int in
                Int(max(0, BIO_read(writeBIO, raw.baseAddress, Int32(min(raw.count, pending)))))
            }
            guard count > 0 else { break }
            pending = Int(BIO_ctrl_pending(writeBIO))
        }
        return out
    }

    private func fail(_ context: ChannelHandlerContext, _ error: TLSError) {
        let wasEstablished = state == .established
        state = .closed
        handshakeDone.fail(error)
        for (_, promise) in waitingWrites { promise?.fail(error) }
        waitingWrites.removeAll()
        if wasEstablished { context.fireErrorCaught(error) }
        context.close(promise: nil)
    }
}
