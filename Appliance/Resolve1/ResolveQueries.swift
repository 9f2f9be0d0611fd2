// ResolveQueries: the lookups behind ResolveHostname, ResolveAddress, ResolveRecord and
// ResolveService (D-Bus) and their varlink twins, all answered through the box's DNS router
// (`ResolveBackend.exchange`), with resolved's errors for each outcome and its statistics.
//
// 1. Validate the arguments as resolved-bus.c does (family, ifindex, name, address size).
// 2. Build the query (A and/or AAAA, PTR under in-addr.arpa/ip6.arpa, the asked class and type).
// 3. Map the response: NXDOMAIN → DnsError.NXDOMAIN, other RCODEs → DnsError.<RCODE>, NOERROR
//    without the asked records → NoSuchRR; CNAME chains give the canonical name.
package import Adapter
package import DNS
import Synchronization

/// SD_RESOLVED_FROM_NETWORK (resolved-def.h): the answer came over the network. We report it for
/// every answer: our router does not say whether its cache answered.
let resolvedFromNetwork: UInt64 = 1 << 23

/// Runs resolve1 queries through a backend and counts transactions. Thread-safe.
package final class ResolveQueries: Sendable {
    /// What answers (the box's DNS router).
    package let backend: any ResolveBackend
    private let currentTransactions = Atomic<UInt64>(0)
    private let totalTransactions = Atomic<UInt64>(0)

    /// Queries through `backend`, statistics from zero.
    package init(backend: any ResolveBackend) {
        self.backend = backend
    }

    /// TransactionStatistics `(tt)`: in flight, total since start or ResetStatistics.
    package var transactionStatistics: (current: UInt64, total: UInt64) {
        (currentTransactions.load(ordering: .relaxed), totalTransactions.load(ordering: .relaxed))
    }

    /// ResetStatistics: the totals start over (in-flight ones stay counted).
    package func resetStatistics() { totalTransactions.store(0, ordering: .relaxed) }

    /// One exchange, counted as a transaction.
    package func exchange(_ query: DNSMessage) async throws -> DNSMessage {
        beginTransaction()
        defer { endTransaction() }
        return try await backend.exchange(query)
    }

    /// Counts a transaction that runs outside `exchange` (the stub's UDP fast path).
    func beginTransaction() {
        currentTransactions.add(1, ordering: .relaxed)
        totalTransactions.add(1, ordering: .relaxed)
    }

    func endTransaction() { currentTransactions.subtract(1, ordering: .relaxed) }

    // MARK: Validation (resolved-bus.c)

    static func checkIfindex(_ index: Int32) throws(Resolve1Error) {
        if index < 0 { throw .invalidArgs("Invalid interface index") }
    }

    static func checkFamily(_ family: Int32, allowUnspecified: Bool) throws(Resolve1Error) {
        let ok = family == AF_INET || family == AF_INET6 || (allowUnspecified && family == AF_UNSPEC)
        if !ok { throw .invalidArgs("Unknown address family \(family)") }
    }

    static func checkName(_ name: String) throws(Resolve1Error) -> DNSName {
        guard !name.isEmpty, let parsed = try? DNSName(name) else { throw .invalidArgs("Invalid hostname '\(name)'") }
        return parsed
    }

    // MARK: Queries

    /// ResolveHostname: addresses of `name` (A and/or AAAA by `family`) and its canonical name.
    package func resolveHostname(_ name: String, family: Int32) async throws(Resolve1Error) -> (addresses: [IPAddress], canonical: String) {
        try Self.checkFamily(family, allowUnspecified: true)
        let parsed = try Self.checkName(name)
        var types: [DNSType] = []
        if family != AF_INET6 { types.append(.a) }
        if family != AF_INET { types.append(.aaaa) }
        var addresses: [IPAddress] = []
        var canonical = parsed.domain
        var firstError: Resolve1Error?
        var anyNoError = false
        for type in types {
            do {
                let response = try await run(name: parsed, type: type, class: .inet)
                if response.rcode != .noError {
                    firstError = firstError ?? Self.rcodeError(name, response.rcode)
                    continue
                }
                anyNoError = true
                canonical = Self.canonicalName(parsed, in: response).domain
                addresses += response.addresses.filter { type == .a ? $0.isIPv4 : !$0.isIPv4 }
            } catch {
                firstError = firstError ?? error
            }
        }
        if addresses.isEmpty {
            if anyNoError { throw .noSuchRR(name) }
            throw firstError ?? .noSuchRR(name)
        }
        return (addresses, canonical)
    }

    /// ResolveAddress: PTR names for `address` (4 or 16 bytes per `family`).
    package func resolveAddress(family: Int32, address: [UInt8]) async throws(Resolve1Error) -> [String] {
        try Self.checkFamily(family, allowUnspecified: false)
        guard address.count == (family == AF_INET ? 4 : 16), let ip = IPAddress(bytes: address) else {
            throw .invalidArgs("Invalid address size")
        }
        let reverse = Self.reverseName(ip)
        guard let name = try? DNSName(reverse) else { throw .invalidArgs("Invalid address") }
        let response = try await run(name: name, type: .ptr, class: .inet)
        guard response.rcode == .noError else { throw Self.rcodeError(reverse, response.rcode) }
        let names = response.answers.compactMap { record -> String? in
            if case .name(let target) = record.data, record.type == .ptr { return target.domain }
            return nil
        }
        if names.isEmpty { throw .noSuchRR(reverse) }
        return names
    }

    /// ResolveRecord: the answers of the asked class and type, each in uncompressed wire form.
    package func resolveRecord(_ name: String, class dnsClass: UInt16, type: UInt16) async throws(Resolve1Error) -> [(class: UInt16, type: UInt16, wire: [UInt8])] {
        let parsed = try Self.checkName(name)
        // resolved refuses pseudo types (OPT, TKEY, …) and zone transfers.
        if type == 41 || (249...252).contains(type) || type == 0 {
            throw .bus(name: "org.freedesktop.DBus.Error.NotSupported", message: "Specified resource record type \(type) may not be used in a query.")
        }
        let response = try await run(name: parsed, type: DNSType(type), class: DNSClass(dnsClass))
        guard response.rcode == .noError else { throw Self.rcodeError(name, response.rcode) }
        let wire: [UInt8]
        do { wire = try response.encoded() } catch { throw .bus(name: "org.freedesktop.DBus.Error.Failed", message: "\(error)") }
        let records = RecordWire.answers(in: wire).filter {
            ($0.type == type || type == 255) && ($0.class == dnsClass || dnsClass == 255)
        }
        if records.isEmpty { throw .noSuchRR(name) }
        return records
    }

    /// ResolveService: SRV records of `_type._proto.domain` (or `name` alone), each target's
    /// addresses, and the TXT strings of the same name (RFC 6763 §6).
    package func resolveService(name: String, type: String, domain: String, family: Int32) async throws(Resolve1Error) -> ServiceAnswer {
        try Self.checkFamily(family, allowUnspecified: true)
        let service: String
        if type.isEmpty {
            service = domain
        } else {
            service = (name.isEmpty ? "" : "\(name).") + "\(type).\(domain)"
        }
        let parsed = try Self.checkName(service)
        let response = try await run(name: parsed, type: .srv, class: .inet)
        guard response.rcode == .noError else { throw Self.rcodeError(service, response.rcode) }
        var answer = ServiceAnswer(canonicalName: name, canonicalType: type, canonicalDomain: domain)
        for record in response.answers where record.type == .srv {
            guard case .srv(let srv) = record.data else { continue }
            var entry = ServiceAnswer.Target(priority: srv.priority, weight: srv.weight, port: srv.port,
                                             hostname: srv.target.domain, addresses: [], canonical: srv.target.domain)
            if let resolved = try? await resolveHostname(srv.target.domain, family: family) {
                entry.addresses = resolved.addresses
                entry.canonical = resolved.canonical
            }
            answer.targets.append(entry)
        }
        if answer.targets.isEmpty { throw .noSuchRR(service) }
        if let txt = try? await run(name: parsed, type: .txt, class: .inet), txt.rcode == .noError {
            for record in txt.answers where record.type == .txt {
                if case .txt(let strings) = record.data { answer.txt += strings }
            }
        }
        return answer
    }

    private func run(name: DNSName, type: DNSType, class dnsClass: DNSClass) async throws(Resolve1Error) -> DNSMessage {
        var query = DNSMessage.query(id: .random(in: 1 ... .max), name: name, type: type)
        query.questions[0].class = dnsClass
        query.recursionDesired = true
        do {
            return try await exchange(query)
        } catch let error as Resolve1Error {
            throw error
        } catch {
            throw .timeout()
        }
    }

    static func rcodeError(_ name: String, _ rcode: DNSRcode) -> Resolve1Error {
        rcode == .nameError ? .nxdomain(name) : .dnsError(name, rcode: rcode)
    }

    /// Follows CNAMEs from `name` through the answer section.
    static func canonicalName(_ name: DNSName, in response: DNSMessage) -> DNSName {
        var current = name
        for _ in 0..<16 {
            guard let next = response.answers.first(where: {
                $0.type == .cname && $0.name.description.lowercased() == current.description.lowercased()
            }), case .name(let target) = next.data else { break }
            current = target
        }
        return current
    }

    /// `4.3.2.1.in-addr.arpa` / nibbles under `ip6.arpa` (RFC 1035 §3.5, RFC 3596 §2.5).
    static func reverseName(_ address: IPAddress) -> String {
        let bytes = address.bytes
        if bytes.count == 4 { return bytes.reversed().map(String.init).joined(separator: ".") + ".in-addr.arpa" }
        var labels: [String] = []
        for byte in bytes.reversed() {
            labels.append(String(byte & 0xF, radix: 16))
            labels.append(String(byte >> 4, radix: 16))
        }
        return labels.joined(separator: ".") + ".ip6.arpa"
    }
}

/// What ResolveService returns.
package struct ServiceAnswer: Sendable {
    /// One SRV record with its target's addresses (`(qqqsa(iiay)s)`).
    package struct Target: Sendable {
        /// SRV priority, weight and port (RFC 2782).
        package var priority: UInt16, weight: UInt16, port: UInt16
        /// The SRV target.
        package var hostname: String
        /// The target's addresses (empty when its lookup failed, as resolved leaves them).
        package var addresses: [IPAddress]
        /// The target's canonical name.
        package var canonical: String
    }
    /// The SRV records in answer order.
    package var targets: [Target] = []
    /// The TXT strings of the service name (RFC 6763 §6).
    package var txt: [[UInt8]] = []
    /// The name, type and domain as asked (resolved reports them back).
    package var canonicalName: String, canonicalType: String, canonicalDomain: String

    init(canonicalName: String, canonicalType: String, canonicalDomain: String) {
        self.canonicalName = canonicalName
        self.canonicalType = canonicalType
        self.canonicalDomain = canonicalDomain
    }
}

import Glibc
