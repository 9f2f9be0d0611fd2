/// Server-side TLS (Go's `option.InboundTLSOptions`).
package struct InboundTLSOptions: ConfigObject, Equatable {
    package var enabled = false
    package var serverName: String?
    package var insecure = false
    package var alpn: [String] = []
    package var minVersion: String?
    package var maxVersion: String?
    package var cipherSuites: [String] = []
    package var certificate: [String] = []
    package var certificatePath: String?
    package var key: [String] = []
    package var keyPath: String?
    package var acme: InboundACMEOptions?
    package var ech: InboundECHOptions?
    package var reality: InboundRealityOptions?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("enabled", \.enabled),
        .init("server_name", \.serverName),
        .init("insecure", \.insecure),
        .list("alpn", \.alpn),
        .init("min_version", \.minVersion),
        .init("max_version", \.maxVersion),
        .list("cipher_suites", \.cipherSuites),
        .list("certificate", \.certificate),
        .init("certificate_path", \.certificatePath),
        .list("key", \.key),
        .init("key_path", \.keyPath),
        .init("acme", \.acme, .omitNil),
        .init("ech", \.ech, .omitNil),
        .init("reality", \.reality, .omitNil),
    ] }
}

/// Client-side TLS (Go's `option.OutboundTLSOptions`).
package struct OutboundTLSOptions: ConfigObject, Equatable {
    package var enabled = false
    package var disableSNI = false
    package var serverName: String?
    package var insecure = false
    package var alpn: [String] = []
    package var minVersion: String?
    package var maxVersion: String?
    package var cipherSuites: [String] = []
    package var certificate: [String] = []
    package var certificatePath: String?
    package var fragment = false
    package var fragmentFallbackDelay: ConfigDuration?
    package var recordFragment = false
    package var ech: OutboundECHOptions?
    package var utls: OutboundUTLSOptions?
    package var reality: OutboundRealityOptions?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("enabled", \.enabled),
        .init("disable_sni", \.disableSNI),
        .init("server_name", \.serverName),
        .init("insecure", \.insecure),
        .list("alpn", \.alpn),
        .init("min_version", \.minVersion),
        .init("max_version", \.maxVersion),
        .list("cipher_suites", \.cipherSuites),
        .list("certificate", \.certificate),
        .init("certificate_path", \.certificatePath),
        .init("fragment", \.fragment),
        .init("fragment_fallback_delay", \.fragmentFallbackDelay),
        .init("record_fragment", \.recordFragment),
        .init("ech", \.ech, .omitNil),
        .init("utls", \.utls, .omitNil),
        .init("reality", \.reality, .omitNil),
    ] }
}

/// Reality server options of an inbound TLS block.
package struct InboundRealityOptions: ConfigObject, Equatable {
    package var enabled = false
    package var handshake = InboundRealityHandshakeOptions()
    package var privateKey: String?
    package var shortID: [String] = []
    package var maxTimeDifference: ConfigDuration?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("enabled", \.enabled),
        .init("handshake", \.handshake, .always),
        .init("private_key", \.privateKey),
        .list("short_id", \.shortID),
        .init("max_time_difference", \.maxTimeDifference),
    ] }
}

/// The server a reality inbound borrows its handshake from.
package struct InboundRealityHandshakeOptions: ConfigObject, Equatable {
    package var server = ServerOptions()
    package var dial = DialerOptions()

    package init() {}

    package static var fields: [ConfigField<Self>] { [.embed(\.server), .embed(\.dial)] }
}

/// Encrypted Client Hello keys of an inbound TLS block.
package struct InboundECHOptions: ConfigObject, Equatable {
    package var enabled = false
    package var key: [String] = []
    package var keyPath: String?
    /// Deprecated in 1.12 (legacy ECH fields).
    package var pqSignatureSchemesEnabled = false
    package var dynamicRecordSizingDisabled = false

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("enabled", \.enabled),
        .list("key", \.key),
        .init("key_path", \.keyPath),
        .init("pq_signature_schemes_enabled", \.pqSignatureSchemesEnabled),
        .init("dynamic_record_sizing_disabled", \.dynamicRecordSizingDisabled),
    ] }
}

/// Encrypted Client Hello configuration of an outbound TLS block.
package struct OutboundECHOptions: ConfigObject, Equatable {
    package var enabled = false
    package var config: [String] = []
    package var configPath: String?
    /// Deprecated in 1.12 (legacy ECH fields).
    package var pqSignatureSchemesEnabled = false
    package var dynamicRecordSizingDisabled = false

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("enabled", \.enabled),
        .list("config", \.config),
        .init("config_path", \.configPath),
        .init("pq_signature_schemes_enabled", \.pqSignatureSchemesEnabled),
        .init("dynamic_record_sizing_disabled", \.dynamicRecordSizingDisabled),
    ] }
}

/// uTLS client fingerprint imitation.
package struct OutboundUTLSOptions: ConfigObject, Equatable {
    package var enabled = false
    package var fingerprint: String?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("enabled", \.enabled),
        .init("fingerprint", \.fingerprint),
    ] }
}

/// Reality client options of an outbound TLS block.
package struct OutboundRealityOptions: ConfigObject, Equatable {
    package var enabled = false
    package var publicKey: String?
    package var shortID: String?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("enabled", \.enabled),
        .init("public_key", \.publicKey),
        .init("short_id", \.shortID),
    ] }
}

/// ACME certificate issuance for an inbound (Go's `option.InboundACMEOptions`).
package struct InboundACMEOptions: ConfigObject, Equatable {
    package var domain: [String] = []
    package var dataDirectory: String?
    package var defaultServerName: String?
    package var email: String?
    package var provider: String?
    package var disableHTTPChallenge = false
    package var disableTLSALPNChallenge = false
    package var alternativeHTTPPort: UInt16?
    package var alternativeTLSPort: UInt16?
    package var externalAccount: ACMEExternalAccountOptions?
    package var dns01Challenge: ACMEDNS01ChallengeOptions?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .list("domain", \.domain),
        .init("data_directory", \.dataDirectory),
        .init("default_server_name", \.defaultServerName),
        .init("email", \.email),
        .init("provider", \.provider),
        .init("disable_http_challenge", \.disableHTTPChallenge),
        .init("disable_tls_alpn_challenge", \.disableTLSALPNChallenge),
        .init("alternative_http_port", \.alternativeHTTPPort),
        .init("alternative_tls_port", \.alternativeTLSPort),
        .init("external_account", \.externalAccount, .omitNil),
        .init("dns01_challenge", \.dns01Challenge, .omitNil),
    ] }
}

/// ACME external account binding.
package struct ACMEExternalAccountOptions: ConfigObject, Equatable {
    package var keyID: String?
    package var macKey: String?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("key_id", \.keyID),
        .init("mac_key", \.macKey),
    ] }
}

/// The DNS-01 challenge provider: `alidns` or `cloudflare`.
package struct ACMEDNS01ChallengeOptions: ConfigObject, Equatable {
    package var provider = ""
    // alidns
    package var accessKeyID: String?
    package var accessKeySecret: String?
    package var regionID: String?
    // cloudflare
    package var apiToken: String?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("provider", \.provider),
        .init("access_key_id", \.accessKeyID),
        .init("access_key_secret", \.accessKeySecret),
        .init("region_id", \.regionID),
        .init("api_token", \.apiToken),
    ] }

    package init(json: JSONValue, path: String) throws(ConfigError) {
        guard case .object(let object) = json else { throw typeMismatch(json, Self.goTypeName, path) }
        var head = ObjectReader(object, path: path)
        self.init()
        provider = try head.read("provider") ?? ""
        var reader = head.remainder(excluding: ["provider"])
        switch provider {
        case "alidns":
            accessKeyID = try reader.read("access_key_id")
            accessKeySecret = try reader.read("access_key_secret")
            regionID = try reader.read("region_id")
        case "cloudflare":
            apiToken = try reader.read("api_token")
        default:
            throw ConfigError(path: path, message: "unknown provider type: \(provider)")
        }
        try reader.finish()
    }
}

/// Inbound multiplex (Go's `option.InboundMultiplexOptions`).
package struct InboundMultiplexOptions: ConfigObject, Equatable {
    package var enabled = false
    package var padding = false
    package var brutal: BrutalOptions?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("enabled", \.enabled),
        .init("padding", \.padding),
        .init("brutal", \.brutal, .omitNil),
    ] }
}

/// Outbound multiplex (Go's `option.OutboundMultiplexOptions`).
package struct OutboundMultiplexOptions: ConfigObject, Equatable {
    package var enabled = false
    package var `protocol`: String?
    package var maxConnections: Int?
    package var minStreams: Int?
    package var maxStreams: Int?
    package var padding = false
    package var brutal: BrutalOptions?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("enabled", \.enabled),
        .init("protocol", \.protocol),
        .init("max_connections", \.maxConnections),
        .init("min_streams", \.minStreams),
        .init("max_streams", \.maxStreams),
        .init("padding", \.padding),
        .init("brutal", \.brutal, .omitNil),
    ] }
}

/// TCP Brutal congestion control of a multiplex session.
package struct BrutalOptions: ConfigObject, Equatable {
    package var enabled = false
    package var upMbps: Int?
    package var downMbps: Int?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("enabled", \.enabled),
        .init("up_mbps", \.upMbps),
        .init("down_mbps", \.downMbps),
    ] }
}

/// UDP over TCP: `true`/`false`, or `{enabled, version}` (Go's `option.UDPOverTCPOptions`).
package struct UDPOverTCPOptions: ConfigObject, Equatable {
    package var enabled = false
    package var version: UInt8?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("enabled", \.enabled),
        .init("version", \.version),
    ] }

    package init(json: JSONValue, path: String) throws(ConfigError) {
        if case .bool(let enabled) = json {
            self.init()
            self.enabled = enabled
            return
        }
        guard case .object(let object) = json else { throw typeMismatch(json, "option._UDPOverTCPOptions", path) }
        var reader = ObjectReader(object, path: path)
        self.init()
        try Self.readFields(into: &self, from: &reader)
        try reader.finish()
    }

    package func toJSON() -> JSONValue {
        // Version 0 or the current version 2 is written as the bare flag.
        if version == nil || version == 0 || version == 2 { return .bool(enabled) }
        var writer = ObjectWriter()
        writeFields(into: &writer)
        return .object(writer.object)
    }
}

/// A v2ray transport (`http`, `ws`, `quic`, `grpc`, `httpupgrade`).
package enum V2RayTransportOptions: JSONCodable, Equatable {
    case http(V2RayHTTPOptions)
    case ws(V2RayWebsocketOptions)
    case quic
    case grpc(V2RayGRPCOptions)
    case httpUpgrade(V2RayHTTPUpgradeOptions)

    package var type: String {
        switch self {
        case .http: "http"
        case .ws: "ws"
        case .quic: "quic"
        case .grpc: "grpc"
        case .httpUpgrade: "httpupgrade"
        }
    }

    package static var goTypeName: String { "option._V2RayTransportOptions" }

    package init(json: JSONValue, path: String) throws(ConfigError) {
        guard case .object(let object) = json else { throw typeMismatch(json, Self.goTypeName, path) }
        var head = ObjectReader(object, path: path)
        let type: String = try head.read("type") ?? ""
        var reader = head.remainder(excluding: ["type"])
        switch type {
        case "http": self = .http(try payload(&reader))
        case "ws": self = .ws(try payload(&reader))
        case "quic": self = .quic
        case "grpc": self = .grpc(try payload(&reader))
        case "httpupgrade": self = .httpUpgrade(try payload(&reader))
        default: throw ConfigError(path: path, message: "unknown transport type: \(type)")
        }
        try reader.finish()
    }

    package func toJSON() -> JSONValue {
        var writer = ObjectWriter()
        writer.put("type", .string(type))
        switch self {
        case .http(let options): options.writeFields(into: &writer)
        case .ws(let options): options.writeFields(into: &writer)
        case .quic: break
        case .grpc(let options): options.writeFields(into: &writer)
        case .httpUpgrade(let options): options.writeFields(into: &writer)
        }
        return .object(writer.object)
    }
}

/// Reads the keys of a type-dispatched payload from the shared object reader.
func payload<T: ConfigObject>(_ reader: inout ObjectReader) throws(ConfigError) -> T {
    var value = T()
    try T.readFields(into: &value, from: &reader)
    return value
}

/// The v2ray `http` transport (HTTP/2 with TLS, else HTTP/1.1).
package struct V2RayHTTPOptions: ConfigObject, Equatable {
    package var host: [String] = []
    package var path: String?
    package var method: String?
    package var headers = ListableMap()
    package var idleTimeout: ConfigDuration?
    package var pingTimeout: ConfigDuration?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .list("host", \.host),
        .init("path", \.path),
        .init("method", \.method),
        .init("headers", \.headers),
        .init("idle_timeout", \.idleTimeout),
        .init("ping_timeout", \.pingTimeout),
    ] }
}

/// The v2ray `ws` transport.
package struct V2RayWebsocketOptions: ConfigObject, Equatable {
    package var path: String?
    package var headers = ListableMap()
    package var maxEarlyData: UInt32?
    package var earlyDataHeaderName: String?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("path", \.path),
        .init("headers", \.headers),
        .init("max_early_data", \.maxEarlyData),
        .init("early_data_header_name", \.earlyDataHeaderName),
    ] }
}

/// The v2ray `grpc` transport.
package struct V2RayGRPCOptions: ConfigObject, Equatable {
    package var serviceName: String?
    package var idleTimeout: ConfigDuration?
    package var pingTimeout: ConfigDuration?
    package var permitWithoutStream = false

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("service_name", \.serviceName),
        .init("idle_timeout", \.idleTimeout),
        .init("ping_timeout", \.pingTimeout),
        .init("permit_without_stream", \.permitWithoutStream),
    ] }
}

/// The v2ray `httpupgrade` transport.
package struct V2RayHTTPUpgradeOptions: ConfigObject, Equatable {
    package var host: String?
    package var path: String?
    package var headers = ListableMap()

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("host", \.host),
        .init("path", \.path),
        .init("headers", \.headers),
    ] }
}
