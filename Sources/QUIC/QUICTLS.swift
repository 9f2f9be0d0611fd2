// QUICTLS: TLS 1.3 for QUIC through BoringSSL's QUIC API (RFC 9001 §4).
//
// 1. QUIC hands CRYPTO stream bytes in with `provide(_:level:)`; BoringSSL reads them through
//    SSL_provide_quic_data and advances the handshake with SSL_do_handshake.
// 2. BoringSSL calls back (C function pointers, the session found through ex_data): new secrets
//    (`set_read_secret`/`set_write_secret`), handshake bytes to send at a level, a fatal alert.
//    The callbacks only queue; the connection drains `secrets`, `outgoing` and `alert` after each call.
// 3. The server's certificate and key come as PEM; the client verifies the chain against given
//    roots (or not at all when `insecure`, for tests and sing-box's `insecure` option).
import CNIOBoringSSL

/// An encryption level (RFC 9001 §4.1.4); raw values match BoringSSL's `ssl_encryption_level_t`.
package enum QUICEncryptionLevel: Int, Sendable, CaseIterable {
    case initial = 0, earlyData = 1, handshake = 2, application = 3
}

/// TLS settings of one endpoint.
package struct QUICTLSConfiguration: Sendable {
    /// ALPN protocols in preference order; QUIC requires a match (RFC 9001 §8.1).
    package var alpn: [String]
    /// Client: the name sent as SNI and checked against the certificate.
    package var serverName: String?
    /// Server: the certificate chain (leaf first) and private key, PEM.
    package var certificatePEM: [UInt8]?
    package var privateKeyPEM: [UInt8]?
    /// Client: PEM roots to verify the server with; nil uses none (then only `insecure` connects).
    package var trustedRootsPEM: [UInt8]?
    /// Client: skip certificate verification.
    package var insecure = false

    package init(alpn: [String]) { self.alpn = alpn }
}

/// Why TLS could not be set up or failed; the connection closes with `transportError`.
package struct QUICTLSError: Error, CustomStringConvertible, Sendable {
    package var message: String
    package var transportError: QUICTransportError
    package var description: String { message }
}

/// One TLS 1.3 handshake for one QUIC connection. Owned by that connection; not thread-safe.
package final class QUICTLSSession {
    /// A secret BoringSSL installed.
    package struct Secret {
        package var level: QUICEncryptionLevel
        package var isWrite: Bool
        package var suite: QUICCipherSuite
        package var secret: [UInt8]
    }

    let context: OpaquePointer
    let ssl: OpaquePointer
    let isClient: Bool
    let alpnWire: [UInt8]
    /// Secrets installed since the owner last drained them.
    package var secrets: [Secret] = []
    /// Handshake bytes to send, per level, since the owner last drained them.
    package var outgoing: [(level: QUICEncryptionLevel, data: [UInt8])] = []
    /// The fatal alert BoringSSL sent, if any.
    package var alert: UInt8?
    /// Whether the handshake finished (client: server Finished verified; server: client Finished).
    package private(set) var isComplete = false

    /// Makes a client or server session that will send `transportParameters`.
    package init(configuration: QUICTLSConfiguration, isClient: Bool, transportParameters: [UInt8]) throws(QUICTLSError) {
        self.isClient = isClient
        alpnWire = configuration.alpn.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) }
        guard let context = SSL_CTX_new(TLS_method()) else { throw QUICTLSError(message: "create TLS context", transportError: .internalError) }
        self.context = context
        SSL_CTX_set_min_proto_version(context, UInt16(TLS1_3_VERSION))
        SSL_CTX_set_max_proto_version(context, UInt16(TLS1_3_VERSION))
        if !isClient { SSL_CTX_set_alpn_select_cb(context, QUICTLSSession.selectALPN, nil) }
        guard let ssl = SSL_new(context) else {
            SSL_CTX_free(context)
            throw QUICTLSError(message: "create TLS session", transportError: .internalError)
        }
        self.ssl = ssl
        SSL_set_ex_data(ssl, QUICTLSSession.exDataIndex, Unmanaged.passUnretained(self).toOpaque())
        SSL_set_quic_method(ssl, QUICTLSSession.method)
        try configure(configuration, transportParameters: transportParameters)
    }

    deinit {
        SSL_free(ssl)
        SSL_CTX_free(context)
    }

    private func configure(_ configuration: QUICTLSConfiguration, transportParameters: [UInt8]) throws(QUICTLSError) {
        defer { ERR_clear_error() }
        guard SSL_set_quic_transport_params(ssl, transportParameters, transportParameters.count) == 1 else {
            throw QUICTLSError(message: "set transport parameters", transportError: .internalError)
        }
        if isClient {
            SSL_set_connect_state(ssl)
            SSL_set_alpn_protos(ssl, alpnWire, alpnWire.count)
            if let name = configuration.serverName {
                SSL_set_tlsext_host_name(ssl, name)
                if !configuration.insecure { SSL_set1_host(ssl, name) }
            }
            if configuration.insecure {
                SSL_set_verify(ssl, SSL_VERIFY_NONE, nil)
            } else {
                SSL_set_verify(ssl, SSL_VERIFY_PEER, nil)
                if let roots = configuration.trustedRootsPEM {
                    let store = SSL_CTX_get_cert_store(context)
                    for certificate in Self.readCertificates(roots) {
                        X509_STORE_add_cert(store, certificate)
                        X509_free(certificate)
                    }
                }
            }
        } else {
            SSL_set_accept_state(ssl)
            guard let certificatePEM = configuration.certificatePEM, let keyPEM = configuration.privateKeyPEM else {
                throw QUICTLSError(message: "missing certificate", transportError: .internalError)
            }
            let chain = Self.readCertificates(certificatePEM)
            defer { chain.forEach { X509_free($0) } }
            guard let leaf = chain.first, SSL_use_certificate(ssl, leaf) == 1 else {
                throw QUICTLSError(message: "parse certificate", transportError: .internalError)
            }
            for extra in chain.dropFirst() { SSL_add1_chain_cert(ssl, extra) }
            let key: OpaquePointer? = keyPEM.withUnsafeBytes { raw in
                guard let bio = BIO_new_mem_buf(raw.baseAddress, raw.count) else { return nil }
                defer { BIO_free(bio) }
                return PEM_read_bio_PrivateKey(bio, nil, nil, nil)
            }
            guard let key else { throw QUICTLSError(message: "parse private key", transportError: .internalError) }
            defer { EVP_PKEY_free(key) }
            guard SSL_use_PrivateKey(ssl, key) == 1 else { throw QUICTLSError(message: "private key does not match certificate", transportError: .internalError) }
        }
    }

    static func readCertificates(_ pem: [UInt8]) -> [OpaquePointer] {
        pem.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, raw.count) else { return [] }
            defer { BIO_free(bio) }
            var result: [OpaquePointer] = []
            while let certificate = PEM_read_bio_X509(bio, nil, nil, nil) { result.append(certificate) }
            ERR_clear_error()
            return result
        }
    }

    /// Starts the handshake: the client's ClientHello lands in `outgoing`.
    package func start() throws(QUICTLSError) { try advance() }

    /// Hands CRYPTO bytes received at `level` (in order) to TLS and advances the handshake.
    package func provide(_ data: [UInt8], level: QUICEncryptionLevel) throws(QUICTLSError) {
        guard SSL_provide_quic_data(ssl, ssl_encryption_level_t(UInt32(level.rawValue)), data, data.count) == 1 else {
            ERR_clear_error()
            // Too much unprocessed handshake data (RFC 9000 §7.5), or data at a wrong level.
            throw QUICTLSError(message: "TLS rejected handshake data", transportError: .cryptoBufferExceeded)
        }
        if isComplete {
            // Post-handshake messages (NewSessionTicket): processed, nothing to answer in QUIC.
            if SSL_process_quic_post_handshake(ssl) != 1 { try failure() }
        } else {
            try advance()
        }
    }

    private func advance() throws(QUICTLSError) {
        let result = SSL_do_handshake(ssl)
        if result == 1 { isComplete = true; return }
        let error = SSL_get_error(ssl, result)
        if error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE { return }
        try failure()
    }

    private func failure() throws(QUICTLSError) {
        var reason = "TLS handshake failed"
        let code = ERR_peek_error()
        if code != 0, let text = ERR_reason_error_string(code) { reason = "TLS: " + String(cString: text) }
        ERR_clear_error()
        // RFC 9001 §4.8: a TLS alert becomes CRYPTO_ERROR (0x100 + alert).
        throw QUICTLSError(message: reason, transportError: .cryptoError(alert ?? 80 /* internal_error */))
    }

    /// The peer's transport parameters, once TLS has read them.
    package var peerTransportParameters: [UInt8]? {
        var pointer: UnsafePointer<UInt8>?
        var length = 0
        SSL_get_peer_quic_transport_params(ssl, &pointer, &length)
        guard let pointer, length > 0 else { return nil }
        return Array(UnsafeBufferPointer(start: pointer, count: length))
    }

    /// The protocol ALPN chose, once negotiated.
    package var negotiatedALPN: String? {
        var pointer: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &pointer, &length)
        guard let pointer, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: pointer, count: Int(length)), as: UTF8.self)
    }

    /// TLS keying material exporter (RFC 5705 / RFC 8446 §7.5) with a context; nil before the
    /// handshake completed. TUIC derives its authentication token this way.
    package func exportKeyingMaterial(label: [UInt8], context: [UInt8], length: Int) -> [UInt8]? {
        guard isComplete else { return nil }
        var out = [UInt8](repeating: 0, count: length)
        let ok = label.withUnsafeBufferPointer { labelBytes in
            labelBytes.withMemoryRebound(to: CChar.self) { labelChars in
                SSL_export_keying_material(ssl, &out, length, labelChars.baseAddress, label.count, context, context.count, 1)
            }
        }
        ERR_clear_error()
        return ok == 1 ? out : nil
    }

    // MARK: BoringSSL callbacks

    static let exDataIndex: Int32 = SSL_get_ex_new_index(0, nil, nil, nil, nil)

    static func session(_ ssl: OpaquePointer?) -> QUICTLSSession? {
        guard let ssl, let raw = SSL_get_ex_data(ssl, exDataIndex) else { return nil }
        return Unmanaged<QUICTLSSession>.fromOpaque(raw).takeUnretainedValue()
    }

    static func installSecret(_ ssl: OpaquePointer?, _ level: ssl_encryption_level_t, _ cipher: OpaquePointer?,
                              _ secret: UnsafePointer<UInt8>?, _ length: Int, isWrite: Bool) -> Int32 {
        guard let session = session(ssl), let cipher, let secret,
              let level = QUICEncryptionLevel(rawValue: Int(level.rawValue)),
              let suite = QUICCipherSuite(tlsID: SSL_CIPHER_get_protocol_id(cipher)) else { return 0 }
        session.secrets.append(Secret(level: level, isWrite: isWrite, suite: suite, secret: Array(UnsafeBufferPointer(start: secret, count: length))))
        return 1
    }

    nonisolated(unsafe) static let method: UnsafeMutablePointer<SSL_QUIC_METHOD> = {
        let method = UnsafeMutablePointer<SSL_QUIC_METHOD>.allocate(capacity: 1)
        method.initialize(to: SSL_QUIC_METHOD(
            set_read_secret: { ssl, level, cipher, secret, length in
                QUICTLSSession.installSecret(ssl, level, cipher, secret, length, isWrite: false)
            },
            set_write_secret: { ssl, level, cipher, secret, length in
                QUICTLSSession.installSecret(ssl, level, cipher, secret, length, isWrite: true)
            },
            add_handshake_data: { ssl, level, data, length in
                guard let session = QUICTLSSession.session(ssl), let data,
                      let level = QUICEncryptionLevel(rawValue: Int(level.rawValue)) else { return 0 }
                session.outgoing.append((level, Array(UnsafeBufferPointer(start: data, count: length))))
                return 1
            },
            flush_flight: { _ in 1 },
            send_alert: { ssl, _, alert in
                QUICTLSSession.session(ssl)?.alert = alert
                return 1
            }))
        return method
    }()

    /// Server ALPN: the first of the client's protocols we also speak; none is fatal (RFC 9001 §8.1).
    static let selectALPN: @convention(c) (OpaquePointer?, UnsafeMutablePointer<UnsafePointer<UInt8>?>?, UnsafeMutablePointer<UInt8>?,
                                           UnsafePointer<UInt8>?, UInt32, UnsafeMutableRawPointer?) -> Int32 = { ssl, out, outLength, input, inputLength, _ in
        guard let session = QUICTLSSession.session(ssl), let input, let out, let outLength else { return SSL_TLSEXT_ERR_ALERT_FATAL }
        var ours: [[UInt8]] = []
        var index = 0
        while index < session.alpnWire.count {
            let length = Int(session.alpnWire[index])
            ours.append(Array(session.alpnWire[(index + 1)..<min(session.alpnWire.count, index + 1 + length)]))
            index += 1 + length
        }
        for protocolName in ours {
            var offset = 0
            while offset < Int(inputLength) {
                let length = Int(input[offset])
                guard offset + 1 + length <= Int(inputLength) else { break }
                if Array(UnsafeBufferPointer(start: input + offset + 1, count: length)) == protocolName {
                    out.pointee = input + offset + 1
                    outLength.pointee = UInt8(length)
                    return SSL_TLSEXT_ERR_OK
                }
                offset += 1 + length
            }
        }
        return SSL_TLSEXT_ERR_ALERT_FATAL
    }
}
