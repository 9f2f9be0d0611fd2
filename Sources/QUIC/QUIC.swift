// QUIC: a sans-I/O QUIC v1 endpoint (RFC 9000 transport, RFC 9001 TLS, RFC 9002 recovery).
//
// What the module owns:
// 1. Wire: variable-length integers, long/short headers, packet numbers, every RFC 9000 §19 frame
//    (plus RFC 9221 DATAGRAM), transport parameters (§18).
// 2. Packet protection (RFC 9001 §5): Initial secrets, AEAD and header protection, driven by the
//    secrets BoringSSL's QUIC API hands over.
// 3. `QUICConnection`: one client or server connection as a state machine — datagrams and the time
//    in, datagrams and the next deadline out. It never reads a clock, opens a socket or blocks.
//    Streams (flow control, reset), DATAGRAM (RFC 9221), RFC 9002 loss recovery and NewReno,
//    following the peer's key updates, Retry on the client side.
// 4. `QUICServerEndpoint`: routes a server socket's datagrams to connections by connection ID.
// The NIO side (a UDP channel driving connections on its loop) is the separate `QUICNIO` target.
//
// Not yet: 0-RTT, initiating key updates, connection migration, stateless reset, server-side
// Retry, path MTU discovery, pacing, ECN.
//
// Invariants: nothing a peer sends can trap; malformed frames close the connection with the RFC's
// error code, undecryptable or garbled packets are dropped and counted.
//
// TLS: BoringSSL's QUIC API (SSL_set_quic_method …) from swift-nio-ssl's vendored copy, imported as
// the transitive module `CNIOBoringSSL` (not a product; pinned version in Package.swift). Its symbols
// are prefixed `CNIOBoringSSL_` at link time, so it lives beside the system OpenSSL of `COpenSSL`
// without clashes; no file here imports COpenSSL (both declare `SSL_new` & co. in Swift).
//
// Must not import: NIOPosix, Foundation, Glibc, any clock. Only value types from NIOCore (ByteBuffer).
