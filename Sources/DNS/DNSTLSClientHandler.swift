// A TLS client over any channel, for DNS over TLS (RFC 7858), with OpenSSL 3 through memory BIOs:
// ciphertext moves through the channel (a kernel socket or a detour), OpenSSL only sees buffers.
//
// 1. handlerAdded / channelActive: SSL_do_handshake writes the ClientHello into the write BIO; we send it
// 2. channelRead: ciphertext goes into the read BIO; the handshake advances, or SSL_read yields
//    plaintext that is passed on
// 3. write: plaintext waits until the handshake is done, then SSL_write seals it into the write BIO
// 4. any OpenSSL failure (bad certificate, wrong name, protocol error) is fired as a
//    `DNSTLSError` and closes the channel
//
// The project's TLS module (Sources/TLS, NIOSSL) does not exist yet; when it does, DNS should take
// its client handler instead of this one. Only what a DNS client needs is here: roots (system or
// the config's certificate / certificate_path), SNI, name or IP verification, ALPN, insecure, a
// minimum version of TLS 1.2 unless `min_version` says otherwise.

import Adapter
import COpenSSL
import TLS
package import Config
package import NIOCore

/// A TLS failure, with OpenSSL's reason (`certificate verify failed: self-signed certificate`).
package struct DNSTLSError: Error, CustomStringConvertible, Equatable {
    package var message: String
    package init(_ message: String) { self.message = message }
    package var description: String { "tls: \(message)" }
}

/// Fired inbound once the handshake finished, with the protocol the server chose by ALPN (nil
/// when it chose none), so the handlers behind TLS can be set up for it.
struct DNSTLSHandshakeCompleted: Sendable {
    var alpn: String?
}

/// One SSL_CTX built from a server's `tls` options; shared by every connection of a transport.
package final class DNSTLSContext: @unchecked Sendable {
    // Immutable after init; OpenSSL allows SSL_new from many threads on one SSL_CTX.
    let context: OpaquePointer
    /// The name sent as SNI and verified (or the address verified, when it is an IP).
    package let serverName: String
    let sendsSNI: Bool
    let verifies: Bool
    let alpn: [UInt8]

    /// Builds the context; throws `DNSTLSError` for unreadable certificates or bad versions.
    /// `defaultServerName` is the server's address, used when `server_name` is unset.
    package init(options: OutboundTLSOptions?, defaultServerName: String) throws(DNSTLSError) {
        guard let context = SSL_CTX_new(TLS_client_method()) else { throw DNSTLSError("SSL_CTX_new failed") }
        self.context = context
        let options = options ?? OutboundTLSOptions()
        serverName = options.serverName.flatMap { $0.isEmpty ? nil : $0 } ?? defaultServerName
        sendsSNI = !options.disableSNI && Adapter.IPAddress(serverName) == nil
        verifies = !options.insecure
        var protos: [UInt8] = []
        for name in options.alpn where !name.isEmpty && name.utf8.count < 256 {
            protos.append(UInt8(name.utf8.count))
            protos += Array(name.utf8)
        }
        alpn = protos
        let versions: [String: Int] = ["1.0": 0x0301, "1.1": 0x0302, "1.2": 0x0303, "1.3": 0x0304]
        let minimum = options.minVersion.map { versions[$0] } ?? 0x0303
        guard let minimum else { throw DNSTLSError("unknown tls version: \(options.minVersion ?? "")") }
        SSL_CTX_ctrl(context, 123 /* SSL_CTRL_SET_MIN_PROTO_VERSION */, minimum, nil)
        if let maximum = options.maxVersion {
            guard let value = versions[maximum] else { throw DNSTLSError("unknown tls version: \(maximum)") }
            SSL_CTX_ctrl(context, 124 /* SSL_CTRL_SET_MAX_PROTO_VERSION */, value, nil)
        }
        if verifies {
            SSL_CTX_set_verify(context, 0x01 /* SSL_VERIFY_PEER */, nil)
            // Go: given certificates replace the system roots (RootCAs = that pool).
            var pem = options.certificate.joined(separator: "\n")
            if let path = options.certificatePath {
                guard let bytes = SystemFile.read(path) else { throw DNSTLSError("read certificate: open \(path): no such file or directory") }
                pem += "\n" + String(decoding: bytes, as: UTF8.self)
            }
            if pem.contains("-----BEGIN") {
                guard let added = TLSClientSession.addCertificates(pem, to: context) else { throw DNSTLSError("BIO_new_mem_buf failed") }
                guard added > 0 else { throw DNSTLSError("parse certificate: no certificate found") }
            } else {
                SSL_CTX_set_default_verify_paths(context)
            }
        }
    }

    deinit { SSL_CTX_free(context) }

    /// A fresh SSL session set up for one connection.
    func makeSession() throws(DNSTLSError) -> OpaquePointer {
        do {
            return try TLSClientSession.make(context, serverName: serverName, sendsSNI: sendsSNI, checksName: verifies, alpnWire: alpn)
        } catch {
            throw DNSTLSError(error.message)
        }
    }
}

/// The TLS client for one connection. Loop-confined to its channel's loop.
final class DNSTLSClientHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let tls: DNSTLSContext
    private var ssl: OpaquePointer?
    private var handshakeDone = false
    private var started = false
    /// Plaintext written before the handshake finished.
    private var waiting: [ByteBuffer] = []
    /// Scratch for BIO and SSL reads, reused.
    private var scratch = [UInt8](repeating: 0, count: 16_384)

    init(context: DNSTLSContext) throws(DNSTLSError) {
        tls = context
        ssl = try context.makeSession()
    }

    deinit { if let ssl { SSL_free(ssl) } }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { advance(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        advance(context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let ssl else { return }
        var buffer = unwrapInboundIn(data)
        while buffer.readableBytes > 0 {
            let written = buffer.withUnsafeReadableBytes { raw in BIO_write(SSL_get_rbio(ssl), raw.baseAddress, Int32(raw.count)) }
            guard written > 0 else { return fail(context, DNSTLSError("BIO_write failed")) }
            buffer.moveReaderIndex(forwardBy: Int(written))
        }
        advance(context)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let plaintext = unwrapOutboundIn(data)
        guard handshakeDone else {
            waiting.append(plaintext)
            promise?.succeed(())
            return
        }
        seal(plaintext, context)
        flushCiphertext(context, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let ssl {
            SSL_free(ssl)
            self.ssl = nil
        }
        context.fireChannelInactive()
    }

    /// Runs the handshake while it needs to, then reads every record available.
    private func advance(_ context: ChannelHandlerContext) {
        guard let ssl else { return }
        if !handshakeDone {
            started = true
            let result = SSL_do_handshake(ssl)
            if result != 1 {
                let error = SSL_get_error(ssl, result)
                flushCiphertext(context, promise: nil)
                if error == 2 /* WANT_READ */ || error == 3 /* WANT_WRITE */ { return }
                return fail(context, handshakeError())
            }
            handshakeDone = true
            for plaintext in waiting { seal(plaintext, context) }
            waiting.removeAll()
            flushCiphertext(context, promise: nil)
            // Before any record is read, so a handler can set up the pipeline for the protocol.
            context.fireUserInboundEventTriggered(DNSTLSHandshakeCompleted(alpn: selectedALPN(ssl)))
            guard self.ssl != nil else { return }
        }
        while true {
            let count = scratch.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
            if count > 0 {
                var out = context.channel.allocator.buffer(capacity: Int(count))
                scratch.withUnsafeBytes { out.writeBytes(UnsafeRawBufferPointer(rebasing: $0[0..<Int(count)])) }
                context.fireChannelRead(wrapInboundOut(out))
                continue
            }
            let error = SSL_get_error(ssl, count)
            flushCiphertext(context, promise: nil)  // post-handshake messages (tickets, key updates)
            if error == 2 /* WANT_READ */ { break }
            if error == 6 /* ZERO_RETURN: close_notify */ { context.close(promise: nil); break }
            return fail(context, DNSTLSError(OpenSSLErrors.reason() ?? "read failed"))
        }
        context.fireChannelReadComplete()
    }

    /// The protocol the server selected by ALPN, if any.
    private func selectedALPN(_ ssl: OpaquePointer) -> String? {
        var name: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &name, &length)
        guard let name, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: name, count: Int(length)), as: UTF8.self)
    }

    private func seal(_ plaintext: ByteBuffer, _ context: ChannelHandlerContext) {
        guard let ssl, plaintext.readableBytes > 0 else { return }
        let written = plaintext.withUnsafeReadableBytes { SSL_write(ssl, $0.baseAddress, Int32($0.count)) }
        if written <= 0 { fail(context, DNSTLSError(OpenSSLErrors.reason() ?? "write failed")) }
    }

    /// Sends whatever OpenSSL put in the write BIO.
    private func flushCiphertext(_ context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        guard let ssl, let writeBIO = SSL_get_wbio(ssl) else { promise?.succeed(()); return }
        var pending = BIO_ctrl_pending(writeBIO)
        guard pending > 0 else { promise?.succeed(()); return }
        var out = context.channel.allocator.buffer(capacity: pending)
        while pending > 0 {
            let count = scratch.withUnsafeMutableBytes { BIO_read(writeBIO, $0.baseAddress, Int32(min($0.count, pending))) }
            guard count > 0 else { break }
            scratch.withUnsafeBytes { out.writeBytes(UnsafeRawBufferPointer(rebasing: $0[0..<Int(count)])) }
            pending = BIO_ctrl_pending(writeBIO)
        }
        context.writeAndFlush(wrapOutboundOut(out), promise: promise)
    }

    private func fail(_ context: ChannelHandlerContext, _ error: DNSTLSError) {
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    /// Why the handshake failed: the certificate check's reason when that failed, else OpenSSL's.
    private func handshakeError() -> DNSTLSError {
        if let ssl, let failure = OpenSSLErrors.verifyFailure(ssl) {
            return DNSTLSError("handshake: certificate verify failed: \(failure)")
        }
        return DNSTLSError("handshake: \(OpenSSLErrors.reason() ?? "connection closed")")
    }
}
