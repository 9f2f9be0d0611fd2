/// Validation after decoding, in three layers:
/// 1. `checkDecoded`: what Go checks while decoding (duplicate inbound and outbound/endpoint tags).
/// 2. `reportDeprecations`: Go's 1.12 deprecation notes, fatal where removal is due.
/// 3. `check`: what Go refuses when it builds the box (rules, removed types, resolvers), and,
///    stricter than Go, dangling tag references and duplicate tags everywhere, each with a path.
enum ConfigValidator {
    // MARK: 1. Decode-time checks

    static func checkDecoded(_ options: Options) throws(ConfigError) {
        var inboundTags: Set<String> = []
        for (i, inbound) in options.inbounds.enumerated() where !inbound.tag.isEmpty {
            guard inboundTags.insert(inbound.tag).inserted else {
                throw ConfigError(path: "inbounds[\(i)].tag", message: "duplicate inbound tag: \(inbound.tag)")
            }
        }
        var outboundTags: Set<String> = []
        for (i, outbound) in options.outbounds.enumerated() where !outbound.tag.isEmpty {
            guard outboundTags.insert(outbound.tag).inserted else {
                throw ConfigError(path: "outbounds[\(i)].tag", message: "duplicate outbound/endpoint tag: \(outbound.tag)")
            }
        }
        for (i, endpoint) in options.endpoints.enumerated() where !endpoint.tag.isEmpty {
            guard outboundTags.insert(endpoint.tag).inserted else {
                throw ConfigError(path: "endpoints[\(i)].tag", message: "duplicate outbound/endpoint tag: \(endpoint.tag)")
            }
        }
    }

    // MARK: 2. Deprecations

    static func reportDeprecations(_ options: Options, into reporter: inout DeprecationReporter) throws(ConfigError) {
        if let dns = options.dns {
            if let fakeIP = dns.legacyFakeIP, fakeIP.enabled {
                try reporter.report(.legacyDNSFakeIPOptions, at: "dns.fakeip")
            }
            if dns.hadLegacyServers {
                let index = dns.servers.firstIndex { $0.legacy != nil } ?? 0
                try reporter.report(.legacyDNSTransport, at: "dns.servers[\(index)]")
            }
        }
        for (i, outbound) in options.outbounds.enumerated() {
            let path = "outbounds[\(i)]"
            switch outbound.options {
            case .dns:
                try reporter.report(.specialOutbounds, at: path)
            case .direct(let o):
                if !(o.overrideAddress ?? "").isEmpty || (o.overridePort ?? 0) != 0 {
                    try reporter.report(.destinationOverrideFields, at: path)
                }
            default:
                break
            }
        }
        for (i, inbound) in options.inbounds.enumerated() {
            if case .tun(let tun) = inbound.options {
                if tun.usesLegacyAddressFields { try reporter.report(.tunAddressX, at: "inbounds[\(i)]") }
                if tun.gso { try reporter.report(.tunGSO, at: "inbounds[\(i)].gso") }
            }
        }
        // Rules are parsed when the router starts, before outbounds are created.
        for (i, rule) in (options.route?.rules ?? []).enumerated() {
            try reportRule(rule, path: "route.rules[\(i)]", into: &reporter)
        }
        for (i, rule) in (options.dns?.rules ?? []).enumerated() {
            try reportDNSRule(rule, path: "dns.rules[\(i)]", into: &reporter)
        }
        for (i, outbound) in options.outbounds.enumerated() {
            let path = "outbounds[\(i)]"
            if case .wireguard(let o) = outbound.options {
                try reporter.report(.wireGuardOutbound, at: path)
                if o.gso { try reporter.report(.wireGuardGSO, at: path + ".gso") }
            }
            if let tls = outbound.options.outboundTLS, let ech = tls.ech,
               ech.pqSignatureSchemesEnabled || ech.dynamicRecordSizingDisabled {
                try reporter.report(.legacyECHOptions, at: path + ".tls.ech")
            }
            if let dial = outbound.options.dial, (dial.domainStrategy ?? .asIs) != .asIs {
                try reporter.report(.legacyDomainStrategyOptions, at: path + ".domain_strategy")
            }
        }
        for (i, inbound) in options.inbounds.enumerated() {
            if let ech = inbound.options.tls?.ech, ech.pqSignatureSchemesEnabled || ech.dynamicRecordSizingDisabled {
                try reporter.report(.legacyECHOptions, at: "inbounds[\(i)].tls.ech")
            }
        }
        // A client outbound with a domain server and no resolver anywhere, when DNS has a choice.
        if options.route?.defaultDomainResolver == nil, (options.dns?.servers.count ?? 0) >= 2 {
            for (i, outbound) in options.outbounds.enumerated() {
                // `direct` may always be handed a domain; client protocols when their server is one.
                let remoteIsDomain: Bool = if case .direct = outbound.options { true } else {
                    isDomainName(outbound.options.server?.server ?? "")
                }
                guard remoteIsDomain, let dial = outbound.options.dial, (dial.domainResolver?.server ?? "").isEmpty,
                      (dial.detour ?? "").isEmpty else { continue }
                try reporter.report(.missingDomainResolver, at: "outbounds[\(i)]")
            }
        }
    }

    private static func reportRule(_ rule: RuleOptions, path: String, into reporter: inout DeprecationReporter) throws(ConfigError) {
        switch rule {
        case .default(let r):
            if !r.ruleSet.isEmpty && r.legacyRuleSetIPCIDRMatchSource && !r.ruleSetIPCIDRMatchSource {
                throw removedMatchSource(path)
            }
        case .logical(let r):
            for (i, sub) in r.rules.enumerated() { try reportRule(sub, path: "\(path).rules[\(i)]", into: &reporter) }
        }
    }

    private static func reportDNSRule(_ rule: DNSRuleOptions, path: String, into reporter: inout DeprecationReporter) throws(ConfigError) {
        switch rule {
        case .default(let r):
            if !r.outbound.isEmpty { try reporter.report(.outboundDNSRuleItem, at: path + ".outbound") }
            if !r.ruleSet.isEmpty && r.legacyRuleSetIPCIDRMatchSource && !r.ruleSetIPCIDRMatchSource {
                throw removedMatchSource(path)
            }
        case .logical(let r):
            for (i, sub) in r.rules.enumerated() { try reportDNSRule(sub, path: "\(path).rules[\(i)]", into: &reporter) }
        }
    }

    /// Go panics here ("invalid deprecated note": its removal version has passed); we say why.
    private static func removedMatchSource(_ path: String) -> ConfigError {
        let note = Deprecation.badMatchSource
        return ConfigError(path: path + ".rule_set_ipcidr_match_source",
                           message: "\(note.description) is deprecated in sing-box \(note.deprecatedVersion) and removed in sing-box \(note.scheduledVersion), use rule_set_ip_cidr_match_source instead: \(note.migrationLink)")
    }
}

/// sing's `M.IsDomainName`: not an IP address, and a plausible host name.
func isDomainName(_ text: String) -> Bool {
    guard !text.isEmpty, text.count <= 253, IPAddressOption(text) == nil else { return false }
    return text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_") }
}

extension OutboundTypeOptions {
    /// The client-side TLS options, for types that have them.
    package var outboundTLS: OutboundTLSOptions? {
        switch self {
        case .http(let o): o.tls
        case .vmess(let o): o.tls
        case .trojan(let o): o.tls
        case .shadowtls(let o): o.tls
        case .vless(let o): o.tls
        case .anytls(let o): o.tls
        case .hysteria(let o): o.tls
        case .tuic(let o): o.tls
        case .hysteria2(let o): o.tls
        default: nil
        }
    }
}
