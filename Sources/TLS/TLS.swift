// TLS: the client side of sing-box's outbound `tls` object, on OpenSSL 3 (COpenSSL) through memory
// BIOs, so TLS runs over any channel: a kernel socket, a detour outbound's flow, a netstack flow.
//
// Owns: `TLSClientConfiguration` (one SSL_CTX per outbound, built once from `OutboundTLSOptions`
// with Go's option semantics and error wording) and `TLSClientHandler` (one connection's TLS,
// added to a freshly dialed channel; the dial completes only after the handshake).
//
// Invariants: a handler and its SSL object live on their channel's loop; an SSL_CTX is immutable
// after init and shared across loops. Plaintext is handed on only when the next handler asked
// for a read, so the handler holds early bytes itself (Outbound.dialTCP's contract).
//
// Must not import: Net, Router, DNS, protocols, Box (floor 4: Adapter and Config only).
//
// Why OpenSSL and not swift-nio-ssl: the package does not depend on swift-nio-ssl, and DoT
// (Sources/DNS) already speaks TLS through the system OpenSSL; one TLS library in the binary.

/// Namespace for the module's constants.
package enum TLSModule {
    /// Go's `C.TCPTimeout`: how long a client handshake may take (sing-box `tls.ClientHandshake`).
    package static let handshakeTimeoutSeconds: Int64 = 15
}
