import Testing
@testable import Config

private let legacyDNSWarning = "legacy DNS servers is deprecated in sing-box 1.12.0 and will be removed in sing-box 1.14.0, checkout documentation for migration: https://sing-box.sagernet.org/migration/#migrate-to-new-dns-server-formats"

@Test func legacyDNSServersAreUpgradedWithAWarning() throws {
    let loaded = try decoded("""
    {"dns": {"servers": [
        {"tag": "a", "address": "8.8.8.8"},
        {"tag": "b", "address": "tls://1.1.1.1:8853", "detour": "proxy"},
        {"tag": "c", "address": "https://dns.google/dns-query", "address_resolver": "a", "address_strategy": "ipv4_only"},
        {"tag": "d", "address": "h3://[2606:4700::1111]/custom"},
        {"tag": "e", "address": "local"},
        {"tag": "f", "address": "dhcp://auto"},
        {"tag": "g", "address": "rcode://name_error"}
      ],
      "rules": [{"domain": "x.example", "server": "g"}]}}
    """)
    #expect(loaded.warnings == [legacyDNSWarning])
    let servers = try #require(loaded.options.dns?.servers)
    #expect(servers.map(\.type) == ["udp", "tls", "https", "h3", "local", "dhcp"])
    guard case .udp(let udp) = servers[0].options, case .tls(let tls) = servers[1].options,
          case .https(let https) = servers[2].options, case .h3(let h3) = servers[3].options else {
        Issue.record("unexpected server types")
        return
    }
    #expect(udp.server == "8.8.8.8" && udp.serverPort == nil)
    #expect(tls.remote.server == "1.1.1.1" && tls.remote.serverPort == 8853 && tls.remote.dial.detour == "proxy")
    #expect(https.remote.server == "dns.google" && https.path == nil)
    #expect(https.remote.dial.domainResolver?.server == "a" && https.remote.dial.domainResolver?.strategy == .ipv4Only)
    #expect(h3.remote.server == "2606:4700::1111" && h3.path == "/custom")
    // The rcode server is gone; its rule answers NXDOMAIN.
    #expect(loaded.options.dns?.rules.first?.action == .predefined({
        var predefined = DNSPredefinedActionOptions()
        predefined.rcode = DNSRCode(3)
        return predefined
    }()))
}

@Test func legacyDNSFakeIPRangesMoveIntoTheServer() throws {
    let loaded = try decoded("""
    {"dns": {"servers": [{"tag": "f", "address": "fakeip"}], "fakeip": {"enabled": true, "inet4_range": "198.18.0.0/15"}}}
    """)
    guard case .fakeip(let fakeIP) = loaded.options.dns?.servers.first?.options else {
        Issue.record("expected fakeip")
        return
    }
    #expect(fakeIP.inet4Range?.description == "198.18.0.0/15")
    #expect(loaded.warnings.count == 2)
}

@Test func legacySpecialOutboundIsFatalUnlessEnabled() throws {
    let json = #"{"outbounds":[{"type":"dns","tag":"dns-out"}]}"#
    let error = decodeError(json)
    #expect(error?.path == "outbounds[0]")
    #expect(error?.message == "legacy special outbounds is deprecated in sing-box 1.11.0 and will be removed in sing-box 1.13.0, checkout documentation for migration: https://sing-box.sagernet.org/migration/#migrate-legacy-special-outbounds-to-rule-actions; to continuing using this feature, set environment variable ENABLE_DEPRECATED_SPECIAL_OUTBOUNDS=true")
    let allowed = try decoded(json, environment: ["ENABLE_DEPRECATED_SPECIAL_OUTBOUNDS": "true"])
    #expect(allowed.warnings.count == 1)
    #expect(allowed.options.outbounds.first?.options == .dns)
    // Go's strconv.ParseBool decides what "enabled" means.
    #expect(decodeError(json, environment: ["ENABLE_DEPRECATED_SPECIAL_OUTBOUNDS": "yes"]) != nil)
    #expect((try? decoded(json, environment: ["ENABLE_DEPRECATED_SPECIAL_OUTBOUNDS": "1"])) != nil)
}

@Test func removedRuleItemsAreRefusedAtCheck() throws {
    let loaded = try decoded(#"{"outbounds":[{"type":"direct","tag":"d"}],"route":{"rules":[{"geosite":"cn","outbound":"d"}]}}"#)
    #expect(throws: ConfigError(path: "route.rules[0].geosite", message: "geosite database is deprecated in sing-box 1.8.0 and removed in sing-box 1.12.0")) {
        try ConfigLoader.check(loaded.options)
    }
}

@Test func danglingReferencesAreRefusedAtCheck() throws {
    func checkError(_ json: String) throws -> String? {
        let loaded = try decoded(json)
        do {
            try ConfigLoader.check(loaded.options)
            return nil
        } catch {
            return error.description
        }
    }
    #expect(try checkError(#"{"outbounds":[{"type":"direct","tag":"a"},{"type":"direct","tag":"b"},{"type":"socks","tag":"c","server":"1.1.1.1","server_port":1,"detour":"x"}]}"#)
        == #"outbounds[2].detour: unknown outbound "x""#)
    #expect(try checkError(#"{"outbounds":[{"type":"urltest","tag":"u","outbounds":["a"]}]}"#) == #"outbounds[0].outbounds[0]: unknown outbound "a""#)
    #expect(try checkError(#"{"route":{"rules":[{"type":"logical","mode":"and","rules":[{"domain":"a"}],"outbound":"x"}]}}"#)
        == #"route.rules[0].outbound: unknown outbound "x""#)
    #expect(try checkError(#"{"dns":{"servers":[{"type":"udp","tag":"u","server":"1.1.1.1","domain_resolver":"nope"}]}}"#)
        == "dns.servers[0].domain_resolver: domain resolver not found: nope")
    #expect(try checkError(#"{"dns":{"servers":[{"type":"local","tag":"a"},{"type":"local","tag":"a"}]}}"#)
        == "dns.servers[1].tag: duplicate DNS server tag: a")
    #expect(try checkError(#"{"outbounds":[{"type":"selector","tag":"s","outbounds":["u"]},{"type":"urltest","tag":"u","outbounds":["s"]}]}"#)
        == "outbounds[0]: circular outbound dependency: s -> u -> s")
    #expect(try checkError(#"{"outbounds":[{"type":"direct","tag":"d"}],"route":{"final":"d"}}"#) == nil)
}
