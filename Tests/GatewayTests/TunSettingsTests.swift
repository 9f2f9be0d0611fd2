// TunSettings: sing-box 1.12's tun defaults and the errors Go raises at start, without root.
import Adapter
import Config
import Testing
import Tun

private func settings(_ json: String) throws -> TunSettings {
    let options = try ConfigLoader.decode(json: #"{"inbounds":[{"type":"tun","tag":"t",\#(json)}]}"#).options
    guard case .tun(let tun) = options.inbounds[0].options else { throw GatewayTestError("not a tun inbound") }
    return try TunSettings(tun)
}

@Suite struct TunSettingsTests {
    @Test func defaultsAreGos() throws {
        let value = try settings(#""address":["172.19.0.1/30","fdfe:dcba:9876::1/126"]"#)
        #expect(value.mtu == 9000)
        #expect(value.tableIndex == 2022 && value.ruleIndex == 9000)
        #expect(value.inputMark == 0x2023 && value.outputMark == 0x2024)
        #expect(value.udpTimeout.nanoseconds == 300_000_000_000)
        #expect(value.inet4Addresses.map(\.description) == ["172.19.0.1/30"])
        #expect(value.inet6Addresses.map(\.description) == ["fdfe:dcba:9876::1/126"])
        #expect(value.startError == nil)
        let route = value.autoRouteOptions(interfaceName: "tun0")
        #expect(route.tableIndex == 2022 && route.interfaceName == "tun0" && !route.autoRedirectMarkMode)
    }

    @Test func explicitValuesWin() throws {
        let value = try settings(#""mtu":1500,"iproute2_table_index":100,"iproute2_rule_index":200,"auto_redirect_input_mark":"0x10","#
                                 + #""auto_redirect_output_mark":17,"udp_timeout":"30s","auto_route":true,"auto_redirect":true"#)
        #expect(value.mtu == 1500 && value.tableIndex == 100 && value.ruleIndex == 200)
        #expect(value.inputMark == 0x10 && value.outputMark == 17)
        #expect(value.udpTimeout.nanoseconds == 30_000_000_000)
        let redirect = value.autoRedirectOptions(interfaceName: "sb0", redirectPort: 4444)
        #expect(redirect.redirectPort == 4444 && redirect.inputMark == 0x10 && redirect.tableName == "sing-box")
    }

    /// include_uid keeps only those users in the TUN: everything else is an excluded range.
    @Test func includedUIDsBecomeTheComplement() throws {
        let value = try settings(#""include_uid":[0],"include_uid_range":["1000:1999"],"exclude_uid":[5]"#)
        #expect(value.excludedUIDRanges == [1...999, 2000...UInt32.max, 5...5])
        #expect(try settings(#""exclude_uid_range":["10:20"]"#).excludedUIDRanges == [10...20])
        #expect(throws: AdapterError.self) { try settings(#""include_uid_range":["20:10"]"#) }
    }

    @Test(arguments: [
        (#""stack":"lwip""#, "unknown stack: lwip"),
        (#""mtu":500"#, "invalid MTU: 500"),
        (#""include_interface":["a"],"exclude_interface":["b"]"#, "`include_interface` and `exclude_interface` cannot be set at the same time"),
    ])
    func goRefusesAtStart(json: String, message: String) throws {
        let value = try settings(json)
        #expect(value.startError?.description.contains(message) == true, "\(String(describing: value.startError))")
    }

    /// `detour` on a tun is read and ignored, as Go's tun inbound ignores it.
    @Test func detourIsIgnoredAsGoDoes() throws {
        #expect(try settings(#""detour":"nowhere""#).startError == nil)
    }

    /// loopback_address is read, and goes into the auto_redirect table's options as host prefixes.
    @Test func loopbackAddressesAreReadAndReachAutoRedirect() throws {
        let value = try settings(#""loopback_address":["10.7.0.1","fdfe:dcba:9876::7"],"auto_route":true,"auto_redirect":true"#)
        #expect(value.loopbackAddresses == ["10.7.0.1", "fdfe:dcba:9876::7"])
        #expect(value.startError == nil)
        #expect(value.autoRedirectOptions(interfaceName: "tun0", redirectPort: 1).loopbackAddresses.map(\.description)
                == ["10.7.0.1/32", "fdfe:dcba:9876::7/128"])
    }

    /// route_address_set tags resolve through the box's rule-sets; an unknown one is Go's error.
    @Test func routeAddressSetsResolveThroughTheRuleSets() throws {
        var value = try settings(#""route_address_set":["a"],"route_exclude_address_set":["b"],"route_address":["10.1.0.0/16"]"#)
        #expect(value.startError == nil)
        let lookup: (String) -> [IPPrefix]? = { tag in
            switch tag {
            case "a": [IPPrefix("10.9.0.0/16")!, IPPrefix("2001:db8::/32")!]
            case "b": [IPPrefix("10.9.1.0/24")!]
            default: nil
            }
        }
        try value.resolveRuleSets(lookup)
        let redirect = value.autoRedirectOptions(interfaceName: "sb0", redirectPort: 1)
        #expect(redirect.routeAddressSet.map(\.description) == ["10.9.0.0/16", "2001:db8::/32"])
        #expect(redirect.routeExcludeAddressSet.map(\.description) == ["10.9.1.0/24"])
        #expect(redirect.routeAddresses.map(\.description) == ["10.1.0.0/16"])
        var unknown = try settings(#""route_exclude_address_set":["geoip-cn"]"#)
        #expect(throws: AdapterError.self) { try unknown.resolveRuleSets(lookup) }
        do { try unknown.resolveRuleSets(lookup) } catch {
            #expect("\(error)".contains("parse route_exclude_address_set: rule-set not found: geoip-cn"))
        }
    }

    @Test(arguments: ["system", "gvisor", "mixed", ""])
    func everyGoStackIsAccepted(stack: String) throws {
        #expect(try settings(#""stack":"\#(stack)""#).startError == nil)
    }
}
