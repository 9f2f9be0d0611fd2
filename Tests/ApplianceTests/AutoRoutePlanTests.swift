import Adapter
import Netlink
import Testing

/// sing-box 1.12 (sing-tun v0.7.3 `rules()`) for a dual-stack tun with defaults, written out by hand.
@Test func autoRouteRulesDualStack() throws {
    let options = AutoRouteOptions(interfaceName: "tun0", inet4Addresses: [NetworkPrefix("172.19.0.1/30")!],
                                   inet6Addresses: [NetworkPrefix("fdfe:dcba:9876::1/126")!])
    let plan = AutoRoutePlan(options)
    #expect(plan.routes.map(\.description) == ["0.0.0.0/0", "::/0"])
    let summary = plan.rules.map { rule -> String in
        var parts = ["\(rule.family) \(rule.priority)"]
        if rule.invert { parts.append("not") }
        if let name = rule.inputInterface { parts.append("iif \(name)") }
        if let source = rule.source { parts.append("from \(source)") }
        if let destination = rule.destination { parts.append("to \(destination)") }
        if let ports = rule.destinationPorts { parts.append("dport \(ports.lowerBound)") }
        if let length = rule.suppressPrefixLength { parts.append("suppress \(length)") }
        switch rule.action {
        case .lookup(let table): parts.append("lookup \(table)")
        case .goto(let target): parts.append("goto \(target)")
        case .nop: parts.append("nop")
        case .unreachable: parts.append("unreachable")
        }
        return parts.joined(separator: " ")
    }
    #expect(summary == [
        "inet4 9000 to 172.19.0.0/30 lookup 2022",
        "inet4 9001 suppress 0 lookup 2022",
        "inet6 9000 suppress 0 lookup 2022",
        "inet4 9002 not dport 53 suppress 0 lookup 254",
        "inet6 9001 not dport 53 suppress 0 lookup 254",
        "inet4 9002 iif tun0 goto 9010",
        "inet4 9003 not iif lo lookup 2022",
        "inet4 9003 iif lo from 0.0.0.0/32 lookup 2022",
        "inet4 9003 iif lo from 172.19.0.0/30 lookup 2022",
        "inet6 9001 iif tun0 goto 9010",
        "inet6 9001 iif lo from ::/1 goto 9010",
        "inet6 9001 iif lo from 8000::/1 goto 9010",
        "inet6 9002 iif lo from fdfe:dcba:9876::/126 lookup 2022",
        "inet6 9003 lookup 2022",
        "inet4 9010 nop",
        "inet6 9010 nop",
    ])
}

@Test func autoRouteStrictRouteIPv4Only() {
    let options = AutoRouteOptions(interfaceName: "tun0", inet4Addresses: [NetworkPrefix("172.19.0.1/30")!], strictRoute: true)
    let plan = AutoRoutePlan(options)
    #expect(plan.routes.map(\.description) == ["0.0.0.0/0"])
    #expect(plan.rules.first { $0.family == .inet6 }?.action == .unreachable)
    #expect(plan.rules.first { $0.family == .inet6 }?.priority == 9000)
    #expect(plan.rules.filter { $0.family == .inet6 }.count == 1)
}

@Test func autoRouteMarkMode() {
    let options = AutoRouteOptions(interfaceName: "tun0", inet4Addresses: [NetworkPrefix("172.19.0.1/30")!],
                                   autoRedirectMarkMode: true)
    let rules = AutoRoutePlan(options).rules
    #expect(rules.count == 3)
    #expect(rules[0].mark == 0x2024 && rules[0].action == .goto(priority: 9002))
    #expect(rules[1].mark == 0x2023 && rules[1].action == .lookup(table: 2022))
    #expect(rules[2].priority == 9002 && rules[2].action == .nop)
}

@Test func autoRouteExcludeAddressSplitsRanges() {
    let options = AutoRouteOptions(interfaceName: "tun0", inet4Addresses: [NetworkPrefix("172.19.0.1/30")!],
                                   routeAddresses: [NetworkPrefix("10.0.0.0/8")!],
                                   routeExcludeAddresses: [NetworkPrefix("10.128.0.0/9")!, NetworkPrefix("10.0.0.0/10")!])
    #expect(AutoRoutePlan(options).routes.map(\.description) == ["10.64.0.0/10"])
    let whole = AutoRouteOptions(interfaceName: "tun0", inet4Addresses: [NetworkPrefix("172.19.0.1/30")!],
                                 routeExcludeAddresses: [NetworkPrefix("192.168.0.0/16")!])
    let ranges = AutoRoutePlan(whole).routes
    #expect(ranges.count == 16)
    #expect(!ranges.contains { $0.contains([192, 168, 1, 1]) })
    #expect(ranges.contains { $0.contains([192, 169, 1, 1]) })
    #expect(ranges.contains { $0.contains([8, 8, 8, 8]) })
}
