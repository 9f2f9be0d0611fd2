// RuleSet: a named list of headless rules (`route.rule_set`), inline or from a source JSON file.
package import Config
package import Adapter
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A compiled rule-set. Matches when any of its rules matches. Shared by every rule that names it.
///
/// Updatable: a remote set (or a reloaded local file) swaps in new rules with `update(_:)`; a
/// match takes the current array under a lock held only for one retain, so flows already matching
/// finish on the rules they started with and new flows see the new ones. Callbacks registered
/// with `onUpdate` run after each swap, on the updating task (Go's `RuleSetUpdateCallback`).
package final class RuleSet: Sendable {
    package let tag: String
    private let current: Mutex<[HeadlessRule]>
    private let callbacks = Mutex<[@Sendable (RuleSet) -> Void]>([])

    package init(tag: String, rules: [HeadlessRule]) {
        self.tag = tag
        self.current = Mutex(rules)
    }

    /// The rules now in force (a snapshot; a later `update` does not change it).
    package var rules: [HeadlessRule] { current.withLock { $0 } }

    /// Replaces the rules for every later match, then runs the update callbacks.
    package func update(_ rules: [HeadlessRule]) {
        current.withLock { $0 = rules }
        for callback in callbacks.withLock({ $0 }) { callback(self) }
    }

    /// Registers `callback` to run after every `update` (tun's `route_address_set` refresh, …).
    package func onUpdate(_ callback: @escaping @Sendable (RuleSet) -> Void) {
        callbacks.withLock { $0.append(callback) }
    }

    package func matches(_ metadata: FlowMetadata) -> Bool {
        var state = RuleMatchState()
        return matches(metadata, state: &state)
    }

    /// Go's `LocalRuleSet.Match`: the rules run in order in the caller's state, which is not reset
    /// between them (so a group one rule satisfied stays satisfied for the next).
    package func matches(_ metadata: FlowMetadata, state: inout RuleMatchState) -> Bool {
        let rules = self.rules
        return rules.contains { $0.matches(metadata, state: &state) }
    }

    /// True when a rule of the set reads the flow's owning process.
    package var needsProcess: Bool { rules.contains { $0.needsProcess } }

    /// The destination `ip_cidr` items of every rule, logical ones included, as prefixes (Go's
    /// `RuleSet.ExtractIPSet`, which tun's `route_address_set` feeds to the firewall). Inversion and the
    /// rule's other items are ignored, as in Go. Empty when the set has no such item.
    package var destinationPrefixes: [IPPrefix] {
        func extract(_ rule: HeadlessRule) -> [IPPrefix] {
            switch rule {
            case .default(let rule):
                rule.items.flatMap { item -> [IPPrefix] in
                    switch item {
                    case .ipCIDR(false, let prefixes, _): prefixes
                    case .ipSet(false, let set, _): set.prefixes()
                    default: []
                    }
                }
            case .logical(let rule): rule.rules.flatMap(extract)
            }
        }
        return rules.flatMap(extract)
    }

    /// Builds a rule-set from its options: inline rules, or a local file read now in the source
    /// (JSON) or binary (`.srs`) format. A remote set starts empty: the box fills it (from its
    /// cache or a download) before any inbound starts.
    package static func load(_ options: RuleSetOptions) throws(RuleError) -> RuleSet {
        switch options.source {
        case .inline(let rules):
            return RuleSet(tag: options.tag, rules: try compile(rules))
        case .local(let path):
            guard let bytes = SystemFile.read(path) else {
                throw RuleError("initialize rule-set[\(options.tag)]: open \(path): no such file or directory")
            }
            do throws(RuleError) {
                return RuleSet(tag: options.tag, rules: try compile(bytes: bytes, format: options.format, path: path))
            } catch {
                throw RuleError("initialize rule-set[\(options.tag)]: \(error.message)")
            }
        case .remote:
            // The box downloads remote sets at start (Box's RemoteRuleSet); until then none matches.
            return RuleSet(tag: options.tag, rules: [])
        }
    }

    /// Compiles a rule-set file's bytes in `format` ("binary" `.srs`, else source JSON), as Go's
    /// `loadBytes`. `path` only names the file in a source decode error. Throws `RuleError`.
    package static func compile(bytes: [UInt8], format: String, path: String) throws(RuleError) -> [HeadlessRule] {
        if format == "binary" { return try compileBinary(bytes) }
        do {
            let plain = try PlainRuleSetOptions(json: try JSONParser.parse(bytes), path: "")
            return try compile(plain.rules)
        } catch let error as ConfigError {
            throw RuleError("decode rule-set \(path): \(error)")
        } catch let error as RuleError {
            throw error
        } catch {
            throw RuleError("decode rule-set \(path): \(error)")
        }
    }

    /// Reads a `.srs` file's bytes into matching rules (Go's `srs.Read` then `NewHeadlessRule`).
    package static func compileBinary(_ bytes: [UInt8]) throws(RuleError) -> [HeadlessRule] {
        let binary: BinaryRuleSet
        do { binary = try BinaryRuleSet(bytes: bytes) } catch { throw RuleError(error.description) }
        return try binary.compile()
    }

    package static func compile(_ rules: [HeadlessRuleOptions]) throws(RuleError) -> [HeadlessRule] {
        var out: [HeadlessRule] = []
        for (index, rule) in rules.enumerated() {
            do { out.append(try HeadlessRule(headless: rule)) } catch {
                throw RuleError("parse rule[\(index)]: \(error.message)")
            }
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
            // query_type builds no item in a rule-set rule (Go 1.12 route/rule/rule_headless.go).
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
            // Rule-set IP lists can be long: ranges and a binary search, as Go's netipx set.
            if !o.sourceIPCIDR.isEmpty { items.append(try .ipSet(isSource: true, o.sourceIPCIDR)) }
            if !o.ipCIDR.isEmpty { items.append(try .ipSet(isSource: false, o.ipCIDR)) }
            if !o.sourcePort.isEmpty { items.append(.port(isSource: true, o.sourcePort)) }
            if !o.sourcePortRange.isEmpty { items.append(try .portRange(isSource: true, o.sourcePortRange)) }
            if !o.port.isEmpty { items.append(.port(isSource: false, o.port)) }
            if !o.portRange.isEmpty { items.append(try .portRange(isSource: false, o.portRange)) }
            if !o.processName.isEmpty { items.append(.processName(o.processName)) }
            if !o.processPath.isEmpty { items.append(.processPath(o.processPath)) }
            if !o.processPathRegex.isEmpty { items.append(try .processPathRegex(o.processPathRegex)) }
            // Android and Apple items: Go on Linux builds them and they never match.
            if !o.packageName.isEmpty { items.append(.unavailable("package_name", o.packageName)) }
            if !o.networkType.isEmpty { items.append(.unavailable("network_type", o.networkType.map(\.rawValue))) }
            if o.networkIsExpensive { items.append(.unavailable("network_is_expensive", [])) }
            if o.networkIsConstrained { items.append(.unavailable("network_is_constrained", [])) }
            if !o.wifiSSID.isEmpty { items.append(.unavailable("wifi_ssid", o.wifiSSID)) }
            if !o.wifiBSSID.isEmpty { items.append(.unavailable("wifi_bssid", o.wifiBSSID)) }
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
