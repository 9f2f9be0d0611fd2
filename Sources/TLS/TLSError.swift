// TLSError: why a TLS client could not be built or a handshake failed.
import COpenSSL

/// A TLS failure with its text. Built at config time (worded as Go's `tls.NewClient`:
/// `unknown cipher_suite: X`, `parse min_version: unknown tls version:1.4`) or at handshake time
/// (`tls handshake: certificate verify failed: self-signed certificate`, with OpenSSL's reason).
package struct TLSError: Error, CustomStringConvertible, Equatable, Sendable {
    package var message: String
    package init(_ message: String) { self.message = message }
    package var description: String { message }

    /// A handshake failure: the certificate check's reason when that failed, else OpenSSL's
    /// first queued error, else `fallback`. Call on the loop right after the failing call.
    @inline(never) static func handshake(_ ssl: OpaquePointer?, fallback: String) -> TLSError {
        if let ssl, let failure = OpenSSLText.verifyFailure(ssl) {
            return TLSError("tls handshake: certificate verify failed: \(failure)")
        }
        return TLSError("tls handshake: \(OpenSSLText.reason() ?? fallback)")
    }

    /// A server handshake failure, worded as Go's crypto/tls where the cause is the same: a
    /// plaintext HTTP request or CONNECT is `tls: first record does not look like a TLS handshake`;
    /// other causes carry OpenSSL's reason (`tls: wrong version number`), or `fallback` (`EOF`).
    @inline(never) static func serverHandshake(fallback: String) -> TLSError {
        guard let reason = OpenSSLText.reason() else { return TLSError(fallback) }
        switch reason {
        case "http request", "https proxy request": return TLSError("tls: first record does not look like a TLS handshake")
        default: return TLSError("tls: \(reason)")
        }
    }
}

/// Reads OpenSSL's per-thread error state as text.
enum OpenSSLText {
    /// The oldest queued OpenSSL error as text (its reason string when it has one); clears the queue.
    static func reason() -> String? {
        let code = ERR_get_error()
        defer { ERR_clear_error() }
        guard code != 0 else { return nil }
        if let reason = ERR_reason_error_string(code) { return String(cString: reason) }
        var text = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &text, text.count)
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Why the certificate check of `ssl` failed; nil when it passed. Clears the error queue when
    /// it failed (the verify result is the better reason).
    static func verifyFailure(_ ssl: OpaquePointer) -> String? {
        let verify = SSL_get_verify_result(ssl)
        guard verify != 0 /* X509_V_OK */, let text = X509_verify_cert_error_string(verify) else { return nil }
        ERR_clear_error()
        return String(cString: text)
    }
}
