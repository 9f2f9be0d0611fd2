// Property values of the Manager and Link objects, and the C entry points sd-bus calls.
// Values follow resolved-bus.c / resolved-link-bus.c: per-link servers and domains, our stub and
// resolv.conf state; LLMNR, mDNS, DNSSEC and DNS-over-TLS report "no" because this service does
// none of them itself (a link may still carry a DNSOverTLS setting, which the resolved DNS server
// reads).
import Adapter
import CSystemd
import DNS
import Glibc

extension Resolve1Bus {
    func managerProperty(_ name: String, into writer: BusWriter) throws(BusFailure) {
        let all = links.links
        switch name {
        case "LLMNRHostname":
            var buffer = [UInt8](repeating: 0, count: 256)
            gethostname(&buffer, 255)
            try writer.string(String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self))
        case "LLMNR", "MulticastDNS", "DNSOverTLS", "DNSSEC":
            try writer.string("no")
        case "DNS", "DNSEx":
            let extended = name == "DNSEx"
            let contents = extended ? "iiayqs" : "iiay"
            try writer.open("a", "(\(contents))")
            for link in all {
                for server in link.servers {
                    try writer.structure(contents) { () throws(BusFailure) in
                        try writer.int32(link.index)
                        try Self.writeServer(server, extended: extended, into: writer)
                    }
                }
            }
            try writer.close()
        case "FallbackDNS":
            try writer.array("(iiay)", [Int]()) { _ throws(BusFailure) in }
        case "FallbackDNSEx":
            try writer.array("(iiayqs)", [Int]()) { _ throws(BusFailure) in }
        case "CurrentDNSServer", "CurrentDNSServerEx":
            // resolved's manager-level current server is a global one; we have no global servers.
            let extended = name == "CurrentDNSServerEx"
            try writer.structure(extended ? "iiayqs" : "iiay") { () throws(BusFailure) in
                try writer.int32(0)
                try writer.int32(AF_UNSPEC)
                try writer.bytes([])
                if extended {
                    try writer.uint16(0)
                    try writer.string("")
                }
            }
        case "Domains":
            try writer.open("a", "(isb)")
            for link in all {
                for domain in link.domains {
                    try writer.structure("isb") { () throws(BusFailure) in
                        try writer.int32(link.index)
                        try writer.string(domain.name.isEmpty ? "." : domain.name)
                        try writer.bool(domain.routingOnly)
                    }
                }
            }
            try writer.close()
        case "TransactionStatistics":
            let statistics = queries.transactionStatistics
            try writer.structure("tt") { () throws(BusFailure) in
                try writer.uint64(statistics.current)
                try writer.uint64(statistics.total)
            }
        case "CacheStatistics":
            // The DNS router's cache: size, hits, misses (resolved sums its scopes' caches).
            let statistics = queries.backend.cacheStatistics
            try writer.structure("ttt") { () throws(BusFailure) in
                try writer.uint64(statistics.size)
                try writer.uint64(statistics.hits)
                try writer.uint64(statistics.misses)
            }
        case "DNSSECStatistics":
            // No DNSSEC validation here: no secure, insecure, bogus or indeterminate verdicts.
            try writer.structure("tttt") { () throws(BusFailure) in
                for _ in 0..<4 { try writer.uint64(0) }
            }
        case "DNSSECSupported":
            try writer.bool(false)
        case "DNSSECNegativeTrustAnchors":
            try writer.array("s", [String]()) { _ throws(BusFailure) in }
        case "DNSStubListener":
            try writer.string(info.stubListener)
        case "ResolvConfMode":
            try writer.string(ResolvConfWriter.mode(runtimeDirectory: info.runtimeDirectory))
        default:
            throw BusFailure(code: -ENOENT)
        }
    }

    func linkProperty(_ name: String, index: Int32, into writer: BusWriter) throws(BusFailure) {
        let settings = links.settings(index)
        switch name {
        case "ScopesMask":
            // SD_RESOLVED_DNS (1): a unicast DNS scope exists once the link has servers.
            try writer.uint64(settings.servers.isEmpty ? 0 : 1)
        case "DNS", "DNSEx":
            let extended = name == "DNSEx"
            try writer.array(extended ? "(iayqs)" : "(iay)", settings.servers) { server throws(BusFailure) in
                try writer.structure(extended ? "iayqs" : "iay") { () throws(BusFailure) in
                    try Self.writeServer(server, extended: extended, into: writer)
                }
            }
        case "CurrentDNSServer", "CurrentDNSServerEx":
            let extended = name == "CurrentDNSServerEx"
            try writer.structure(extended ? "iayqs" : "iay") { () throws(BusFailure) in
                if let first = settings.servers.first {
                    try Self.writeServer(first, extended: extended, into: writer)
                } else {
                    try writer.int32(AF_UNSPEC)
                    try writer.bytes([])
                    if extended {
                        try writer.uint16(0)
                        try writer.string("")
                    }
                }
            }
        case "Domains":
            try writer.array("(sb)", settings.domains) { domain throws(BusFailure) in
                try writer.structure("sb") { () throws(BusFailure) in
                    try writer.string(domain.name.isEmpty ? "." : domain.name)
                    try writer.bool(domain.routingOnly)
                }
            }
        case "DefaultRoute":
            // link_get_default_route: what is set, else what is in effect — which needs a DNS scope.
            let link = ResolvedLink(index: index, name: "", servers: settings.servers, domains: settings.domains,
                                    defaultRoute: settings.defaultRoute)
            try writer.bool(settings.defaultRoute ?? (!settings.servers.isEmpty && link.isDefaultRoute))
        case "LLMNR":
            try writer.string(settings.llmnr.isEmpty ? "no" : settings.llmnr)
        case "MulticastDNS":
            try writer.string(settings.multicastDNS.isEmpty ? "no" : settings.multicastDNS)
        case "DNSOverTLS":
            try writer.string(settings.dnsOverTLS.isEmpty ? "no" : settings.dnsOverTLS)
        case "DNSSEC":
            try writer.string(settings.dnssec.isEmpty ? "no" : settings.dnssec)
        case "DNSSECNegativeTrustAnchors":
            try writer.array("s", settings.negativeTrustAnchors) { name throws(BusFailure) in try writer.string(name) }
        case "DNSSECSupported":
            try writer.bool(false)
        default:
            throw BusFailure(code: -ENOENT)
        }
    }

    /// family, address[, port, server name] of one server.
    static func writeServer(_ server: ResolvedLinkServer, extended: Bool, into writer: BusWriter) throws(BusFailure) {
        try writer.int32(server.address.isIPv4 ? AF_INET : AF_INET6)
        try writer.bytes(server.address.bytes)
        if extended {
            try writer.uint16(server.port)
            try writer.string(server.serverName)
        }
    }
}

// MARK: C entry points (userdata is the unretained Resolve1Bus)

private func bus(_ userdata: UnsafeMutableRawPointer?) -> Resolve1Bus {
    Unmanaged<Resolve1Bus>.fromOpaque(userdata!).takeUnretainedValue()
}

let managerMethodThunk: sd_bus_message_handler_t = { message, userdata, error in
    guard let message else { return -EINVAL }
    return bus(userdata).handleManager(message, error: error)
}

let linkMethodThunk: sd_bus_message_handler_t = { message, userdata, error in
    guard let message else { return -EINVAL }
    return bus(userdata).handleLink(message, error: error)
}

let managerPropertyThunk: sd_bus_property_get_t = { _, _, _, property, reply, userdata, _ in
    guard let property, let reply else { return -EINVAL }
    do throws(BusFailure) {
        try bus(userdata).managerProperty(String(cString: property), into: BusWriter(message: reply))
        return 1
    } catch {
        return error.code
    }
}

let linkPropertyThunk: sd_bus_property_get_t = { _, path, _, property, reply, userdata, _ in
    guard let property, let reply, let index = Resolve1Bus.linkIndex(path: path) else { return -EINVAL }
    do throws(BusFailure) {
        try bus(userdata).linkProperty(String(cString: property), index: index, into: BusWriter(message: reply))
        return 1
    } catch {
        return error.code
    }
}

/// A link object exists for every interface netlink knows (resolved creates a Link per RTM_NEWLINK).
let linkFindThunk: sd_bus_object_find_t = { _, path, _, userdata, found, _ in
    guard let index = Resolve1Bus.linkIndex(path: path),
          bus(userdata).links.interfaces.contains(where: { $0.index == index }) else { return 0 }
    found?.pointee = userdata
    return 1
}

/// Lists the link objects for introspection (`busctl tree`); sd-bus frees the strv.
let linkEnumeratorThunk: sd_bus_node_enumerator_t = { _, _, userdata, nodes, _ in
    let indexes = bus(userdata).links.interfaces.map(\.index)
    guard let list = malloc(MemoryLayout<UnsafeMutablePointer<CChar>?>.stride * (indexes.count + 1))?
        .assumingMemoryBound(to: UnsafeMutablePointer<CChar>?.self) else { return -ENOMEM }
    for (offset, index) in indexes.enumerated() {
        list[offset] = strdup(Resolve1Bus.linkPath(index))
    }
    list[indexes.count] = nil
    nodes?.pointee = list
    return 1
}
