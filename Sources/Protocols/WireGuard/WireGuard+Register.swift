// Registration of the `wireguard` endpoint and the deprecated `wireguard` outbound with the box's registry.
package import Adapter
import Config

extension WireGuardModule {
    /// Registers the `wireguard` endpoint, and the legacy `wireguard` outbound mapped onto it the way Go 1.12's
    /// protocol/wireguard/outbound.go does (Config already reported or refused the deprecation). `system` opens
    /// kernel TUNs for `system: true`; without it that mode is refused.
    package static func register(in registry: AdapterRegistry, system: (any WireGuardSystemPlatform)? = nil) {
        registry.register(endpoint: "wireguard") { context, options in
            guard case .wireguard(let wireguard) = options.options else {
                throw AdapterError(.other, "wireguard: unexpected options for \(options.type)")
            }
            return try WireGuardNetstackEndpoint(tag: options.tag, options: wireguard, context: context, systemPlatform: system)
        }
        registry.register(outbound: "wireguard") { context, options in
            guard case .wireguard(let legacy) = options.options else {
                throw AdapterError(.other, "wireguard: unexpected options for \(options.type)")
            }
            if !(legacy.dial.detour ?? "").isEmpty && legacy.gso {
                throw AdapterError(.other, "gso is conflict with detour")
            }
            return try WireGuardNetstackEndpoint(tag: options.tag, options: endpointOptions(legacy), context: context,
                                                 routesIncoming: false, systemPlatform: system)
        }
    }

    /// The endpoint options Go builds from a legacy outbound: `peers[]` when given, else one peer from
    /// `server`/`peer_public_key` that routes everything (0.0.0.0/0 and ::/0). No listen port.
    static func endpointOptions(_ legacy: LegacyWireGuardOutboundOptions) -> WireGuardEndpointOptions {
        var options = WireGuardEndpointOptions()
        options.system = legacy.systemInterface
        options.name = legacy.interfaceName
        options.mtu = legacy.mtu
        options.address = legacy.localAddress
        options.privateKey = legacy.privateKey
        options.workers = legacy.workers
        options.dial = legacy.dial
        if legacy.peers.isEmpty {
            var peer = WireGuardPeerOptions()
            peer.address = legacy.server.server
            peer.port = legacy.server.serverPort
            peer.publicKey = legacy.peerPublicKey
            peer.preSharedKey = legacy.preSharedKey
            peer.allowedIPs = [IPPrefixOption("0.0.0.0/0"), IPPrefixOption("::/0")].compactMap { $0 }
            peer.reserved = legacy.reserved
            options.peers = [peer]
        } else {
            options.peers = legacy.peers.map { legacyPeer in
                var peer = WireGuardPeerOptions()
                peer.address = legacyPeer.server.server
                peer.port = legacyPeer.server.serverPort
                peer.publicKey = legacyPeer.publicKey
                peer.preSharedKey = legacyPeer.preSharedKey
                peer.allowedIPs = legacyPeer.allowedIPs
                peer.reserved = legacyPeer.reserved
                return peer
            }
        }
        return options
    }
}
