// Resolve1Bus: the org.freedesktop.resolve1 objects on sd-bus.
//
// - Manager at /org/freedesktop/resolve1: the methods and properties of systemd 252's
//   resolved-bus.c (signatures checked against it), plus org.freedesktop.DBus.Properties and
//   Introspectable, which sd-bus provides from the vtable.
// - Link objects under /org/freedesktop/resolve1/link/_<ifindex> (a fallback vtable whose find
//   callback accepts every ifindex netlink knows, and a node enumerator for introspection).
// Every handler runs on the bus thread. Setters check the caller (euid 0 only, else AccessDenied)
// and reply at once; Resolve* calls keep a reference to the call, run the query in a task and post
// the reply back to the bus thread. sd-bus itself rejects arguments that do not match a signature
// (InvalidArgs) before a handler runs.
import Adapter
import CSystemd
import DNS
import Glibc

/// What the Manager reports about the service itself.
package struct ManagerInfo: Sendable {
    /// DNSStubListener: "yes" (UDP and TCP), "udp", "tcp" or "no".
    package var stubListener: String
    /// Where resolv.conf files are written, for ResolvConfMode.
    package var runtimeDirectory: String

    /// The facts for one service.
    package init(stubListener: String, runtimeDirectory: String) {
        self.stubListener = stubListener
        self.runtimeDirectory = runtimeDirectory
    }
}

/// The resolve1 objects on one bus connection. Create, `register()`, then start the `BusLoop`.
package final class Resolve1Bus: @unchecked Sendable {
    /// The connection and its thread; every handler runs there.
    package let loop: BusLoop
    /// Per-link settings the Set* methods change.
    package let links: LinkTable
    /// Where Resolve* calls go.
    package let queries: ResolveQueries
    /// Manager-level facts (stub mode, runtime directory).
    package let info: ManagerInfo
    /// Vtables and the strings they point at, alive as long as the bus (sd-bus keeps the pointers).
    private var storage: [UnsafeMutableRawPointer] = []

    /// The objects; nothing is on the bus until `register()`.
    package init(loop: BusLoop, links: LinkTable, queries: ResolveQueries, info: ManagerInfo) {
        self.loop = loop
        self.links = links
        self.queries = queries
        self.info = info
    }

    deinit {
        for pointer in storage { free(pointer) }
    }

    /// Adds the objects and takes the bus name. Runs before the loop thread starts. Throws Go's
    /// wording when the name is taken: `D-Bus object already exists, maybe real resolved is running`.
    package func register() throws(Resolve1Error) {
        guard let bus = loop.bus else { throw .system("bus", EBADF) }
        let userdata = Unmanaged.passUnretained(self).toOpaque()
        let manager = buildVtable(Self.managerEntries, method: managerMethodThunk, getter: managerPropertyThunk)
        var result = sd_bus_add_object_vtable(bus, nil, Resolve1Module.managerPath, "org.freedesktop.resolve1.Manager", manager, userdata)
        guard result >= 0 else { throw .system("add manager object", -result) }
        let link = buildVtable(Self.linkEntries, method: linkMethodThunk, getter: linkPropertyThunk)
        result = sd_bus_add_fallback_vtable(bus, nil, Resolve1Module.linkPathPrefix, "org.freedesktop.resolve1.Link", link, linkFindThunk, userdata)
        guard result >= 0 else { throw .system("add link objects", -result) }
        result = sd_bus_add_node_enumerator(bus, nil, Resolve1Module.linkPathPrefix, linkEnumeratorThunk, userdata)
        guard result >= 0 else { throw .system("add link enumerator", -result) }
        // SD_BUS_NAME_QUEUE not set: fail at once when someone else owns it (Go: DoNotQueue).
        result = sd_bus_request_name(bus, Resolve1Module.busName, 0)
        if result == -EEXIST { throw .system("D-Bus object already exists, maybe real resolved is running", EEXIST) }
        guard result >= 0 else { throw .system("request name \(Resolve1Module.busName)", -result) }
    }

    // MARK: Vtables

    enum Entry {
        case method(String, String, String, [String], [String], unprivileged: Bool)
        case property(String, String)
    }

    static let managerEntries: [Entry] = [
        .property("LLMNRHostname", "s"), .property("LLMNR", "s"), .property("MulticastDNS", "s"),
        .property("DNSOverTLS", "s"), .property("DNS", "a(iiay)"), .property("DNSEx", "a(iiayqs)"),
        .property("FallbackDNS", "a(iiay)"), .property("FallbackDNSEx", "a(iiayqs)"),
        .property("CurrentDNSServer", "(iiay)"), .property("CurrentDNSServerEx", "(iiayqs)"),
        .property("Domains", "a(isb)"), .property("TransactionStatistics", "(tt)"), .property("CacheStatistics", "(ttt)"),
        .property("DNSSEC", "s"), .property("DNSSECStatistics", "(tttt)"), .property("DNSSECSupported", "b"),
        .property("DNSSECNegativeTrustAnchors", "as"), .property("DNSStubListener", "s"), .property("ResolvConfMode", "s"),
        .method("ResolveHostname", "isit", "a(iiay)st", ["ifindex", "name", "family", "flags"], ["addresses", "canonical", "flags"], unprivileged: true),
        .method("ResolveAddress", "iiayt", "a(is)t", ["ifindex", "family", "address", "flags"], ["names", "flags"], unprivileged: true),
        .method("ResolveRecord", "isqqt", "a(iqqay)t", ["ifindex", "name", "class", "type", "flags"], ["records", "flags"], unprivileged: true),
        .method("ResolveService", "isssit", "a(qqqsa(iiay)s)aayssst", ["ifindex", "name", "type", "domain", "family", "flags"],
                ["srv_data", "txt_data", "canonical_name", "canonical_type", "canonical_domain", "flags"], unprivileged: true),
        .method("GetLink", "i", "o", ["ifindex"], ["path"], unprivileged: true),
        .method("SetLinkDNS", "ia(iay)", "", ["ifindex", "addresses"], [], unprivileged: true),
        .method("SetLinkDNSEx", "ia(iayqs)", "", ["ifindex", "addresses"], [], unprivileged: true),
        .method("SetLinkDomains", "ia(sb)", "", ["ifindex", "domains"], [], unprivileged: true),
        .method("SetLinkDefaultRoute", "ib", "", ["ifindex", "enable"], [], unprivileged: true),
        .method("SetLinkLLMNR", "is", "", ["ifindex", "mode"], [], unprivileged: true),
        .method("SetLinkMulticastDNS", "is", "", ["ifindex", "mode"], [], unprivileged: true),
        .method("SetLinkDNSOverTLS", "is", "", ["ifindex", "mode"], [], unprivileged: true),
        .method("SetLinkDNSSEC", "is", "", ["ifindex", "mode"], [], unprivileged: true),
        .method("SetLinkDNSSECNegativeTrustAnchors", "ias", "", ["ifindex", "names"], [], unprivileged: true),
        .method("RevertLink", "i", "", ["ifindex"], [], unprivileged: true),
        .method("FlushCaches", "", "", [], [], unprivileged: true),
        .method("ResetStatistics", "", "", [], [], unprivileged: true),
        .method("ResetServerFeatures", "", "", [], [], unprivileged: true),
    ]

    static let linkEntries: [Entry] = [
        .property("ScopesMask", "t"), .property("DNS", "a(iay)"), .property("DNSEx", "a(iayqs)"),
        .property("CurrentDNSServer", "(iay)"), .property("CurrentDNSServerEx", "(iayqs)"), .property("Domains", "a(sb)"),
        .property("DefaultRoute", "b"), .property("LLMNR", "s"), .property("MulticastDNS", "s"), .property("DNSOverTLS", "s"),
        .property("DNSSEC", "s"), .property("DNSSECNegativeTrustAnchors", "as"), .property("DNSSECSupported", "b"),
        .method("SetDNS", "a(iay)", "", ["addresses"], [], unprivileged: true),
        .method("SetDNSEx", "a(iayqs)", "", ["addresses"], [], unprivileged: true),
        .method("SetDomains", "a(sb)", "", ["domains"], [], unprivileged: true),
        .method("SetDefaultRoute", "b", "", ["enable"], [], unprivileged: true),
        .method("SetLLMNR", "s", "", ["mode"], [], unprivileged: true),
        .method("SetMulticastDNS", "s", "", ["mode"], [], unprivileged: true),
        .method("SetDNSOverTLS", "s", "", ["mode"], [], unprivileged: true),
        .method("SetDNSSEC", "s", "", ["mode"], [], unprivileged: true),
        .method("SetDNSSECNegativeTrustAnchors", "as", "", ["names"], [], unprivileged: true),
        .method("Revert", "", "", [], [], unprivileged: true),
    ]

    /// A vtable for `entries`; properties change on calls, so they are not CONST (GetAll re-reads).
    private func buildVtable(_ entries: [Entry], method: sd_bus_message_handler_t, getter: sd_bus_property_get_t) -> UnsafeMutablePointer<sd_bus_vtable> {
        let table = UnsafeMutablePointer<sd_bus_vtable>.allocate(capacity: entries.count + 2)
        storage.append(UnsafeMutableRawPointer(table))
        csystemd_vtable_start(table, 0)
        for (offset, entry) in entries.enumerated() {
            let slot = table + 1 + offset
            switch entry {
            case .method(let member, let signature, let result, let inNames, let outNames, let unprivileged):
                // The names blob holds embedded NULs: each name ends with one (SD_BUS_PARAM).
                let names: [UInt8] = (inNames + outNames).flatMap { Array($0.utf8) + [UInt8(0)] } + [UInt8(0)]
                csystemd_vtable_method(slot, keep(member), keep(signature), keep(result), keep(bytes: names), method,
                                       unprivileged ? csystemd_vtable_unprivileged() : 0)
            case .property(let member, let signature):
                csystemd_vtable_property(slot, keep(member), keep(signature), getter, 0)
            }
        }
        csystemd_vtable_end(table + 1 + entries.count)
        return table
    }

    private func keep(_ text: String) -> UnsafePointer<CChar> { keep(bytes: Array(text.utf8) + [0]) }

    private func keep(bytes: [UInt8]) -> UnsafePointer<CChar> {
        let pointer = malloc(bytes.count)!
        bytes.withUnsafeBytes { pointer.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        storage.append(pointer)
        return UnsafePointer(pointer.assumingMemoryBound(to: CChar.self))
    }

    // MARK: Dispatch

    /// Runs a Manager method; returns what the C handler returns.
    func handleManager(_ message: OpaquePointer, error busError: UnsafeMutablePointer<sd_bus_error>?) -> Int32 {
        let member = String(cString: sd_bus_message_get_member(message))
        let reader = BusReader(message: message)
        do {
            switch member {
            case "ResolveHostname", "ResolveAddress", "ResolveRecord", "ResolveService":
                return try startQuery(member, reader: reader, message: message)
            case "GetLink":
                let index = try reader.int32()
                _ = try links.interface(index)
                let path = Self.linkPath(index)
                return reply(message) { writer throws(BusFailure) in try writer.string(path, type: "o") }
            case "FlushCaches":
                try checkPrivileged(message, member)
                queries.backend.flushCaches()
                return reply(message)
            case "ResetStatistics":
                try checkPrivileged(message, member)
                queries.resetStatistics()
                queries.backend.resetCacheStatistics()
                return reply(message)
            case "ResetServerFeatures":
                // We keep no per-server feature levels (EDNS0/DO probing); nothing to forget.
                try checkPrivileged(message, member)
                return reply(message)
            default:
                guard member.hasPrefix("SetLink") || member == "RevertLink" else {
                    throw Resolve1Error.bus(name: "org.freedesktop.DBus.Error.UnknownMethod", message: "Unknown method \(member)")
                }
                let index = try reader.int32()
                let linkMember = member == "RevertLink" ? "Revert" : String(member.dropFirst("SetLink".count).prepending("Set"))
                return try applyLinkMethod(linkMember, index: index, reader: reader, message: message, called: member)
            }
        } catch {
            return fail(error, into: busError)
        }
    }

    /// Runs a Link method on the object at the message's path.
    func handleLink(_ message: OpaquePointer, error busError: UnsafeMutablePointer<sd_bus_error>?) -> Int32 {
        let member = String(cString: sd_bus_message_get_member(message))
        do {
            guard let index = Self.linkIndex(path: sd_bus_message_get_path(message)) else { throw Resolve1Error.invalidArgs("Invalid interface index") }
            return try applyLinkMethod(member, index: index, reader: BusReader(message: message), message: message, called: member)
        } catch {
            return fail(error, into: busError)
        }
    }

    private func fail(_ thrown: any Error, into error: UnsafeMutablePointer<sd_bus_error>?) -> Int32 {
        switch thrown {
        case let resolveError as Resolve1Error:
            if case .bus(let name, let message) = resolveError { return sd_bus_error_set(error, name, message) }
            return sd_bus_error_set(error, "org.freedesktop.DBus.Error.Failed", resolveError.description)
        case let busFailure as BusFailure:
            return sd_bus_error_set(error, "org.freedesktop.DBus.Error.InvalidArgs", "Invalid arguments: \(String(cString: strerror(-busFailure.code)))")
        default:
            return sd_bus_error_set(error, "org.freedesktop.DBus.Error.Failed", "\(thrown)")
        }
    }

    /// The Link-interface methods, shared with the Manager's SetLink*/RevertLink; `called` is the
    /// member the caller named (for the refusal text).
    private func applyLinkMethod(_ member: String, index: Int32, reader: BusReader, message: OpaquePointer, called: String) throws -> Int32 {
        // resolved checks the link before authorization (verify_unmanaged_link, then polkit).
        _ = try links.interface(index)
        switch member {
        case "SetDNS", "SetDNSEx":
            let extended = member == "SetDNSEx"
            var servers: [ResolvedLinkServer] = []
            var invalid: Resolve1Error?
            try reader.array(extended ? "iayqs" : "iay") { () throws(BusFailure) in
                let family = try reader.int32()
                let bytes = try reader.bytes()
                var port: UInt16 = 0
                var serverName = ""
                if extended {
                    port = try reader.uint16()
                    serverName = try reader.string()
                }
                guard family == AF_INET || family == AF_INET6 else {
                    invalid = invalid ?? .invalidArgs("Unknown address family \(family)")
                    return
                }
                guard bytes.count == (family == AF_INET ? 4 : 16), let address = IPAddress(bytes: bytes) else {
                    invalid = invalid ?? .invalidArgs("Invalid address size")
                    return
                }
                // resolved refuses its own stub as an upstream (a loop).
                if address.isIPv4, bytes == [127, 0, 0, 53] || bytes == [127, 0, 0, 54] {
                    invalid = invalid ?? .invalidArgs("DNS server \(address) is a stub resolver, refusing")
                    return
                }
                servers.append(ResolvedLinkServer(address: address, port: port, serverName: serverName))
            }
            if let invalid { throw invalid }
            try checkPrivileged(message, called)
            try links.setServers(index, servers)
        case "SetDomains":
            var domains: [(String, Bool)] = []
            try reader.array("sb") { () throws(BusFailure) in domains.append((try reader.string(), try reader.bool())) }
            try checkPrivileged(message, called)
            try links.setDomains(index, domains)
        case "SetDefaultRoute":
            let enabled = try reader.bool()
            try checkPrivileged(message, called)
            try links.setDefaultRoute(index, enabled)
        case "SetLLMNR", "SetMulticastDNS":
            let mode = try reader.string()
            try checkPrivileged(message, called)
            try links.setResolveSupport(index, multicast: member == "SetMulticastDNS", mode)
        case "SetDNSOverTLS":
            let mode = try reader.string()
            try checkPrivileged(message, called)
            try links.setDNSOverTLS(index, mode)
        case "SetDNSSEC":
            let mode = try reader.string()
            try checkPrivileged(message, called)
            try links.setDNSSEC(index, mode)
        case "SetDNSSECNegativeTrustAnchors":
            let names = try reader.strings()
            try checkPrivileged(message, called)
            try links.setNegativeTrustAnchors(index, names)
        case "Revert":
            try checkPrivileged(message, called)
            try links.revert(index)
        default:
            throw Resolve1Error.bus(name: "org.freedesktop.DBus.Error.UnknownMethod", message: "Unknown method \(member)")
        }
        return reply(message)
    }

    /// Only euid 0 changes settings (resolved asks polkit for CAP_NET_ADMIN; we have no polkit agent
    /// and keep the bus policy as the outer gate). sd-bus's own wording for the refusal.
    private func checkPrivileged(_ message: OpaquePointer, _ member: String) throws(Resolve1Error) {
        var creds: OpaquePointer?
        let result = sd_bus_query_sender_creds(message, csystemd_creds_uids(), &creds)
        guard result >= 0, let creds else { throw .accessDenied("Access to \(member)() not permitted.") }
        defer { sd_bus_creds_unref(creds) }
        var uid: uid_t = .max
        if sd_bus_creds_get_euid(creds, &uid) < 0 {
            guard sd_bus_creds_get_uid(creds, &uid) >= 0 else { throw .accessDenied("Access to \(member)() not permitted.") }
        }
        guard uid == 0 else { throw .accessDenied("Access to \(member)() not permitted.") }
    }

    // MARK: Replies

    /// Replies at once with `body` appended; returns 1 (handled) or the send error.
    private func reply(_ call: OpaquePointer, _ body: (BusWriter) throws(BusFailure) -> Void = { _ throws(BusFailure) in }) -> Int32 {
        var reply: OpaquePointer?
        var result = sd_bus_message_new_method_return(call, &reply)
        guard result >= 0, let reply else { return result }
        defer { sd_bus_message_unref(reply) }
        do { try body(BusWriter(message: reply)) } catch { return error.code }
        result = sd_bus_send(nil, reply, nil)
        return result < 0 ? result : 1
    }

    /// A reply computed later: the writer closure or an error.
    enum PendingReply: Sendable {
        case success(@Sendable (BusWriter) throws(BusFailure) -> Void)
        case failure(Resolve1Error)
    }

    /// Keeps `call` alive, runs `work` in a task and posts its reply to the bus thread.
    private func replyLater(_ call: OpaquePointer, _ work: @escaping @Sendable () async -> PendingReply) -> Int32 {
        sd_bus_message_ref(call)
        let held = HeldMessage(call)
        Task { [loop] in
            let outcome = await work()
            loop.post {
                switch outcome {
                case .success(let body):
                    _ = self.reply(held.message, body)
                case .failure(let failure):
                    var error = sd_bus_error()
                    if case .bus(let name, let text) = failure {
                        sd_bus_error_set(&error, name, text)
                    } else {
                        sd_bus_error_set(&error, "org.freedesktop.DBus.Error.Failed", failure.description)
                    }
                    sd_bus_reply_method_error(held.message, &error)
                    sd_bus_error_free(&error)
                }
                sd_bus_message_unref(held.message)
            }
        }
        return 1
    }

    private func startQuery(_ member: String, reader: BusReader, message: OpaquePointer) throws -> Int32 {
        let queries = self.queries
        switch member {
        case "ResolveHostname":
            let index = try reader.int32(), name = try reader.string(), family = try reader.int32()
            _ = try reader.uint64()
            try ResolveQueries.checkIfindex(index)
            return replyLater(message) {
                do throws(Resolve1Error) {
                    let result = try await queries.resolveHostname(name, family: family)
                    return .success { writer throws(BusFailure) in
                        try writer.array("(iiay)", result.addresses) { address throws(BusFailure) in
                            try writer.structure("iiay") { () throws(BusFailure) in
                                try writer.int32(index)
                                try writer.int32(address.isIPv4 ? AF_INET : AF_INET6)
                                try writer.bytes(address.bytes)
                            }
                        }
                        try writer.string(result.canonical)
                        try writer.uint64(resolvedFromNetwork)
                    }
                } catch { return .failure(error) }
            }
        case "ResolveAddress":
            let index = try reader.int32(), family = try reader.int32(), address = try reader.bytes()
            _ = try reader.uint64()
            try ResolveQueries.checkIfindex(index)
            return replyLater(message) {
                do throws(Resolve1Error) {
                    let names = try await queries.resolveAddress(family: family, address: address)
                    return .success { writer throws(BusFailure) in
                        try writer.array("(is)", names) { name throws(BusFailure) in
                            try writer.structure("is") { () throws(BusFailure) in
                                try writer.int32(index)
                                try writer.string(name)
                            }
                        }
                        try writer.uint64(resolvedFromNetwork)
                    }
                } catch { return .failure(error) }
            }
        case "ResolveRecord":
            let index = try reader.int32(), name = try reader.string(), dnsClass = try reader.uint16(), type = try reader.uint16()
            _ = try reader.uint64()
            try ResolveQueries.checkIfindex(index)
            return replyLater(message) {
                do throws(Resolve1Error) {
                    let records = try await queries.resolveRecord(name, class: dnsClass, type: type)
                    return .success { writer throws(BusFailure) in
                        try writer.array("(iqqay)", records) { record throws(BusFailure) in
                            try writer.structure("iqqay") { () throws(BusFailure) in
                                try writer.int32(index)
                                try writer.uint16(record.class)
                                try writer.uint16(record.type)
                                try writer.bytes(record.wire)
                            }
                        }
                        try writer.uint64(resolvedFromNetwork)
                    }
                } catch { return .failure(error) }
            }
        default:  // ResolveService
            let index = try reader.int32(), name = try reader.string(), type = try reader.string()
            let domain = try reader.string(), family = try reader.int32()
            _ = try reader.uint64()
            try ResolveQueries.checkIfindex(index)
            return replyLater(message) {
                do throws(Resolve1Error) {
                    let answer = try await queries.resolveService(name: name, type: type, domain: domain, family: family)
                    return .success { writer throws(BusFailure) in
                        try writer.array("(qqqsa(iiay)s)", answer.targets) { target throws(BusFailure) in
                            try writer.structure("qqqsa(iiay)s") { () throws(BusFailure) in
                                try writer.uint16(target.priority)
                                try writer.uint16(target.weight)
                                try writer.uint16(target.port)
                                try writer.string(target.hostname)
                                try writer.array("(iiay)", target.addresses) { address throws(BusFailure) in
                                    try writer.structure("iiay") { () throws(BusFailure) in
                                        try writer.int32(index)
                                        try writer.int32(address.isIPv4 ? AF_INET : AF_INET6)
                                        try writer.bytes(address.bytes)
                                    }
                                }
                                try writer.string(target.canonical)
                            }
                        }
                        try writer.array("ay", answer.txt) { text throws(BusFailure) in try writer.bytes(text) }
                        try writer.string(answer.canonicalName)
                        try writer.string(answer.canonicalType)
                        try writer.string(answer.canonicalDomain)
                        try writer.uint64(resolvedFromNetwork)
                    }
                } catch { return .failure(error) }
            }
        }
    }

    // MARK: Paths

    /// `/org/freedesktop/resolve1/link/_<ifindex>`: sd_bus_path_encode escapes the leading digit.
    static func linkPath(_ index: Int32) -> String {
        var encoded: UnsafeMutablePointer<CChar>?
        guard sd_bus_path_encode(Resolve1Module.linkPathPrefix, String(index), &encoded) >= 0, let encoded else {
            return "\(Resolve1Module.linkPathPrefix)/_\(index)"
        }
        defer { free(encoded) }
        return String(cString: encoded)
    }

    /// The ifindex in a link object path, nil for anything else.
    static func linkIndex(path: UnsafePointer<CChar>?) -> Int32? {
        guard let path else { return nil }
        var decoded: UnsafeMutablePointer<CChar>?
        guard sd_bus_path_decode(path, Resolve1Module.linkPathPrefix, &decoded) > 0, let decoded else { return nil }
        defer { free(decoded) }
        guard let index = Int32(String(cString: decoded)), index > 0 else { return nil }
        return index
    }
}

/// A referenced sd_bus_message handed to another task and back to the bus thread, which alone
/// touches it.
private struct HeldMessage: @unchecked Sendable {
    let message: OpaquePointer
    init(_ message: OpaquePointer) { self.message = message }
}

extension Substring {
    fileprivate func prepending(_ prefix: String) -> String { prefix + self }
}
