/// One entry of `endpoints`: `wireguard` or `tailscale`.
package struct EndpointOptions: JSONCodable, Equatable {
    package var type: String
    package var tag: String
    package var options: EndpointTypeOptions

    package init(tag: String = "", options: EndpointTypeOptions) {
        self.type = options.type
        self.tag = tag
        self.options = options
    }

    package static var goTypeName: String { "option._Endpoint" }

    package init(json: JSONValue, path: String) throws(ConfigError) {
        guard case .object(let object) = json else { throw typeMismatch(json, Self.goTypeName, path) }
        var head = ObjectReader(object, path: path)
        type = try head.read("type") ?? ""
        tag = try head.read("tag") ?? ""
        var reader = head.remainder(excluding: ["type", "tag"])
        switch type {
        case "wireguard": options = .wireguard(try payload(&reader))
        case "tailscale": options = .tailscale(try payload(&reader))
        default: throw ConfigError(path: path, message: "unknown endpoint type: \(type)")
        }
        try reader.finish()
    }

    package func toJSON() -> JSONValue {
        var writer = ObjectWriter()
        writer.put("type", .string(type))
        if !tag.isEmpty { writer.put("tag", .string(tag)) }
        switch options {
        case .wireguard(let o): o.writeFields(into: &writer)
        case .tailscale(let o): o.writeFields(into: &writer)
        }
        return .object(writer.object)
    }
}

/// The options of an endpoint, one case per type.
package enum EndpointTypeOptions: Equatable, Sendable {
    case wireguard(WireGuardEndpointOptions)
    case tailscale(TailscaleEndpointOptions)

    package var type: String {
        switch self {
        case .wireguard: "wireguard"
        case .tailscale: "tailscale"
        }
    }

    package var dial: DialerOptions {
        switch self {
        case .wireguard(let o): o.dial
        case .tailscale(let o): o.dial
        }
    }
}

/// `wireguard` endpoint.
package struct WireGuardEndpointOptions: ConfigObject, Equatable {
    package var system = false
    package var name: String?
    package var mtu: UInt32?
    package var address: [IPPrefixOption] = []
    package var privateKey = ""
    package var listenPort: UInt16?
    package var peers: [WireGuardPeerOptions] = []
    package var udpTimeout: ConfigDuration?
    package var workers: Int?
    package var dial = DialerOptions()

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("system", \.system),
        .init("name", \.name),
        .init("mtu", \.mtu),
        ConfigField.listAlways("address", \.address),
        .init("private_key", \.privateKey, .always),
        .init("listen_port", \.listenPort),
        .init("peers", \.peers),
        .init("udp_timeout", \.udpTimeout),
        .init("workers", \.workers),
        .embed(\.dial),
    ] }
}

/// A peer of a WireGuard endpoint.
package struct WireGuardPeerOptions: ConfigObject, Equatable {
    package var address: String?
    package var port: UInt16?
    package var publicKey: String?
    package var preSharedKey: String?
    package var allowedIPs: [IPPrefixOption] = []
    package var persistentKeepaliveInterval: UInt16?
    package var reserved = ByteArray()

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("address", \.address),
        .init("port", \.port),
        .init("public_key", \.publicKey),
        .init("pre_shared_key", \.preSharedKey),
        .list("allowed_ips", \.allowedIPs),
        .init("persistent_keepalive_interval", \.persistentKeepaliveInterval),
        .init("reserved", \.reserved),
    ] }
}

/// `tailscale` endpoint.
package struct TailscaleEndpointOptions: ConfigObject, Equatable {
    package var dial = DialerOptions()
    package var stateDirectory: String?
    package var authKey: String?
    package var controlURL: String?
    package var ephemeral = false
    package var hostname: String?
    package var acceptRoutes = false
    package var exitNode: String?
    package var exitNodeAllowLANAccess = false
    package var advertiseRoutes: [IPPrefixOption] = []
    package var advertiseExitNode = false
    package var udpTimeout: UDPTimeout?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.dial),
        .init("state_directory", \.stateDirectory),
        .init("auth_key", \.authKey),
        .init("control_url", \.controlURL),
        .init("ephemeral", \.ephemeral),
        .init("hostname", \.hostname),
        .init("accept_routes", \.acceptRoutes),
        .init("exit_node", \.exitNode),
        .init("exit_node_allow_lan_access", \.exitNodeAllowLANAccess),
        .init("advertise_routes", \.advertiseRoutes),
        .init("advertise_exit_node", \.advertiseExitNode),
        .init("udp_timeout", \.udpTimeout),
    ] }
}
