import Foundation

/// Check-time validation: Go's box-build errors plus our reference checks.
///
/// 1. tags: duplicates of every kind (Go only catches inbounds and outbounds/endpoints).
/// 2. inbounds: removed types and legacy fields that cannot work, inbound `detour` references.
/// 3. outbounds and endpoints: removed types, `detour`, group members, dial resolvers.
/// 4. DNS: server references (final, rules, resolvers, services, endpoints), DNS rules.
/// 5. route: rules and their actions, rule-sets, `final`, default resolver.
/// 6. services and the rest (ntp, clash API detour).
extension ConfigValidator {
    struct Tags {
        var outbounds: Set<String> = []
        var inbounds: Set<String> = []
        var dnsServers: Set<String> = []
        var ruleSets: Set<String> = []
        var services: [String: String] = [:]
        var endpoints: [String: String] = [:]
    }

    static func check(_ options: Options, workingDirectory: String? = nil) throws(ConfigError) {
        try checkDecoded(options)
        try checkSemantics(options, workingDirectory: workingDirectory)
        // 1. Tags.
        var tags = Tags()
        for outbound in options.outbounds where !outbound.tag.isEmpty { tags.outbounds.insert(outbound.tag) }
        for endpoint in options.endpoints where !endpoint.tag.isEmpty {
            tags.outbounds.insert(endpoint.tag)
            // An endpoint is an inbound too: its flows carry its tag, so rules may name it in `inbound`.
            tags.inbounds.insert(endpoint.tag)
            tags.endpoints[endpoint.tag] = endpoint.type
        }
        for inbound in options.inbounds where !inbound.tag.isEmpty { tags.inbounds.insert(inbound.tag) }
        for (i, server) in (options.dns?.servers ?? []).enumerated() where !server.tag.isEmpty {
            guard tags.dnsServers.insert(server.tag).inserted else {
                throw ConfigError(path: "dns.servers[\(i)].tag", message: "duplicate DNS server tag: \(server.tag)")
            }
        }
        for (i, ruleSet) in (options.route?.ruleSet ?? []).enumerated() {
            guard tags.ruleSets.insert(ruleSet.tag).inserted else {
                throw ConfigError(path: "route.rule_set[\(i)].tag", message: "duplicate rule-set tag: \(ruleSet.tag)")
            }
        }
        for (i, service) in options.services.enumerated() where !service.tag.isEmpty {
            guard tags.services.updateValue(service.type, forKey: service.tag) == nil else {
                throw ConfigError(path: "services[\(i)].tag", message: "duplicate service tag: \(service.tag)")
            }
        }

        // 2. Inbounds.
        for (i, inbound) in options.inbounds.enumerated() {
            let path = "inbounds[\(i)]"
            if case .shadowsocksr = inbound.options {
                throw ConfigError(path: path, message: "ShadowsocksR is deprecated and removed in sing-box 1.6.0")
            }
            if let listen = inbound.listen {
                if listen.proxyProtocol || listen.proxyProtocolAcceptNoHeader {
                    // Go fails when the listener starts; we refuse it up front.
                    throw ConfigError(path: path + ".proxy_protocol", message: "Proxy Protocol is deprecated and removed in sing-box 1.6.0")
                }
            }
            // A listen `detour` naming no inbound is not refused: Go starts with it, fails only the
            // connections that follow it (`inbound detour not found`), and most inbound types (tun,
            // mixed, socks, http) never follow it at all.
            let inboundResolver: DomainResolveOptions? = switch inbound.options {
            case .http(let o), .mixed(let o): o.domainResolver
            case .socks(let o): o.domainResolver
            default: nil
            }
            if let resolver = inboundResolver, !tags.dnsServers.contains(resolver.server) {
                throw ConfigError(path: path + ".domain_resolver", message: "domain resolver not found: \(resolver.server)")
            }
            if case .tun(let tun) = inbound.options {
                for (key, list) in [("route_address_set", tun.routeAddressSet), ("route_exclude_address_set", tun.routeExcludeAddressSet)] {
                    for (j, tag) in list.enumerated() where !tags.ruleSets.contains(tag) {
                        throw ConfigError(path: "\(path).\(key)[\(j)]", message: "parse \(key): rule-set not found: \(tag)")
                    }
                }
            }
            if case .trojan(let trojan) = inbound.options, let fallback = trojan.fallback, fallback.server.isEmpty {
                throw ConfigError(path: path + ".fallback", message: "missing fallback server address")
            }
        }

        // 3. Outbounds and endpoints.
        for (i, outbound) in options.outbounds.enumerated() {
            let path = "outbounds[\(i)]"
            switch outbound.options {
            case .shadowsocksr:
                throw ConfigError(path: path, message: "ShadowsocksR is deprecated and removed in sing-box 1.6.0")
            case .direct(let direct):
                if !(direct.dial.detour ?? "").isEmpty {
                    throw ConfigError(path: path + ".detour", message: "`detour` is not supported in direct context")
                }
                if (direct.proxyProtocol ?? 0) != 0 {
                    throw ConfigError(path: path + ".proxy_protocol", message: "Proxy Protocol is deprecated and removed in sing-box 1.6.0")
                }
            case .selector(let selector):
                try checkMembers(selector.outbounds, path: path, tags: tags)
                if let selected = selector.default, !selected.isEmpty, !selector.outbounds.contains(selected) {
                    throw ConfigError(path: path + ".default", message: "default outbound not found: \(selected)")
                }
            case .urltest(let urltest):
                try checkMembers(urltest.outbounds, path: path, tags: tags)
            default:
                break
            }
            if let dial = outbound.options.dial { try checkDial(dial, path: path, tags: tags) }
        }
        for (i, endpoint) in options.endpoints.enumerated() {
            try checkDial(endpoint.options.dial, path: "endpoints[\(i)]", tags: tags)
        }

        // 4. DNS.
        if let dns = options.dns {
            for (i, server) in dns.servers.enumerated() {
                let path = "dns.servers[\(i)]"
                if let dial = server.options.dial { try checkDial(dial, path: path, tags: tags) }
                switch server.options {
                case .resolved(let resolved):
                    if tags.services[resolved.service] != "resolved" {
                        throw ConfigError(path: path + ".service", message: "unknown resolved service \"\(resolved.service)\"")
                    }
                case .tailscale(let tailscale):
                    let endpoint = tailscale.endpoint ?? ""
                    if !endpoint.isEmpty, tags.endpoints[endpoint] != "tailscale" {
                        throw ConfigError(path: path + ".endpoint", message: "unknown tailscale endpoint \"\(endpoint)\"")
                    }
                default:
                    break
                }
            }
            if let final = dns.final, !final.isEmpty, !tags.dnsServers.contains(final) {
                throw ConfigError(path: "dns.final", message: "unknown DNS server \"\(final)\"")
            }
            for (i, rule) in dns.rules.enumerated() {
                try checkDNSRule(rule, path: "dns.rules[\(i)]", topLevel: true, tags: tags)
            }
        }

        // 5. Route.
        if let route = options.route {
            for (i, rule) in route.rules.enumerated() {
                try checkRule(rule, path: "route.rules[\(i)]", tags: tags)
            }
            for (i, ruleSet) in route.ruleSet.enumerated() {
                let path = "route.rule_set[\(i)]"
                switch ruleSet.source {
                case .inline(let rules):
                    if rules.isEmpty { throw ConfigError(path: path, message: "empty inline rule-set") }
                    for (j, rule) in rules.enumerated() { try checkHeadlessRule(rule, path: "\(path).rules[\(j)]") }
                case .local(let file):
                    try checkLocalRuleSet(file: file, format: ruleSet.format, path: path, workingDirectory: workingDirectory)
                case .remote(_, let detour, _):
                    if let detour, !detour.isEmpty, !tags.outbounds.contains(detour) {
                        throw ConfigError(path: path + ".download_detour", message: "unknown outbound \"\(detour)\"")
                    }
                }
            }
            if route.overrideAndroidVPN {
                throw ConfigError(path: "route.override_android_vpn", message: "`override_android_vpn` is only supported on Android")
            }
            if route.defaultNetworkStrategy != nil {
                if !(route.defaultInterface ?? "").isEmpty {
                    throw ConfigError(path: "route.default_network_strategy", message: "`default_network_strategy` is conflict with `default_interface`")
                }
                if !route.autoDetectInterface {
                    throw ConfigError(path: "route.default_network_strategy", message: "`auto_detect_interface` is required by `default_network_strategy`")
                }
            }
            if let final = route.final, !final.isEmpty, !tags.outbounds.contains(final) {
                throw ConfigError(path: "route.final", message: "unknown outbound \"\(final)\"")
            }
            if let resolver = route.defaultDomainResolver, !tags.dnsServers.contains(resolver.server) {
                throw ConfigError(path: "route.default_domain_resolver", message: "default domain resolver not found: \(resolver.server)")
            }
        }

        // 6. Services and the rest.
        for (i, service) in options.services.enumerated() {
            let path = "services[\(i)]"
            switch service.options {
            case .ssmAPI(let ssm):
                // Go dereferences a missing map here and crashes.
                guard let servers = ssm.servers, !servers.isEmpty else {
                    throw ConfigError(path: path + ".servers", message: "missing servers")
                }
                for (path2, inboundTag) in servers {
                    guard let inbound = options.inbounds.first(where: { $0.tag == inboundTag }) else {
                        throw ConfigError(path: "\(path).servers.\(path2)", message: "unknown inbound \"\(inboundTag)\"")
                    }
                    guard case .shadowsocks(let ss) = inbound.options, ss.managed else {
                        throw ConfigError(path: "\(path).servers.\(path2)", message: "inbound \"\(inboundTag)\" is not a managed shadowsocks inbound")
                    }
                }
            case .derp(let derp):
                for (j, mesh) in derp.meshWith.enumerated() { try checkDial(mesh.dial, path: "\(path).mesh_with[\(j)]", tags: tags) }
                for (j, verify) in derp.verifyClientURL.enumerated() {
                    try checkDial(verify.dial, path: "\(path).verify_client_url[\(j)]", tags: tags)
                }
            case .resolved:
                break
            }
        }
        if let ntp = options.ntp, ntp.enabled { try checkDial(ntp.dial, path: "ntp", tags: tags) }
        if let detour = options.experimental?.clashAPI?.externalUIDownloadDetour, !detour.isEmpty, !tags.outbounds.contains(detour) {
            throw ConfigError(path: "experimental.clash_api.external_ui_download_detour", message: "unknown outbound \"\(detour)\"")
        }
    }

    /// Go reads a local rule-set when it builds the router: the file must exist and parse.
    private static func checkLocalRuleSet(file: String, format: String, path: String, workingDirectory: String?) throws(ConfigError) {
        let fullPath = file.hasPrefix("/") || workingDirectory == nil ? file : "\(workingDirectory ?? "")/\(file)"
        guard let data = FileManager.default.contents(atPath: fullPath) else {
            throw ConfigError(path: path + ".path", message: "open \(file): no such file or directory")
        }
        if format == "binary" {
            // The .srs header; the body is the Rules module's to read.
            if !data.starts(with: Array("SRS".utf8)) {
                throw ConfigError(path: path + ".path", message: "invalid sing-box rule-set file")
            }
            return
        }
        do {
            let value = try JSONParser.parse(Array(data))
            let ruleSet = try PlainRuleSetOptions(json: value, path: "")
            for (j, rule) in ruleSet.rules.enumerated() { try checkHeadlessRule(rule, path: "rules[\(j)]") }
        } catch {
            throw ConfigError(path: path + ".path", message: "\(file): \(error.description)")
        }
    }

    private static func checkMembers(_ members: [String], path: String, tags: Tags) throws(ConfigError) {
        if members.isEmpty { throw ConfigError(path: path + ".outbounds", message: "missing tags") }
        for (j, member) in members.enumerated() where !tags.outbounds.contains(member) {
            throw ConfigError(path: "\(path).outbounds[\(j)]", message: "unknown outbound \"\(member)\"")
        }
    }

    private static func checkDial(_ dial: DialerOptions, path: String, tags: Tags) throws(ConfigError) {
        if let detour = dial.detour, !detour.isEmpty, !tags.outbounds.contains(detour) {
            throw ConfigError(path: path + ".detour", message: "unknown outbound \"\(detour)\"")
        }
        if let resolver = dial.domainResolver, !resolver.server.isEmpty, !tags.dnsServers.contains(resolver.server) {
            // Go's words when it builds the dialer.
            throw ConfigError(path: path + ".domain_resolver", message: "domain resolver not found: \(resolver.server)")
        }
    }

    // MARK: Rules

    private static func checkRule(_ rule: RuleOptions, path: String, tags: Tags) throws(ConfigError) {
        switch rule {
        case .default(let r):
            try checkItems(RuleItems(r), path: path, tags: tags)
        case .logical(let r):
            try checkLogical(mode: r.mode, count: r.rules.count, path: path)
            for (i, sub) in r.rules.enumerated() { try checkRule(sub, path: "\(path).rules[\(i)]", tags: tags) }
        }
        try checkAction(rule.action, path: path, tags: tags)
    }

    private static func checkLogical(mode: String, count: Int, path: String) throws(ConfigError) {
        if count == 0 { throw ConfigError(path: path, message: "missing conditions") }
        if mode != "and" && mode != "or" { throw ConfigError(path: path + ".mode", message: "unknown logical mode: \(mode)") }
    }

    private static func checkAction(_ action: RuleAction, path: String, tags: Tags) throws(ConfigError) {
        switch action {
        case .route(let route):
            if let outbound = route.outbound, !outbound.isEmpty, !tags.outbounds.contains(outbound) {
                throw ConfigError(path: path + ".outbound", message: "unknown outbound \"\(outbound)\"")
            }
        case .direct(let dial):
            try checkDial(dial, path: path, tags: tags)
        case .sniff(let sniff):
            for (i, name) in sniff.sniffer.enumerated() where !SniffActionOptions.knownSniffers.contains(name) {
                throw ConfigError(path: "\(path).sniffer[\(i)]", message: "unknown sniffer: \(name)")
            }
        case .resolve(let resolve):
            if let server = resolve.server, !server.isEmpty, !tags.dnsServers.contains(server) {
                throw ConfigError(path: path + ".server", message: "unknown DNS server \"\(server)\"")
            }
        case .routeOptions, .reject, .hijackDNS:
            break
        }
    }

    private static func checkDNSRule(_ rule: DNSRuleOptions, path: String, topLevel: Bool, tags: Tags) throws(ConfigError) {
        switch rule {
        case .default(let r):
            try checkItems(RuleItems(r), path: path, tags: tags)
        case .logical(let r):
            try checkLogical(mode: r.mode, count: r.rules.count, path: path)
            for (i, sub) in r.rules.enumerated() {
                try checkDNSRule(sub, path: "\(path).rules[\(i)]", topLevel: false, tags: tags)
            }
        }
        if case .route(let route) = rule.action {
            let server = route.server ?? ""
            if server.isEmpty {
                if topLevel { throw ConfigError(path: path, message: "missing server field") }
            } else if !tags.dnsServers.contains(server) {
                throw ConfigError(path: path + ".server", message: "unknown DNS server \"\(server)\"")
            }
        }
    }

    private static func checkHeadlessRule(_ rule: HeadlessRuleOptions, path: String) throws(ConfigError) {
        switch rule {
        case .default(let r):
            var bare = r
            bare.invert = false
            if bare == DefaultHeadlessRuleOptions() { throw ConfigError(path: path, message: "missing conditions") }
            var items = RuleItems()
            items.ipCIDR = r.ipCIDR
            items.sourceIPCIDR = r.sourceIPCIDR
            items.portRange = r.portRange
            items.sourcePortRange = r.sourcePortRange
            items.domainRegex = r.domainRegex
            items.processPathRegex = r.processPathRegex
            try checkItems(items, path: path, tags: Tags())
        case .logical(let mode, let rules, _):
            try checkLogical(mode: mode, count: rules.count, path: path)
            for (i, sub) in rules.enumerated() { try checkHeadlessRule(sub, path: "\(path).rules[\(i)]") }
        }
    }

    /// The match items a route or DNS rule shares, for checking.
    struct RuleItems {
        var ipVersion: Int?
        var geosite: [String] = []
        var geoip: [String] = []
        var sourceGeoIP: [String] = []
        var ipCIDR: [String] = []
        var sourceIPCIDR: [String] = []
        var portRange: [String] = []
        var sourcePortRange: [String] = []
        var ruleSet: [String] = []
        var inbound: [String] = []
        var outbound: [String] = []
        var domainRegex: [String] = []
        var processPathRegex: [String] = []

        init() {}

        init(_ r: DefaultRuleOptions) {
            ipVersion = r.ipVersion
            geosite = r.geosite
            geoip = r.geoip
            sourceGeoIP = r.sourceGeoIP
            ipCIDR = r.ipCIDR
            sourceIPCIDR = r.sourceIPCIDR
            portRange = r.portRange
            sourcePortRange = r.sourcePortRange
            ruleSet = r.ruleSet
            inbound = r.inbound
            domainRegex = r.domainRegex
            processPathRegex = r.processPathRegex
        }

        init(_ r: DefaultDNSRuleOptions) {
            ipVersion = r.ipVersion
            geosite = r.geosite
            geoip = r.geoip
            sourceGeoIP = r.sourceGeoIP
            ipCIDR = r.ipCIDR
            sourceIPCIDR = r.sourceIPCIDR
            portRange = r.portRange
            sourcePortRange = r.sourcePortRange
            ruleSet = r.ruleSet
            inbound = r.inbound
            outbound = r.outbound
            domainRegex = r.domainRegex
            processPathRegex = r.processPathRegex
        }
    }

    private static func checkItems(_ items: RuleItems, path: String, tags: Tags) throws(ConfigError) {
        if let version = items.ipVersion, version != 0, version != 4, version != 6 {
            throw ConfigError(path: path + ".ip_version", message: "invalid ip version: \(version)")
        }
        if !items.geosite.isEmpty {
            throw ConfigError(path: path + ".geosite", message: "geosite database is deprecated in sing-box 1.8.0 and removed in sing-box 1.12.0")
        }
        if !items.sourceGeoIP.isEmpty {
            throw ConfigError(path: path + ".source_geoip", message: "geoip database is deprecated in sing-box 1.8.0 and removed in sing-box 1.12.0")
        }
        if !items.geoip.isEmpty {
            throw ConfigError(path: path + ".geoip", message: "geoip database is deprecated in sing-box 1.8.0 and removed in sing-box 1.12.0")
        }
        for (key, list) in [("source_ip_cidr", items.sourceIPCIDR), ("ip_cidr", items.ipCIDR)] {
            for (i, entry) in list.enumerated() where IPPrefixOption(entry) == nil && IPAddressOption(entry) == nil {
                throw ConfigError(path: "\(path).\(key)[\(i)]", message: "invalid IP CIDR: \(entry)")
            }
        }
        for (key, list) in [("source_port_range", items.sourcePortRange), ("port_range", items.portRange)] {
            for (i, entry) in list.enumerated() where !isPortRange(entry) {
                throw ConfigError(path: "\(path).\(key)[\(i)]", message: "bad port range: \(entry)")
            }
        }
        for (key, list) in [("domain_regex", items.domainRegex), ("process_path_regex", items.processPathRegex)] {
            for (i, pattern) in list.enumerated() {
                if let problem = RegexpSyntax.error(in: pattern) {
                    throw ConfigError(path: "\(path).\(key)[\(i)]", message: "parse expression \(i): \(problem)")
                }
            }
        }
        if !tags.ruleSets.isEmpty || !items.ruleSet.isEmpty {
            for (i, tag) in items.ruleSet.enumerated() where !tags.ruleSets.contains(tag) {
                throw ConfigError(path: "\(path).rule_set[\(i)]", message: "rule-set not found: \(tag)")
            }
        }
        for (i, tag) in items.inbound.enumerated() where !tags.inbounds.contains(tag) {
            throw ConfigError(path: "\(path).inbound[\(i)]", message: "unknown inbound \"\(tag)\"")
        }
        for (i, tag) in items.outbound.enumerated() where tag != "any" && !tags.outbounds.contains(tag) {
            throw ConfigError(path: "\(path).outbound[\(i)]", message: "unknown outbound \"\(tag)\"")
        }
    }

    /// "from:to", ":to", "from:" with ports (sing-box's port range item).
    static func isPortRange(_ text: String) -> Bool {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return false }
        let from = parts[0].isEmpty ? UInt16(0) : UInt16(parts[0])
        let to = parts[1].isEmpty ? UInt16.max : UInt16(parts[1])
        return from != nil && to != nil
    }
}
