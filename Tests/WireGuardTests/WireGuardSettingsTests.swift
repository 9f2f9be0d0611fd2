import Testing
@testable import WireGuard

/// sing-box 1.12 endpoint options → device configuration, with `NewEndpoint`'s error wording
/// (checked against the Go binary's `check` output: see the literals).
@Suite struct WireGuardSettingsTests {
    let key = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="

    func error(privateKey: String? = nil, peer: WireGuardSettings.Peer? = nil) -> String? {
        let peer = peer ?? .init(address: "127.0.0.1", port: 51820, publicKey: key, allowedIPs: ["0.0.0.0/0"])
        do {
            _ = try WireGuardSettings.build(privateKey: privateKey ?? key, peers: [peer])
            return nil
        } catch {
            return error.description
        }
    }

    @Test func errorsWordedLikeSingBox() {
        // `sing-box check` 1.12.12: "initialize endpoint[0]: " + these.
        #expect(error(privateKey: "abc") == "decode private key: illegal base64 data at input byte 0")
        #expect(error(privateKey: "ab!d") == "decode private key: illegal base64 data at input byte 2")
        #expect(error(privateKey: "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk") == "decode private key: illegal base64 data at input byte 40")
        #expect(error(peer: .init(publicKey: key, allowedIPs: ["0.0.0.0/0"], reserved: [1, 2]))
            == "invalid reserved value for peer 0, required 3 bytes, got 3")
        #expect(error(peer: .init(publicKey: key, allowedIPs: [])) == "missing allowed ips for peer 0")
        #expect(error(peer: .init(publicKey: "x", allowedIPs: ["::/0"])) == "decode public key for peer 0: illegal base64 data at input byte 0")
        #expect(error(peer: .init(publicKey: key, preSharedKey: "AA==AA==", allowedIPs: ["::/0"]))
            == "decode pre shared key for peer 0: illegal base64 data at input byte 4")
        #expect(error(peer: .init(publicKey: key, preSharedKey: "AA=A", allowedIPs: ["::/0"]))
            == "decode pre shared key for peer 0: illegal base64 data at input byte 2")
        #expect(error(peer: .init(publicKey: key, preSharedKey: "A===", allowedIPs: ["::/0"]))
            == "decode pre shared key for peer 0: illegal base64 data at input byte 1")
        #expect(error(privateKey: "AAAA") == "decode private key: invalid key length 3")
    }

    @Test func buildsDeviceAndPeers() throws {
        let result = try WireGuardSettings.build(privateKey: key, peers: [
            .init(address: "198.51.100.1", port: 51820, publicKey: key, allowedIPs: ["10.0.0.0/8", "fd00::/64"],
                  persistentKeepaliveInterval: 25, reserved: [1, 2, 3]),
            .init(address: "wg.example.com", port: 443, publicKey: key, preSharedKey: key, allowedIPs: ["192.0.2.1/32"]),
        ])
        #expect(result.device.mtu == 1408)
        #expect(result.device.privateKey.base64 == key)
        #expect(result.peers.count == 2)
        #expect(result.peers[0].endpoint == WireGuardEndpoint(parsing: "198.51.100.1:51820"))
        #expect(result.peers[0].persistentKeepalive == .seconds(25))
        #expect(result.peers[0].reserved == (1, 2, 3))
        #expect(result.peers[0].allowedIPs.count == 2)
        #expect(result.peers[1].endpoint == nil)
        #expect(result.peers[1].presharedKey.base64 == key)
        #expect(result.unresolved.count == 1 && result.unresolved[0].host == "wg.example.com" && result.unresolved[0].port == 443)
    }
}
