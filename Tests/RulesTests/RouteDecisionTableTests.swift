// The route decision table: (route config, flow) → outbound or action, as sing-box 1.12 documents.
// The cases are data in Cases/route-decisions.json; each group names its docs page or Go source.
import Adapter
import Config
import Foundation
import NIOCore
import Router
import Rules
import Testing

/// An outbound that dials nothing: decisions only.
final class TableOutbound: Outbound {
    let type = "fake"
    let tag: String
    let networks: Set<NetworkKind> = [.tcp, .udp]
    init(_ tag: String) { self.tag = tag }
    func dialTCP(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any Channel {
        throw AdapterError(.other, "fake")
    }
    func listenPacket(_ metadata: FlowMetadata, on eventLoop: any EventLoop) async throws -> any PacketConnection {
        throw AdapterError(.other, "fake")
    }
}

/// A resolver answering from the group's `hosts` table.
struct HostsTableResolver: DNSResolver {
    let table: [String: [Adapter.IPAddress]]
    func lookup(_ domain: String, options: DNSLookupOptions) async throws -> [Adapter.IPAddress] {
        guard let found = table[domain] else { throw AdapterError(.notFound, "lookup \(domain): no such host") }
        return options.strategy.apply(found)
    }
}

struct DecisionGroup: Sendable, CustomTestStringConvertible {
    var name: String
    var source: String
    var route: JSONValue
    var hosts: [String: [Adapter.IPAddress]]
    var cases: [(flow: JSONValue, expect: String)]
    var testDescription: String { name }

    static let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Cases/route-decisions.json")

    static func load() throws -> [DecisionGroup] {
        let root = try JSONParser.parse([UInt8](Data(contentsOf: file)))
        guard case .object(let object) = root, case .array(let groups)? = object["groups"] else { return [] }
        return groups.compactMap { value in
            guard case .object(let g) = value, case .string(let name)? = g["name"], case .string(let source)? = g["source"],
                  let route = g["route"], case .array(let cases)? = g["cases"] else { return nil }
            var hosts: [String: [Adapter.IPAddress]] = [:]
            if case .object(let table)? = g["hosts"] {
                for entry in table.entries {
                    if case .array(let list) = entry.value {
                        hosts[entry.key] = list.compactMap { if case .string(let s) = $0 { Adapter.IPAddress(s) } else { nil } }
                    }
                }
            }
            let parsed: [(JSONValue, String)] = cases.compactMap { item in
                guard case .object(let c) = item, let flow = c["flow"], case .string(let expect)? = c["expect"] else { return nil }
                return (flow, expect)
            }
            return DecisionGroup(name: name, source: source, route: route, hosts: hosts, cases: parsed)
        }
    }

    static func all() -> [DecisionGroup] { (try? load()) ?? [] }
}

@Suite struct RouteDecisionTableTests {
    @Test func tableHasTwoHundredCases() throws {
        let groups = try DecisionGroup.load()
        #expect(groups.map(\.cases.count).reduce(0, +) >= 200)
        #expect(groups.allSatisfy { !$0.source.isEmpty })
    }

    @Test(arguments: DecisionGroup.all())
    func decidesAsDocumented(group: DecisionGroup) async throws {
        let options = try ConfigLoader.decode(json: "{\"route\":\(group.route.serialized(indent: ""))}").options
        let route = try #require(options.route)
        var sets: [String: RuleSet] = [:]
        for set in route.ruleSet { sets[set.tag] = try RuleSet.load(set) }
        let rules = try route.rules.map { try RouteRule(options: $0, ruleSets: sets) }
        let manager = OutboundManager()
        for tag in ["a", "b", "c", "d", "e", "f"] { manager.add(TableOutbound(tag)) }
        manager.setDefault(tag: route.final)
        let router = FlowRouter(rules: rules, outbounds: manager, logger: ContextLogger(core: .disabled, name: ""),
                                resolver: HostsTableResolver(table: group.hosts))
        for (index, item) in group.cases.enumerated() {
            var metadata = try Self.metadata(item.flow)
            let decision = await router.match(&metadata)
            let got: String = switch decision {
            case .outbound(let outbound): "route:\(outbound.tag)"
            case .reject(let method): "reject:\(method.rawValue)"
            case .hijackDNS: "hijack-dns"
            case .failure(let error): "failure:\(error.message)"
            }
            #expect(got == item.expect, "case \(index) \(item.flow.serialized(indent: "")) — source: \(group.source)")
        }
    }

    static func metadata(_ flow: JSONValue) throws -> FlowMetadata {
        guard case .object(let o) = flow else { throw RuleError("flow is not an object") }
        func text(_ key: String) -> String? { if case .string(let s)? = o[key] { s } else { nil } }
        let destination = try #require(Destination(text("destination") ?? ""))
        let source = Destination(text("source") ?? "203.0.113.7:50000")
        let network: NetworkKind = text("network") == "udp" ? .udp : .tcp
        var metadata = FlowMetadata(inbound: text("inbound") ?? "in", inboundType: "mixed", network: network,
                                    source: source, destination: destination)
        metadata.user = text("user")
        metadata.sniffedProtocol = text("sniffedProtocol")
        metadata.sniffedDomain = text("sniffedDomain")
        metadata.sniffedClient = text("sniffedClient")
        return metadata
    }
}
