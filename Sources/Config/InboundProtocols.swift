import Foundation

/// `mixed` and `http` inbounds (Go's `option.HTTPMixedInboundOptions`).
package struct HTTPMixedInboundOptions: ConfigObject, Equatable {
    package var listen = ListenOptions()
    package var users: [AuthUser] = []
    package var domainResolver: DomainResolveOptions?
    package var setSystemProxy = false
    package var tls: InboundTLSOptions?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.listen),
        .init("users", \.users),
        .init("domain_resolver", \.domainResolver, .omitNil),
        .init("set_system_proxy", \.setSystemProxy),
        .init("tls", \.tls, .omitNil),
    ] }
}

/// `socks` inbound.
package struct SOCKSInboundOptions: ConfigObject, Equatable {
    package var listen = ListenOptions()
    package var users: [AuthUser] = []
    package var domainResolver: DomainResolveOptions?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.listen),
        .init("users", \.users),
        .init("domain_resolver", \.domainResolver, .omitNil),
    ] }
}

/// `direct` inbound: a port forward.
package struct DirectInboundOptions: ConfigObject, Equatable {
    package var listen = ListenOptions()
    package var network = NetworkList()
    package var overrideAddress: String?
    package var overridePort: UInt16?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.listen),
        .init("network", \.network),
        .init("override_address", \.overrideAddress),
        .init("override_port", \.overridePort),
    ] }
}

/// `redirect` inbound (Linux `SO_ORIGINAL_DST`).
package struct RedirectInboundOptions: ConfigObject, Equatable {
    package var listen = ListenOptions()

    package init() {}

    package static var fields: [ConfigField<Self>] { [.embed(\.listen)] }
}

/// `tproxy` inbound (Linux `IP_TRANSPARENT`).
package struct TProxyInboundOptions: ConfigObject, Equatable {
    package var listen = ListenOptions()
    package var network = NetworkList()

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.listen),
        .init("network", \.network),
    ] }
}

/// `shadowsocks` inbound.
package struct ShadowsocksInboundOptions: ConfigObject, Equatable {
    package var listen = ListenOptions()
    package var network = NetworkList()
    package var method = ""
    package var password: String?
    package var users: [ShadowsocksUser] = []
    package var destinations: [ShadowsocksDestination] = []
    package var multiplex: InboundMultiplexOptions?
    package var managed = false

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.listen),
        .init("network", \.network),
        .init("method", \.method, .always),
        .init("password", \.password),
        .init("users", \.users),
        .init("destinations", \.destinations),
        .init("multiplex", \.multiplex, .omitNil),
        .init("managed", \.managed),
    ] }
}

/// A user of a multi-user (2022) shadowsocks inbound.
package struct ShadowsocksUser: ConfigObject, Equatable {
    package var name = ""
    package var password = ""

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("name", \.name, .always),
        .init("password", \.password, .always),
    ] }
}

/// A relay destination of a shadowsocks 2022 inbound.
package struct ShadowsocksDestination: ConfigObject, Equatable {
    package var name = ""
    package var password = ""
    package var server = ServerOptions()

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("name", \.name, .always),
        .init("password", \.password, .always),
        .embed(\.server),
    ] }
}

/// `vmess` inbound.
package struct VMessInboundOptions: ConfigObject, Equatable {
    package var listen = ListenOptions()
    package var users: [VMessUser] = []
    package var tls: InboundTLSOptions?
    package var multiplex: InboundMultiplexOptions?
    package var transport: V2RayTransportOptions?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.listen),
        .init("users", \.users),
        .init("tls", \.tls, .omitNil),
        .init("multiplex", \.multiplex, .omitNil),
        .init("transport", \.transport, .omitNil),
    ] }
}

/// A vmess inbound user (`alterId` is spelled in camel case, as in Go).
package struct VMessUser: ConfigObject, Equatable {
    package var name = ""
    package var uuid = ""
    package var alterId: Int?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("name", \.name, .always),
        .init("uuid", \.uuid, .always),
        .init("alterId", \.alterId),
    ] }
}

/// `trojan` inbound.
package struct TrojanInboundOptions: ConfigObject, Equatable {
    package var listen = ListenOptions()
    package var users: [TrojanUser] = []
    package var tls: InboundTLSOptions?
    package var fallback: ServerOptions?
    package var fallbackForALPN = StringMap<ServerOptions>()
    package var multiplex: InboundMultiplexOptions?
    package var transport: V2RayTransportOptions?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.listen),
        .init("users", \.users),
        .init("tls", \.tls, .omitNil),
        .init("fallback", \.fallback, .omitNil),
        .init("fallback_for_alpn", \.fallbackForALPN),
        .init("multiplex", \.multiplex, .omitNil),
        .init("transport", \.transport, .omitNil),
    ] }
}

/// A trojan inbound user.
package struct TrojanUser: ConfigObject, Equatable {
    package var name = ""
    package var password = ""

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("name", \.name, .always),
        .init("password", \.password, .always),
    ] }
}

/// `naive` inbound.
package struct NaiveInboundOptions: ConfigObject, Equatable {
    package var listen = ListenOptions()
    package var users: [AuthUser] = []
    package var network = NetworkList()
    package var tls: InboundTLSOptions?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.listen),
        .init("users", \.users),
        .init("network", \.network),
        .init("tls", \.tls, .omitNil),
    ] }
}

/// A byte quantity with a unit, as sing's `byteformats` reads it: a plain integer, or digits
/// followed by a unit ("100 Mbps", "1 GB"); written back with the unit as given.
package struct ByteQuantity: JSONCodable, Equatable {
    /// Which unit table applies: bandwidth (`NetworkBytesCompat`) or memory (`MemoryBytes`).
    package enum Kind: Sendable { case network, memory }

    /// The quantity in bytes (per second for bandwidth).
    package var value: UInt64
    /// The unit as written (with its spacing), empty for a plain number.
    package var unit: String
    package var unitValue: UInt64

    private static let bytes: [String: UInt64] = [
        "b": 1, "k": 1_000, "kb": 1_000, "ki": 1 << 10, "kib": 1 << 10, "m": 1_000_000, "mb": 1_000_000,
        "mi": 1 << 20, "mib": 1 << 20, "g": 1_000_000_000, "gb": 1_000_000_000, "gi": 1 << 30, "gib": 1 << 30,
        "t": 1_000_000_000_000, "tb": 1_000_000_000_000, "ti": 1 << 40, "tib": 1 << 40,
        "p": 1_000_000_000_000_000, "pb": 1_000_000_000_000_000, "pi": 1 << 50, "pib": 1 << 50,
        "e": 1_000_000_000_000_000_000, "eb": 1_000_000_000_000_000_000, "ei": 1 << 60, "eib": 1 << 60,
    ]
    private static let memory: [String: UInt64] = [
        "b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "g": 1 << 30, "gb": 1 << 30,
        "t": 1 << 40, "tb": 1 << 40, "p": 1 << 50, "pb": 1 << 50, "e": 1 << 60, "eb": 1 << 60,
    ]
    private static let network: [String: UInt64] = [
        "Bps": 1, "Kbps": 125, "KBps": 1_000, "Mbps": 125_000, "MBps": 1_000_000, "Gbps": 125_000_000,
        "GBps": 1_000_000_000, "Tbps": 125_000_000_000, "TBps": 1_000_000_000_000, "Pbps": 125_000_000_000_000,
        "PBps": 1_000_000_000_000_000, "Ebps": 125_000_000_000_000_000, "EBps": 1_000_000_000_000_000_000,
    ]

    package init(json: JSONValue, path: String) throws(ConfigError) {
        try self.init(json: json, path: path, kind: .network)
    }

    package init(json: JSONValue, path: String, kind: Kind) throws(ConfigError) {
        if case .number = json, let number = try? Int64(json: json, path: path) {
            value = UInt64(bitPattern: number)
            unit = ""
            unitValue = 1
            return
        }
        let text = try String(json: json, path: path)
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, digits.count < text.count else {
            throw ConfigError(path: path, message: "invalid format: \(text)")
        }
        guard let number = UInt64(digits) else {
            throw ConfigError(path: path, message: "parse \(digits): strconv.ParseUint: parsing \"\(digits)\": value out of range")
        }
        let rawUnit = String(text.dropFirst(digits.count))
        let trimmed = String(Substring(rawUnit).trimmingSpaces)
        // Bandwidth tries the case-sensitive bit/byte-per-second units first, then byte units.
        let unitValue: UInt64?
        switch kind {
        case .network: unitValue = Self.network[trimmed] ?? Self.bytes[trimmed.lowercased()]
        case .memory: unitValue = Self.memory[trimmed.lowercased()]
        }
        guard let unitValue else { throw ConfigError(path: path, message: "unsupported unit: \(rawUnit)") }
        value = number &* unitValue
        unit = rawUnit
        self.unitValue = unitValue
    }

    package func toJSON() -> JSONValue {
        unit.isEmpty ? .number(String(value)) : .string(String(value / unitValue) + unit)
    }
    package static var goTypeName: String { "byteformats.NetworkBytesCompat" }
}

/// `experimental.debug.memory_limit`: a memory size ("512 MB" means 512 MiB).
package struct MemoryBytes: JSONCodable, Equatable {
    package var quantity: ByteQuantity
    package init(json: JSONValue, path: String) throws(ConfigError) {
        quantity = try ByteQuantity(json: json, path: path, kind: .memory)
    }
    package func toJSON() -> JSONValue { quantity.toJSON() }
    package static var goTypeName: String { "byteformats.MemoryBytes" }
}


/// `hysteria` inbound.
package struct HysteriaInboundOptions: ConfigObject, Equatable {
    package var listen = ListenOptions()
    package var up: ByteQuantity?
    package var upMbps: Int?
    package var down: ByteQuantity?
    package var downMbps: Int?
    package var obfs: String?
    package var users: [HysteriaUser] = []
    package var receiveWindowConn: UInt64?
    package var receiveWindowClient: UInt64?
    package var maxConnClient: Int?
    package var disableMTUDiscovery = false
    package var tls: InboundTLSOptions?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.listen),
        .init("up", \.up, .omitNil),
        .init("up_mbps", \.upMbps),
        .init("down", \.down, .omitNil),
        .init("down_mbps", \.downMbps),
        .init("obfs", \.obfs),
        .init("users", \.users),
        .init("recv_window_conn", \.receiveWindowConn),
        .init("recv_window_client", \.receiveWindowClient),
        .init("max_conn_client", \.maxConnClient),
        .init("disable_mtu_discovery", \.disableMTUDiscovery),
        .init("tls", \.tls, .omitNil),
    ] }
}

/// Go `[]byte` in JSON: a base64 string, or an array of byte values; written as base64.
package struct ByteArray: JSONCodable, Equatable {
    package var bytes: [UInt8]
    package init(_ bytes: [UInt8] = []) { self.bytes = bytes }
    package init(json: JSONValue, path: String) throws(ConfigError) {
        if case .string(let text) = json {
            guard let data = Data(base64Encoded: text) else {
                throw ConfigError(path: path, message: ConfigValidator.goBase64Error(text) ?? "illegal base64 data at input byte 0")
            }
            bytes = Array(data)
            return
        }
        bytes = try [UInt8](json: json, path: path)
    }
    package func toJSON() -> JSONValue { .string(Data(bytes).base64EncodedString()) }
    package var isGoZero: Bool { bytes.isEmpty }
    package static var goTypeName: String { "[]uint8" }
}

/// A hysteria inbound user: `auth` (base64) or `auth_str`.
package struct HysteriaUser: ConfigObject, Equatable {
    package var name: String?
    package var auth: ByteArray?
    package var authString: String?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("name", \.name),
        .init("auth", \.auth),
        .init("auth_str", \.authString),
    ] }
}

/// `shadowtls` inbound.
package struct ShadowTLSInboundOptions: ConfigObject, Equatable {
    package var listen = ListenOptions()
    package var version: Int?
    package var password: String?
    package var users: [ShadowTLSUser] = []
    package var handshake = ShadowTLSHandshakeOptions()
    package var handshakeForServerName = StringMap<ShadowTLSHandshakeOptions>()
    package var strictMode = false
    package var wildcardSNI: WildcardSNI?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.listen),
        .init("version", \.version),
        .init("password", \.password),
        .init("users", \.users),
        .init("handshake", \.handshake, .always),
        .init("handshake_for_server_name", \.handshakeForServerName),
        .init("strict_mode", \.strictMode),
        .init("wildcard_sni", \.wildcardSNI),
    ] }
}

/// `wildcard_sni` of a shadowtls inbound: off, authed, all.
package enum WildcardSNI: String, JSONCodable, Equatable {
    case off, authed, all
    package init(json: JSONValue, path: String) throws(ConfigError) {
        let text = try String(json: json, path: path)
        if text.isEmpty { self = .off; return }
        guard let value = WildcardSNI(rawValue: text) else {
            throw ConfigError(path: path, message: "unknown wildcard SNI value: \(text)")
        }
        self = value
    }
    package func toJSON() -> JSONValue { .string(rawValue) }
    package var isGoZero: Bool { self == .off }
    package static var goTypeName: String { "option.WildcardSNI" }
}

/// A shadowtls v3 inbound user.
package struct ShadowTLSUser: ConfigObject, Equatable {
    package var name: String?
    package var password: String?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("name", \.name),
        .init("password", \.password),
    ] }
}

/// The real TLS server a shadowtls inbound hands the handshake to.
package struct ShadowTLSHandshakeOptions: ConfigObject, Equatable {
    package var server = ServerOptions()
    package var dial = DialerOptions()

    package init() {}

    package static var fields: [ConfigField<Self>] { [.embed(\.server), .embed(\.dial)] }
}

/// `tuic` inbound.
package struct TUICInboundOptions: ConfigObject, Equatable {
    package var listen = ListenOptions()
    package var users: [TUICUser] = []
    package var congestionControl: String?
    package var authTimeout: ConfigDuration?
    package var zeroRTTHandshake = false
    package var heartbeat: ConfigDuration?
    package var tls: InboundTLSOptions?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.listen),
        .init("users", \.users),
        .init("congestion_control", \.congestionControl),
        .init("auth_timeout", \.authTimeout),
        .init("zero_rtt_handshake", \.zeroRTTHandshake),
        .init("heartbeat", \.heartbeat),
        .init("tls", \.tls, .omitNil),
    ] }
}

/// A tuic inbound user.
package struct TUICUser: ConfigObject, Equatable {
    package var name: String?
    package var uuid: String?
    package var password: String?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("name", \.name),
        .init("uuid", \.uuid),
        .init("password", \.password),
    ] }
}

/// `hysteria2` inbound.
package struct Hysteria2InboundOptions: ConfigObject, Equatable {
    package var listen = ListenOptions()
    package var upMbps: Int?
    package var downMbps: Int?
    package var obfs: Hysteria2Obfs?
    package var users: [Hysteria2User] = []
    package var ignoreClientBandwidth = false
    package var tls: InboundTLSOptions?
    package var masquerade: Hysteria2Masquerade?
    package var brutalDebug = false

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.listen),
        .init("up_mbps", \.upMbps),
        .init("down_mbps", \.downMbps),
        .init("obfs", \.obfs, .omitNil),
        .init("users", \.users),
        .init("ignore_client_bandwidth", \.ignoreClientBandwidth),
        .init("tls", \.tls, .omitNil),
        .init("masquerade", \.masquerade, .omitNil),
        .init("brutal_debug", \.brutalDebug),
    ] }
}

/// hysteria2 obfuscation (`salamander`).
package struct Hysteria2Obfs: ConfigObject, Equatable {
    package var type: String?
    package var password: String?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("type", \.type),
        .init("password", \.password),
    ] }
}

/// A hysteria2 inbound user.
package struct Hysteria2User: ConfigObject, Equatable {
    package var name: String?
    package var password: String?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("name", \.name),
        .init("password", \.password),
    ] }
}

/// What a hysteria2 server shows to non-clients: a URL string (file:// or http(s)://) or a typed object.
package enum Hysteria2Masquerade: JSONCodable, Equatable {
    case file(directory: String)
    case proxy(url: String, rewriteHost: Bool)
    case string(statusCode: Int?, headers: ListableMap, content: String)

    package static var goTypeName: String { "option._Hysteria2Masquerade" }

    package init(json: JSONValue, path: String) throws(ConfigError) {
        if case .string(let url) = json {
            guard let colon = url.firstIndex(of: ":") else {
                throw ConfigError(path: path, message: "unknown masquerade URL scheme: ")
            }
            let scheme = url[..<colon].lowercased()
            switch scheme {
            case "file":
                var rest = url[url.index(after: colon)...]
                if rest.hasPrefix("//") {
                    rest = rest.dropFirst(2)
                    rest = rest.drop { $0 != "/" }
                }
                self = .file(directory: String(rest))
            case "http", "https":
                self = .proxy(url: url, rewriteHost: false)
            default:
                throw ConfigError(path: path, message: "unknown masquerade URL scheme: \(scheme)")
            }
            return
        }
        guard case .object(let object) = json else { throw typeMismatch(json, Self.goTypeName, path) }
        var head = ObjectReader(object, path: path)
        let type: String = try head.read("type") ?? ""
        var reader = head.remainder(excluding: ["type"])
        switch type {
        case "file":
            self = .file(directory: try reader.read("directory") ?? "")
        case "proxy":
            self = .proxy(url: try reader.read("url") ?? "", rewriteHost: try reader.read("rewrite_host") ?? false)
        case "string":
            self = .string(statusCode: try reader.read("status_code"), headers: try reader.read("headers") ?? ListableMap(),
                           content: try reader.read("content") ?? "")
        default:
            throw ConfigError(path: path, message: "unknown masquerade type: \(type)")
        }
        try reader.finish()
    }

    package func toJSON() -> JSONValue {
        var writer = ObjectWriter()
        switch self {
        case .file(let directory):
            writer.put("type", .string("file"))
            writer.put("directory", .string(directory))
        case .proxy(let url, let rewriteHost):
            writer.put("type", .string("proxy"))
            writer.put("url", .string(url))
            if rewriteHost { writer.put("rewrite_host", .bool(true)) }
        case .string(let statusCode, let headers, let content):
            writer.put("type", .string("string"))
            if let statusCode, statusCode != 0 { writer.put("status_code", statusCode.toJSON()) }
            if !headers.isGoZero { writer.put("headers", headers.toJSON()) }
            writer.put("content", .string(content))
        }
        return .object(writer.object)
    }
}

/// `vless` inbound.
package struct VLESSInboundOptions: ConfigObject, Equatable {
    package var listen = ListenOptions()
    package var users: [VLESSUser] = []
    package var tls: InboundTLSOptions?
    package var multiplex: InboundMultiplexOptions?
    package var transport: V2RayTransportOptions?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.listen),
        .init("users", \.users),
        .init("tls", \.tls, .omitNil),
        .init("multiplex", \.multiplex, .omitNil),
        .init("transport", \.transport, .omitNil),
    ] }
}

/// A vless inbound user.
package struct VLESSUser: ConfigObject, Equatable {
    package var name = ""
    package var uuid = ""
    package var flow: String?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("name", \.name, .always),
        .init("uuid", \.uuid, .always),
        .init("flow", \.flow),
    ] }
}

/// `anytls` inbound.
package struct AnyTLSInboundOptions: ConfigObject, Equatable {
    package var listen = ListenOptions()
    package var tls: InboundTLSOptions?
    package var users: [AnyTLSUser] = []
    package var paddingScheme: [String] = []

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.listen),
        .init("tls", \.tls, .omitNil),
        .init("users", \.users),
        .list("padding_scheme", \.paddingScheme),
    ] }
}

/// An anytls inbound user.
package struct AnyTLSUser: ConfigObject, Equatable {
    package var name: String?
    package var password: String?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("name", \.name),
        .init("password", \.password),
    ] }
}

/// `tun` inbound (Go's `option.TunInboundOptions`).
package struct TunInboundOptions: ConfigObject, Equatable {
    package var interfaceName: String?
    package var mtu: UInt32?
    package var address: [IPPrefixOption] = []
    package var autoRoute = false
    package var iproute2TableIndex: Int?
    package var iproute2RuleIndex: Int?
    package var autoRedirect = false
    package var autoRedirectInputMark: FwMark?
    package var autoRedirectOutputMark: FwMark?
    package var loopbackAddress: [IPAddressOption] = []
    package var strictRoute = false
    package var routeAddress: [IPPrefixOption] = []
    package var routeAddressSet: [String] = []
    package var routeExcludeAddress: [IPPrefixOption] = []
    package var routeExcludeAddressSet: [String] = []
    package var includeInterface: [String] = []
    package var excludeInterface: [String] = []
    package var includeUID: [UInt32] = []
    package var includeUIDRange: [String] = []
    package var excludeUID: [UInt32] = []
    package var excludeUIDRange: [String] = []
    package var includeAndroidUser: [Int] = []
    package var includePackage: [String] = []
    package var excludePackage: [String] = []
    package var udpTimeout: UDPTimeout?
    package var stack: String?
    package var platform: TunPlatformOptions?
    // Legacy inbound fields (deprecated in 1.11; still read).
    package var sniff = false
    package var sniffOverrideDestination = false
    package var sniffTimeout: ConfigDuration?
    package var domainStrategy: DomainStrategyOption?
    package var udpDisableDomainUnmapping = false
    package var detour: String?
    /// Removed in 1.12 (fatal unless ENABLE_DEPRECATED_TUN_GSO).
    package var gso = false
    /// Merged into `address` / `route_address` / `route_exclude_address` in 1.10; fatal in 1.12
    /// unless ENABLE_DEPRECATED_TUN_ADDRESS_X.
    package var inet4Address: [IPPrefixOption] = []
    package var inet6Address: [IPPrefixOption] = []
    package var inet4RouteAddress: [IPPrefixOption] = []
    package var inet6RouteAddress: [IPPrefixOption] = []
    package var inet4RouteExcludeAddress: [IPPrefixOption] = []
    package var inet6RouteExcludeAddress: [IPPrefixOption] = []
    /// Removed; ignored.
    package var endpointIndependentNat = false

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("interface_name", \.interfaceName),
        .init("mtu", \.mtu),
        .list("address", \.address),
        .init("auto_route", \.autoRoute),
        .init("iproute2_table_index", \.iproute2TableIndex),
        .init("iproute2_rule_index", \.iproute2RuleIndex),
        .init("auto_redirect", \.autoRedirect),
        .init("auto_redirect_input_mark", \.autoRedirectInputMark),
        .init("auto_redirect_output_mark", \.autoRedirectOutputMark),
        .list("loopback_address", \.loopbackAddress),
        .init("strict_route", \.strictRoute),
        .list("route_address", \.routeAddress),
        .list("route_address_set", \.routeAddressSet),
        .list("route_exclude_address", \.routeExcludeAddress),
        .list("route_exclude_address_set", \.routeExcludeAddressSet),
        .list("include_interface", \.includeInterface),
        .list("exclude_interface", \.excludeInterface),
        .list("include_uid", \.includeUID),
        .list("include_uid_range", \.includeUIDRange),
        .list("exclude_uid", \.excludeUID),
        .list("exclude_uid_range", \.excludeUIDRange),
        .list("include_android_user", \.includeAndroidUser),
        .list("include_package", \.includePackage),
        .list("exclude_package", \.excludePackage),
        .init("udp_timeout", \.udpTimeout),
        .init("stack", \.stack),
        .init("platform", \.platform, .omitNil),
        .init("sniff", \.sniff),
        .init("sniff_override_destination", \.sniffOverrideDestination),
        .init("sniff_timeout", \.sniffTimeout),
        .init("domain_strategy", \.domainStrategy),
        .init("udp_disable_domain_unmapping", \.udpDisableDomainUnmapping),
        .init("detour", \.detour),
        .init("gso", \.gso),
        .list("inet4_address", \.inet4Address),
        .list("inet6_address", \.inet6Address),
        .list("inet4_route_address", \.inet4RouteAddress),
        .list("inet6_route_address", \.inet6RouteAddress),
        .list("inet4_route_exclude_address", \.inet4RouteExcludeAddress),
        .list("inet6_route_exclude_address", \.inet6RouteExcludeAddress),
        .init("endpoint_independent_nat", \.endpointIndependentNat),
    ] }

    /// Whether a legacy `inet4_*`/`inet6_*` address field is set.
    package var usesLegacyAddressFields: Bool {
        !(inet4Address.isEmpty && inet6Address.isEmpty && inet4RouteAddress.isEmpty && inet6RouteAddress.isEmpty
            && inet4RouteExcludeAddress.isEmpty && inet6RouteExcludeAddress.isEmpty)
    }
}

/// Platform extras of a tun inbound (system HTTP proxy).
package struct TunPlatformOptions: ConfigObject, Equatable {
    package var httpProxy: HTTPProxyOptions?

    package init() {}

    package static var fields: [ConfigField<Self>] { [.init("http_proxy", \.httpProxy, .omitNil)] }
}

/// The system HTTP proxy a tun inbound sets on platforms that have one.
package struct HTTPProxyOptions: ConfigObject, Equatable {
    package var enabled = false
    package var server = ServerOptions()
    package var bypassDomain: [String] = []
    package var matchDomain: [String] = []

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("enabled", \.enabled),
        .embed(\.server),
        .list("bypass_domain", \.bypassDomain),
        .list("match_domain", \.matchDomain),
    ] }
}
