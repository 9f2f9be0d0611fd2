// The builder's values: what a table, chain, set, rule and expression are, independent of libnftnl.
// Numbers are the kernel's (linux/netfilter/nf_tables.h, nf_nat.h); named here once.

/// An nftables address family (NFPROTO_*).
package enum NftFamily: UInt8, Hashable, Sendable {
    case inet = 1, ipv4 = 2, ipv6 = 10
}

/// A netfilter hook (NF_INET_*).
package enum NftHook: UInt32, Hashable, Sendable {
    case prerouting = 0, input = 1, forward = 2, output = 3, postrouting = 4
}

/// A base chain's type.
package enum NftChainType: String, Hashable, Sendable {
    case filter, nat, route
}

/// Well-known priorities (nft's names).
package enum NftPriority {
    /// `mangle`.
    package static let mangle: Int32 = -150
    /// `dstnat`.
    package static let dstnat: Int32 = -100
    /// `filter`.
    package static let filter: Int32 = 0
}

/// A chain; `hook` nil makes it a regular chain (a jump target).
package struct NftChain: Hashable, Sendable {
    /// The chain's name.
    package var name: String
    /// Hook, type and priority of a base chain.
    package var hook: (hook: NftHook, type: NftChainType, priority: Int32)?
    /// The rules, in order.
    package var rules: [NftRule]

    /// A base chain.
    package init(name: String, hook: NftHook, type: NftChainType, priority: Int32, rules: [NftRule] = []) {
        self.name = name
        self.hook = (hook, type, priority)
        self.rules = rules
    }

    /// Chains are equal when name, hook, type, priority and rules are.
    package static func == (left: NftChain, right: NftChain) -> Bool {
        left.name == right.name && left.rules == right.rules && left.hook?.hook == right.hook?.hook
            && left.hook?.type == right.hook?.type && left.hook?.priority == right.hook?.priority
    }

    /// Hashes name and rules (consistent with `==`).
    package func hash(into hasher: inout Hasher) {
        hasher.combine(name)
        hasher.combine(rules)
    }
}

/// A set's key type (nft datatypes: TYPE_IPADDR, TYPE_IP6ADDR, TYPE_INET_PROTOCOL, TYPE_IFNAME).
package enum NftSetKeyType: Hashable, Sendable {
    case ipv4Address, ipv6Address, inetProtocol, interfaceName, uid

    var typeNumber: UInt32 {
        switch self {
        case .uid: 24
        case .ipv4Address: 7
        case .ipv6Address: 8
        case .inetProtocol: 12
        case .interfaceName: 41
        }
    }

    var length: UInt32 {
        switch self {
        case .uid: 4
        case .ipv4Address: 4
        case .ipv6Address: 16
        case .inetProtocol: 1
        case .interfaceName: 16
        }
    }
}

/// A set element: a key, and whether it closes an interval.
package struct NftSetElement: Hashable, Sendable {
    /// The key bytes (network order for addresses).
    package var key: [UInt8]
    /// NFT_SET_ELEM_INTERVAL_END.
    package var isIntervalEnd: Bool

    /// An element.
    package init(key: [UInt8], isIntervalEnd: Bool = false) {
        self.key = key
        self.isIntervalEnd = isIntervalEnd
    }
}

/// A set: named (listed, updatable) or anonymous (constant, owned by the rule that uses it).
package struct NftSet: Hashable, Sendable {
    /// The name; anonymous sets get `__set%d` and the kernel numbers them.
    package var name: String
    /// The key type.
    package var keyType: NftSetKeyType
    /// NFT_SET_INTERVAL: elements are ranges given as start + interval-end pairs.
    package var isInterval: Bool
    /// NFT_SET_ANONYMOUS | NFT_SET_CONSTANT.
    package var isAnonymous: Bool
    /// NFT_SET_CONSTANT on a named set: its elements come with it and never change.
    package var isConstant = false
    /// The elements.
    package var elements: [NftSetElement]

    /// A named set.
    package init(name: String, keyType: NftSetKeyType, isInterval: Bool = false, elements: [NftSetElement] = []) {
        self.name = name
        self.keyType = keyType
        self.isInterval = isInterval
        self.isAnonymous = false
        self.elements = elements
    }

    /// An anonymous constant set, for use inside one rule.
    package static func anonymous(_ keyType: NftSetKeyType, isInterval: Bool = false, elements: [NftSetElement]) -> NftSet {
        var set = NftSet(name: "__set%d", keyType: keyType, isInterval: isInterval, elements: elements)
        set.isAnonymous = true
        return set
    }
}

/// A verdict (NF_ACCEPT, NF_DROP, NFT_RETURN, NFT_JUMP, NFT_GOTO).
package enum NftVerdict: Hashable, Sendable {
    case accept, drop, `return`, jump(String), goto(String)

    var code: Int32 {
        switch self {
        case .accept: 1
        case .drop: 0
        case .return: -5
        case .jump: -3
        case .goto: -4
        }
    }
}

/// meta keys (NFT_META_*).
package enum NftMetaKey: UInt32, Hashable, Sendable {
    case mark = 3, iifname = 6, oifname = 7, skuid = 10, nfproto = 15, l4proto = 16
}

/// Payload bases (NFT_PAYLOAD_*_HEADER).
package enum NftPayloadBase: UInt32, Hashable, Sendable {
    case network = 1, transport = 2
}

/// One expression of a rule. Registers are the legacy 16-byte NFT_REG_1…4 (1…4), as sing-box uses.
package enum NftExpression: Hashable, Sendable {
    /// `meta <key>` into a register.
    case meta(NftMetaKey, register: UInt32 = 1)
    /// `meta <key> set` from a register.
    case setMeta(NftMetaKey, register: UInt32 = 1)
    /// `ct mark` into a register.
    case ctMark(register: UInt32 = 1)
    /// `ct mark set` from a register.
    case setCTMark(register: UInt32 = 1)
    /// Compare a register with bytes (`==` or `!=`).
    case cmp(register: UInt32 = 1, equal: Bool, data: [UInt8])
    /// Load `length` bytes at `offset` of a header into a register.
    case payload(NftPayloadBase, offset: UInt32, length: UInt32, register: UInt32 = 1)
    /// Look a register up in a set (by index into the rule's table's sets); `invert`: not in the set.
    case lookup(set: String, register: UInt32 = 1, invert: Bool = false)
    /// Load constant bytes into a register.
    case immediate(register: UInt32 = 1, data: [UInt8])
    /// `byteorder`: a register's `length` bytes of `size`-byte host-order values to network order
    /// (interval sets compare keys bytewise, so host-order values such as uids are converted first).
    case hostToNetwork(register: UInt32 = 1, length: UInt32 = 4, size: UInt32 = 4)
    /// `counter`.
    case counter
    /// `redirect to :<port in register>` (NF_NAT_RANGE_PROTO_SPECIFIED).
    case redirect(portRegister: UInt32 = 1)
    /// `dnat <family> to <address in register>`.
    case dnat(family: NftFamily, addressRegister: UInt32 = 1)
    /// `tproxy to :<port in register>` (family unspecified: both, in an inet table).
    case tproxy(portRegister: UInt32 = 1)
    /// `reject` (ICMP unreachable, code 0).
    case reject
    /// A verdict.
    case verdict(NftVerdict)
}

/// A rule: expressions in order, and anonymous sets the expressions look up (named `__set%d` and
/// referred to by their index in `anonymousSets` through `lookup(set: "#<index>")`).
package struct NftRule: Hashable, Sendable {
    /// The expressions.
    package var expressions: [NftExpression]
    /// Constant sets owned by this rule; `lookup(set: "#0")` names the first.
    package var anonymousSets: [NftSet]

    /// A rule.
    package init(_ expressions: [NftExpression], anonymousSets: [NftSet] = []) {
        self.expressions = expressions
        self.anonymousSets = anonymousSets
    }
}

/// A whole table: what we install and replace as one unit.
package struct NftTable: Hashable, Sendable {
    /// The family (we use `inet`).
    package var family: NftFamily
    /// The name.
    package var name: String
    /// Named sets, created before the chains.
    package var sets: [NftSet]
    /// Chains with their rules.
    package var chains: [NftChain]

    /// A table.
    package init(family: NftFamily = .inet, name: String, sets: [NftSet] = [], chains: [NftChain] = []) {
        self.family = family
        self.name = name
        self.sets = sets
        self.chains = chains
    }
}

extension NftExpression {
    /// `meta l4proto <number>`-style compare data for a one-byte value.
    package static func byte(_ value: UInt8) -> [UInt8] { [value] }
    /// A 32-bit value in host order (marks, uids).
    package static func hostOrder(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }
    /// A 16-bit value in network order (ports).
    package static func networkOrder(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }
    /// An interface name padded to IFNAMSIZ (16), as `meta iifname` compares it.
    package static func interfaceName(_ name: String) -> [UInt8] {
        let bytes = Array(name.utf8.prefix(15))
        return bytes + [UInt8](repeating: 0, count: 16 - bytes.count)
    }
}
