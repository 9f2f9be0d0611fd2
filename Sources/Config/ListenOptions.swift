/// Listen fields shared by every server-side inbound (Go's `option.ListenOptions`, with the
/// legacy `InboundOptions` embedded: 1.12 still reads `sniff`, `domain_strategy`, `detour`, …).
package struct ListenOptions: ConfigObject, Equatable {
    /// `nil`: sing-box listens on 127.0.0.1 (see `effectiveListen`).
    package var listen: IPAddressOption?
    /// `nil` or 0: a port the kernel picks.
    package var listenPort: UInt16?
    package var bindInterface: String?
    package var routingMark: FwMark?
    package var reuseAddr = false
    package var netns: String?
    /// `nil`: 10m (sing-box's `TCPKeepAliveInitial`).
    package var tcpKeepAlive: ConfigDuration?
    /// `nil`: 75s (`TCPKeepAliveInterval`).
    package var tcpKeepAliveInterval: ConfigDuration?
    package var tcpFastOpen = false
    package var tcpMultiPath = false
    /// A Go `*bool`: `nil` means the inbound's own default.
    package var udpFragment: Bool?
    /// `nil`: 5m (`UDPTimeout`).
    package var udpTimeout: UDPTimeout?
    /// Removed in sing-box 1.6.0; a listener with it fails to start.
    package var proxyProtocol = false
    package var proxyProtocolAcceptNoHeader = false
    // Legacy inbound fields (deprecated in 1.11, replaced by rule actions; still read in 1.12).
    package var sniff = false
    package var sniffOverrideDestination = false
    package var sniffTimeout: ConfigDuration?
    package var domainStrategy: DomainStrategyOption?
    package var udpDisableDomainUnmapping = false
    package var detour: String?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("listen", \.listen),
        .init("listen_port", \.listenPort),
        .init("bind_interface", \.bindInterface),
        .init("routing_mark", \.routingMark),
        .init("reuse_addr", \.reuseAddr),
        .init("netns", \.netns),
        .init("tcp_keep_alive", \.tcpKeepAlive),
        .init("tcp_keep_alive_interval", \.tcpKeepAliveInterval),
        .init("tcp_fast_open", \.tcpFastOpen),
        .init("tcp_multi_path", \.tcpMultiPath),
        .init("udp_fragment", \.udpFragment, .omitNil),
        .init("udp_timeout", \.udpTimeout),
        .init("proxy_protocol", \.proxyProtocol),
        .init("proxy_protocol_accept_no_header", \.proxyProtocolAcceptNoHeader),
        .init("sniff", \.sniff),
        .init("sniff_override_destination", \.sniffOverrideDestination),
        .init("sniff_timeout", \.sniffTimeout),
        .init("domain_strategy", \.domainStrategy),
        .init("udp_disable_domain_unmapping", \.udpDisableDomainUnmapping),
        .init("detour", \.detour),
    ] }

    /// The address to bind: `listen`, else 127.0.0.1 as sing-box does.
    package var effectiveListen: IPAddressOption { listen ?? IPAddressOption("127.0.0.1")! }

    /// Whether any legacy inbound field (sniff, domain_strategy, detour, …) is set.
    package var usesLegacyInboundFields: Bool {
        sniff || sniffOverrideDestination || sniffTimeout != nil || (domainStrategy ?? .asIs) != .asIs
            || udpDisableDomainUnmapping || !(detour ?? "").isEmpty
    }
}

/// Dial fields shared by every outbound (Go's `option.DialerOptions`).
package struct DialerOptions: ConfigObject, Equatable {
    package var detour: String?
    package var bindInterface: String?
    package var inet4BindAddress: IPAddressOption?
    package var inet6BindAddress: IPAddressOption?
    package var protectPath: String?
    package var routingMark: FwMark?
    package var reuseAddr = false
    package var netns: String?
    /// `nil`: 5s (sing-box's `TCPConnectTimeout`).
    package var connectTimeout: ConfigDuration?
    package var tcpFastOpen = false
    package var tcpMultiPath = false
    /// A Go `*bool`: `nil` means the outbound's own default.
    package var udpFragment: Bool?
    package var domainResolver: DomainResolveOptions?
    package var networkStrategy: NetworkStrategy?
    package var networkType: [InterfaceType] = []
    package var fallbackNetworkType: [InterfaceType] = []
    /// `nil`: 300ms between address families (happy eyeballs).
    package var fallbackDelay: ConfigDuration?
    /// Deprecated in 1.12 (use `domain_resolver.strategy`); still honoured.
    package var domainStrategy: DomainStrategyOption?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("detour", \.detour),
        .init("bind_interface", \.bindInterface),
        .init("inet4_bind_address", \.inet4BindAddress),
        .init("inet6_bind_address", \.inet6BindAddress),
        .init("protect_path", \.protectPath),
        .init("routing_mark", \.routingMark),
        .init("reuse_addr", \.reuseAddr),
        .init("netns", \.netns),
        .init("connect_timeout", \.connectTimeout),
        .init("tcp_fast_open", \.tcpFastOpen),
        .init("tcp_multi_path", \.tcpMultiPath),
        .init("udp_fragment", \.udpFragment, .omitNil),
        .init("domain_resolver", \.domainResolver, .omitNil),
        .init("network_strategy", \.networkStrategy, .omitNil),
        .list("network_type", \.networkType),
        .list("fallback_network_type", \.fallbackNetworkType),
        .init("fallback_delay", \.fallbackDelay),
        .init("domain_strategy", \.domainStrategy),
    ] }
}

/// `domain_resolver`: a DNS server tag, or an object with per-lookup options
/// (Go's `option.DomainResolveOptions`).
package struct DomainResolveOptions: ConfigObject, Equatable {
    package var server = ""
    package var strategy: DomainStrategyOption?
    package var disableCache = false
    package var rewriteTTL: UInt32?
    package var clientSubnet: IPPrefixableOption?

    package init() {}
    package init(server: String) { self.server = server }

    package static var fields: [ConfigField<Self>] { [
        .init("server", \.server, .always),
        .init("strategy", \.strategy),
        .init("disable_cache", \.disableCache),
        .init("rewrite_ttl", \.rewriteTTL, .omitNil),
        .init("client_subnet", \.clientSubnet, .omitNil),
    ] }

    package init(json: JSONValue, path: String) throws(ConfigError) {
        if case .string(let server) = json {
            self.init(server: server)
            return
        }
        guard case .object(let object) = json else { throw typeMismatch(json, "option._DomainResolveOptions", path) }
        var reader = ObjectReader(object, path: path)
        self.init()
        try Self.readFields(into: &self, from: &reader)
        try reader.finish()
        if server.isEmpty { throw ConfigError(path: path, message: "empty domain_resolver.server") }
    }

    package func toJSON() -> JSONValue {
        if server.isEmpty { return .object(JSONObject()) }
        if (strategy ?? .asIs) == .asIs, !disableCache, rewriteTTL == nil, clientSubnet == nil { return .string(server) }
        var writer = ObjectWriter()
        writeFields(into: &writer)
        return .object(writer.object)
    }
}

/// `server` and `server_port` of a client outbound (Go's `option.ServerOptions`; no omitempty).
package struct ServerOptions: ConfigObject, Equatable {
    package var server = ""
    package var serverPort: UInt16 = 0

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("server", \.server, .always),
        .init("server_port", \.serverPort, .always),
    ] }
}

/// An inbound user with a password (Go's `auth.User`; keys match case-insensitively).
package struct AuthUser: ConfigObject, Equatable {
    package var username = ""
    package var password = ""

    package init() {}
    package init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    // Go's `auth.User` has no JSON tags, so it writes "Username"/"Password" and reads any case.
    package static var fields: [ConfigField<Self>] { [
        .init("Username", \.username, .always),
        .init("Password", \.password, .always),
    ] }
}
