// The rtnetlink requests: links, addresses, routes, rules, and their dumps.
package import Adapter
import Glibc

extension NetlinkSocket {
    // MARK: Links

    /// Every link (RTM_GETLINK dump).
    package func links() throws -> [LinkInfo] {
        let request = NetlinkRequest(type: NetlinkConstant.getLink, flags: 0, familyHeaderSize: NetlinkConstant.linkHeaderSize)
        return try dump(request, operation: "dump links").compactMap(NetlinkSocket.parseLink)
    }

    /// The link called `name`, if any.
    package func link(named name: String) throws -> LinkInfo? {
        try links().first { $0.name == name }
    }

    /// Sets the MTU of link `index`.
    package func setMTU(_ mtu: UInt32, interfaceIndex index: Int32) throws {
        var request = NetlinkRequest(type: NetlinkConstant.newLink, flags: 0, familyHeaderSize: NetlinkConstant.linkHeaderSize)
        request.setHeader(index, at: 4)
        request.attribute(NetlinkConstant.linkMTU, integer: mtu)
        try execute(request, operation: "set mtu \(mtu) on link \(index)")
    }

    /// Brings link `index` up or down (IFF_UP through ifi_change).
    package func setUp(_ up: Bool, interfaceIndex index: Int32) throws {
        var request = NetlinkRequest(type: NetlinkConstant.newLink, flags: 0, familyHeaderSize: NetlinkConstant.linkHeaderSize)
        request.setHeader(index, at: 4)
        request.setHeader(up ? NetlinkConstant.interfaceUp : 0, at: 8)
        request.setHeader(NetlinkConstant.interfaceUp, at: 12)
        try execute(request, operation: "set link \(index) \(up ? "up" : "down")")
    }

    /// Creates a link of a simple kind (`dummy`, `bridge`) called `name`.
    package func createLink(name: String, kind: String) throws {
        var request = NetlinkRequest(type: NetlinkConstant.newLink,
                                     flags: NetlinkConstant.createFlag | NetlinkConstant.excludeFlag,
                                     familyHeaderSize: NetlinkConstant.linkHeaderSize)
        request.attribute(NetlinkConstant.linkName, string: name)
        request.beginNest(NetlinkConstant.linkInfo)
        request.attribute(NetlinkConstant.linkInfoKind, string: kind)
        request.endNest()
        try execute(request, operation: "create \(kind) link \(name)")
    }

    /// Creates a veth pair `name` ↔ `peerName` (both in this socket's namespace).
    package func createVeth(name: String, peerName: String) throws {
        var request = NetlinkRequest(type: NetlinkConstant.newLink,
                                     flags: NetlinkConstant.createFlag | NetlinkConstant.excludeFlag,
                                     familyHeaderSize: NetlinkConstant.linkHeaderSize)
        request.attribute(NetlinkConstant.linkName, string: name)
        request.beginNest(NetlinkConstant.linkInfo)
        request.attribute(NetlinkConstant.linkInfoKind, string: "veth")
        request.beginNest(NetlinkConstant.linkInfoData)
        request.beginNest(NetlinkConstant.vethInfoPeer)
        request.raw([UInt8](repeating: 0, count: NetlinkConstant.linkHeaderSize))  // the peer's ifinfomsg
        request.attribute(NetlinkConstant.linkName, string: peerName)
        request.endNest()
        request.endNest()
        request.endNest()
        try execute(request, operation: "create veth \(name) peer \(peerName)")
    }

    /// Deletes link `index`.
    package func deleteLink(interfaceIndex index: Int32) throws {
        var request = NetlinkRequest(type: NetlinkConstant.deleteLink, flags: 0, familyHeaderSize: NetlinkConstant.linkHeaderSize)
        request.setHeader(index, at: 4)
        try execute(request, operation: "delete link \(index)")
    }

    // MARK: Addresses

    /// Every address of `family` (nil: both) on every link.
    package func addresses(family: IPFamily? = nil) throws -> [AddressInfo] {
        var request = NetlinkRequest(type: NetlinkConstant.getAddress, flags: 0, familyHeaderSize: NetlinkConstant.addressHeaderSize)
        request.setHeader(family?.rawValue ?? 0, at: 0)
        return try dump(request, operation: "dump addresses").compactMap(NetlinkSocket.parseAddress)
    }

    /// Adds `prefix` to link `index`. `ignoreExisting`: EEXIST is success (sing-box does the same).
    package func addAddress(_ prefix: NetworkPrefix, interfaceIndex index: Int32, ignoreExisting: Bool = true) throws {
        do {
            try execute(NetlinkSocket.addressRequest(NetlinkConstant.newAddress, prefix, index),
                        operation: "add address \(prefix) to link \(index)")
        } catch let error as NetlinkError where ignoreExisting && error.errno == EEXIST {}
    }

    /// Removes `prefix` from link `index`.
    package func deleteAddress(_ prefix: NetworkPrefix, interfaceIndex index: Int32) throws {
        try execute(NetlinkSocket.addressRequest(NetlinkConstant.deleteAddress, prefix, index),
                    operation: "delete address \(prefix) from link \(index)")
    }

    private static func addressRequest(_ type: UInt16, _ prefix: NetworkPrefix, _ index: Int32) -> NetlinkRequest {
        let create = type == NetlinkConstant.newAddress ? NetlinkConstant.createFlag | NetlinkConstant.excludeFlag : 0
        var request = NetlinkRequest(type: type, flags: create, familyHeaderSize: NetlinkConstant.addressHeaderSize)
        request.setHeader(IPFamily(of: prefix).rawValue, at: 0)
        request.setHeader(UInt8(prefix.length), at: 1)
        request.setHeader(UInt32(bitPattern: index), at: 4)
        request.attribute(NetlinkConstant.addressLocal, prefix.bytes)
        request.attribute(NetlinkConstant.addressAddress, prefix.bytes)
        return request
    }

    // MARK: Routes

    /// Every route of `family` (nil: both); `table` filters the result (nil: all tables).
    package func routes(family: IPFamily? = nil, table: UInt32? = nil) throws -> [RouteInfo] {
        var request = NetlinkRequest(type: NetlinkConstant.getRoute, flags: 0, familyHeaderSize: NetlinkConstant.routeHeaderSize)
        request.setHeader(family?.rawValue ?? 0, at: 0)
        let all = try dump(request, operation: "dump routes").compactMap(NetlinkSocket.parseRoute)
        guard let table else { return all }
        return all.filter { $0.table == table }
    }

    /// Adds `route`. `replace`: NLM_F_REPLACE instead of failing with EEXIST.
    package func addRoute(_ route: RouteInfo, replace: Bool = false) throws {
        let flags = NetlinkConstant.createFlag | (replace ? NetlinkConstant.replaceFlag : NetlinkConstant.excludeFlag)
        try execute(NetlinkSocket.routeRequest(NetlinkConstant.newRoute, flags, route),
                    operation: "add route \(route.destination) table \(route.table)")
    }

    /// Deletes `route` (matched by destination, table, output interface and metric).
    package func deleteRoute(_ route: RouteInfo) throws {
        try execute(NetlinkSocket.routeRequest(NetlinkConstant.deleteRoute, 0, route),
                    operation: "delete route \(route.destination) table \(route.table)")
    }

    private static func routeRequest(_ type: UInt16, _ flags: UInt16, _ route: RouteInfo) -> NetlinkRequest {
        var request = NetlinkRequest(type: type, flags: flags, familyHeaderSize: NetlinkConstant.routeHeaderSize)
        request.setHeader(route.family.rawValue, at: 0)
        request.setHeader(UInt8(route.destination.length), at: 1)
        request.setHeader(route.table < 256 ? UInt8(route.table) : NetlinkConstant.tableUnspecified, at: 4)
        request.setHeader(route.routeProtocol, at: 5)
        request.setHeader(route.scope, at: 6)
        request.setHeader(route.type, at: 7)
        request.attribute(NetlinkConstant.routeTable, integer: route.table)
        request.attribute(NetlinkConstant.routeDestination, route.destination.masked.bytes)
        if let output = route.outputInterface { request.attribute(NetlinkConstant.routeOutput, integer: UInt32(bitPattern: output)) }
        if let gateway = route.gateway { request.attribute(NetlinkConstant.routeGateway, gateway) }
        if route.metric != 0 { request.attribute(NetlinkConstant.routePriority, integer: route.metric) }
        return request
    }

    // MARK: Rules

    /// Every policy rule of `family` (nil: both).
    package func rules(family: IPFamily? = nil) throws -> [RoutingRule] {
        var request = NetlinkRequest(type: NetlinkConstant.getRule, flags: 0, familyHeaderSize: NetlinkConstant.ruleHeaderSize)
        request.setHeader(family?.rawValue ?? 0, at: 0)
        return try dump(request, operation: "dump rules").compactMap(NetlinkSocket.parseRule)
    }

    /// Adds `rule` (NLM_F_EXCL: an identical rule is EEXIST).
    package func addRule(_ rule: RoutingRule) throws {
        try execute(NetlinkSocket.ruleRequest(NetlinkConstant.newRule, NetlinkConstant.createFlag | NetlinkConstant.excludeFlag, rule),
                    operation: "add rule \(rule.priority) (\(rule.family))")
    }

    /// Deletes the first rule matching `rule`'s selectors (the kernel matches only what is given).
    package func deleteRule(_ rule: RoutingRule) throws {
        try execute(NetlinkSocket.ruleRequest(NetlinkConstant.deleteRule, 0, rule),
                    operation: "delete rule \(rule.priority) (\(rule.family))")
    }

    /// Deletes one rule of `family` at `priority`, whatever its selectors.
    package func deleteRule(family: IPFamily, priority: UInt32) throws {
        var request = NetlinkRequest(type: NetlinkConstant.deleteRule, flags: 0, familyHeaderSize: NetlinkConstant.ruleHeaderSize)
        request.setHeader(family.rawValue, at: 0)
        request.attribute(NetlinkConstant.rulePriority, integer: priority)
        try execute(request, operation: "delete rule \(priority) (\(family))")
    }

    private static func ruleRequest(_ type: UInt16, _ flags: UInt16, _ rule: RoutingRule) -> NetlinkRequest {
        var request = NetlinkRequest(type: type, flags: flags, familyHeaderSize: NetlinkConstant.ruleHeaderSize)
        request.setHeader(rule.family.rawValue, at: 0)
        if let destination = rule.destination { request.setHeader(UInt8(destination.length), at: 1) }
        if let source = rule.source { request.setHeader(UInt8(source.length), at: 2) }
        let action: UInt8
        switch rule.action {
        case .lookup(let table):
            action = 1  // FR_ACT_TO_TBL
            request.setHeader(table < 256 ? UInt8(table) : 0, at: 4)
            request.attribute(NetlinkConstant.ruleTable, integer: table)
        case .goto(let target):
            action = 2  // FR_ACT_GOTO
            request.attribute(NetlinkConstant.ruleGoto, integer: target)
        case .nop: action = 3
        case .unreachable: action = 7
        }
        request.setHeader(action, at: 7)
        if rule.invert { request.setHeader(NetlinkConstant.ruleInvert, at: 8) }
        request.attribute(NetlinkConstant.rulePriority, integer: rule.priority)
        if let mark = rule.mark { request.attribute(NetlinkConstant.ruleMark, integer: mark) }
        if let mask = rule.mask { request.attribute(NetlinkConstant.ruleMask, integer: mask) }
        if let name = rule.inputInterface { request.attribute(NetlinkConstant.ruleInputName, string: name) }
        if let name = rule.outputInterface { request.attribute(NetlinkConstant.ruleOutputName, string: name) }
        if let range = rule.uidRange {
            var payload: [UInt8] = []
            withUnsafeBytes(of: range.lowerBound.littleEndian) { payload += $0 }
            withUnsafeBytes(of: range.upperBound.littleEndian) { payload += $0 }
            request.attribute(NetlinkConstant.ruleUIDRange, payload)
        }
        if let length = rule.suppressPrefixLength { request.attribute(NetlinkConstant.ruleSuppressPrefixLength, integer: length) }
        if let source = rule.source { request.attribute(NetlinkConstant.ruleSource, source.masked.bytes) }
        if let destination = rule.destination { request.attribute(NetlinkConstant.ruleDestination, destination.masked.bytes) }
        if let ports = rule.destinationPorts {
            var payload: [UInt8] = []
            withUnsafeBytes(of: ports.lowerBound.littleEndian) { payload += $0 }
            withUnsafeBytes(of: ports.upperBound.littleEndian) { payload += $0 }
            request.attribute(NetlinkConstant.ruleDestinationPortRange, payload)
        }
        return request
    }

    // MARK: Parsing

    static func parseLink(_ message: NetlinkMessage) -> LinkInfo? {
        guard message.type == NetlinkConstant.newLink || message.type == NetlinkConstant.deleteLink,
              message.payload.count >= NetlinkConstant.linkHeaderSize else { return nil }
        let base = message.payload.startIndex
        let attributes = message.attributes(afterHeader: NetlinkConstant.linkHeaderSize)
        var kind: String?
        if let info = attributes[NetlinkConstant.linkInfo] {
            kind = NetlinkAttributes(info).string(NetlinkConstant.linkInfoKind)
        }
        return LinkInfo(index: Int32(bitPattern: message.payload.loadUInt32(at: base + 4)),
                        name: attributes.string(NetlinkConstant.linkName) ?? "",
                        flags: message.payload.loadUInt32(at: base + 8),
                        mtu: attributes.uint32(NetlinkConstant.linkMTU) ?? 0, kind: kind)
    }

    static func parseAddress(_ message: NetlinkMessage) -> AddressInfo? {
        guard message.type == NetlinkConstant.newAddress || message.type == NetlinkConstant.deleteAddress,
              message.payload.count >= NetlinkConstant.addressHeaderSize else { return nil }
        let base = message.payload.startIndex
        let attributes = message.attributes(afterHeader: NetlinkConstant.addressHeaderSize)
        guard let bytes = attributes[NetlinkConstant.addressLocal] ?? attributes[NetlinkConstant.addressAddress],
              let prefix = NetworkPrefix(bytes: Array(bytes), length: Int(message.payload[base + 1])) else { return nil }
        return AddressInfo(interfaceIndex: Int32(bitPattern: message.payload.loadUInt32(at: base + 4)),
                           prefix: prefix, scope: message.payload[base + 3])
    }

    static func parseRoute(_ message: NetlinkMessage) -> RouteInfo? {
        guard message.type == NetlinkConstant.newRoute || message.type == NetlinkConstant.deleteRoute,
              message.payload.count >= NetlinkConstant.routeHeaderSize else { return nil }
        let base = message.payload.startIndex
        let family = message.payload[base]
        guard family == NetlinkConstant.familyIPv4 || family == NetlinkConstant.familyIPv6 else { return nil }
        let attributes = message.attributes(afterHeader: NetlinkConstant.routeHeaderSize)
        let zero = [UInt8](repeating: 0, count: family == NetlinkConstant.familyIPv4 ? 4 : 16)
        let destinationBytes = attributes[NetlinkConstant.routeDestination].map(Array.init) ?? zero
        guard let destination = NetworkPrefix(bytes: destinationBytes, length: Int(message.payload[base + 1])) else { return nil }
        return RouteInfo(destination: destination,
                         table: attributes.uint32(NetlinkConstant.routeTable) ?? UInt32(message.payload[base + 4]),
                         outputInterface: attributes.uint32(NetlinkConstant.routeOutput).map { Int32(bitPattern: $0) },
                         gateway: attributes[NetlinkConstant.routeGateway].map(Array.init),
                         metric: attributes.uint32(NetlinkConstant.routePriority) ?? 0,
                         type: message.payload[base + 7], routeProtocol: message.payload[base + 5],
                         scope: message.payload[base + 6])
    }

    static func parseRule(_ message: NetlinkMessage) -> RoutingRule? {
        guard message.type == NetlinkConstant.newRule, message.payload.count >= NetlinkConstant.ruleHeaderSize else { return nil }
        let base = message.payload.startIndex
        guard let family = IPFamily(rawValue: message.payload[base]) else { return nil }
        let attributes = message.attributes(afterHeader: NetlinkConstant.ruleHeaderSize)
        let action: RuleAction
        switch message.payload[base + 7] {
        case 1: action = .lookup(table: attributes.uint32(NetlinkConstant.ruleTable) ?? UInt32(message.payload[base + 4]))
        case 2: action = .goto(priority: attributes.uint32(NetlinkConstant.ruleGoto) ?? 0)
        case 7: action = .unreachable
        default: action = .nop
        }
        var rule = RoutingRule(family: family, priority: attributes.uint32(NetlinkConstant.rulePriority) ?? 0, action: action)
        rule.invert = message.payload.loadUInt32(at: base + 8) & NetlinkConstant.ruleInvert != 0
        rule.mark = attributes.uint32(NetlinkConstant.ruleMark)
        // The kernel reports a full mask for every fwmark rule; nil means "all bits", as on input.
        rule.mask = attributes.uint32(NetlinkConstant.ruleMask).flatMap { $0 == UInt32.max ? nil : $0 }
        rule.inputInterface = attributes.string(NetlinkConstant.ruleInputName)
        rule.outputInterface = attributes.string(NetlinkConstant.ruleOutputName)
        if let range = attributes[NetlinkConstant.ruleUIDRange], range.count >= 8 {
            let low = range.loadUInt32(at: range.startIndex), high = range.loadUInt32(at: range.startIndex + 4)
            if low <= high { rule.uidRange = low...high }
        }
        rule.suppressPrefixLength = attributes.uint32(NetlinkConstant.ruleSuppressPrefixLength).flatMap { $0 == UInt32.max ? nil : $0 }
        if let bytes = attributes[NetlinkConstant.ruleSource] {
            rule.source = NetworkPrefix(bytes: Array(bytes), length: Int(message.payload[base + 2]))
        }
        if let bytes = attributes[NetlinkConstant.ruleDestination] {
            rule.destination = NetworkPrefix(bytes: Array(bytes), length: Int(message.payload[base + 1]))
        }
        if let ports = attributes[NetlinkConstant.ruleDestinationPortRange], ports.count >= 4 {
            let low = ports.loadUInt16(at: ports.startIndex), high = ports.loadUInt16(at: ports.startIndex + 2)
            if low <= high { rule.destinationPorts = low...high }
        }
        return rule
    }
}

extension NetlinkSocket {
    /// Configures an interface the way the tun inbound needs it: MTU, addresses (existing ones are kept),
    /// then up. Returns the link. Throws `NetlinkError` (ENODEV if there is no such link).
    @discardableResult
    package func configureInterface(named name: String, mtu: UInt32?, addresses: [NetworkPrefix], up: Bool = true) throws -> LinkInfo {
        guard let link = try link(named: name) else { throw NetlinkError(operation: "find link \(name)", errno: ENODEV) }
        if let mtu, mtu != link.mtu { try setMTU(mtu, interfaceIndex: link.index) }
        for address in addresses { try addAddress(address, interfaceIndex: link.index) }
        if up && !link.isUp { try setUp(true, interfaceIndex: link.index) }
        return try self.link(named: name) ?? link
    }
}

extension NetlinkSocket {
    /// The policy routing a `tproxy` inbound needs: packets the tproxy table marked with `mark` are
    /// looked up in `table`, where a `local` default route through `lo` delivers them to our
    /// transparent socket. Both families. Replaces an earlier copy (same priority) instead of adding twice.
    package func installTProxyRouting(mark: UInt32, table: UInt32, priority: UInt32) throws {
        try removeTProxyRouting(table: table, priority: priority)
        guard let loopback = try link(named: "lo") else { throw NetlinkError(operation: "find link lo", errno: ENODEV) }
        for family in [IPFamily.inet4, .inet6] {
            let any = NetworkPrefix(bytes: [UInt8](repeating: 0, count: family.addressLength), length: 0)!
            // RTN_LOCAL (2), scope host (254): "local default dev lo table <table>".
            try addRoute(RouteInfo(destination: any, table: table, outputInterface: loopback.index, type: 2, scope: 254), replace: true)
            var rule = RoutingRule(family: family, priority: priority, action: .lookup(table: table))
            rule.mark = mark
            try addRule(rule)
        }
    }

    /// Removes what `installTProxyRouting` added. Idempotent.
    package func removeTProxyRouting(table: UInt32, priority: UInt32) throws {
        for rule in try rules() where rule.priority == priority {
            do { try deleteRule(family: rule.family, priority: priority) }
            catch let error as NetlinkError where error.errno == ENOENT {}
        }
        for route in try routes(table: table) {
            do { try deleteRoute(route) }
            catch let error as NetlinkError where error.errno == ESRCH || error.errno == ENOENT {}
        }
    }
}
