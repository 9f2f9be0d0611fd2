// TLSServerConfiguration: an inbound's `tls` object as one SSL_CTX, with Go sing-box 1.12.12's
// semantics (common/tls/server.go and std_server.go, read for facts):
// - reality (checked first), acme: the wording of Go's release build, which lacks both;
//   ech: `not implemented: tls.ech` (Go 1.12 serves ECH; this build does not)
// - min_version / max_version: "1.0"–"1.3"; the minimum defaults to 1.2 (Go's server default)
// - cipher_suites: Go's names (`unknown cipher_suite: X` otherwise); TLS 1.3 suites are accepted
//   and, as in Go, not configurable
// - certificate (PEM lines) wins over certificate_path, key over key_path; read errors are
//   `read certificate: open <path>: no such file or directory`, pair errors
//   `parse x509 key pair: tls: …` in Go's words (checked against `sing-box-go check`)
// - alpn: the server's preference order; a client whose list shares nothing is refused with
//   no_application_protocol, except that an http/1.1 client of an h2 server gets no ALPN
//   (Go's crypto/tls `negotiateALPN`)
// - server_name: accepted and unused, as in Go's std server (it selects no certificate)
// - insecure without certificate and key: a self-signed certificate for the client's server name,
//   made during the handshake as Go's does (`SelfSignedCertificates`)
// - certificate_path / key_path: reloaded when they change, as Go 1.12 does (Go watches with
//   fsnotify; we look at the files' stamps at most once a second, when a client connects, so
//   the next handshake after a change serves the new pair); `reloaded TLS certificate`, or
//   `reload certificate: …` with the old pair kept
package import Adapter
import COpenSSL
package import Config
package import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// One SSL_CTX built from an inbound's `tls` options, shared by every connection of that inbound.
/// Immutable after init (OpenSSL allows SSL_new from many threads on one SSL_CTX).
package final class TLSServerConfiguration: @unchecked Sendable {
    let context: OpaquePointer
    /// The server's ALPN protocols in preference order.
    let alpn: [[UInt8]]
    /// `insecure` without certificate and key: certificates made per server name.
    let selfSigned: SelfSignedCertificates?
    /// The files behind the pair, when either came from a path: reloaded when they change.
    let reloader: CertificateReloader?

    /// The configuration for `options`, or nil when `tls` is absent or not enabled (Go's
    /// `NewServer` returns nil then). Throws `AdapterError` for features this build lacks and
    /// `TLSError` for bad values and unreadable files, in Go's words.
    package static func make(_ options: InboundTLSOptions?, logger: ContextLogger? = nil) throws -> TLSServerConfiguration? {
        guard let options, options.enabled else { return nil }
        if options.reality?.enabled == true {
            throw AdapterError(.notImplemented, "uTLS, which is required by reality is not included in this build, rebuild with -tags with_utls")
        }
        if let acme = options.acme, !acme.domain.isEmpty {
            throw AdapterError(.notImplemented, "ACME is not included in this build, rebuild with -tags with_acme")
        }
        if options.ech?.enabled == true { throw AdapterError.notImplemented("tls.ech") }
        return try TLSServerConfiguration(options: options, logger: logger)
    }

    /// Builds the SSL_CTX. Throws `TLSError` worded as Go's `NewSTDServer`.
    /// `logger` (the inbound's) reports certificate reloads.
    package init(options: InboundTLSOptions, logger: ContextLogger? = nil) throws {
        // Go's order: versions, cipher suites, then the certificate and key.
        let minimum = try options.minVersion.map { version throws(TLSError) in try TLSClientConfiguration.protocolVersion(version, field: "min_version") }
        let maximum = try options.maxVersion.map { version throws(TLSError) in try TLSClientConfiguration.protocolVersion(version, field: "max_version") }
        let ciphers = try TLSClientConfiguration.openSSLCipherList(options.cipherSuites)
        var certificate: [UInt8]?
        var key: [UInt8]?
        if !options.certificate.isEmpty {
            certificate = Array(options.certificate.joined(separator: "\n").utf8)
        } else if let path = options.certificatePath, !path.isEmpty {
            certificate = try Self.readFile(path, what: "certificate")
        }
        if !options.key.isEmpty {
            key = Array(options.key.joined(separator: "\n").utf8)
        } else if let path = options.keyPath, !path.isEmpty {
            key = try Self.readFile(path, what: "key")
        }
        let selfSigned = certificate == nil && key == nil && options.insecure
        if !selfSigned {
            guard certificate != nil else { throw TLSError("missing certificate") }
            guard key != nil else { throw TLSError("missing key") }
        }

        guard let context = SSL_CTX_new(TLS_server_method()) else { throw TLSError("SSL_CTX_new failed") }
        self.context = context
        self.selfSigned = selfSigned ? SelfSignedCertificates() : nil
        let certificateFile = options.certificate.isEmpty ? options.certificatePath.flatMap { $0.isEmpty ? nil : $0 } : nil
        let keyFile = options.key.isEmpty ? options.keyPath.flatMap { $0.isEmpty ? nil : $0 } : nil
        if !selfSigned, let certificate, let key, certificateFile != nil || keyFile != nil {
            reloader = CertificateReloader(certificatePath: certificateFile, keyPath: keyFile, certificate: certificate, key: key, logger: logger)
        } else {
            reloader = nil
        }
        alpn = options.alpn.filter { !$0.isEmpty && $0.utf8.count < 256 }.map { Array($0.utf8) }

        let lowest = minimum ?? 0x0303
        SSL_CTX_ctrl(context, 123 /* SSL_CTRL_SET_MIN_PROTO_VERSION */, Int(lowest), nil)
        if let maximum { SSL_CTX_ctrl(context, 124 /* SSL_CTRL_SET_MAX_PROTO_VERSION */, Int(maximum), nil) }
        // OpenSSL 3 refuses TLS 1.0/1.1 above security level 0; Go serves them when asked for.
        if lowest < 0x0303 { SSL_CTX_set_security_level(context, 0) }
        if let ciphers, SSL_CTX_set_cipher_list(context, ciphers) != 1 {
            ERR_clear_error()
            throw TLSError("no cipher suite of \(options.cipherSuites) is available")
        }
        if let certificate, let key {
            let pair = try KeyPair(certificate: certificate, key: key)
            pair.install(in: context)
        }
        if selfSigned || reloader != nil {
            SSL_CTX_set_cert_cb(context, certificateCallback, Unmanaged.passUnretained(self).toOpaque())
        }
        if !alpn.isEmpty {
            SSL_CTX_set_alpn_select_cb(context, alpnSelect, Unmanaged.passUnretained(self).toOpaque())
        }
    }

    deinit { SSL_CTX_free(context) }

    /// The file's bytes; Go's `os.ReadFile` errors wrapped as `read <what>: …`.
    static func readFile(_ path: String, what: String) throws(TLSError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TLSError("read \(what): open \(path): \(goErrnoText(errno))") }
        defer { close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw TLSError("read \(what): read \(path): \(goErrnoText(errno))")
            }
            if count == 0 { return result }
            result.append(contentsOf: chunk[0..<count])
            if result.count > 1 << 24 { throw TLSError("read \(what): \(path): file too large") }
        }
    }

    /// Go's syscall error text: strerror with a lowercase first letter (`no such file or directory`).
    private static func goErrnoText(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "errno \(code)" }
        let message = String(cString: text)
        return message.prefix(1).lowercased() + message.dropFirst()
    }

    /// The PEM blocks' types in `pem`, in order (`CERTIFICATE`, `PRIVATE KEY`, …).
    static func pemTypes(_ pem: [UInt8]) -> [String] {
        let text = String(decoding: pem, as: UTF8.self)
        var types: [String] = []
        for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) where line.hasPrefix("-----BEGIN ") && line.hasSuffix("-----") {
            types.append(String(line.dropFirst(11).dropLast(5)))
        }
        return types
    }

    /// A fresh SSL object in server mode over two memory BIOs.
    func makeSession() throws(TLSError) -> OpaquePointer {
        guard let ssl = SSL_new(context) else { throw TLSError("SSL_new failed") }
        guard let readBIO = BIO_new(BIO_s_mem()), let writeBIO = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw TLSError("BIO_new failed")
        }
        SSL_set_bio(ssl, readBIO, writeBIO)
        SSL_set_accept_state(ssl)
        return ssl
    }

    /// Puts a `TLSHandler` (server) last in `channel`'s pipeline, before the inbound adds its
    /// handshake handlers, so they see plaintext. Last, not first: a connection a listen `detour`
    /// hands over already carries the first inbound's layers (and its early-bytes holder, which
    /// replays into us), and our TLS runs on top of them as Go's does. Call on the channel's loop. The returned future completes with the handshake;
    /// a handshake that fails or takes longer than Go's 15 s (`C.TCPTimeout`) closes the channel.
    package func addServerHandler(to channel: any Channel) throws -> EventLoopFuture<TLSConnection> {
        let loop = channel.eventLoop
        let done = loop.makePromise(of: TLSConnection.self)
        let handler = try TLSHandler(server: self, handshake: done)
        try channel.pipeline.syncOperations.addHandler(handler, position: .last)
        let timeout = loop.scheduleTask(in: .seconds(TLSModule.handshakeTimeoutSeconds)) {
            done.fail(TLSError("i/o timeout"))
            channel.close(promise: nil)
        }
        done.futureResult.whenComplete { _ in timeout.cancel() }
        return done.futureResult
    }

    /// `addServerHandler(to:)` for an inbound: a failed handshake is logged as Go's inbounds log it,
    /// `process connection from <source>: TLS handshake: <error>` (Go's mixed inbound logs a
    /// client that just hung up at debug level: `quietEOF`).
    package func addServerHandler(to channel: any Channel, flowID: FlowID, logger: ContextLogger, quietEOF: Bool = false) throws {
        let source = channel.remoteAddress.flatMap { Destination($0) }.map { "\($0)" } ?? "unknown"
        try addServerHandler(to: channel).whenFailure { error in
            if quietEOF, "\(error)" == "EOF" {
                logger.debug("connection closed: TLS handshake: EOF", flow: flowID)
            } else {
                logger.error("process connection from \(source): TLS handshake: \(error)", flow: flowID)
            }
        }
    }

    /// Go's `negotiateALPN` over the client's wire list `offered`: the first of our protocols the
    /// client offers; none (no ALPN) for an http/1.1 client of an h2 server; else nil (refuse).
    func select(from offered: UnsafeRawBufferPointer) -> (offset: Int, length: Int)?? {
        var fallbackToHTTP11 = false
        for proto in alpn {
            var index = 0
            while index < offered.count {
                let length = Int(offered[index])
                let start = index + 1
                guard start + length <= offered.count else { break }
                if length == proto.count && proto.withUnsafeBytes({ $0.elementsEqual(UnsafeRawBufferPointer(rebasing: offered[start..<start + length])) }) {
                    return .some((start, length))
                }
                if proto == Array("h2".utf8), length == 8, offered[start..<start + length].elementsEqual("http/1.1".utf8) {
                    fallbackToHTTP11 = true
                }
                index = start + length
            }
        }
        return fallbackToHTTP11 ? .some(nil) : nil
    }
}

/// OpenSSL's certificate callback, run once the ClientHello is read. A self-signing server makes
/// the certificate for the client's SNI here; a server with certificate files serves the pair
/// reloaded since the context was built, if any. `arg` is the unretained configuration.
private let certificateCallback: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?) -> Int32 = { ssl, arg in
    guard let ssl, let arg else { return 0 }
    let configuration = Unmanaged<TLSServerConfiguration>.fromOpaque(arg).takeUnretainedValue()
    if let selfSigned = configuration.selfSigned {
        let name = SSL_get_servername(ssl, 0 /* TLSEXT_NAMETYPE_host_name */).map { String(cString: $0) } ?? ""
        guard let entry = selfSigned.entry(for: name) else { return 0 }
        // Both calls take their own references: the cache may drop the entry afterwards.
        guard SSL_use_certificate(ssl, entry.certificate) == 1, SSL_use_PrivateKey(ssl, entry.key) == 1 else { return 0 }
        return 1
    }
    if let pair = configuration.reloader?.current() {
        return pair.install(on: ssl) ? 1 : 0
    }
    return 1  // the context's own pair
}

/// OpenSSL's ALPN selection callback; `arg` is the unretained `TLSServerConfiguration` (it owns the
/// SSL_CTX, so it outlives every handshake).
private let alpnSelect: @convention(c) (OpaquePointer?, UnsafeMutablePointer<UnsafePointer<UInt8>?>?, UnsafeMutablePointer<UInt8>?,
                                        UnsafePointer<UInt8>?, UInt32, UnsafeMutableRawPointer?) -> Int32 = { _, out, outLength, offered, offeredLength, arg in
    guard let arg, let offered, let out, let outLength else { return 3 /* SSL_TLSEXT_ERR_NOACK */ }
    let configuration = Unmanaged<TLSServerConfiguration>.fromOpaque(arg).takeUnretainedValue()
    switch configuration.select(from: UnsafeRawBufferPointer(start: offered, count: Int(offeredLength))) {
    case .some(.some(let chosen)):
        out.pointee = offered + chosen.offset
        outLength.pointee = UInt8(chosen.length)
        return 0  // SSL_TLSEXT_ERR_OK
    case .some(.none):
        return 3  // SSL_TLSEXT_ERR_NOACK: go on without ALPN
    case .none:
        return 2  // SSL_TLSEXT_ERR_ALERT_FATAL: no_application_protocol, as Go refuses
    }
}
