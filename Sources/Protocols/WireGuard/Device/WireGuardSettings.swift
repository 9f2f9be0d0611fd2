/// Turns the values of a sing-box 1.12 `wireguard` endpoint (`private_key`, `mtu`, `peers[]`) into a device
/// configuration and peer configurations, with the checks and error wording of sing-box's `NewEndpoint`
/// (transport/wireguard/endpoint.go): `decode private key: illegal base64 data at input byte 0`,
/// `missing allowed ips for peer 0`, `invalid reserved value for peer 0, required 3 bytes, got 3` (sic: 1.12
/// prints the length of its fixed 3-byte array, not of the option).
///
/// Kept free of the Config module's types so that the endpoint adapter and the Tailscale endpoint can both feed it.
package enum WireGuardSettings {
    /// One `peers[]` entry as decoded from JSON.
    package struct Peer: Sendable {
        /// `address`: an IP literal, or a domain the owner must resolve (returned in `unresolved`).
        package var address: String
        /// `port`.
        package var port: UInt16
        /// `public_key`, standard base64.
        package var publicKey: String
        /// `pre_shared_key`, standard base64, or empty.
        package var preSharedKey: String
        /// `allowed_ips` as prefix text.
        package var allowedIPs: [String]
        /// `persistent_keepalive_interval` in seconds; 0 is off.
        package var persistentKeepaliveInterval: UInt16
        /// `reserved`: empty or exactly 3 bytes.
        package var reserved: [UInt8]

        package init(address: String = "", port: UInt16 = 0, publicKey: String, preSharedKey: String = "",
                     allowedIPs: [String], persistentKeepaliveInterval: UInt16 = 0, reserved: [UInt8] = []) {
            self.address = address
            self.port = port
            self.publicKey = publicKey
            self.preSharedKey = preSharedKey
            self.allowedIPs = allowedIPs
            self.persistentKeepaliveInterval = persistentKeepaliveInterval
            self.reserved = reserved
        }
    }

    /// A configuration problem, printed as sing-box prints it.
    package struct Error: Swift.Error, CustomStringConvertible, Equatable {
        package var description: String
    }

    /// What `build` produces.
    package struct Result: Sendable {
        /// The device settings (sing-box's default MTU 1408 when `mtu` is 0).
        package var device: WireGuardDevice.Configuration
        /// One configuration per peer, in order.
        package var peers: [WireGuardPeerConfiguration]
        /// Peers whose `address` is a domain: the owner resolves it and calls `setEndpoint` (sing-box resolves at
        /// start: `resolve endpoint domain for peer[N]: …`).
        package var unresolved: [(peer: Int, host: String, port: UInt16)]
    }

    /// Validates and converts. `unixTimeAtZero` is the owner's wall-clock offset for handshake timestamps.
    package static func build(privateKey: String, mtu: UInt32 = 0, peers: [Peer],
                              unixTimeAtZero: Duration = .zero) throws(Error) -> Result {
        let key = try decodeKey(privateKey, what: "decode private key")
        var configurations: [WireGuardPeerConfiguration] = []
        var unresolved: [(peer: Int, host: String, port: UInt16)] = []
        for (index, peer) in peers.enumerated() {
            let publicKey = try decodeKey(peer.publicKey, what: "decode public key for peer \(index)")
            var presharedKey = Bytes32.zero
            if !peer.preSharedKey.isEmpty {
                presharedKey = try decodeKey(peer.preSharedKey, what: "decode pre shared key for peer \(index)")
            }
            guard !peer.allowedIPs.isEmpty else { throw Error(description: "missing allowed ips for peer \(index)") }
            var reserved: (UInt8, UInt8, UInt8) = (0, 0, 0)
            if !peer.reserved.isEmpty {
                guard peer.reserved.count == 3 else {
                    throw Error(description: "invalid reserved value for peer \(index), required 3 bytes, got 3")
                }
                reserved = (peer.reserved[0], peer.reserved[1], peer.reserved[2])
            }
            var prefixes: [(address: [UInt8], prefixLength: Int)] = []
            for text in peer.allowedIPs {
                guard let prefix = AllowedIPs.parsePrefix(text) else {
                    throw Error(description: "netip.ParsePrefix(\"\(text)\"): invalid prefix")
                }
                prefixes.append(prefix)
            }
            var endpoint: WireGuardEndpoint?
            if !peer.address.isEmpty {
                if let bytes = IPAddressText.parseIPv4(peer.address) ?? IPAddressText.parseIPv6(peer.address) {
                    endpoint = WireGuardEndpoint(addressBytes: bytes, port: peer.port)
                } else {
                    unresolved.append((index, peer.address, peer.port))
                }
            }
            configurations.append(WireGuardPeerConfiguration(
                publicKey: publicKey, presharedKey: presharedKey, endpoint: endpoint, allowedIPs: prefixes,
                persistentKeepalive: peer.persistentKeepaliveInterval > 0 ? .seconds(Int(peer.persistentKeepaliveInterval)) : nil,
                reserved: reserved))
        }
        let device = WireGuardDevice.Configuration(privateKey: key, mtu: mtu == 0 ? 1408 : Int(mtu), unixTimeAtZero: unixTimeAtZero)
        return Result(device: device, peers: configurations, unresolved: unresolved)
    }

    /// Go's base64.StdEncoding.DecodeString error positions, then the 32-byte length wireguard-go insists on.
    private static func decodeKey(_ text: String, what: String) throws(Error) -> Bytes32 {
        if let position = base64ErrorPosition(text) {
            throw Error(description: "\(what): illegal base64 data at input byte \(position)")
        }
        guard let key = Bytes32(base64: text) else {
            let count = Base64Decoding.decode(text)?.count ?? 0
            throw Error(description: "\(what): invalid key length \(count)")
        }
        return key
    }

    /// Where Go's decoder reports the first error: a bad character's offset, or the start of an unfinished
    /// final quantum; nil when the text decodes.
    static func base64ErrorPosition(_ text: String) -> Int? {
        let bytes = Array(text.utf8)
        let alphabet = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var index = 0
        while index < bytes.count {
            let quantumStart = index
            var filled = 0
            while filled < 4 {
                guard index < bytes.count else {
                    // Ran out inside a quantum: Go reports its start.
                    return quantumStart
                }
                let byte = bytes[index]
                if byte == UInt8(ascii: "=") {
                    // Padding is valid only as the last one or two bytes of the final quantum.
                    guard filled >= 2 else { return index }
                    let padding = 4 - filled
                    guard index + padding <= bytes.count,
                          bytes[index..<index + padding].allSatisfy({ $0 == UInt8(ascii: "=") }) else { return index }
                    // Anything after a padded quantum is an error at its first byte.
                    return index + padding == bytes.count ? nil : index + padding
                }
                guard alphabet.contains(byte) else { return index }
                filled += 1
                index += 1
            }
        }
        return nil
    }
}
