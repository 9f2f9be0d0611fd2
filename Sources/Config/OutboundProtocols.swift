/// `direct` outbound.
package struct DirectOutboundOptions: ConfigObject, Equatable {
    package var dial = DialerOptions()
    /// Deprecated in 1.11 (use the route-options action); fatal in 1.12 unless
    /// ENABLE_DEPRECATED_DESTINATION_OVERRIDE_FIELDS.
    package var overrideAddress: String?
    package var overridePort: UInt16?
    /// Removed in sing-box 1.6.0; creating the outbound fails.
    package var proxyProtocol: UInt8?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.dial),
        .init("override_address", \.overrideAddress),
        .init("override_port", \.overridePort),
        .init("proxy_protocol", \.proxyProtocol),
    ] }
}

/// `socks` outbound.
package struct SOCKSOutboundOptions: ConfigObject, Equatable {
    package var dial = DialerOptions()
    package var server = ServerOptions()
    package var version: String?
    package var username: String?
    package var password: String?
    package var network = NetworkList()
    package var udpOverTCP: UDPOverTCPOptions?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.dial),
        .embed(\.server),
        .init("version", \.version),
        .init("username", \.username),
        .init("password", \.password),
        .init("network", \.network),
        .init("udp_over_tcp", \.udpOverTCP, .omitNil),
    ] }
}

/// `http` outbound.
package struct HTTPOutboundOptions: ConfigObject, Equatable {
    package var dial = DialerOptions()
    package var server = ServerOptions()
    package var username: String?
    package var password: String?
    package var tls: OutboundTLSOptions?
    package var path: String?
    package var headers = ListableMap()

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.dial),
        .embed(\.server),
        .init("username", \.username),
        .init("password", \.password),
        .init("tls", \.tls, .omitNil),
        .init("path", \.path),
        .init("headers", \.headers),
    ] }
}

/// `shadowsocks` outbound.
package struct ShadowsocksOutboundOptions: ConfigObject, Equatable {
    package var dial = DialerOptions()
    package var server = ServerOptions()
    package var method = ""
    package var password = ""
    package var plugin: String?
    package var pluginOptions: String?
    package var network = NetworkList()
    package var udpOverTCP: UDPOverTCPOptions?
    package var multiplex: OutboundMultiplexOptions?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.dial),
        .embed(\.server),
        .init("method", \.method, .always),
        .init("password", \.password, .always),
        .init("plugin", \.plugin),
        .init("plugin_opts", \.pluginOptions),
        .init("network", \.network),
        .init("udp_over_tcp", \.udpOverTCP, .omitNil),
        .init("multiplex", \.multiplex, .omitNil),
    ] }
}

/// `vmess` outbound.
package struct VMessOutboundOptions: ConfigObject, Equatable {
    package var dial = DialerOptions()
    package var server = ServerOptions()
    package var uuid = ""
    package var security = ""
    package var alterId: Int?
    package var globalPadding = false
    package var authenticatedLength = false
    package var network = NetworkList()
    package var tls: OutboundTLSOptions?
    package var packetEncoding: String?
    package var multiplex: OutboundMultiplexOptions?
    package var transport: V2RayTransportOptions?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.dial),
        .embed(\.server),
        .init("uuid", \.uuid, .always),
        .init("security", \.security, .always),
        .init("alter_id", \.alterId),
        .init("global_padding", \.globalPadding),
        .init("authenticated_length", \.authenticatedLength),
        .init("network", \.network),
        .init("tls", \.tls, .omitNil),
        .init("packet_encoding", \.packetEncoding),
        .init("multiplex", \.multiplex, .omitNil),
        .init("transport", \.transport, .omitNil),
    ] }
}

/// `trojan` outbound.
package struct TrojanOutboundOptions: ConfigObject, Equatable {
    package var dial = DialerOptions()
    package var server = ServerOptions()
    package var password = ""
    package var network = NetworkList()
    package var tls: OutboundTLSOptions?
    package var multiplex: OutboundMultiplexOptions?
    package var transport: V2RayTransportOptions?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.dial),
        .embed(\.server),
        .init("password", \.password, .always),
        .init("network", \.network),
        .init("tls", \.tls, .omitNil),
        .init("multiplex", \.multiplex, .omitNil),
        .init("transport", \.transport, .omitNil),
    ] }
}

/// The legacy `wireguard` outbound (deprecated in 1.11 for the endpoint; fatal in 1.12 unless
/// ENABLE_DEPRECATED_WIREGUARD_OUTBOUND).
package struct LegacyWireGuardOutboundOptions: ConfigObject, Equatable {
    package var dial = DialerOptions()
    package var systemInterface = false
    package var gso = false
    package var interfaceName: String?
    package var localAddress: [IPPrefixOption] = []
    package var privateKey = ""
    package var peers: [LegacyWireGuardPeer] = []
    package var server = ServerOptions()
    package var peerPublicKey = ""
    package var preSharedKey: String?
    package var reserved = ByteArray()
    package var workers: Int?
    package var mtu: UInt32?
    package var network = NetworkList()

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.dial),
        .init("system_interface", \.systemInterface),
        .init("gso", \.gso),
        .init("interface_name", \.interfaceName),
        ConfigField.listAlways("local_address", \.localAddress),
        .init("private_key", \.privateKey, .always),
        .init("peers", \.peers),
        .embed(\.server),
        .init("peer_public_key", \.peerPublicKey, .always),
        .init("pre_shared_key", \.preSharedKey),
        .init("reserved", \.reserved),
        .init("workers", \.workers),
        .init("mtu", \.mtu),
        .init("network", \.network),
    ] }
}

/// A peer of the legacy wireguard outbound.
package struct LegacyWireGuardPeer: ConfigObject, Equatable {
    package var server = ServerOptions()
    package var publicKey: String?
    package var preSharedKey: String?
    package var allowedIPs: [IPPrefixOption] = []
    package var reserved = ByteArray()

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.server),
        .init("public_key", \.publicKey),
        .init("pre_shared_key", \.preSharedKey),
        .list("allowed_ips", \.allowedIPs),
        .init("reserved", \.reserved),
    ] }
}

extension ConfigField {
    /// A `Listable` field without `omitempty` (written as `null` when empty, like Go).
    static func listAlways<T: JSONCodable>(_ key: String, _ keyPath: WritableKeyPath<Root, [T]>) -> ConfigField {
        ConfigField(keys: [key], decode: { (root: inout Root, reader: inout ObjectReader) throws(ConfigError) in
            guard let entry = reader.takeEntry(key) else { return }
            root[keyPath: keyPath] = try Listable.decode(entry.value, path: reader.path(entry.key))
        }, encode: { root, writer in
            let values = root[keyPath: keyPath]
            writer.put(key, values.isEmpty ? .null : Listable.encode(values))
        })
    }
}

/// `hysteria` outbound.
package struct HysteriaOutboundOptions: ConfigObject, Equatable {
    package var dial = DialerOptions()
    package var server = ServerOptions()
    package var serverPorts: [String] = []
    package var hopInterval: ConfigDuration?
    package var up: ByteQuantity?
    package var upMbps: Int?
    package var down: ByteQuantity?
    package var downMbps: Int?
    package var obfs: String?
    package var auth: ByteArray?
    package var authString: String?
    package var receiveWindowConn: UInt64?
    package var receiveWindow: UInt64?
    package var disableMTUDiscovery = false
    package var network = NetworkList()
    package var tls: OutboundTLSOptions?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.dial),
        .embed(\.server),
        .list("server_ports", \.serverPorts),
        .init("hop_interval", \.hopInterval),
        .init("up", \.up, .omitNil),
        .init("up_mbps", \.upMbps),
        .init("down", \.down, .omitNil),
        .init("down_mbps", \.downMbps),
        .init("obfs", \.obfs),
        .init("auth", \.auth),
        .init("auth_str", \.authString),
        .init("recv_window_conn", \.receiveWindowConn),
        .init("recv_window", \.receiveWindow),
        .init("disable_mtu_discovery", \.disableMTUDiscovery),
        .init("network", \.network),
        .init("tls", \.tls, .omitNil),
    ] }
}

/// `vless` outbound.
package struct VLESSOutboundOptions: ConfigObject, Equatable {
    package var dial = DialerOptions()
    package var server = ServerOptions()
    package var uuid = ""
    package var flow: String?
    package var network = NetworkList()
    package var tls: OutboundTLSOptions?
    package var multiplex: OutboundMultiplexOptions?
    package var transport: V2RayTransportOptions?
    /// A Go `*string`: "" (none), "packetaddr" or "xudp"; `nil` means xudp.
    package var packetEncoding: String?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.dial),
        .embed(\.server),
        .init("uuid", \.uuid, .always),
        .init("flow", \.flow),
        .init("network", \.network),
        .init("tls", \.tls, .omitNil),
        .init("multiplex", \.multiplex, .omitNil),
        .init("transport", \.transport, .omitNil),
        .init("packet_encoding", \.packetEncoding, .omitNil),
    ] }
}

/// `shadowtls` outbound.
package struct ShadowTLSOutboundOptions: ConfigObject, Equatable {
    package var dial = DialerOptions()
    package var server = ServerOptions()
    package var version: Int?
    package var password: String?
    package var tls: OutboundTLSOptions?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.dial),
        .embed(\.server),
        .init("version", \.version),
        .init("password", \.password),
        .init("tls", \.tls, .omitNil),
    ] }
}

/// `tuic` outbound.
package struct TUICOutboundOptions: ConfigObject, Equatable {
    package var dial = DialerOptions()
    package var server = ServerOptions()
    package var uuid: String?
    package var password: String?
    package var congestionControl: String?
    package var udpRelayMode: String?
    package var udpOverStream = false
    package var zeroRTTHandshake = false
    package var heartbeat: ConfigDuration?
    package var network = NetworkList()
    package var tls: OutboundTLSOptions?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.dial),
        .embed(\.server),
        .init("uuid", \.uuid),
        .init("password", \.password),
        .init("congestion_control", \.congestionControl),
        .init("udp_relay_mode", \.udpRelayMode),
        .init("udp_over_stream", \.udpOverStream),
        .init("zero_rtt_handshake", \.zeroRTTHandshake),
        .init("heartbeat", \.heartbeat),
        .init("network", \.network),
        .init("tls", \.tls, .omitNil),
    ] }
}

/// `hysteria2` outbound.
package struct Hysteria2OutboundOptions: ConfigObject, Equatable {
    package var dial = DialerOptions()
    package var server = ServerOptions()
    package var serverPorts: [String] = []
    package var hopInterval: ConfigDuration?
    package var upMbps: Int?
    package var downMbps: Int?
    package var obfs: Hysteria2Obfs?
    package var password: String?
    package var network = NetworkList()
    package var tls: OutboundTLSOptions?
    package var brutalDebug = false

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.dial),
        .embed(\.server),
        .list("server_ports", \.serverPorts),
        .init("hop_interval", \.hopInterval),
        .init("up_mbps", \.upMbps),
        .init("down_mbps", \.downMbps),
        .init("obfs", \.obfs, .omitNil),
        .init("password", \.password),
        .init("network", \.network),
        .init("tls", \.tls, .omitNil),
        .init("brutal_debug", \.brutalDebug),
    ] }
}

/// `anytls` outbound.
package struct AnyTLSOutboundOptions: ConfigObject, Equatable {
    package var dial = DialerOptions()
    package var server = ServerOptions()
    package var tls: OutboundTLSOptions?
    package var password: String?
    package var idleSessionCheckInterval: ConfigDuration?
    package var idleSessionTimeout: ConfigDuration?
    package var minIdleSession: Int?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.dial),
        .embed(\.server),
        .init("tls", \.tls, .omitNil),
        .init("password", \.password),
        .init("idle_session_check_interval", \.idleSessionCheckInterval),
        .init("idle_session_timeout", \.idleSessionTimeout),
        .init("min_idle_session", \.minIdleSession),
    ] }
}

/// `tor` outbound.
package struct TorOutboundOptions: ConfigObject, Equatable {
    package var dial = DialerOptions()
    package var executablePath: String?
    package var extraArgs: [String] = []
    package var dataDirectory: String?
    package var torrc = StringMap<String>()

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.dial),
        .init("executable_path", \.executablePath),
        .init("extra_args", \.extraArgs),
        .init("data_directory", \.dataDirectory),
        .init("torrc", \.torrc),
    ] }
}

/// `ssh` outbound.
package struct SSHOutboundOptions: ConfigObject, Equatable {
    package var dial = DialerOptions()
    package var server = ServerOptions()
    package var user: String?
    package var password: String?
    package var privateKey: [String] = []
    package var privateKeyPath: String?
    package var privateKeyPassphrase: String?
    package var hostKey: [String] = []
    package var hostKeyAlgorithms: [String] = []
    package var clientVersion: String?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.dial),
        .embed(\.server),
        .init("user", \.user),
        .init("password", \.password),
        .list("private_key", \.privateKey),
        .init("private_key_path", \.privateKeyPath),
        .init("private_key_passphrase", \.privateKeyPassphrase),
        .list("host_key", \.hostKey),
        .list("host_key_algorithms", \.hostKeyAlgorithms),
        .init("client_version", \.clientVersion),
    ] }
}

/// `selector` outbound: a manually chosen member.
package struct SelectorOutboundOptions: ConfigObject, Equatable {
    package var outbounds: [String] = []
    package var `default`: String?
    package var interruptExistConnections = false

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("outbounds", \.outbounds, .always),
        .init("default", \.default),
        .init("interrupt_exist_connections", \.interruptExistConnections),
    ] }
}

/// `urltest` outbound: the member with the lowest measured delay.
package struct URLTestOutboundOptions: ConfigObject, Equatable {
    package var outbounds: [String] = []
    package var url: String?
    package var interval: ConfigDuration?
    package var tolerance: UInt16?
    package var idleTimeout: ConfigDuration?
    package var interruptExistConnections = false

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("outbounds", \.outbounds, .always),
        .init("url", \.url),
        .init("interval", \.interval),
        .init("tolerance", \.tolerance),
        .init("idle_timeout", \.idleTimeout),
        .init("interrupt_exist_connections", \.interruptExistConnections),
    ] }
}

/// Options of the `block` and legacy `dns` outbounds: none (Go's `option.StubOptions`).
package struct StubOptions: ConfigObject, Equatable {
    package init() {}
    package static var fields: [ConfigField<Self>] { [] }
}
