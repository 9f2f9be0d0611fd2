// OpenSSLErrors: the texts our OpenSSL clients (DoT/DoH here, remote rule-set downloads in Box) report.
import COpenSSL

/// Reads OpenSSL's per-thread error state: call right after the failing call, on its thread.
package enum OpenSSLErrors {
    /// The oldest OpenSSL error on this thread, as text; clears the queue. nil when there is none.
    package static func reason() -> String? {
        let code = ERR_get_error()
        defer { ERR_clear_error() }
        guard code != 0 else { return nil }
        var text = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &text, text.count)
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Why the certificate check of `ssl`'s handshake failed, nil when it passed (X509_V_OK); clears
    /// the error queue when it failed (the verify result is the better reason).
    package static func verifyFailure(_ ssl: OpaquePointer) -> String? {
        let verify = SSL_get_verify_result(ssl)
        guard verify != 0 /* X509_V_OK */, let text = X509_verify_cert_error_string(verify) else { return nil }
        ERR_clear_error()
        return String(cString: text)
    }
}
