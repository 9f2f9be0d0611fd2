// KeyPair: a server's certificate chain and private key parsed from PEM, failing as Go's
// `tls.X509KeyPair` words it; and CertificateReloader, which re-reads the files behind a pair when
// their stamps change (Go's STDServerConfig watches them with fsnotify and swaps the pair in).
package import Adapter
import COpenSSL
import Config
import Synchronization

/// A parsed chain (leaf first) and its key. Immutable; freed with the last reference.
final class KeyPair: @unchecked Sendable {
    let chain: [OpaquePointer]
    let key: OpaquePointer

    /// Parses `certificate` and `key` PEM. Throws `parse x509 key pair: tls: …` in Go's words.
    init(certificate: [UInt8], key: [UInt8]) throws(TLSError) {
        let certificateTypes = TLSServerConfiguration.pemTypes(certificate), keyTypes = TLSServerConfiguration.pemTypes(key)
        if !certificateTypes.contains("CERTIFICATE") {
            if certificateTypes.isEmpty { throw TLSError("parse x509 key pair: tls: failed to find any PEM data in certificate input") }
            if certificateTypes.contains(where: { $0.hasSuffix("PRIVATE KEY") }) {
                throw TLSError("parse x509 key pair: tls: failed to find certificate PEM data in certificate input, but did find a private key; PEM inputs may have been switched")
            }
            throw TLSError("parse x509 key pair: tls: failed to find \"CERTIFICATE\" PEM block in certificate input after skipping PEM blocks of the following types: \(certificateTypes)")
        }
        if !keyTypes.contains(where: { $0 == "PRIVATE KEY" || $0.hasSuffix(" PRIVATE KEY") }) {
            if keyTypes.isEmpty { throw TLSError("parse x509 key pair: tls: failed to find any PEM data in key input") }
            if keyTypes.contains("CERTIFICATE") { throw TLSError("parse x509 key pair: tls: found a certificate rather than a key in the PEM for the private key") }
            throw TLSError("parse x509 key pair: tls: failed to find PEM block with type ending in \"PRIVATE KEY\" in key input after skipping PEM blocks of the following types: \(keyTypes)")
        }
        defer { ERR_clear_error() }
        var certificates: [OpaquePointer] = []
        var pem = certificate
        pem.withUnsafeMutableBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return }
            defer { BIO_free(bio) }
            while let item = PEM_read_bio_X509(bio, nil, nil, nil) { certificates.append(item) }
        }
        guard let leaf = certificates.first else {
            throw TLSError("parse x509 key pair: tls: failed to parse certificate: \(OpenSSLText.reason() ?? "malformed certificate")")
        }
        var keyPEM = key
        let privateKey: OpaquePointer? = keyPEM.withUnsafeMutableBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_PrivateKey(bio, nil, nil, nil)
        }
        guard let privateKey else {
            for item in certificates { X509_free(item) }
            throw TLSError("parse x509 key pair: tls: failed to parse private key: \(OpenSSLText.reason() ?? "malformed key")")
        }
        guard X509_check_private_key(leaf, privateKey) == 1 else {
            for item in certificates { X509_free(item) }
            EVP_PKEY_free(privateKey)
            throw TLSError("parse x509 key pair: tls: private key does not match public key")
        }
        chain = certificates
        self.key = privateKey
    }

    deinit {
        for item in chain { X509_free(item) }
        EVP_PKEY_free(key)
    }

    /// Makes this the context's pair (every call takes its own references).
    func install(in context: OpaquePointer) {
        SSL_CTX_use_certificate(context, chain[0])
        for intermediate in chain.dropFirst() {
            SSL_CTX_ctrl(context, 89 /* SSL_CTRL_CHAIN_CERT: add1 */, 1, UnsafeMutableRawPointer(intermediate))
        }
        SSL_CTX_use_PrivateKey(context, key)
        ERR_clear_error()
    }

    /// Makes this one connection's pair, replacing what it copied from the context.
    func install(on ssl: OpaquePointer) -> Bool {
        defer { ERR_clear_error() }
        guard SSL_use_certificate(ssl, chain[0]) == 1, SSL_use_PrivateKey(ssl, key) == 1 else { return false }
        SSL_ctrl(ssl, 88 /* SSL_CTRL_CHAIN: set0 */, 0, nil)
        for intermediate in chain.dropFirst() {
            SSL_ctrl(ssl, 89 /* SSL_CTRL_CHAIN_CERT: add1 */, 1, UnsafeMutableRawPointer(intermediate))
        }
        return true
    }
}

/// Watches the certificate and key files of one inbound by their stamps, at most once a second
/// and only when a client connects (from any loop; state behind a mutex).
final class CertificateReloader: Sendable {
    private struct State {
        var certificate: [UInt8]
        var key: [UInt8]
        var certificateStamp: SystemFile.Stamp?
        var keyStamp: SystemFile.Stamp?
        var lastCheck: Int = 0
        /// The pair loaded since start; nil while the context's own is current.
        var reloaded: KeyPair?
    }

    private let certificatePath: String?
    private let keyPath: String?
    private let logger: ContextLogger?
    private let state: Mutex<State>

    /// `certificate` and `key` are the bytes the context was built from; a nil path is inline PEM.
    init(certificatePath: String?, keyPath: String?, certificate: [UInt8], key: [UInt8], logger: ContextLogger?) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.logger = logger
        state = Mutex(State(certificate: certificate, key: key,
                            certificateStamp: certificatePath.flatMap { SystemFile.stamp($0) },
                            keyStamp: keyPath.flatMap { SystemFile.stamp($0) }))
    }

    /// The pair to serve: a reloaded one, or nil for the context's own.
    func current() -> KeyPair? {
        let now = Int(time(nil))
        let certificatePath = self.certificatePath, keyPath = self.keyPath, logger = self.logger
        return state.withLock { state -> KeyPair? in
            guard now != state.lastCheck else { return state.reloaded }
            state.lastCheck = now
            let certificateStamp = certificatePath.flatMap { SystemFile.stamp($0) }
            let keyStamp = keyPath.flatMap { SystemFile.stamp($0) }
            guard certificateStamp != state.certificateStamp || keyStamp != state.keyStamp else { return state.reloaded }
            // Go reloads the file that changed and pairs it with the other's last bytes.
            do throws(TLSError) {
                if let certificatePath, certificateStamp != state.certificateStamp {
                    state.certificateStamp = certificateStamp
                    do throws(TLSError) {
                        state.certificate = try TLSServerConfiguration.readFile(certificatePath, what: "certificate")
                    } catch {
                        throw TLSError("reload certificate from \(certificatePath): \(error.message.dropFirst("read certificate: ".count))")
                    }
                }
                if let keyPath, keyStamp != state.keyStamp {
                    state.keyStamp = keyStamp
                    do throws(TLSError) {
                        state.key = try TLSServerConfiguration.readFile(keyPath, what: "key")
                    } catch {
                        throw TLSError("reload key from \(keyPath): \(error.message.dropFirst("read key: ".count))")
                    }
                }
                do throws(TLSError) {
                    state.reloaded = try KeyPair(certificate: state.certificate, key: state.key)
                } catch {
                    throw TLSError("reload key pair: \(error.message.dropFirst("parse x509 key pair: ".count))")
                }
                logger?.info("reloaded TLS certificate")
            } catch {
                logger?.error("reload certificate: \(error)")
            }
            return state.reloaded
        }
    }
}
