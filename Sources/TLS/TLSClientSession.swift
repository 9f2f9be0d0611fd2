// The OpenSSL client pieces every TLS client here needs (the outbounds' `TLSClientConfiguration`
// and DNS's DoT/DoH context): trusted certificates from PEM, and a client SSL object over memory
// BIOs with SNI, the peer-name check and ALPN.
import COpenSSL
import Adapter

/// Client session building blocks on an SSL_CTX.
package enum TLSClientSession {
    /// Adds every certificate in `pem` to `context`'s trust store; returns how many, nil when the
    /// PEM could not even be buffered.
    package static func addCertificates(_ pem: String, to context: OpaquePointer) -> Int? {
        var bytes = Array(pem.utf8)
        let store = SSL_CTX_get_cert_store(context)
        return bytes.withUnsafeMutableBytes { raw -> Int? in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            var added = 0
            while let certificate = PEM_read_bio_X509(bio, nil, nil, nil) {
                X509_STORE_add_cert(store, certificate)
                X509_free(certificate)
                added += 1
            }
            ERR_clear_error()  // the loop ends on "no start line"
            return added
        }
    }

    /// A fresh SSL object in client mode over two memory BIOs: SNI `serverName` when `sendsSNI`,
    /// the certificate checked against it (an IP or a host name) when `checksName`, `alpnWire`
    /// (length-prefixed protocol names) offered when not empty.
    package static func make(_ context: OpaquePointer, serverName: String, sendsSNI: Bool, checksName: Bool,
                             alpnWire: [UInt8]) throws(TLSError) -> OpaquePointer {
        guard let ssl = SSL_new(context) else { throw TLSError("SSL_new failed") }
        guard let readBIO = BIO_new(BIO_s_mem()), let writeBIO = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw TLSError("BIO_new failed")
        }
        SSL_set_bio(ssl, readBIO, writeBIO)
        SSL_set_connect_state(ssl)
        serverName.withCString { name in
            if sendsSNI {
                SSL_ctrl(ssl, 55 /* SSL_CTRL_SET_TLSEXT_HOSTNAME */, 0 /* host_name */, UnsafeMutableRawPointer(mutating: name))
            }
            if checksName {
                if IPAddress(serverName) != nil {
                    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name)
                } else {
                    SSL_set1_host(ssl, name)
                }
            }
        }
        if !alpnWire.isEmpty {
            alpnWire.withUnsafeBufferPointer { _ = SSL_set_alpn_protos(ssl, $0.baseAddress, UInt32($0.count)) }
        }
        return ssl
    }
}
