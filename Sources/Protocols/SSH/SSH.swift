// SSH: sing-box's `ssh` outbound — TCP flows as `direct-tcpip` channels (RFC 4254 §7.2) of an SSH
// connection, on SwiftNIO SSH.
//
// 1. One SSH connection per event loop, opened on the first flow of that loop and shared by the
//    next ones (Go shares one client per outbound; one per loop keeps each flow's channel on the
//    flow's loop, as the relay needs). A connection that closes is forgotten; the next flow dials.
// 2. Each flow opens a `direct-tcpip` channel to its destination; `SSHChannelBytesHandler` turns
//    the channel's `SSHChannelData` into `ByteBuffer`s for the relay.
// 3. Keys: `private_key`/`private_key_path` in the OpenSSH format (ed25519, ecdsa P-256/384/521,
//    unencrypted) or PEM/PKCS#8 for the ECDSA curves; `host_key` lines pin the server's key.
// Limits (SwiftNIO SSH): no RSA keys, no passphrase-protected keys, its own algorithm lists
// (`host_key_algorithms` is not applied) and its own version string (`client_version` is not sent).
// Imports Adapter, Net, Config, NIOCore, NIOSSH and Crypto; no other protocol.

/// Namespace for registration.
package enum SSHModule {}
