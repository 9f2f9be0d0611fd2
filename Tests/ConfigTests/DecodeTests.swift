import Testing
@testable import Config

/// Decodes `json`, expecting success.
func decoded(_ json: String, environment: [String: String] = [:]) throws -> LoadedConfig {
    try ConfigLoader.decode(json: json, environment: environment)
}

/// The error decoding `json` gives, or nil.
func decodeError(_ json: String, environment: [String: String] = [:]) -> ConfigError? {
    do {
        _ = try ConfigLoader.decode(json: json, environment: environment)
        return nil
    } catch {
        return error
    }
}

@Test func decodesMixedInboundWithListenFields() throws {
    let loaded = try decoded("""
    {"inbounds": [{"type": "mixed", "tag": "m", "listen": "::", "listen_port": 1080,
      "users": [{"username": "a", "password": "b"}], "udp_timeout": "5m", "routing_mark": "0x10"}]}
    """)
    let inbound = try #require(loaded.options.inbounds.first)
    #expect(inbound.type == "mixed")
    #expect(inbound.tag == "m")
    guard case .mixed(let mixed) = inbound.options else {
        Issue.record("expected mixed, got \(inbound.options)")
        return
    }
    #expect(mixed.listen.listen?.text == "::")
    #expect(mixed.listen.listenPort == 1080)
    #expect(mixed.users == [AuthUser(username: "a", password: "b")])
    #expect(mixed.listen.udpTimeout?.value == ConfigDuration(seconds: 300))
    #expect(mixed.listen.routingMark == FwMark(16))
}

@Test func unknownFieldNamesItsPath() {
    let error = decodeError(#"{"inbounds":[{"type":"mixed","listen_port":1080,"foo":1}]}"#)
    #expect(error?.description == #"inbounds[0].foo: json: unknown field "foo""#)
}

@Test func wrongTypeNamesItsPath() {
    let error = decodeError(#"{"inbounds":[{"type":"mixed","listen_port":"x"}]}"#)
    #expect(error?.description == "inbounds[0].listen_port: json: cannot unmarshal string into Go value of type uint16")
    let fraction = decodeError(#"{"inbounds":[{"type":"mixed","listen_port":1.5}]}"#)
    #expect(fraction?.description == "inbounds[0].listen_port: json: cannot unmarshal number 1.5 into Go value of type uint16")
    let range = decodeError(#"{"inbounds":[{"type":"mixed","listen_port":70000}]}"#)
    #expect(range?.description == "inbounds[0].listen_port: json: cannot unmarshal number 70000 into Go value of type uint16")
}

@Test func unknownTypeNamesItsPath() {
    #expect(decodeError(#"{"outbounds":[{"type":"direct"},{"type":"nope"}]}"#)?.description == "outbounds[1]: unknown outbound type: nope")
    #expect(decodeError(#"{"inbounds":[{"type":"nope"}]}"#)?.description == "inbounds[0]: unknown inbound type: nope")
    #expect(decodeError(#"{"endpoints":[{"type":"nope"}]}"#)?.description == "endpoints[0]: unknown endpoint type: nope")
    #expect(decodeError(#"{"dns":{"servers":[{"type":"nope"}]}}"#)?.description == "dns.servers[0]: unknown transport type: nope")
    #expect(decodeError(#"{"route":{"rules":[{"action":"nope"}]}}"#)?.description == "route.rules[0]: unknown rule action: nope")
    #expect(decodeError(#"{"route":{"rules":[{"type":"nope"}]}}"#)?.description == "route.rules[0]: unknown rule type: nope")
}

@Test func duplicateTagsAreErrors() {
    #expect(decodeError(#"{"outbounds":[{"type":"direct","tag":"a"},{"type":"block","tag":"a"}]}"#)?.description
        == "outbounds[1].tag: duplicate outbound/endpoint tag: a")
    #expect(decodeError(#"{"inbounds":[{"type":"mixed","tag":"a"},{"type":"socks","tag":"a"}]}"#)?.description
        == "inbounds[1].tag: duplicate inbound tag: a")
}

@Test func unknownTopLevelFieldAndSyntaxErrors() {
    #expect(decodeError(#"{"inbound": []}"#)?.description == #"inbound: json: unknown field "inbound""#)
    #expect(decodeError("[1]")?.description == "json: cannot unmarshal array into Go value of type option._Options")
    #expect(decodeError(#"{"inbounds":[{"type":"mixed","#)?.description == "unexpected EOF")
    #expect(decodeError("")?.description == "EOF")
    #expect(decodeError("{\n  \"log\": {\"level\": x}\n}")?.description == "invalid character 'x' looking for beginning of value: row 2, column 20")
    #expect(decodeError(#"{,"log":{}}"#)?.description == "invalid character ',' looking for beginning of object key string: row 1, column 2")
    #expect(decodeError(#"{"outbounds":[,{"type":"direct"}]}"#)?.description == "invalid character ',' looking for beginning of value: row 1, column 15")
}

@Test func listableAcceptsOneValueOrArray() throws {
    let single = try decoded(#"{"route":{"rules":[{"domain":"a.com","port":443,"outbound":"x"}]}}"#)
    let array = try decoded(#"{"route":{"rules":[{"domain":["a.com"],"port":[443],"outbound":"x"}]}}"#)
    #expect(single.options == array.options)
    guard case .default(let rule) = single.options.route?.rules.first else {
        Issue.record("expected a default rule")
        return
    }
    #expect(rule.domain == ["a.com"])
    #expect(rule.port == [443])
    #expect(rule.action == .route(RouteActionOptions(outbound: "x")))
}

@Test func commentsAreIgnored() throws {
    let loaded = try decoded("""
    // a comment
    {"log": {"level": "info"}, # another
     /* block */ "outbounds": [{"type": "direct", "tag": "d // not a comment"}]}
    """)
    #expect(loaded.options.outbounds.first?.tag == "d // not a comment")
}

@Test(arguments: [
    ("5m", "5m0s"), ("1h30m", "1h30m0s"), ("300ms", "300ms"), ("0", "0s"), ("1.5s", "1.5s"),
    ("90s", "1m30s"), ("1d", "24h0m0s"), ("2us", "2µs"), ("-1m", "-1m0s"), ("100ns", "100ns"),
])
func durationsUseGoSyntax(input: String, output: String) throws {
    #expect(try ConfigDuration.parse(input, path: "x").goString == output)
}

@Test(arguments: ["", "5", "1x", ".s", "m", "1.2.3s"])
func badDurationsAreRejected(input: String) {
    #expect(throws: ConfigError.self) { try ConfigDuration.parse(input, path: "x") }
}

@Test func ruleActionsDecode() throws {
    let loaded = try decoded("""
    {"route": {"rules": [
      {"action": "sniff", "sniffer": ["tls", "http"], "timeout": "300ms"},
      {"protocol": "dns", "action": "hijack-dns"},
      {"ip_is_private": true, "action": "reject", "method": "drop"},
      {"domain_suffix": ".cn", "action": "route-options", "udp_connect": true},
      {"action": "resolve", "strategy": "ipv4_only"},
      {"type": "logical", "mode": "or", "rules": [{"port": 53}, {"network": "udp"}], "action": "route", "outbound": "x"}
    ]}}
    """)
    let actions = loaded.options.route?.rules.map(\.action.name)
    #expect(actions == ["sniff", "hijack-dns", "reject", "route-options", "resolve", "route"])
}

@Test func hijackDNSTakesNoFields() {
    #expect(decodeError(#"{"route":{"rules":[{"action":"hijack-dns","outbound":"x"}]}}"#)?.description
        == #"route.rules[0].outbound: json: unknown field "outbound""#)
}

@Test func actionValidation() {
    #expect(decodeError(#"{"route":{"rules":[{"action":"route-options"}]}}"#)?.description == "route.rules[0]: empty route option action")
    #expect(decodeError(#"{"route":{"rules":[{"action":"reject","method":"drop","no_drop":true}]}}"#)?.description
        == "route.rules[0]: no_drop is not available in current context")
    #expect(decodeError(#"{"route":{"rules":[{"action":"reject","method":"x"}]}}"#)?.description == "route.rules[0]: unknown reject method: x")
}

@Test func keysMatchCaseInsensitivelyAndTheLastSpellingWins() throws {
    let loaded = try decoded(#"{"inbounds":[{"type":"mixed","listen_port":1,"LISTEN_PORT":2}]}"#)
    #expect(loaded.options.inbounds.first?.listen?.listenPort == 2)
    // Go writes `auth.User` keys capitalised (no JSON tags) and reads any case.
    let users = try decoded(#"{"inbounds":[{"type":"socks","users":[{"Username":"a","PASSWORD":"b"}]}]}"#)
    guard case .socks(let socks) = users.options.inbounds.first?.options else {
        Issue.record("expected socks")
        return
    }
    #expect(socks.users == [AuthUser(username: "a", password: "b")])
}

@Test func trailingCommasAndTrailingDataAreAcceptedLikeGo() throws {
    let loaded = try decoded(#"{"outbounds":[{"type":"direct","tag":"d",},],} trailing garbage"#)
    #expect(loaded.options.outbounds.map(\.tag) == ["d"])
}

@Test func networkListsFormatAsTheyReadUnlikeGo() throws {
    // Go's `format` writes a network list as "tcp\nudp" and then cannot read its own output;
    // we write the list back as given.
    let loaded = try decoded(#"{"inbounds":[{"type":"direct","network":["tcp","udp"],"listen_port":53}]}"#)
    let text = formatJSON(loaded.options)
    #expect(text.contains(#""network": ["#))
    #expect(try decoded(text).options == loaded.options)
    guard case .direct(let direct) = loaded.options.inbounds.first?.options else {
        Issue.record("expected direct")
        return
    }
    #expect(direct.network.effective == ["tcp", "udp"])
    #expect(NetworkList().effective == ["tcp", "udp"])
}

@Test func defaultsAndHelpers() throws {
    let loaded = try decoded(#"{"inbounds":[{"type":"socks","listen_port":1080}],"outbounds":[{"type":"http","server":"192.0.2.1","server_port":3128,"connect_timeout":"1m30s"}]}"#)
    #expect(loaded.options.inbounds.first?.listen?.effectiveListen.text == "127.0.0.1")
    #expect(loaded.options.outbounds.first?.options.dial?.connectTimeout?.duration == .seconds(90))
    #expect(loaded.options.outbounds.first?.options.server?.serverPort == 3128)
}
