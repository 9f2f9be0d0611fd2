import NIOCore
package import NetstackWire

/// How one peer is configured (the `peers[]` of a sing-box wireguard endpoint, already decoded).
package struct WireGuardPeerConfiguration: Sendable {
    /// The peer's static public key.
    package var publicKey: Bytes32
    /// Q of the handshake; zero when none.
    package var presharedKey: Bytes32
    /// Where to send until the peer is heard from elsewhere (roaming replaces it).
    package var endpoint: WireGuardEndpoint?
    /// Prefixes routed to this peer and accepted as source addresses from it.
    package var allowedIPs: [(address: [UInt8], prefixLength: Int)]
    /// Send a keepalive after this long without authenticated traffic; nil when off.
    package var persistentKeepalive: Duration?
    /// sing-box's `reserved`: written into bytes 1–3 of every message sent to this peer (after the MACs).
    package var reserved: (UInt8, UInt8, UInt8)

    /// A peer configuration; everything but the key is optional.
    package init(publicKey: Bytes32, presharedKey: Bytes32 = .zero, endpoint: WireGuardEndpoint? = nil,
                 allowedIPs: [(address: [UInt8], prefixLength: Int)] = [], persistentKeepalive: Duration? = nil,
                 reserved: (UInt8, UInt8, UInt8) = (0, 0, 0)) {
        self.publicKey = publicKey
        self.presharedKey = presharedKey
        self.endpoint = endpoint
        self.allowedIPs = allowedIPs
        self.persistentKeepalive = persistentKeepalive
        self.reserved = reserved
    }
}

/// One peer's live state inside a `WireGuardDevice`: handshake, cookies, keypairs, timers, endpoint, staged
/// packets and counters. Owned by the device (one event loop); read it for status, change it only through
/// the device.
package final class WireGuardPeer {
    /// The peer's static public key (its identity in the device).
    package let publicKey: Bytes32
    /// The configuration, as last set.
    package internal(set) var configuration: WireGuardPeerConfiguration
    /// The Noise state with this peer.
    package internal(set) var handshake: HandshakeState
    /// MACs for what we send it, and the cookie it gave us.
    package internal(set) var cookies: CookieGenerator
    /// The current, previous and next sessions.
    @exclusivity(unchecked) package internal(set) var keypairs = KeypairSlots()
    /// The §6 timers.
    @exclusivity(unchecked) package internal(set) var timers: PeerTimers
    /// Where datagrams go: configured, then the source of the last authenticated message (roaming).
    @exclusivity(unchecked) package internal(set) var endpoint: WireGuardEndpoint?
    /// Packets waiting for a session (`QueueStagedSize` 128 in wireguard-go; the oldest is dropped beyond).
    @exclusivity(unchecked) var staged = CircularBuffer<ByteBuffer>(initialCapacity: 16)
    /// When the last handshake completed, on the owner's clock.
    package internal(set) var lastHandshake: Instant?
    /// Bytes of datagrams received from / sent to this peer (what `wg show` calls transfer).
    @exclusivity(unchecked) package internal(set) var receivedBytes: UInt64 = 0
    /// Bytes of datagrams sent to this peer.
    @exclusivity(unchecked) package internal(set) var sentBytes: UInt64 = 0

    /// `QueueStagedSize`.
    package static let maxStagedPackets = 128

    init(configuration: WireGuardPeerConfiguration, identity: StaticIdentity) {
        publicKey = configuration.publicKey
        self.configuration = configuration
        handshake = HandshakeState(identity: identity, remoteStatic: configuration.publicKey,
                                   presharedKey: configuration.presharedKey)
        cookies = CookieGenerator(remotePublicKey: configuration.publicKey)
        timers = PeerTimers(persistentKeepaliveInterval: configuration.persistentKeepalive)
        endpoint = configuration.endpoint
    }

    /// Number of packets waiting for a session.
    package var stagedCount: Int { staged.count }
}
