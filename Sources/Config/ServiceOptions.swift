/// One entry of `services`: `resolved`, `ssm-api` or `derp`.
package struct ServiceOptions: JSONCodable, Equatable {
    package var type: String
    package var tag: String
    package var options: ServiceTypeOptions

    package init(tag: String = "", options: ServiceTypeOptions) {
        self.type = options.type
        self.tag = tag
        self.options = options
    }

    package static var goTypeName: String { "option._Service" }

    package init(json: JSONValue, path: String) throws(ConfigError) {
        guard case .object(let object) = json else { throw typeMismatch(json, Self.goTypeName, path) }
        var head = ObjectReader(object, path: path)
        type = try head.read("type") ?? ""
        tag = try head.read("tag") ?? ""
        var reader = head.remainder(excluding: ["type", "tag"])
        switch type {
        case "resolved":
            var options: ResolvedServiceOptions = try payload(&reader)
            // Go fills in the defaults while decoding: 127.0.0.53 port 53.
            if options.listen.listen == nil { options.listen.listen = IPAddressOption("127.0.0.53") }
            if (options.listen.listenPort ?? 0) == 0 { options.listen.listenPort = 53 }
            self.options = .resolved(options)
        case "ssm-api": options = .ssmAPI(try payload(&reader))
        case "derp": options = .derp(try payload(&reader))
        // Go's registry says "inbound" here too.
        default: throw ConfigError(path: path, message: "unknown inbound type: \(type)")
        }
        try reader.finish()
    }

    package func toJSON() -> JSONValue {
        var writer = ObjectWriter()
        writer.put("type", .string(type))
        if !tag.isEmpty { writer.put("tag", .string(tag)) }
        switch options {
        case .resolved(var o):
            // …and leaves the defaults out when writing.
            if o.listen.listen == IPAddressOption("127.0.0.53") { o.listen.listen = nil }
            if o.listen.listenPort == 53 { o.listen.listenPort = nil }
            o.writeFields(into: &writer)
        case .ssmAPI(let o): o.writeFields(into: &writer)
        case .derp(let o): o.writeFields(into: &writer)
        }
        return .object(writer.object)
    }
}

/// The options of a service, one case per type.
package enum ServiceTypeOptions: Equatable, Sendable {
    case resolved(ResolvedServiceOptions)
    case ssmAPI(SSMAPIServiceOptions)
    case derp(DERPServiceOptions)

    package var type: String {
        switch self {
        case .resolved: "resolved"
        case .ssmAPI: "ssm-api"
        case .derp: "derp"
        }
    }
}

/// `resolved` service: a resolve1 D-Bus service and DNS stub (listen defaults to 127.0.0.53:53).
package struct ResolvedServiceOptions: ConfigObject, Equatable {
    package var listen = ListenOptions()

    package init() {}

    package static var fields: [ConfigField<Self>] { [.embed(\.listen)] }
}

/// `ssm-api` service: Shadowsocks server management API.
package struct SSMAPIServiceOptions: ConfigObject, Equatable {
    package var listen = ListenOptions()
    /// HTTP path → managed shadowsocks inbound tag, in document order; `nil` when absent.
    package var servers: [(path: String, inbound: String)]?
    package var cachePath: String?
    package var tls: InboundTLSOptions?

    package init() {}

    package static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.listen == rhs.listen && lhs.cachePath == rhs.cachePath && lhs.tls == rhs.tls
            && lhs.servers?.count == rhs.servers?.count
            && zip(lhs.servers ?? [], rhs.servers ?? []).allSatisfy { $0.path == $1.path && $0.inbound == $1.inbound }
    }

    package static var fields: [ConfigField<Self>] { [
        .embed(\.listen),
        ConfigField(keys: ["servers"], decode: { (root: inout Self, reader: inout ObjectReader) throws(ConfigError) in
            guard let (key, json) = reader.takeEntry("servers") else { return }
            let path = reader.path(key)
            guard case .object(let object) = json else { throw typeMismatch(json, "badjson.TypedMap[string,string]", path) }
            var servers: [(path: String, inbound: String)] = []
            for entry in object.entries {
                servers.append((entry.key, try String(json: entry.value, path: JSONPath.key(path, entry.key))))
            }
            root.servers = servers
        }, encode: { root, writer in
            writer.put("servers", root.servers.map { .object(JSONObject($0.map { ($0.path, .string($0.inbound)) })) } ?? .null)
        }),
        .init("cache_path", \.cachePath),
        .init("tls", \.tls, .omitNil),
    ] }
}

/// `derp` service: a Tailscale DERP relay.
package struct DERPServiceOptions: ConfigObject, Equatable {
    package var listen = ListenOptions()
    package var tls: InboundTLSOptions?
    package var configPath: String?
    package var verifyClientEndpoint: [String] = []
    package var verifyClientURL: [DERPVerifyClientURLOptions] = []
    package var home: String?
    package var meshWith: [DERPMeshOptions] = []
    package var meshPSK: String?
    package var meshPSKFile: String?
    package var stun: DERPSTUNListenOptions?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.listen),
        .init("tls", \.tls, .omitNil),
        .init("config_path", \.configPath),
        .list("verify_client_endpoint", \.verifyClientEndpoint),
        .list("verify_client_url", \.verifyClientURL),
        .init("home", \.home),
        .list("mesh_with", \.meshWith),
        .init("mesh_psk", \.meshPSK),
        .init("mesh_psk_file", \.meshPSKFile),
        .init("stun", \.stun, .omitNil),
    ] }
}

/// A URL that vouches for DERP clients: a string, or `{url, …dial fields}`.
package struct DERPVerifyClientURLOptions: ConfigObject, Equatable {
    package var url: String?
    package var dial = DialerOptions()

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("url", \.url),
        .embed(\.dial),
    ] }

    package init(json: JSONValue, path: String) throws(ConfigError) {
        self.init()
        if case .string(let url) = json {
            self.url = url
            return
        }
        guard case .object(let object) = json else { throw typeMismatch(json, "option._DERPVerifyClientURLOptions", path) }
        var reader = ObjectReader(object, path: path)
        try Self.readFields(into: &self, from: &reader)
        try reader.finish()
    }

    // Go means to write the bare URL when nothing else is set, but compares values of two
    // different types, so it always writes the object.
    package func toJSON() -> JSONValue {
        var writer = ObjectWriter()
        writeFields(into: &writer)
        return .object(writer.object)
    }
}

/// Another DERP server to mesh with.
package struct DERPMeshOptions: ConfigObject, Equatable {
    package var server = ServerOptions()
    package var host: String?
    package var tls: OutboundTLSOptions?
    package var dial = DialerOptions()

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .embed(\.server),
        .init("host", \.host),
        .init("tls", \.tls, .omitNil),
        .embed(\.dial),
    ] }
}

/// The DERP STUN listener: `true`/`false`, a port number, or `{enabled, …listen fields}`.
package struct DERPSTUNListenOptions: ConfigObject, Equatable {
    package var enabled = false
    package var listen = ListenOptions()

    package init() {}

    // The Go struct has no JSON tag on `Enabled`, so the key is "Enabled" (any case reads).
    package static var fields: [ConfigField<Self>] { [
        .init("Enabled", \.enabled, .always),
        .embed(\.listen),
    ] }

    package init(json: JSONValue, path: String) throws(ConfigError) {
        self.init()
        if case .number = json, let port = try? UInt16(json: json, path: path) {
            enabled = true
            listen.listenPort = port
            return
        }
        guard case .object(let object) = json else { throw typeMismatch(json, "option._DERPSTUNListenOptions", path) }
        var reader = ObjectReader(object, path: path)
        try Self.readFields(into: &self, from: &reader)
        try reader.finish()
    }

    package func toJSON() -> JSONValue {
        var portOnly = ListenOptions()
        portOnly.listenPort = listen.listenPort
        if listen == portOnly { return .bool(enabled) }
        var writer = ObjectWriter()
        writeFields(into: &writer)
        return .object(writer.object)
    }
}
