// TLSClientConfiguration: an outbound's `tls` object as one SSL_CTX, with Go sing-box 1.12.12's
// semantics (common/tls/std_client.go, read for facts):
// - server_name: the option, else the server address (a name or an IP; an IP is verified against
//   the certificate's IP SANs and never sent as SNI, as Go's crypto/tls does)
// - disable_sni: no SNI, but the certificate is still verified for server_name
// - insecure: no verification at all
// - min_version / max_version: "1.0"–"1.3"; the minimum defaults to 1.2 (Go's client default)
// - cipher_suites: Go's names of its secure suites; TLS 1.3 suites are accepted and, as in Go,
//   not configurable; anything else is `unknown cipher_suite: X`
// - certificate (PEM lines) wins over certificate_path; either replaces the system roots
// - reality, utls: the wording of Go's release build, which lacks uTLS; ech, fragment and
//   record_fragment: `not implemented` naming the field
import Adapter
import COpenSSL
package import Config
package import NIOCore

/// One SSL_CTX built from an outbound's `tls` options, shared by every connection of that outbound.
/// Immutable after init (OpenSSL allows SSL_new from many threads on one SSL_CTX).
package final class TLSClientConfiguration: @unchecked Sendable {
    let context: OpaquePointer
    /// The name sent as SNI and verified (the IP verified, when it is an IP).
    package let serverName: String
    let sendsSNI: Bool
    let verifies: Bool
    /// ALPN protocols in wire form (length-prefixed).
    let alpnWire: [UInt8]

    /// The configuration for `options`, or nil when `tls` is absent or not enabled (Go's `NewClient`
    /// returns nil then). `serverAddress` is the outbound's `server`. Throws `AdapterError` for the
    /// features this build lacks and `TLSError` for bad values.
    package static func make(_ options: OutboundTLSOptions?, serverAddress: String) throws -> TLSClientConfiguration? {
        guard let options, options.enabled else { return nil }
        // Go checks reality before utls; its release build has neither.
        if options.reality?.enabled == true {
            throw AdapterError(.notImplemented, "uTLS, which is required by reality is not included in this build, rebuild with -tags with_utls")
        }
        if options.utls?.enabled == true {
            throw AdapterError(.notImplemented, "uTLS is not included in this build, rebuild with -tags with_utls")
        }
        if options.ech?.enabled == true { throw AdapterError.notImplemented("tls.ech") }
        if options.fragment { throw AdapterError.notImplemented("tls.fragment") }
        if options.recordFragment { throw AdapterError.notImplemented("tls.record_fragment") }
        return try TLSClientConfiguration(options: options, serverAddress: serverAddress)
    }

    /// Builds the SSL_CTX. Throws `TLSError` worded as Go's `NewSTDClient`.
    package init(options: OutboundTLSOptions, serverAddress: String) throws(TLSError) {
        let name = options.serverName.flatMap { $0.isEmpty ? nil : $0 } ?? serverAddress
        if name.isEmpty && !options.insecure { throw TLSError("missing server_name or insecure=true") }
        // Validate everything before the context exists, so a throw leaks nothing.
        let minimum = try options.minVersion.map { version throws(TLSError) in try Self.protocolVersion(version, field: "min_version") }
        let maximum = try options.maxVersion.map { version throws(TLSError) in try Self.protocolVersion(version, field: "max_version") }
        let ciphers = try Self.openSSLCipherList(options.cipherSuites)
        let roots = try Self.rootPEM(options)
        guard let context = SSL_CTX_new(TLS_client_method()) else { throw TLSError("SSL_CTX_new failed") }
        self.context = context
        serverName = name
        sendsSNI = !options.disableSNI && !name.isEmpty && Adapter.IPAddress(name) == nil
        verifies = !options.insecure
        var wire: [UInt8] = []
        for proto in options.alpn where !proto.isEmpty && proto.utf8.count < 256 {
            wire.append(UInt8(proto.utf8.count))
            wire += Array(proto.utf8)
        }
        alpnWire = wire

        let lowest = minimum ?? 0x0303
        SSL_CTX_ctrl(context, 123 /* SSL_CTRL_SET_MIN_PROTO_VERSION */, Int(lowest), nil)
        if let maximum { SSL_CTX_ctrl(context, 124 /* SSL_CTRL_SET_MAX_PROTO_VERSION */, Int(maximum), nil) }
        // OpenSSL 3 refuses TLS 1.0/1.1 above security level 0; Go allows them when asked for.
        if lowest < 0x0303 { SSL_CTX_set_security_level(context, 0) }
        if let ciphers, SSL_CTX_set_cipher_list(context, ciphers) != 1 {
            ERR_clear_error()
            throw TLSError("no cipher suite of \(options.cipherSuites) is available")
        }
        if verifies {
            SSL_CTX_set_verify(context, 0x01 /* SSL_VERIFY_PEER */, nil)
            if let roots {
                let added = TLSClientSession.addCertificates(roots, to: context) ?? 0
                guard added > 0 else { throw TLSError("failed to parse certificate:\n\n\(roots)") }
            } else {
                SSL_CTX_set_default_verify_paths(context)
            }
        }
    }

    deinit { SSL_CTX_free(context) }

    /// Go's `ParseTLSVersion`, its error wrapped as `parse <field>: …`.
    static func protocolVersion(_ text: String, field: String) throws(TLSError) -> UInt16 {
        switch text {
        case "1.0": return 0x0301
        case "1.1": return 0x0302
        case "1.2": return 0x0303
        case "1.3": return 0x0304
        default: throw TLSError("parse \(field): unknown tls version:\(text)")
        }
    }

    /// Go's secure cipher suites (crypto/tls `CipherSuites()`) as OpenSSL names; nil for TLS 1.3
    /// suites, which Go accepts in the list but cannot configure. The release build of 1.12.12
    /// refuses the TLS_RSA_WITH_* suites as unknown (its Go lists them as insecure), so they are
    /// absent here too; `sing-box-go check` was the oracle for every name.
    static let goCipherSuites: [String: String?] = [
        "TLS_AES_128_GCM_SHA256": nil,
        "TLS_AES_256_GCM_SHA384": nil,
        "TLS_CHACHA20_POLY1305_SHA256": nil,
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
        "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
        "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    ]

    /// The OpenSSL cipher string for `names` (TLS ≤ 1.2 only), nil when nothing restricts them.
    static func openSSLCipherList(_ names: [String]) throws(TLSError) -> String? {
        var list: [String] = []
        for name in names {
            guard let mapped = goCipherSuites[name] else { throw TLSError("unknown cipher_suite: \(name)") }
            if let mapped { list.append(mapped) }
        }
        return list.isEmpty ? nil : list.joined(separator: ":")
    }

    /// The PEM text that replaces the system roots: `certificate` lines, else the file at
    /// `certificate_path`; nil when neither is set.
    static func rootPEM(_ options: OutboundTLSOptions) throws(TLSError) -> String? {
        if !options.certificate.isEmpty { return options.certificate.joined(separator: "\n") }
        guard let path = options.certificatePath, !path.isEmpty else { return nil }
        guard let bytes = SystemFile.read(path) else {
            throw TLSError("read certificate: open \(path): no such file or directory")
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A fresh SSL object in client mode over two memory BIOs, with SNI, name check and ALPN set.
    func makeSession() throws(TLSError) -> OpaquePointer {
        try TLSClientSession.make(context, serverName: serverName, sendsSNI: sendsSNI, checksName: verifies && !serverName.isEmpty,
                                  alpnWire: alpnWire)
    }

    /// Adds a `TLSClientHandler` to `channel` at `position` and waits for its handshake (at most
    /// Go's 15 s). On failure the channel is closed and the `TLSError` (or the channel's error)
    /// thrown. Call from any thread; `position` runs on the channel's loop and says where TLS goes:
    /// right before the dialer's early-bytes holder, or `.last`.
    package func handshake(on channel: any Channel,
                           position: @escaping @Sendable () -> ChannelPipeline.SynchronousOperations.Position) async throws -> TLSConnection {
        let loop = channel.eventLoop
        let done = loop.makePromise(of: TLSConnection.self)
        loop.execute {
            do {
                let handler = try TLSClientHandler(configuration: self, handshake: done)
                try channel.pipeline.syncOperations.addHandler(handler, position: position())
            } catch {
                done.fail(error)
            }
        }
        let timeout = loop.scheduleTask(in: .seconds(TLSModule.handshakeTimeoutSeconds)) {
            done.fail(TLSError("tls handshake: timed out after \(TLSModule.handshakeTimeoutSeconds)s"))
        }
        do {
            let connection = try await done.futureResult.get()
            timeout.cancel()
            return connection
        } catch {
            timeout.cancel()
            channel.close(promise: nil)
            throw error
        }
    }
}

/// A finished client handshake: the handler (so protocol handlers can be added right after it)
/// and what was negotiated.
package struct TLSConnection: @unchecked Sendable {
    /// The connection's TLS handler; add protocol handlers `.after` it. Touch only on its loop.
    package let handler: TLSClientHandler
    /// The protocol the server chose by ALPN, nil when none.
    package let alpn: String?
    /// `TLSv1.3`, `TLSv1.2`, … as OpenSSL names it.
    package let version: String
    /// The cipher suite's OpenSSL name.
    package let cipher: String
}
