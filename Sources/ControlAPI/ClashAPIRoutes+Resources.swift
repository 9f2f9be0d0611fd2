// The Clash API's resource routes beyond proxies and flows, as Go 1.12.12's clashapi answers them:
// `/rules`, the provider stubs (`/providers/proxies`, `/providers/rules`), `/script`,
// `/profile/tracing`, `/cache/fakeip/flush`, `/dns/query` and the meta `/group` routes.
import Adapter
import Config
import DNS
import Foundation
import Group
import NIOCore
import NIOHTTP1

extension ClashAPIRoutes {
    /// The response for these routes, or nil when the path is not one of them.
    func resourceRoute(_ head: HTTPRequestHead, parts: [String], query: [String: String]) async -> ClashAPIResponse? {
        switch (parts.first, parts.count) {
        case ("rules"?, 1):
            guard head.method == .GET else { return ClashAPIResponse(status: .methodNotAllowed) }
            return ClashAPIResponse(json: rules())
        case ("providers"?, 2...):
            return providers(head.method, parts: parts)
        case ("script"?, 1):
            // Go's script handlers are commented out down to their last lines.
            switch head.method {
            case .POST: return ClashAPIResponse(status: .badRequest, message: "not implemented")
            case .PATCH: return ClashAPIResponse(status: .noContent)
            default: return ClashAPIResponse(status: .methodNotAllowed)
            }
        case ("profile"?, 2) where parts[1] == "tracing":
            guard head.method == .GET else { return ClashAPIResponse(status: .methodNotAllowed) }
            return ClashAPIResponse(status: .notFound, message: "Resource not found")
        case ("cache"?, 3) where parts[1] == "fakeip" && parts[2] == "flush":
            // (1.12 has no `/cache/dns/flush`; that came later.)
            guard head.method == .POST else { return ClashAPIResponse(status: .methodNotAllowed) }
            setup.dns?.resetFakeIP?()
            return ClashAPIResponse(status: .noContent)
        case ("dns"?, 2) where parts[1] == "query":
            guard head.method == .GET else { return ClashAPIResponse(status: .methodNotAllowed) }
            return await dnsQuery(name: query["name"] ?? "", type: query["type"] ?? "")
        case ("group"?, 1):
            guard head.method == .GET else { return ClashAPIResponse(status: .methodNotAllowed) }
            return ClashAPIResponse(json: .object(JSONObject([("proxies", .array(groups()))])))
        case ("group"?, 2), ("group"?, 3) where parts.count == 2 || parts[2] == "delay":
            guard head.method == .GET else { return ClashAPIResponse(status: .methodNotAllowed) }
            guard let name = parts[1].removingPercentEncoding, let proxy = setup.outbounds.outbound(name) else {
                return ClashAPIResponse(status: .notFound, message: "Resource not found")
            }
            guard let group = proxy as? any OutboundGroup else { return ClashAPIResponse(status: .notFound, message: "Resource not found") }
            return parts.count == 2 ? ClashAPIResponse(json: info(proxy)) : await groupDelay(group, query: query)
        default:
            return nil
        }
    }

    /// Go's `getRules`: `null` when there are none (a nil slice).
    private func rules() -> JSONValue {
        let list: JSONValue = setup.rules.isEmpty ? .null : .array(setup.rules.map { rule in
            .object(JSONObject([("type", .string(rule.type)), ("payload", .string(rule.payload)), ("proxy", .string(rule.proxy))]))
        })
        return .object(JSONObject([("rules", list)]))
    }

    /// Go has no providers: empty lists, and every named provider is missing.
    private func providers(_ method: HTTPMethod, parts: [String]) -> ClashAPIResponse? {
        let kind = parts[1]
        guard kind == "proxies" || kind == "rules" else { return nil }
        switch parts.count {
        case 2:
            guard method == .GET else { return ClashAPIResponse(status: .methodNotAllowed) }
            let empty: JSONValue = kind == "proxies" ? .object(JSONObject([])) : .array([])
            return ClashAPIResponse(json: .object(JSONObject([("providers", empty)])))
        case 3:
            guard method == .GET || method == .PUT else { return ClashAPIResponse(status: .methodNotAllowed) }
            return ClashAPIResponse(status: .notFound, message: "Resource not found")
        case 4 where kind == "proxies" && parts[3] == "healthcheck":
            guard method == .GET else { return ClashAPIResponse(status: .methodNotAllowed) }
            return ClashAPIResponse(status: .notFound, message: "Resource not found")
        default:
            return nil
        }
    }

    /// Go's `getGroups`: the groups' proxy info, in outbound order.
    private func groups() -> [JSONValue] {
        setup.outbounds.all.filter { $0 is any OutboundGroup }.map(info)
    }

    /// Go's `getGroupDelay`: a urltest group tests its members with its own URL; any other group
    /// tests each member (by the outbound it points at) with the request's URL. The answer maps
    /// member tags to the delays that came back in time.
    private func groupDelay(_ group: any OutboundGroup, query: [String: String]) async -> ClashAPIResponse {
        guard let timeout = Int32(query["timeout"] ?? "") else { return ClashAPIResponse(status: .badRequest, message: "Body invalid") }
        var requested = query["url"] ?? ""
        if requested.hasPrefix("http://") { requested = "" }
        let url = requested.isEmpty ? Self.defaultTestURL : requested
        let deadline = UInt64(max(timeout, 0)) * 1_000_000
        var results: [String: UInt16] = [:]
        if let urlTest = group as? URLTestOutbound {
            results = await withTaskGroup(of: [String: UInt16]?.self) { tasks in
                tasks.addTask { await urlTest.check(force: true) }
                tasks.addTask {
                    try? await Task.sleep(nanoseconds: deadline)
                    return nil
                }
                let first = await tasks.next() ?? nil
                tasks.cancelAll()
                return first ?? [:]
            }
        } else {
            var seen = Set<String>()
            var jobs: [(tag: String, outbound: any Outbound)] = []
            for member in group.members {
                guard let outbound = setup.outbounds.outbound(member) else { continue }
                let real = realTag(outbound)
                guard seen.insert(real).inserted, let target = setup.outbounds.outbound(real) else { continue }
                jobs.append((member, target))
            }
            let probe = setup.probe, history = self.history, logger = setup.logger
            results = await runProbes(jobs.map { job in (job.tag, {
                let real = realTag(job.outbound)
                let start = NIODeadline.now()
                let failure = await Self.race(nanoseconds: deadline) { try await probe(job.outbound, url) }
                let delay = UInt16(clamping: (NIODeadline.now() - start).nanoseconds / 1_000_000)
                guard let failure else {
                    logger.debug("outbound \(job.tag) available: \(delay)ms")
                    history.store(real, delay: delay)
                    return delay
                }
                logger.debug("outbound \(job.tag) unavailable: \(failure)")
                history.delete(real)
                return nil
            }) })
        }
        // Go renders the map with its keys sorted.
        return ClashAPIResponse(json: .object(JSONObject(results.keys.sorted().map { ($0, .number(String(results[$0]!))) })))
    }

    /// Runs `work` against a deadline: nil when it finished in time, else what stopped it.
    private static func race(nanoseconds: UInt64, _ work: @escaping @Sendable () async throws -> Void) async -> String? {
        await withTaskGroup(of: String?.self) { tasks in
            tasks.addTask {
                do { try await work(); return nil } catch { return "\(error)" }
            }
            tasks.addTask {
                try? await Task.sleep(nanoseconds: nanoseconds)
                return "context deadline exceeded"
            }
            let first = await tasks.next() ?? "cancelled"
            tasks.cancelAll()
            return first
        }
    }

    // MARK: /dns/query

    /// Go's `queryDNS`: one question (type A unless named) through the DNS router, answered in
    /// miekg/dns's field names with each record's text after its header.
    private func dnsQuery(name: String, type typeName: String) async -> ClashAPIResponse {
        guard let type = Self.dnsTypes[typeName.isEmpty ? "A" : typeName] else {
            return ClashAPIResponse(status: .badRequest, message: "invalid query type")
        }
        guard let dns = setup.dns else { return ClashAPIResponse(status: .internalServerError, message: "dns router not found") }
        let fqdn = name.hasSuffix(".") ? name : name + "."
        let response: DNSMessage
        do {
            let question = try DNSName(fqdn)
            let query = DNSMessage.query(id: UInt16.random(in: 0...UInt16.max), name: question, type: DNSType(type))
            let exchange = dns.exchange
            let bytes = try await Self.withTimeout(seconds: 10) { try await exchange(try query.encoded()) }
            response = try DNSMessage(parsing: bytes)
        } catch {
            return ClashAPIResponse(status: .internalServerError, message: "\(error)")
        }
        func record(_ record: DNSResourceRecord) -> JSONValue {
            // Keys sorted as Go renders a map: upper case first.
            .object(JSONObject([("TTL", .number(String(record.ttl))), ("data", .string(record.data.presentation)),
                                ("name", .string(record.name.description)), ("type", .number(String(record.type.rawValue)))]))
        }
        var fields: [(String, JSONValue)] = [("AD", .bool(response.authenticatedData))]
        let additional = response.additionals.filter { $0.type != .opt }
        if !additional.isEmpty { fields.append(("Additional", .array(additional.map(record)))) }
        if !response.answers.isEmpty { fields.append(("Answer", .array(response.answers.map(record)))) }
        if !response.authorities.isEmpty { fields.append(("Authority", .array(response.authorities.map(record)))) }
        fields.append(("CD", .bool(response.checkingDisabled)))
        fields.append(("Question", .array(response.questions.map { question in
            .object(JSONObject([("Name", .string(question.name.description)), ("Qtype", .number(String(question.type.rawValue))),
                                ("Qclass", .number(String(question.class.rawValue)))]))
        })))
        fields += [("RA", .bool(response.recursionAvailable)), ("RD", .bool(response.recursionDesired)),
                   ("Server", .string("internal")), ("Status", .number(String(response.extendedRcode.rawValue))),
                   ("TC", .bool(response.isTruncated))]
        return ClashAPIResponse(json: .object(JSONObject(fields)))
    }

    private static func withTimeout(seconds: Int64, _ work: @escaping @Sendable () async throws -> [UInt8]) async throws -> [UInt8] {
        try await withThrowingTaskGroup(of: [UInt8].self) { tasks in
            tasks.addTask { try await work() }
            tasks.addTask {
                try await Task.sleep(nanoseconds: UInt64(seconds) * 1_000_000_000)
                throw AdapterError(.other, "context deadline exceeded")
            }
            defer { tasks.cancelAll() }
            return try await tasks.next()!
        }
    }

    /// miekg/dns's `StringToType`: the mnemonics a query may name.
    static let dnsTypes: [String: UInt16] = [
        "None": 0, "A": 1, "NS": 2, "MD": 3, "MF": 4, "CNAME": 5, "SOA": 6, "MB": 7, "MG": 8, "MR": 9, "NULL": 10,
        "PTR": 12, "HINFO": 13, "MINFO": 14, "MX": 15, "TXT": 16, "RP": 17, "AFSDB": 18, "X25": 19, "ISDN": 20, "RT": 21,
        "NSAPPTR": 23, "SIG": 24, "KEY": 25, "PX": 26, "GPOS": 27, "AAAA": 28, "LOC": 29, "NXT": 30, "EID": 31,
        "NIMLOC": 32, "SRV": 33, "ATMA": 34, "NAPTR": 35, "KX": 36, "CERT": 37, "DNAME": 39, "OPT": 41, "APL": 42,
        "DS": 43, "SSHFP": 44, "IPSECKEY": 45, "RRSIG": 46, "NSEC": 47, "DNSKEY": 48, "DHCID": 49, "NSEC3": 50,
        "NSEC3PARAM": 51, "TLSA": 52, "SMIMEA": 53, "HIP": 55, "NINFO": 56, "RKEY": 57, "TALINK": 58, "CDS": 59,
        "CDNSKEY": 60, "OPENPGPKEY": 61, "CSYNC": 62, "ZONEMD": 63, "SVCB": 64, "HTTPS": 65, "SPF": 99, "UINFO": 100,
        "UID": 101, "GID": 102, "UNSPEC": 103, "NID": 104, "L32": 105, "L64": 106, "LP": 107, "EUI48": 108,
        "EUI64": 109, "NXNAME": 128, "URI": 256, "CAA": 257, "AVC": 258, "AMTRELAY": 260, "RESINFO": 261, "TKEY": 249,
        "TSIG": 250, "IXFR": 251, "AXFR": 252, "MAILB": 253, "MAILA": 254, "ANY": 255, "TA": 32768, "DLV": 32769,
        "Reserved": 65535,
    ]
}
