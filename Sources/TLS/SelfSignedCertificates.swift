// SelfSignedCertificates: what an inbound `tls` with `insecure` and neither certificate nor key
// serves. Go (common/tls/mkcert.go, read for facts) makes one per ClientHello for its server
// name: RSA 2048, a random 128-bit serial, valid from an hour ago to an hour from now, CN and DNS
// SAN the name, key usage digitalSignature + keyEncipherment, extended key usage serverAuth,
// basic constraints CA:FALSE, self-signed with SHA-256. We make the same certificate and reuse it
// for the same name for half its life (RSA key generation is the slow part of a handshake).
import COpenSSL
import Synchronization

/// A cache of self-signed certificates by server name, shared by one inbound's handshakes on
/// every loop (behind a mutex).
final class SelfSignedCertificates: Sendable {
    /// One certificate and its key; freed when the last handshake using it lets go.
    final class Entry: @unchecked Sendable {
        let certificate: OpaquePointer
        let key: OpaquePointer
        /// Unix seconds after which a new certificate is made.
        let renewAfter: Int
        init(certificate: OpaquePointer, key: OpaquePointer, renewAfter: Int) {
            self.certificate = certificate
            self.key = key
            self.renewAfter = renewAfter
        }
        deinit {
            X509_free(certificate)
            EVP_PKEY_free(key)
        }
    }

    /// Go's certificate lifetime after now (and before now), in seconds.
    static let lifetime = 3600
    /// Names kept at most; a client that invents names cannot grow the cache without bound.
    static let capacity = 64

    private let entries = Mutex<[String: Entry]>([:])

    /// The certificate for `name` (empty when the client sent no SNI), made now if needed; nil
    /// when OpenSSL fails.
    func entry(for name: String) -> Entry? {
        let now = Int(time(nil))
        if let cached = entries.withLock({ $0[name] }), cached.renewAfter > now { return cached }
        guard let made = Self.make(name: name, now: now) else { return nil }
        entries.withLock { entries in
            if entries.count >= Self.capacity { entries.removeAll() }
            entries[name] = made
        }
        return made
    }

    /// Builds the key and certificate as Go's `GenerateCertificate` does.
    private static func make(name: String, now: Int) -> Entry? {
        defer { ERR_clear_error() }
        guard let keyContext = EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, nil) else { return nil }
        defer { EVP_PKEY_CTX_free(keyContext) }
        var key: OpaquePointer?
        guard EVP_PKEY_keygen_init(keyContext) == 1, EVP_PKEY_CTX_set_rsa_keygen_bits(keyContext, 2048) == 1,
              EVP_PKEY_keygen(keyContext, &key) == 1, let key else { return nil }
        guard let certificate = X509_new() else {
            EVP_PKEY_free(key)
            return nil
        }
        let entry = Entry(certificate: certificate, key: key, renewAfter: now + lifetime / 2)
        guard X509_set_version(certificate, 2) == 1 else { return nil }
        // A random 128-bit serial (Go: rand.Int below 2^128).
        guard let serial = BN_new() else { return nil }
        defer { BN_free(serial) }
        guard BN_rand(serial, 128, -1, 0) == 1, BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(certificate)) != nil else { return nil }
        guard X509_gmtime_adj(X509_getm_notBefore(certificate), -lifetime) != nil,
              X509_gmtime_adj(X509_getm_notAfter(certificate), lifetime) != nil else { return nil }
        guard let subject = X509_get_subject_name(certificate) else { return nil }
        if !name.isEmpty {
            let added = Array(name.utf8).withUnsafeBufferPointer { bytes in
                X509_NAME_add_entry_by_txt(subject, "CN", 0x1001 /* MBSTRING_UTF8 */, bytes.baseAddress, Int32(bytes.count), -1, 0)
            }
            guard added == 1 else { return nil }
        }
        guard X509_set_issuer_name(certificate, subject) == 1,
              X509_set_pubkey(certificate, key) == 1 else { return nil }
        var extensions = [(NID_key_usage, "critical,digitalSignature,keyEncipherment"),
                          (NID_ext_key_usage, "serverAuth"),
                          (NID_basic_constraints, "critical,CA:FALSE")]
        if !name.isEmpty { extensions.append((NID_subject_alt_name, "DNS:\(name)")) }
        var context = X509V3_CTX()
        X509V3_set_ctx(&context, certificate, certificate, nil, nil, 0)
        for (nid, value) in extensions {
            guard let extensionValue = X509V3_EXT_conf_nid(nil, &context, nid, value) else { return nil }
            defer { X509_EXTENSION_free(extensionValue) }
            guard X509_add_ext(certificate, extensionValue, -1) == 1 else { return nil }
        }
        guard X509_sign(certificate, key, EVP_sha256()) > 0 else { return nil }
        return entry
    }
}
