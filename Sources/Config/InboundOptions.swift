/// One entry of `inbounds`: its `type`, `tag` and the typed options of that type.
package struct InboundOptions: JSONCodable, Equatable {
    package var type: String
    package var tag: String
    package var options: InboundTypeOptions

    package init(tag: String = "", options: InboundTypeOptions) {
        self.type = options.type
        self.tag = tag
        self.options = options
    }

    package static var goTypeName: String { "option._Inbound" }

    package init(json: JSONValue, path: String) throws(ConfigError) {
        guard case .object(let object) = json else { throw typeMismatch(json, Self.goTypeName, path) }
        var reader = ObjectReader(object, path: path)
        type = try reader.read("type") ?? ""
        tag = try reader.read("tag") ?? ""
        var rest = reader.remainder(excluding: ["type", "tag"])
        options = try InboundTypeOptions(type: type, reader: &rest)
        try rest.finish()
    }

    package func toJSON() -> JSONValue {
        var writer = ObjectWriter()
        writer.put("type", .string(type))
        if !tag.isEmpty { writer.put("tag", .string(tag)) }
        options.writeFields(into: &writer)
        return .object(writer.object)
    }

    /// The listen fields every inbound type but `tun` has.
    package var listen: ListenOptions? { options.listen }
}

/// The options of an inbound, one case per sing-box 1.12 inbound type.
package enum InboundTypeOptions: Equatable, Sendable {
    case tun(TunInboundOptions)
    case redirect(RedirectInboundOptions)
    case tproxy(TProxyInboundOptions)
    case direct(DirectInboundOptions)
    case socks(SOCKSInboundOptions)
    case http(HTTPMixedInboundOptions)
    case mixed(HTTPMixedInboundOptions)
    case shadowsocks(ShadowsocksInboundOptions)
    case vmess(VMessInboundOptions)
    case trojan(TrojanInboundOptions)
    case naive(NaiveInboundOptions)
    case shadowtls(ShadowTLSInboundOptions)
    case vless(VLESSInboundOptions)
    case anytls(AnyTLSInboundOptions)
    case hysteria(HysteriaInboundOptions)
    case tuic(TUICInboundOptions)
    case hysteria2(Hysteria2InboundOptions)
    /// Removed in 1.6.0: reads as shadowsocks options, refused at check.
    case shadowsocksr(ShadowsocksInboundOptions)

    /// The `type` string of this case.
    package var type: String {
        switch self {
        case .tun: "tun"
        case .redirect: "redirect"
        case .tproxy: "tproxy"
        case .direct: "direct"
        case .socks: "socks"
        case .http: "http"
        case .mixed: "mixed"
        case .shadowsocks: "shadowsocks"
        case .vmess: "vmess"
        case .trojan: "trojan"
        case .naive: "naive"
        case .shadowtls: "shadowtls"
        case .vless: "vless"
        case .anytls: "anytls"
        case .hysteria: "hysteria"
        case .tuic: "tuic"
        case .hysteria2: "hysteria2"
        case .shadowsocksr: "shadowsocksr"
        }
    }

    init(type: String, reader: inout ObjectReader) throws(ConfigError) {
        switch type {
        case "tun": self = .tun(try payload(&reader))
        case "redirect": self = .redirect(try payload(&reader))
        case "tproxy": self = .tproxy(try payload(&reader))
        case "direct": self = .direct(try payload(&reader))
        case "socks": self = .socks(try payload(&reader))
        case "http": self = .http(try payload(&reader))
        case "mixed": self = .mixed(try payload(&reader))
        case "shadowsocks": self = .shadowsocks(try payload(&reader))
        case "vmess": self = .vmess(try payload(&reader))
        case "trojan": self = .trojan(try payload(&reader))
        case "naive": self = .naive(try payload(&reader))
        case "shadowtls": self = .shadowtls(try payload(&reader))
        case "vless": self = .vless(try payload(&reader))
        case "anytls": self = .anytls(try payload(&reader))
        case "hysteria": self = .hysteria(try payload(&reader))
        case "tuic": self = .tuic(try payload(&reader))
        case "hysteria2": self = .hysteria2(try payload(&reader))
        case "shadowsocksr": self = .shadowsocksr(try payload(&reader))
        default: throw ConfigError(path: reader.path, message: "unknown inbound type: \(type)")
        }
    }

    func writeFields(into writer: inout ObjectWriter) {
        switch self {
        case .tun(let o): o.writeFields(into: &writer)
        case .redirect(let o): o.writeFields(into: &writer)
        case .tproxy(let o): o.writeFields(into: &writer)
        case .direct(let o): o.writeFields(into: &writer)
        case .socks(let o): o.writeFields(into: &writer)
        case .http(let o), .mixed(let o): o.writeFields(into: &writer)
        case .shadowsocks(let o), .shadowsocksr(let o): o.writeFields(into: &writer)
        case .vmess(let o): o.writeFields(into: &writer)
        case .trojan(let o): o.writeFields(into: &writer)
        case .naive(let o): o.writeFields(into: &writer)
        case .shadowtls(let o): o.writeFields(into: &writer)
        case .vless(let o): o.writeFields(into: &writer)
        case .anytls(let o): o.writeFields(into: &writer)
        case .hysteria(let o): o.writeFields(into: &writer)
        case .tuic(let o): o.writeFields(into: &writer)
        case .hysteria2(let o): o.writeFields(into: &writer)
        }
    }

    /// The listen fields, for every type but `tun`.
    package var listen: ListenOptions? {
        switch self {
        case .tun: nil
        case .redirect(let o): o.listen
        case .tproxy(let o): o.listen
        case .direct(let o): o.listen
        case .socks(let o): o.listen
        case .http(let o), .mixed(let o): o.listen
        case .shadowsocks(let o), .shadowsocksr(let o): o.listen
        case .vmess(let o): o.listen
        case .trojan(let o): o.listen
        case .naive(let o): o.listen
        case .shadowtls(let o): o.listen
        case .vless(let o): o.listen
        case .anytls(let o): o.listen
        case .hysteria(let o): o.listen
        case .tuic(let o): o.listen
        case .hysteria2(let o): o.listen
        }
    }

    /// The server-side TLS options, for types that have them.
    package var tls: InboundTLSOptions? {
        switch self {
        case .http(let o), .mixed(let o): o.tls
        case .vmess(let o): o.tls
        case .trojan(let o): o.tls
        case .naive(let o): o.tls
        case .vless(let o): o.tls
        case .anytls(let o): o.tls
        case .hysteria(let o): o.tls
        case .tuic(let o): o.tls
        case .hysteria2(let o): o.tls
        default: nil
        }
    }
}

/// One entry of `outbounds`: its `type`, `tag` and the typed options of that type.
package struct OutboundOptions: JSONCodable, Equatable {
    package var type: String
    package var tag: String
    package var options: OutboundTypeOptions

    package init(tag: String = "", options: OutboundTypeOptions) {
        self.type = options.type
        self.tag = tag
        self.options = options
    }

    package static var goTypeName: String { "option._Outbound" }

    package init(json: JSONValue, path: String) throws(ConfigError) {
        guard case .object(let object) = json else { throw typeMismatch(json, Self.goTypeName, path) }
        var reader = ObjectReader(object, path: path)
        type = try reader.read("type") ?? ""
        tag = try reader.read("tag") ?? ""
        var rest = reader.remainder(excluding: ["type", "tag"])
        options = try OutboundTypeOptions(type: type, reader: &rest)
        try rest.finish()
    }

    package func toJSON() -> JSONValue {
        var writer = ObjectWriter()
        writer.put("type", .string(type))
        if !tag.isEmpty { writer.put("tag", .string(tag)) }
        options.writeFields(into: &writer)
        return .object(writer.object)
    }
}

/// The options of an outbound, one case per sing-box 1.12 outbound type.
package enum OutboundTypeOptions: Equatable, Sendable {
    case direct(DirectOutboundOptions)
    case block
    /// The legacy `dns` outbound (deprecated in 1.11; fatal in 1.12 unless ENABLE_DEPRECATED_SPECIAL_OUTBOUNDS).
    case dns
    case selector(SelectorOutboundOptions)
    case urltest(URLTestOutboundOptions)
    case socks(SOCKSOutboundOptions)
    case http(HTTPOutboundOptions)
    case shadowsocks(ShadowsocksOutboundOptions)
    case vmess(VMessOutboundOptions)
    case trojan(TrojanOutboundOptions)
    case tor(TorOutboundOptions)
    case ssh(SSHOutboundOptions)
    case shadowtls(ShadowTLSOutboundOptions)
    case vless(VLESSOutboundOptions)
    case anytls(AnyTLSOutboundOptions)
    case hysteria(HysteriaOutboundOptions)
    case tuic(TUICOutboundOptions)
    case hysteria2(Hysteria2OutboundOptions)
    /// The legacy `wireguard` outbound (use the endpoint).
    case wireguard(LegacyWireGuardOutboundOptions)
    /// Removed in 1.6.0: read, refused at check.
    case shadowsocksr(ShadowsocksROutboundOptions)

    package var type: String {
        switch self {
        case .direct: "direct"
        case .block: "block"
        case .dns: "dns"
        case .selector: "selector"
        case .urltest: "urltest"
        case .socks: "socks"
        case .http: "http"
        case .shadowsocks: "shadowsocks"
        case .vmess: "vmess"
        case .trojan: "trojan"
        case .tor: "tor"
        case .ssh: "ssh"
        case .shadowtls: "shadowtls"
        case .vless: "vless"
        case .anytls: "anytls"
        case .hysteria: "hysteria"
        case .tuic: "tuic"
        case .hysteria2: "hysteria2"
        case .wireguard: "wireguard"
        case .shadowsocksr: "shadowsocksr"
        }
    }

    init(type: String, reader: inout ObjectReader) throws(ConfigError) {
        switch type {
        case "direct": self = .direct(try payload(&reader))
        case "block": let _: StubOptions = try payload(&reader); self = .block
        case "dns": let _: StubOptions = try payload(&reader); self = .dns
        case "selector": self = .selector(try payload(&reader))
        case "urltest": self = .urltest(try payload(&reader))
        case "socks": self = .socks(try payload(&reader))
        case "http": self = .http(try payload(&reader))
        case "shadowsocks": self = .shadowsocks(try payload(&reader))
        case "vmess": self = .vmess(try payload(&reader))
        case "trojan": self = .trojan(try payload(&reader))
        case "tor": self = .tor(try payload(&reader))
        case "ssh": self = .ssh(try payload(&reader))
        case "shadowtls": self = .shadowtls(try payload(&reader))
        case "vless": self = .vless(try payload(&reader))
        case "anytls": self = .anytls(try payload(&reader))
        case "hysteria": self = .hysteria(try payload(&reader))
        case "tuic": self = .tuic(try payload(&reader))
        case "hysteria2": self = .hysteria2(try payload(&reader))
        case "wireguard": self = .wireguard(try payload(&reader))
        case "shadowsocksr": self = .shadowsocksr(try payload(&reader))
        default: throw ConfigError(path: reader.path, message: "unknown outbound type: \(type)")
        }
    }

    func writeFields(into writer: inout ObjectWriter) {
        switch self {
        case .direct(let o): o.writeFields(into: &writer)
        case .block, .dns: break
        case .selector(let o): o.writeFields(into: &writer)
        case .urltest(let o): o.writeFields(into: &writer)
        case .socks(let o): o.writeFields(into: &writer)
        case .http(let o): o.writeFields(into: &writer)
        case .shadowsocks(let o): o.writeFields(into: &writer)
        case .vmess(let o): o.writeFields(into: &writer)
        case .trojan(let o): o.writeFields(into: &writer)
        case .tor(let o): o.writeFields(into: &writer)
        case .ssh(let o): o.writeFields(into: &writer)
        case .shadowtls(let o): o.writeFields(into: &writer)
        case .vless(let o): o.writeFields(into: &writer)
        case .anytls(let o): o.writeFields(into: &writer)
        case .hysteria(let o): o.writeFields(into: &writer)
        case .tuic(let o): o.writeFields(into: &writer)
        case .hysteria2(let o): o.writeFields(into: &writer)
        case .wireguard(let o): o.writeFields(into: &writer)
        case .shadowsocksr(let o): o.writeFields(into: &writer)
        }
    }

    /// The dial fields, for every type that dials.
    package var dial: DialerOptions? {
        switch self {
        case .direct(let o): o.dial
        case .block, .dns, .selector, .urltest: nil
        case .socks(let o): o.dial
        case .http(let o): o.dial
        case .shadowsocks(let o): o.dial
        case .vmess(let o): o.dial
        case .trojan(let o): o.dial
        case .tor(let o): o.dial
        case .ssh(let o): o.dial
        case .shadowtls(let o): o.dial
        case .vless(let o): o.dial
        case .anytls(let o): o.dial
        case .hysteria(let o): o.dial
        case .tuic(let o): o.dial
        case .hysteria2(let o): o.dial
        case .wireguard(let o): o.dial
        case .shadowsocksr(let o): o.dial
        }
    }

    /// The server address fields, for client protocols.
    package var server: ServerOptions? {
        switch self {
        case .socks(let o): o.server
        case .http(let o): o.server
        case .shadowsocks(let o): o.server
        case .vmess(let o): o.server
        case .trojan(let o): o.server
        case .ssh(let o): o.server
        case .shadowtls(let o): o.server
        case .vless(let o): o.server
        case .anytls(let o): o.server
        case .hysteria(let o): o.server
        case .tuic(let o): o.server
        case .hysteria2(let o): o.server
        case .wireguard(let o): o.server
        case .shadowsocksr(let o): o.server
        default: nil
        }
    }
}

/// The removed `shadowsocksr` outbound's fields, read so the check can refuse it by name.
package struct ShadowsocksROutboundOptions: ConfigObject, Equatable {
    package var dial = DialerOptions()
    package var server = ServerOptions()
    package var method = ""
    package var password = ""
    package var obfs: String?
    package var obfsParam: String?
    package var `protocol`: String?
    package var protocolParam: String?
    package var network = NetworkList()

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.dial),
        .embed(\.server),
        .init("method", \.method, .always),
        .init("password", \.password, .always),
        .init("obfs", \.obfs),
        .init("obfs_param", \.obfsParam),
        .init("protocol", \.protocol),
        .init("protocol_param", \.protocolParam),
        .init("network", \.network),
    ] }
}
