// RuleSet: a named list of headless rules (`route.rule_set`), inline or from a source JSON file.
package import Config
package import Adapter
#if canImport(Glibc)
import Glibc
#endif

/// A compiled rule-set. Matches when any of its rules matches. Immutable; shared by every rule
/// that names it.
package final class RuleSet: Sendable {
    package let tag: String
    package let rules: [HeadlessRule]

    package init(tag: String, rules: [HeadlessRule]) {
        self.tag = tag
        self.rules = rules
    }

    package func matches(_ metadata: FlowMetadata) -> Bool {
        rules.contains { $0.matches(metadata) }
    }

    /// Builds a rule-set from its options: inline rules, or a local source-format (JSON) file read
    /// now. Binary (`.srs`) and remote rule-sets are not implemented and throw.
    package static func load(_ options: RuleSetOptions) throws(RuleError) -> RuleSet {
        switch options.source {
        case .inline(let rules):
            return RuleSet(tag: options.tag, rules: try compile(rules))
        case .local(let path):
            guard options.format == "source" else {
                throw RuleError("initialize rule-set[\(options.tag)]: \(options.format) format: not implemented")
            }
            guard let bytes = readFile(path) else {
                throw RuleError("initialize rule-set[\(options.tag)]: open \(path): no such file or directory")
            }
            do {
                let plain = try PlainRuleSetOptions(json: try JSONParser.parse(bytes), path: "")
                return RuleSet(tag: options.tag, rules: try compile(plain.rules))
            } catch let error as ConfigError {
                throw RuleError("initialize rule-set[\(options.tag)]: decode rule-set \(path): \(error)")
            } catch let error as RuleError {
                throw RuleError("initialize rule-set[\(options.tag)]: \(error.message)")
            } catch {
                throw RuleError("initialize rule-set[\(options.tag)]: \(error)")
            }
        case .remote:
            throw RuleError("initialize rule-set[\(options.tag)]: remote rule-set: not implemented")
        }
    }

    static func compile(_ rules: [HeadlessRuleOptions]) throws(RuleError) -> [HeadlessRule] {
        var out: [HeadlessRule] = []
        for (index, rule) in rules.enumerated() {
            do { out.append(try HeadlessRule(headless: rule)) } catch {
                throw RuleError("parse rule[\(index)]: \(error.message)")
            }
        }
        return out
    }

    private static func readFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }
}

extension HeadlessRule {
    /// A rule-set rule (the headless subset: no inbound, user or action).
    package init(headless options: HeadlessRuleOptions) throws(RuleError) {
        switch options {
        case .default(let o):
            var items: [RuleItem] = []
            if !o.queryType.isEmpty { throw RuleError("query_type: not implemented") }
            if !o.network.isEmpty {
                var networks: [NetworkKind] = []
                for name in o.network {
                    guard let network = NetworkKind(rawValue: name) else { throw RuleError("unknown network: \(name)") }
                    networks.append(network)
                }
                items.append(.network(networks))
            }
            if !o.domain.isEmpty || !o.domainSuffix.isEmpty { items.append(try .domain(o.domain, suffixes: o.domainSuffix)) }
            if !o.domainKeyword.isEmpty { items.append(.domainKeyword(o.domainKeyword)) }
            if !o.domainRegex.isEmpty { items.append(try .domainRegex(o.domainRegex)) }
            if !o.sourceIPCIDR.isEmpty { items.append(try .ipCIDR(isSource: true, o.sourceIPCIDR)) }
            if !o.ipCIDR.isEmpty { items.append(try .ipCIDR(isSource: false, o.ipCIDR)) }
            if !o.sourcePort.isEmpty { items.append(.port(isSource: true, o.sourcePort)) }
            if !o.sourcePortRange.isEmpty { items.append(try .portRange(isSource: true, o.sourcePortRange)) }
            if !o.port.isEmpty { items.append(.port(isSource: false, o.port)) }
            if !o.portRange.isEmpty { items.append(try .portRange(isSource: false, o.portRange)) }
            let unsupported: [(Bool, String)] = [
                (!o.processName.isEmpty, "process_name"), (!o.processPath.isEmpty, "process_path"),
                (!o.processPathRegex.isEmpty, "process_path_regex"), (!o.packageName.isEmpty, "package_name"),
                (!o.networkType.isEmpty, "network_type"), (o.networkIsExpensive, "network_is_expensive"),
                (o.networkIsConstrained, "network_is_constrained"), (!o.wifiSSID.isEmpty, "wifi_ssid"),
                (!o.wifiBSSID.isEmpty, "wifi_bssid"),
            ]
            if let (_, name) = unsupported.first(where: { $0.0 }) { throw RuleError("\(name): not implemented") }
            self = .default(DefaultRule(items: items, invert: o.invert))
        case .logical(let mode, let rules, let invert):
            guard let logicalMode = LogicalRule.Mode(rawValue: mode) else { throw RuleError("unknown logical mode: \(mode)") }
            var compiled: [HeadlessRule] = []
            for (index, rule) in rules.enumerated() {
                do { compiled.append(try HeadlessRule(headless: rule)) } catch {
                    throw RuleError("sub rule[\(index)]: \(error.message)")
                }
            }
            self = .logical(LogicalRule(mode: logicalMode, rules: compiled, invert: invert))
        }
    }
}
