// WireGuard: the WireGuard protocol (whitepaper, wireguard-go as the behaviour reference) without I/O, for
// sing-box's `wireguard` endpoint and, through its codec and session parts, the Tailscale endpoint.
//
// What it owns:
// - Crypto/: BLAKE2s (our own; HASH, MAC, HMAC, KDF1-3), X25519 and randomness (libsodium), AEAD and XAEAD
//   for handshakes and cookies (libsodium one-shot), and `TransportAEAD`, the data-path ChaCha20-Poly1305 over
//   OpenSSL EVP with persistent per-session contexts that seal/open in place (measured faster than libsodium).
// - Messages.swift: the four message layouts and typed-throw parsers (`MessageError`).
// - Noise/: Noise_IKpsk2 (`HandshakeState`), TAI64N, MAC1/MAC2 and cookies (`CookieChecker`,
//   `CookieGenerator`), the per-address handshake rate limiter.
// - Session/: the replay window, `Keypair` and the current/previous/next slots, `PeerTimers` (the §6 timer
//   state machine as a value), `AllowedIPs` (prefix trie).
// - Device/: `WireGuardDevice`, datagrams and inner packets in, datagrams and packets out, with roaming,
//   staging, rekeying and sing-box's `reserved` bytes; `WireGuardSettings` (sing-box endpoint options → device,
//   with sing-box's error wording); `WireGuardChannelHandler`, the device's owner on a NIO datagram channel.
// - Endpoint/: sing-box's `wireguard` endpoint (`WireGuardNetstackEndpoint`, also the deprecated outbound):
//   `WireGuardTunnel` runs the device and its UDP socket on one loop and one netstack shard per loop of the
//   box's group (`WireGuardShardDevice`), so the router's flows on any loop dial from a stack on their loop;
//   `NetstackPacketConnection` carries UDP. `register(in:)` in WireGuard+Register.swift.
//
// Invariants: apart from `WireGuardChannelHandler` and Endpoint/ (which read the event loop's clock and do I/O)
// nothing reads a clock, opens a socket or uses global randomness (an `Instant`, a wall-clock offset and a random
// function come in); input from the network never traps (parsers throw, drops are counted in
// `WireGuardCounters`); the transport data path allocates nothing per packet when the owner gives buffers with
// 16 bytes of headroom and 31 of tailroom and passes them with `consume`.
// Must not import: Router, another protocol, Foundation; NIOPosix only through Net (Endpoint/).

/// The module's name, for log lines and diagnostics.
package enum WireGuardModule {
    /// The module name.
    package static let name = "WireGuard"
}
