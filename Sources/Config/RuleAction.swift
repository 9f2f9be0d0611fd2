/// What a matching route rule does (Go's `option.RuleAction`). A rule without `action` routes
/// (`outbound` alone is the legacy spelling of the `route` action).
package enum RuleAction: Equatable, Sendable {
    case route(RouteActionOptions)
    case routeOptions(RouteOptionsActionOptions)
    /// `direct`: dial directly with these dial fields (no `detour`).
    case direct(DialerOptions)
    case reject(RejectActionOptions)
    case hijackDNS
    case sniff(SniffActionOptions)
    case resolve(ResolveActionOptions)

    /// The `action` string.
    package var name: String {
        switch self {
        case .route: "route"
        case .routeOptions: "route-options"
        case .direct: "direct"
        case .reject: "reject"
        case .hijackDNS: "hijack-dns"
        case .sniff: "sniff"
        case .resolve: "resolve"
        }
    }

    /// Whether the action ends rule matching (route, reject, hijack-dns, direct).
    package var isFinal: Bool {
        switch self {
        case .route, .direct, .reject, .hijackDNS: true
        case .routeOptions, .sniff, .resolve: false
        }
    }

    /// Reads `action` and its fields from what the rule's own fields left over.
    static func read(from reader: inout ObjectReader) throws(ConfigError) -> RuleAction {
        let action: String = try reader.read("action") ?? ""
        reader = reader.remainder(excluding: ["action"])
        switch action {
        case "", "route": return .route(try payload(&reader))
        case "route-options": return .routeOptions(try payload(&reader))
        case "direct":
            let options: DialerOptions = try payload(&reader)
            if !(options.detour ?? "").isEmpty {
                throw ConfigError(path: reader.path, message: "detour is not available in the current context")
            }
            return .direct(options)
        case "reject": return .reject(try payload(&reader))
        case "hijack-dns": return .hijackDNS
        case "sniff": return .sniff(try payload(&reader))
        case "resolve": return .resolve(try payload(&reader))
        default: throw ConfigError(path: reader.path, message: "unknown rule action: \(action)")
        }
    }

    func write(into writer: inout ObjectWriter) {
        switch self {
        case .route(let o):
            // Go drops `action` for route: the legacy and the new form print alike.
            o.writeFields(into: &writer)
        case .routeOptions(let o):
            writer.put("action", .string(name))
            o.writeFields(into: &writer)
        case .direct(let o):
            writer.put("action", .string(name))
            o.writeFields(into: &writer)
        case .reject(let o):
            writer.put("action", .string(name))
            o.writeFields(into: &writer)
        case .hijackDNS:
            writer.put("action", .string(name))
        case .sniff(let o):
            writer.put("action", .string(name))
            o.writeFields(into: &writer)
        case .resolve(let o):
            writer.put("action", .string(name))
            o.writeFields(into: &writer)
        }
    }
}

/// Fields of `route` and `route-options` that change how a connection is made.
package struct RouteOptionsFields: ConfigObject, Equatable {
    package var overrideAddress: String?
    package var overridePort: UInt16?
    package var networkStrategy: NetworkStrategy?
    /// Go declares this one as a plain number (uint32), not a duration string.
    package var fallbackDelay: UInt32?
    package var udpDisableDomainUnmapping = false
    package var udpConnect = false
    package var udpTimeout: ConfigDuration?
    package var tlsFragment = false
    package var tlsFragmentFallbackDelay: ConfigDuration?
    package var tlsRecordFragment = false

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("override_address", \.overrideAddress),
        .init("override_port", \.overridePort),
        .init("network_strategy", \.networkStrategy, .omitNil),
        .init("fallback_delay", \.fallbackDelay),
        .init("udp_disable_domain_unmapping", \.udpDisableDomainUnmapping),
        .init("udp_connect", \.udpConnect),
        .init("udp_timeout", \.udpTimeout),
        .init("tls_fragment", \.tlsFragment),
        .init("tls_fragment_fallback_delay", \.tlsFragmentFallbackDelay),
        .init("tls_record_fragment", \.tlsRecordFragment),
    ] }

    /// Whether nothing is set (Go compares with the zero struct).
    package var isEmpty: Bool { self == RouteOptionsFields() }
}

/// The `route` action: the outbound plus optional route options.
package struct RouteActionOptions: ConfigObject, Equatable {
    package var outbound: String?
    package var options = RouteOptionsFields()

    package init() {}
    package init(outbound: String) { self.outbound = outbound }

    package static var fields: [ConfigField<Self>] { [
        .init("outbound", \.outbound),
        .embed(\.options),
    ] }
}

/// The `route-options` action: must set something; tls_fragment and tls_record_fragment exclude each other.
package struct RouteOptionsActionOptions: ConfigObject, Equatable {
    package var options = RouteOptionsFields()

    package init() {}

    package static var fields: [ConfigField<Self>] { [.embed(\.options)] }

    package func validate(path: String) throws(ConfigError) {
        if options.isEmpty { throw ConfigError(path: path, message: "empty route option action") }
        if options.tlsFragment && options.tlsRecordFragment {
            throw ConfigError(path: path, message: "`tls_fragment` and `tls_record_fragment` are mutually exclusive")
        }
    }
}

/// The `reject` action: method `default` (RST / ICMP unreachable) or `drop`.
package struct RejectActionOptions: ConfigObject, Equatable {
    package enum Method: String, Sendable { case `default`, drop }
    package var method: Method = .default
    package var noDrop = false

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        ConfigField(keys: ["method"], decode: { (root: inout Self, reader: inout ObjectReader) throws(ConfigError) in
            let text: String = try reader.read("method") ?? ""
            switch text {
            case "", "default": root.method = .default
            case "drop": root.method = .drop
            default: throw ConfigError(path: reader.path, message: "unknown reject method: \(text)")
            }
        }, encode: { root, writer in
            if root.method == .drop { writer.put("method", .string("drop")) }
        }),
        .init("no_drop", \.noDrop),
    ] }

    package func validate(path: String) throws(ConfigError) {
        if method == .drop && noDrop { throw ConfigError(path: path, message: "no_drop is not available in current context") }
    }
}

/// The `sniff` action.
package struct SniffActionOptions: ConfigObject, Equatable {
    package var sniffer: [String] = []
    package var timeout: ConfigDuration?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .list("sniffer", \.sniffer),
        .init("timeout", \.timeout),
    ] }

    /// Protocols sing-box 1.12 can sniff.
    package static let knownSniffers: Set<String> = [
        "http", "tls", "quic", "stun", "dns", "bittorrent", "dtls", "ssh", "rdp", "ntp",
    ]
}

/// The `resolve` action (and the DNS-lookup options shared with DNS `route`).
package struct ResolveActionOptions: ConfigObject, Equatable {
    package var server: String?
    package var strategy: DomainStrategyOption?
    package var disableCache = false
    package var rewriteTTL: UInt32?
    package var clientSubnet: IPPrefixableOption?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("server", \.server),
        .init("strategy", \.strategy),
        .init("disable_cache", \.disableCache),
        .init("rewrite_ttl", \.rewriteTTL, .omitNil),
        .init("client_subnet", \.clientSubnet, .omitNil),
    ] }
}
