// TLS: sing-box's `tls` objects on OpenSSL 3 (COpenSSL) through memory BIOs, so TLS runs over any
// channel: a kernel socket, a detour outbound's flow, a netstack flow, a connection an inbound
// accepted or a listen detour handed over.
//
// Owns: `TLSClientConfiguration` (an outbound's SSL_CTX, built once from `OutboundTLSOptions`),
// `TLSServerConfiguration` (an inbound's, from `InboundTLSOptions`, with `KeyPair` and its
// reloader, `SelfSignedCertificates` for `insecure`), both with Go's option semantics and error
// wording, and `TLSHandler` (one connection's TLS in either role: a client's dial completes after
// its handshake; a server's handler sits before the inbound's protocol handlers).
//
// Invariants: a handler and its SSL object live on their channel's loop; an SSL_CTX is immutable
// after init and shared across loops (a server's reloaded pair or self-signed certificate is
// applied per connection, behind a mutex). Plaintext is handed on only when the next handler
// asked for a read, so the handler holds early bytes itself (Outbound.dialTCP's contract).
//
// Must not import: Net, Router, DNS, protocols, Box (floor 4: Adapter and Config only).
//
// Why OpenSSL and not swift-nio-ssl: the package does not depend on swift-nio-ssl, and DoT
// (Sources/DNS) already speaks TLS through the system OpenSSL; one TLS library in the binary.

/// Namespace for the module's constants.
package enum TLSModule {
    /// Go's `C.TCPTimeout`: how long a handshake may take (sing-box `tls.ClientHandshake`, `ServerHandshake`).
    package static let handshakeTimeoutSeconds: Int64 = 15
}
