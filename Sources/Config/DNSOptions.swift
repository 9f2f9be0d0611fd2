/// `dns` (Go's `option.DNSOptions`). Legacy 1.11 servers are rewritten to the 1.12 typed form
/// while decoding, as Go does; `rcode://` servers become `predefined` rule actions.
package struct DNSOptions: ConfigObject, Equatable {
    package var servers: [DNSServerOptions] = []
    package var rules: [DNSRuleOptions] = []
    package var final: String?
    package var reverseMapping = false
    package var strategy: DomainStrategyOption?
    package var disableCache = false
    package var disableExpire = false
    package var independentCache = false
    package var cacheCapacity: UInt32?
    package var clientSubnet: IPPrefixableOption?
    /// The legacy `dns.fakeip` block, as read (deprecated in 1.12; its ranges move into `fakeip` servers).
    package var legacyFakeIP: LegacyDNSFakeIPOptions?
    /// Whether any server was written in the legacy form (rcode ones included, which are gone
    /// from `servers` after decoding); drives the deprecation warning.
    package var hadLegacyServers = false

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("servers", \.servers),
        .init("rules", \.rules),
        .init("final", \.final),
        .init("reverse_mapping", \.reverseMapping),
        .init("strategy", \.strategy),
        .init("disable_cache", \.disableCache),
        .init("disable_expire", \.disableExpire),
        .init("independent_cache", \.independentCache),
        .init("cache_capacity", \.cacheCapacity),
        .init("client_subnet", \.clientSubnet, .omitNil),
        // `fakeip` is read apart, before the rest (see `init(json:path:)`); Go clears it after
        // the upgrade, so it is never written back.
        ConfigField(keys: ["fakeip"], decode: { (_: inout Self, _: inout ObjectReader) throws(ConfigError) in }, encode: { _, _ in }),
    ] }

    package init(json: JSONValue, path: String) throws(ConfigError) {
        guard case .object(let object) = json else { throw typeMismatch(json, Self.goTypeName, path) }
        let original = ObjectReader(object, path: path)
        self.init()
        // Go reads the legacy `fakeip` block first and the rest through badjson (empties dropped).
        var legacy = original
        legacyFakeIP = try legacy.read("fakeip")
        var reader = original.remainder(excluding: ["fakeip"])
        try Self.readFields(into: &self, from: &reader)
        try reader.finish()
        hadLegacyServers = servers.contains { $0.legacy != nil }
        // 1. Legacy fakeip servers take their ranges from the enabled legacy `dns.fakeip` block.
        if let fakeIP = legacyFakeIP, fakeIP.enabled {
            for index in servers.indices where servers[index].legacy != nil {
                if case .fakeip(var options) = servers[index].options {
                    options.inet4Range = fakeIP.inet4Range
                    options.inet6Range = fakeIP.inet6Range
                    servers[index].options = .fakeip(options)
                }
            }
        }
        // 2. Legacy rcode servers disappear; rules routing to them answer with that rcode.
        var rcodes: [String: DNSRCode] = [:]
        servers.removeAll { server in
            if case .legacyRcode(let rcode) = server.options {
                rcodes[server.tag] = rcode
                return true
            }
            return false
        }
        if !rcodes.isEmpty {
            for index in rules.indices { rules[index].rewriteRcode(rcodes) }
        }
    }
}

/// The legacy `dns.fakeip` block.
package struct LegacyDNSFakeIPOptions: ConfigObject, Equatable {
    package var enabled = false
    package var inet4Range: IPPrefixOption?
    package var inet6Range: IPPrefixOption?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("enabled", \.enabled),
        .init("inet4_range", \.inet4Range, .omitNil),
        .init("inet6_range", \.inet6Range, .omitNil),
    ] }
}

/// One `dns.servers` entry: `type`, `tag` and the typed options of that type.
package struct DNSServerOptions: JSONCodable, Equatable {
    package var type: String
    package var tag: String
    package var options: DNSServerTypeOptions
    /// When the server was written in the legacy 1.11 form: what was written (Go keeps the
    /// legacy strategy and client subnet behind the scenes; format does not print them).
    package var legacy: LegacyDNSServerOptions?

    package init(tag: String = "", options: DNSServerTypeOptions) {
        self.type = options.type
        self.tag = tag
        self.options = options
    }

    package static var goTypeName: String { "option._DNSServerOptions" }

    package init(json: JSONValue, path: String) throws(ConfigError) {
        guard case .object(let object) = json else { throw typeMismatch(json, Self.goTypeName, path) }
        let original = ObjectReader(object, path: path)
        var head = original
        let type: String = try head.read("type") ?? ""
        tag = try head.read("tag") ?? ""
        var reader = original.remainder(excluding: ["type", "tag"])
        if type.isEmpty || type == "legacy" {
            let legacy: LegacyDNSServerOptions = try payload(&reader)
            try reader.finish()
            self.legacy = legacy
            options = try legacy.upgraded(path: path)
        } else {
            options = try DNSServerTypeOptions(type: type, reader: &reader)
            try reader.finish()
        }
        self.type = options.type
    }

    package func toJSON() -> JSONValue {
        var writer = ObjectWriter()
        writer.put("type", .string(type))
        if !tag.isEmpty { writer.put("tag", .string(tag)) }
        options.writeFields(into: &writer)
        return .object(writer.object)
    }
}

/// The options of a DNS server, one case per 1.12 server type.
package enum DNSServerTypeOptions: Equatable, Sendable {
    case udp(RemoteDNSServerOptions)
    case tcp(RemoteDNSServerOptions)
    case tls(RemoteTLSDNSServerOptions)
    case quic(RemoteTLSDNSServerOptions)
    case https(RemoteHTTPSDNSServerOptions)
    case h3(RemoteHTTPSDNSServerOptions)
    case local(DialerOptions)
    case hosts(HostsDNSServerOptions)
    case fakeip(FakeIPDNSServerOptions)
    case dhcp(DHCPDNSServerOptions)
    case resolved(ResolvedDNSServerOptions)
    case tailscale(TailscaleDNSServerOptions)
    /// Transient: a legacy `rcode://` server, removed while decoding `dns`.
    case legacyRcode(DNSRCode)

    package var type: String {
        switch self {
        case .udp: "udp"
        case .tcp: "tcp"
        case .tls: "tls"
        case .quic: "quic"
        case .https: "https"
        case .h3: "h3"
        case .local: "local"
        case .hosts: "hosts"
        case .fakeip: "fakeip"
        case .dhcp: "dhcp"
        case .resolved: "resolved"
        case .tailscale: "tailscale"
        case .legacyRcode: "legacy_rcode"
        }
    }

    init(type: String, reader: inout ObjectReader) throws(ConfigError) {
        switch type {
        case "udp": self = .udp(try payload(&reader))
        case "tcp": self = .tcp(try payload(&reader))
        case "tls": self = .tls(try payload(&reader))
        case "quic": self = .quic(try payload(&reader))
        case "https": self = .https(try payload(&reader))
        case "h3": self = .h3(try payload(&reader))
        case "local": self = .local(try payload(&reader))
        case "hosts": self = .hosts(try payload(&reader))
        case "fakeip": self = .fakeip(try payload(&reader))
        case "dhcp": self = .dhcp(try payload(&reader))
        case "resolved": self = .resolved(try payload(&reader))
        case "tailscale": self = .tailscale(try payload(&reader))
        default: throw ConfigError(path: reader.path, message: "unknown transport type: \(type)")
        }
    }

    func writeFields(into writer: inout ObjectWriter) {
        switch self {
        case .udp(let o), .tcp(let o): o.writeFields(into: &writer)
        case .tls(let o), .quic(let o): o.writeFields(into: &writer)
        case .https(let o), .h3(let o): o.writeFields(into: &writer)
        case .local(let o): o.writeFields(into: &writer)
        case .hosts(let o): o.writeFields(into: &writer)
        case .fakeip(let o): o.writeFields(into: &writer)
        case .dhcp(let o): o.writeFields(into: &writer)
        case .resolved(let o): o.writeFields(into: &writer)
        case .tailscale(let o): o.writeFields(into: &writer)
        case .legacyRcode: break
        }
    }

    /// The dial fields of server types that dial.
    package var dial: DialerOptions? {
        switch self {
        case .udp(let o), .tcp(let o): o.dial
        case .tls(let o), .quic(let o): o.remote.dial
        case .https(let o), .h3(let o): o.remote.dial
        case .local(let o): o
        case .dhcp(let o): o.dial
        default: nil
        }
    }
}

/// `udp` / `tcp` servers: dial fields and the server address (port omitted means the default).
package struct RemoteDNSServerOptions: ConfigObject, Equatable {
    package var dial = DialerOptions()
    package var server = ""
    package var serverPort: UInt16?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.dial),
        .init("server", \.server, .always),
        .init("server_port", \.serverPort),
    ] }
}

/// `tls` / `quic` servers.
package struct RemoteTLSDNSServerOptions: ConfigObject, Equatable {
    package var remote = RemoteDNSServerOptions()
    package var tls: OutboundTLSOptions?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.remote),
        .init("tls", \.tls, .omitNil),
    ] }
}

/// `https` / `h3` servers.
package struct RemoteHTTPSDNSServerOptions: ConfigObject, Equatable {
    package var remote = RemoteDNSServerOptions()
    package var tls: OutboundTLSOptions?
    package var path: String?
    package var method: String?
    package var headers = ListableMap()

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.remote),
        .init("tls", \.tls, .omitNil),
        .init("path", \.path),
        .init("method", \.method),
        .init("headers", \.headers),
    ] }
}

/// `hosts` server: hosts files and predefined names.
package struct HostsDNSServerOptions: ConfigObject, Equatable {
    package var path: [String] = []
    /// Name → addresses, in document order.
    package var predefined: [(name: String, addresses: [IPAddressOption])]?

    package init() {}

    package static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.path == rhs.path && lhs.predefined?.count == rhs.predefined?.count
            && zip(lhs.predefined ?? [], rhs.predefined ?? []).allSatisfy { $0.name == $1.name && $0.addresses == $1.addresses }
    }

    package static var fields: [ConfigField<Self>] { [
        .list("path", \.path),
        ConfigField(keys: ["predefined"], decode: { (root: inout Self, reader: inout ObjectReader) throws(ConfigError) in
            guard let (key, json) = reader.takeEntry("predefined") else { return }
            let path = reader.path(key)
            guard case .object(let object) = json else { throw typeMismatch(json, "badjson.TypedMap[string,badoption.Listable[netip.Addr]]", path) }
            var entries: [(name: String, addresses: [IPAddressOption])] = []
            for entry in object.entries {
                let addresses: [IPAddressOption] = if case .null = entry.value { [] } else {
                    try Listable.decode(entry.value, path: JSONPath.key(path, entry.key))
                }
                entries.append((entry.key, addresses))
            }
            root.predefined = entries
        }, encode: { root, writer in
            guard let predefined = root.predefined else { return }
            writer.put("predefined", .object(JSONObject(predefined.map { ($0.name, Listable.encode($0.addresses)) })))
        }),
    ] }
}

/// `fakeip` server.
package struct FakeIPDNSServerOptions: ConfigObject, Equatable {
    package var inet4Range: IPPrefixOption?
    package var inet6Range: IPPrefixOption?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("inet4_range", \.inet4Range, .omitNil),
        .init("inet6_range", \.inet6Range, .omitNil),
    ] }
}

/// `dhcp` server.
package struct DHCPDNSServerOptions: ConfigObject, Equatable {
    package var dial = DialerOptions()
    package var interface: String?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.dial),
        .init("interface", \.interface),
    ] }
}

/// `resolved` server: the DNS of a `resolved` service.
package struct ResolvedDNSServerOptions: ConfigObject, Equatable {
    package var service = ""
    package var acceptDefaultResolvers = false

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("service", \.service, .always),
        .init("accept_default_resolvers", \.acceptDefaultResolvers),
    ] }
}

/// `tailscale` server: MagicDNS of a tailscale endpoint.
package struct TailscaleDNSServerOptions: ConfigObject, Equatable {
    package var endpoint: String?
    package var acceptDefaultResolvers = false

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("endpoint", \.endpoint),
        .init("accept_default_resolvers", \.acceptDefaultResolvers),
    ] }
}

/// A DNS response code: a number or its name ("NOERROR", "NXDOMAIN", …).
package struct DNSRCode: JSONCodable, Equatable, Hashable {
    package var value: Int

    package init(_ value: Int) { self.value = value }

    package static let names: [(String, Int)] = [
        ("NOERROR", 0), ("FORMERR", 1), ("SERVFAIL", 2), ("NXDOMAIN", 3), ("NOTIMP", 4), ("REFUSED", 5),
        ("YXDOMAIN", 6), ("YXRRSET", 7), ("NXRRSET", 8), ("NOTAUTH", 9), ("NOTZONE", 10), ("BADSIG", 16),
        ("BADKEY", 17), ("BADTIME", 18), ("BADMODE", 19), ("BADNAME", 20), ("BADALG", 21), ("BADTRUNC", 22),
        ("BADCOOKIE", 23),
    ]

    package init(json: JSONValue, path: String) throws(ConfigError) {
        if case .number = json {
            value = try Int(json: json, path: path)
            return
        }
        let text = try String(json: json, path: path)
        guard let entry = Self.names.first(where: { $0.0 == text }) else {
            throw ConfigError(path: path, message: "unknown rcode: \(text)")
        }
        value = entry.1
    }

    package func toJSON() -> JSONValue {
        if let name = Self.names.first(where: { $0.1 == value })?.0 { return .string(name) }
        return .number(String(value))
    }

    package static var goTypeName: String { "option.DNSRCode" }
}

/// A DNS server in the legacy 1.11 form (`address` URL); deprecated in 1.12.
package struct LegacyDNSServerOptions: ConfigObject, Equatable {
    package var address = ""
    package var addressResolver: String?
    package var addressStrategy: DomainStrategyOption?
    package var addressFallbackDelay: ConfigDuration?
    package var strategy: DomainStrategyOption?
    package var detour: String?
    package var clientSubnet: IPPrefixableOption?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("address", \.address, .always),
        .init("address_resolver", \.addressResolver),
        .init("address_strategy", \.addressStrategy),
        .init("address_fallback_delay", \.addressFallbackDelay),
        .init("strategy", \.strategy),
        .init("detour", \.detour),
        .init("client_subnet", \.clientSubnet, .omitNil),
    ] }

    /// The 1.12 server this legacy address means (Go's `DNSServerOptions.Upgrade`).
    func upgraded(path: String) throws(ConfigError) -> DNSServerTypeOptions {
        let url = LegacyURL(address)
        let scheme: String
        if let url, !url.scheme.isEmpty {
            scheme = url.scheme
        } else {
            scheme = (address == "local" || address == "fakeip") ? address : "udp"
        }
        var dial = DialerOptions()
        dial.detour = detour
        let resolver = DomainResolveOptions(server: addressResolver ?? "")
        var resolverWithStrategy = resolver
        resolverWithStrategy.strategy = addressStrategy
        dial.domainResolver = resolverWithStrategy
        dial.fallbackDelay = addressFallbackDelay
        var remote = RemoteDNSServerOptions()
        remote.dial = dial
        func invalid() -> ConfigError { ConfigError(path: path, message: "invalid server address") }
        func hostPort(_ text: String, defaultPort: UInt16) throws(ConfigError) {
            guard let (host, port) = splitSocksaddr(text), !host.isEmpty else { throw invalid() }
            remote.server = host
            if port != 0 && port != defaultPort { remote.serverPort = port }
        }
        switch scheme {
        case "local":
            return .local(dial)
        case "udp":
            try hostPort(url.map { $0.scheme.isEmpty ? address : $0.host } ?? address, defaultPort: 53)
            return .udp(remote)
        case "tcp":
            guard let url else { throw invalid() }
            try hostPort(url.host, defaultPort: 53)
            return .tcp(remote)
        case "tls", "quic":
            guard let url else { throw invalid() }
            try hostPort(url.host, defaultPort: 853)
            var options = RemoteTLSDNSServerOptions()
            options.remote = remote
            return scheme == "tls" ? .tls(options) : .quic(options)
        case "https", "h3":
            guard let url else { throw invalid() }
            try hostPort(url.host, defaultPort: 443)
            var options = RemoteHTTPSDNSServerOptions()
            options.remote = remote
            if url.path != "/dns-query" { options.path = url.path }
            return scheme == "https" ? .https(options) : .h3(options)
        case "rcode":
            guard let url else { throw invalid() }
            let codes = ["success": 0, "format_error": 1, "server_failure": 2, "name_error": 3, "not_implemented": 4, "refused": 5]
            guard let code = codes[url.host] else { throw ConfigError(path: path, message: "unknown rcode: \(url.host)") }
            return .legacyRcode(DNSRCode(code))
        case "dhcp":
            guard let url else { throw invalid() }
            var options = DHCPDNSServerOptions()
            options.dial = dial
            if !url.host.isEmpty && url.host != "auto" { options.interface = url.host }
            return .dhcp(options)
        case "fakeip":
            return .fakeip(FakeIPDNSServerOptions())
        default:
            throw ConfigError(path: path, message: "unsupported DNS server scheme: \(scheme)")
        }
    }
}

/// The parts of a URL the legacy DNS upgrade looks at, parsed like Go's `url.Parse` for them.
struct LegacyURL {
    var scheme: String
    var host: String
    var path: String

    /// `nil` when Go's parser fails (e.g. "1.1.1.1:53": a colon in the first path segment).
    init?(_ text: String) {
        var rest = Substring(text)
        scheme = ""
        if let colon = rest.firstIndex(of: ":") {
            let candidate = rest[..<colon]
            if let first = candidate.first, first.isLetter,
               candidate.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "+" || $0 == "-" || $0 == ".") }) {
                scheme = candidate.lowercased()
                rest = rest[rest.index(after: colon)...]
            } else if candidate.isEmpty {
                return nil
            }
        }
        if let fragment = rest.firstIndex(of: "#") { rest = rest[..<fragment] }
        if let query = rest.firstIndex(of: "?") { rest = rest[..<query] }
        host = ""
        if !scheme.isEmpty || rest.hasPrefix("//") {
            if rest.hasPrefix("//") {
                rest = rest.dropFirst(2)
                let end = rest.firstIndex(of: "/") ?? rest.endIndex
                var authority = rest[..<end]
                if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
                host = String(authority)
                rest = rest[end...]
            } else if !rest.hasPrefix("/") {
                // Opaque form ("rcode:refused"): Go puts it in Opaque with an empty host.
                path = ""
                return
            }
        } else {
            let firstSegment = rest.prefix { $0 != "/" }
            if firstSegment.contains(":") { return nil }
        }
        path = String(rest)
    }
}

/// Splits "host", "host:port", "[v6]:port" or a bare IPv6 address like `M.ParseSocksaddr`.
func splitSocksaddr(_ text: String) -> (String, UInt16)? {
    if text.hasPrefix("[") {
        guard let close = text.firstIndex(of: "]") else { return nil }
        let host = String(text[text.index(after: text.startIndex)..<close])
        let rest = text[text.index(after: close)...]
        if rest.isEmpty { return (IPAddressOption(host)?.text ?? host, 0) }
        guard rest.hasPrefix(":"), let port = UInt16(rest.dropFirst()) else { return nil }
        return (IPAddressOption(host)?.text ?? host, port)
    }
    if let address = IPAddressOption(text) { return (address.text, 0) }
    if let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") {
        guard let port = UInt16(text[text.index(after: colon)...]) else { return nil }
        let host = String(text[..<colon])
        return (IPAddressOption(host)?.text ?? host, port)
    }
    return (text, 0)
}
