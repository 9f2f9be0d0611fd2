// The actions of DNS rules (sing-box route/rule/rule_action.go, the DNS half) and the records of
// `predefined` answers, built once from their options.

package import Adapter
package import Config
package import Rules

/// The per-query options a `route` or `route-options` action sets.
package struct DNSRouteActionSettings: Sendable, Equatable {
    package var strategy: DomainStrategy = .asIs
    package var disableCache = false
    package var rewriteTTL: UInt32?
    package var clientSubnet: IPPrefix?

    package init() {}

    /// Applies these settings over `options` as Go's `matchDNS` does: only what is set overrides.
    func apply(to options: inout DNSQueryOptions) {
        if strategy != .asIs { options.strategy = strategy }
        if disableCache { options.disableCache = true }
        if let rewriteTTL { options.rewriteTTL = rewriteTTL }
        if let clientSubnet { options.clientSubnet = clientSubnet }
    }

    /// Go's `Descriptions()`: `strategy=ipv4_only`, `disable-cache`, `rewrite-ttl=60`, `client-subnet=…`.
    var descriptions: [String] {
        var out: [String] = []
        if strategy != .asIs { out.append("strategy=\(strategy.rawValue)") }
        if disableCache { out.append("disable-cache") }
        if let rewriteTTL { out.append("rewrite-ttl=\(rewriteTTL)") }
        if let clientSubnet { out.append("client-subnet=\(clientSubnet)") }
        return out
    }
}

/// What a matching DNS rule does.
package enum DNSRouteAction: Sendable, CustomStringConvertible {
    /// Ask `server` with these options; ends matching (unless the server is fakeip and fake IPs
    /// are not allowed for this query, or the response fails the rule's address limit).
    case route(server: String, DNSRouteActionSettings)
    /// Change the options for whatever later rule routes the query; matching goes on.
    case routeOptions(DNSRouteActionSettings)
    /// REFUSED (`default`) or no answer at all (`drop`).
    case reject(drop: Bool)
    /// A fixed answer.
    case predefined(DNSPredefinedAnswer)

    package var description: String {
        switch self {
        case .route(let server, let settings): "route(\(([server] + settings.descriptions).joined(separator: ",")))"
        case .routeOptions(let settings): "route-options(\(settings.descriptions.joined(separator: ",")))"
        case .reject(let drop): drop ? "reject(drop)" : "reject"
        case .predefined(let answer): answer.description
        }
    }

    /// Builds the action; a `route` without a server is Go's `missing server field` (top-level
    /// rules only: sub-rules of a logical rule carry no action of their own).
    package init(options: Config.DNSRuleAction, requireServer: Bool) throws(RuleError) {
        func settings(strategy: DomainStrategyOption?, disableCache: Bool, rewriteTTL: UInt32?,
                      clientSubnet: IPPrefixableOption?) -> DNSRouteActionSettings {
            var out = DNSRouteActionSettings()
            out.strategy = strategy.flatMap { DomainStrategy(rawValue: $0.rawValue) } ?? .asIs
            out.disableCache = disableCache
            out.rewriteTTL = rewriteTTL
            out.clientSubnet = clientSubnet.flatMap { Adapter.IPPrefix($0.prefix.description) }
            return out
        }
        switch options {
        case .route(let o):
            let server = o.server ?? ""
            if server.isEmpty && requireServer { throw RuleError("missing server field") }
            self = .route(server: server, settings(strategy: o.strategy, disableCache: o.disableCache,
                                                   rewriteTTL: o.rewriteTTL, clientSubnet: o.clientSubnet))
        case .routeOptions(let o):
            self = .routeOptions(settings(strategy: o.strategy, disableCache: o.disableCache,
                                          rewriteTTL: o.rewriteTTL, clientSubnet: o.clientSubnet))
        case .reject(let o):
            self = .reject(drop: o.method == .drop)
        case .predefined(let o):
            self = .predefined(try DNSPredefinedAnswer(options: o))
        }
    }
}

/// A `predefined` answer: an RCODE and records for the answer, authority and additional sections.
package struct DNSPredefinedAnswer: Sendable, CustomStringConvertible {
    package var rcode: DNSRcode
    package var answer: [DNSResourceRecord]
    package var ns: [DNSResourceRecord]
    package var extra: [DNSResourceRecord]

    package init(rcode: DNSRcode, answer: [DNSResourceRecord] = [], ns: [DNSResourceRecord] = [], extra: [DNSResourceRecord] = []) {
        self.rcode = rcode
        self.answer = answer
        self.ns = ns
        self.extra = extra
    }

    init(options: DNSPredefinedActionOptions) throws(RuleError) {
        rcode = DNSRcode(UInt16(clamping: options.rcode?.value ?? 0))
        func build(_ list: [DNSRecordOption], _ section: String) throws(RuleError) -> [DNSResourceRecord] {
            var out: [DNSResourceRecord] = []
            for (index, option) in list.enumerated() {
                do { out.append(try DNSResourceRecord(option: option)) } catch {
                    throw RuleError("predefined: \(section)[\(index)]: \(error)")
                }
            }
            return out
        }
        answer = try build(options.answer, "answer")
        ns = try build(options.ns, "ns")
        extra = try build(options.extra, "extra")
    }

    /// The response to `query` (Go's `RuleActionPredefined.Response`): QR, AA, RD, RA, the
    /// query's ID and questions; a record named `*.suffix` takes the question's name when that
    /// name ends with `.suffix`.
    package func response(to query: DNSMessage) -> DNSMessage {
        var response = DNSMessage(id: query.id, isResponse: true, isAuthoritative: true, recursionDesired: true,
                                  recursionAvailable: true, rcode: rcode, questions: query.questions)
        guard let question = query.question else { return response }
        let asked = question.name.description.lowercased()
        func rewrite(_ records: [DNSResourceRecord]) -> [DNSResourceRecord] {
            records.map { record in
                let name = record.name.description.lowercased()
                guard name.hasPrefix("*"), asked.hasSuffix(name.dropFirst()) else { return record }
                var copy = record
                copy.name = question.name
                return copy
            }
        }
        response.answers = rewrite(answer)
        response.authorities = rewrite(ns)
        response.additionals = rewrite(extra)
        return response
    }

    /// The A/AAAA addresses of the answer section (what a lookup returns).
    package var addresses: [IPAddress] {
        answer.compactMap { record in
            switch record.data {
            case .a(let address), .aaaa(let address): address
            default: nil
            }
        }
    }

    package var description: String {
        "predefined(\(([rcode.description] + (answer + ns + extra).map(\.description)).joined(separator: ",")))"
    }
}

/// Why a predefined record could not be built.
package struct DNSRecordBuildError: Error, CustomStringConvertible {
    package var message: String
    package var description: String { message }
}

extension DNSResourceRecord {
    /// A record from its option: zone-file text for A, AAAA, CNAME, NS, PTR, DNAME, MX, SRV and
    /// TXT, or base64 wire form (a packed RR, as miekg's `UnpackRR` reads) for anything.
    init(option: DNSRecordOption) throws(DNSRecordBuildError) {
        if let wire = option.wireBase64 {
            guard let bytes = base64Decode(wire) else { throw DNSRecordBuildError(message: "bad base64 record") }
            // A one-answer message around the record lets the codec read it with its checks.
            let header: [UInt8] = [0, 0, 0x80, 0, 0, 0, 0, 1, 0, 0, 0, 0]
            do {
                let message = try DNSMessage(parsing: header + bytes)
                guard let record = message.answers.first else { throw DNSRecordBuildError(message: "empty record") }
                self = record
                return
            } catch let error as DNSRecordBuildError {
                throw error
            } catch {
                throw DNSRecordBuildError(message: "unpack record: \(error)")
            }
        }
        let name: DNSName
        do { name = try DNSName(option.name) } catch { throw DNSRecordBuildError(message: "bad name \(option.name): \(error)") }
        let recordClass: DNSClass = switch option.recordClass {
        case "CH": .chaos
        case "ANY": .any
        default: .inet
        }
        func parseName(_ text: some StringProtocol) throws(DNSRecordBuildError) -> DNSName {
            do { return try DNSName(text) } catch { throw DNSRecordBuildError(message: "bad name \(text): \(error)") }
        }
        let fields = option.data.split(separator: " ")
        let type: DNSType, data: DNSRData
        switch option.type {
        case "A", "AAAA":
            guard let address = IPAddress(option.data) else { throw DNSRecordBuildError(message: "bad address \(option.data)") }
            type = address.isIPv4 ? .a : .aaaa
            data = address.isIPv4 ? .a(address) : .aaaa(address)
        case "CNAME", "NS", "PTR", "DNAME":
            type = switch option.type { case "CNAME": .cname; case "NS": .ns; case "PTR": .ptr; default: DNSType(39) }
            data = .name(try parseName(option.data))
        case "MX":
            guard fields.count == 2, let preference = UInt16(fields[0]) else { throw DNSRecordBuildError(message: "bad MX \(option.data)") }
            type = .mx
            data = .mx(preference: preference, exchange: try parseName(fields[1]))
        case "SRV":
            guard fields.count == 4, let priority = UInt16(fields[0]), let weight = UInt16(fields[1]), let port = UInt16(fields[2]) else {
                throw DNSRecordBuildError(message: "bad SRV \(option.data)")
            }
            type = .srv
            data = .srv(DNSSRV(priority: priority, weight: weight, port: port, target: try parseName(fields[3])))
        case "TXT":
            type = .txt
            data = .txt(try txtStrings(option.data))
        default:
            throw DNSRecordBuildError(message: "record type \(option.type) in text form: not implemented (give it as base64 wire form)")
        }
        self.init(name: name, type: type, class: recordClass, ttl: option.ttl, data: data)
    }
}

/// `"a b" "c"` → two character-strings; `\"` and `\\` escapes are honoured.
private func txtStrings(_ text: String) throws(DNSRecordBuildError) -> [[UInt8]] {
    var out: [[UInt8]] = []
    var current: [UInt8] = []
    var inQuote = false, escaped = false
    for byte in text.utf8 {
        if escaped { current.append(byte); escaped = false; continue }
        switch byte {
        case UInt8(ascii: "\\") where inQuote: escaped = true
        case UInt8(ascii: "\""):
            if inQuote { out.append(current); current = [] }
            inQuote.toggle()
        default:
            if inQuote { current.append(byte) }
        }
    }
    guard !inQuote else { throw DNSRecordBuildError(message: "unterminated TXT string") }
    for string in out where string.count > 255 { throw DNSRecordBuildError(message: "TXT string longer than 255 octets") }
    return out
}

/// Standard base64 (RFC 4648 §4), padding optional; nil on any other character.
func base64Decode(_ text: String) -> [UInt8]? {
    var out: [UInt8] = []
    var accumulator: UInt32 = 0, bits = 0
    for byte in text.utf8 {
        let value: UInt8
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = byte - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): value = byte - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): value = byte - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): value = 62
        case UInt8(ascii: "/"): value = 63
        case UInt8(ascii: "="): continue
        default: return nil
        }
        accumulator = accumulator << 6 | UInt32(value)
        bits += 6
        if bits >= 8 {
            bits -= 8
            out.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
        }
    }
    return out
}
