// The `local` DNS server on Linux (sing-box 1.12 dns/transport/local, Go's resolver semantics):
//
// 1. A and AAAA are answered from /etc/hosts first (TTL 600)
// 2. /etc/resolv.conf gives nameservers and options; it is re-read when its mtime changes, checked at
//    most every 5 seconds, unless `options no-reload`
// 3. the names to try come from `nameList` (for the absolute names sing-box asks, just the name)
// 4. A/AAAA race all names and take the first NOERROR with addresses; `single-request` or other types
//    try names in order and take the first answer of any RCODE
// 5. each name is tried `attempts` times over every server (from a rotating offset with `rotate`),
//    each exchange bounded by `timeout`, over UDP with TC → TCP, or TCP with `use-vc`
// 6. queries carry a fresh random ID, RD, AD with `trust-ad`, and EDNS0

package import Adapter
import Config
package import NIOCore
import Synchronization

/// The `local` DNS server.
package final class LocalTransport: DNSTransport {
    package let tag: String
    package var type: String { "local" }
    package let resolvConfPath: String
    private let hosts: HostsFile
    private let dialer: any Dialer
    private let eventLoop: any EventLoop
    private let nameserverPort: UInt16
    private let now: @Sendable () -> ContinuousClock.Instant
    private struct State {
        var conf: ResolvConf? = nil
        var stamp: SystemFile.Stamp? = nil
        var checkedAt: ContinuousClock.Instant? = nil
        var serverOffset = 0
        var udp: [Destination: UDPTransport] = [:]
        var tcp: [Destination: TCPTransport] = [:]
    }
    private let state = Mutex(State())

    /// The EDNS payload size our queries advertise (the DNS Flag Day 2020 value).
    package static let udpPayloadSize: UInt16 = 1232

    /// A local server reading `resolvConfPath` and `hostsPath`. `nameserverPort` is 53 except in tests.
    package init(tag: String, dialer: any Dialer, eventLoop: any EventLoop, resolvConfPath: String = "/etc/resolv.conf",
                 hostsPath: String = HostsTransport.defaultPath, nameserverPort: UInt16 = 53,
                 now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }) {
        self.tag = tag
        self.dialer = dialer
        self.eventLoop = eventLoop
        self.resolvConfPath = resolvConfPath
        self.nameserverPort = nameserverPort
        self.now = now
        hosts = HostsFile(path: hostsPath, now: now)
    }

    /// The configuration in force, re-read when the file changed.
    package func configuration() -> ResolvConf {
        let current = now()
        return state.withLock { state in
            if let conf = state.conf {
                if conf.noReload { return conf }
                if let checked = state.checkedAt, current < checked.advanced(by: .seconds(5)) { return conf }
            }
            state.checkedAt = current
            let stamp = SystemFile.stamp(resolvConfPath)
            if let conf = state.conf, stamp == state.stamp { return conf }
            let conf = SystemFile.read(resolvConfPath).map { ResolvConf(parsing: $0) } ?? .fallback()
            state.conf = conf
            state.stamp = stamp
            return conf
        }
    }

    package func exchange(_ message: DNSMessage) async throws -> DNSMessage {
        guard let question = message.question else { throw DNSError.noQuestion }
        let isAddressQuery = question.type == .a || question.type == .aaaa
        if isAddressQuery {
            let addresses = hosts.lookup(question.name)
            if !addresses.isEmpty {
                return DNSFixedResponse.addresses(id: message.id, question: question, addresses: addresses, ttl: defaultDNSTTL)
            }
        }
        let conf = configuration()
        let names = conf.nameList(question.name.description).compactMap { try? DNSName($0) }
        guard !names.isEmpty else { throw DNSError.rcode(.nameError) }
        var response: DNSMessage
        if conf.singleRequest || !isAddressQuery {
            response = try await exchangeInOrder(names, question: question, conf: conf)
        } else {
            response = try await exchangeRacing(names, question: question, conf: conf)
        }
        response.id = message.id
        return response
    }

    private func exchangeInOrder(_ names: [DNSName], question: DNSQuestion, conf: ResolvConf) async throws -> DNSMessage {
        var lastError: (any Error)? = nil
        for name in names {
            do {
                return try await tryName(name, question: question, conf: conf)
            } catch {
                lastError = error
            }
        }
        throw lastError ?? DNSError.rcode(.nameError)
    }

    /// Races every name; the first NOERROR answer with addresses wins. When all fail, an RCODE error
    /// is preferred (the client turns it into that response, as Go's errors.As does).
    private func exchangeRacing(_ names: [DNSName], question: DNSQuestion, conf: ResolvConf) async throws -> DNSMessage {
        try await withThrowingTaskGroup(of: Result<DNSMessage, any Error>.self) { group in
            for name in names {
                group.addTask {
                    await catching {
                        let response = try await self.tryName(name, question: question, conf: conf)
                        if response.rcode != .noError { throw DNSError.rcode(response.rcode) }
                        if response.addresses.isEmpty { throw DNSError.rcode(.noError) }
                        return response
                    }
                }
            }
            var errors: [any Error] = []
            for try await result in group {
                switch result {
                case .success(let response):
                    group.cancelAll()
                    return response
                case .failure(let error):
                    errors.append(error)
                }
            }
            for error in errors {
                if case .rcode? = error as? DNSError { throw error }
            }
            throw errors.last ?? DNSError.rcode(.nameError)
        }
    }

    /// Go's `tryOneName`: `attempts` rounds over the servers; the first answer of any RCODE returns.
    private func tryName(_ name: DNSName, question: DNSQuestion, conf: ResolvConf) async throws -> DNSMessage {
        let servers = conf.servers.compactMap { IPAddress($0).map { Destination(ip: $0, port: nameserverPort) } }
        guard !servers.isEmpty else { throw DNSError.rcode(.serverFailure) }
        let offset = conf.rotate ? state.withLock { state -> Int in
            defer { state.serverOffset &+= 1 }
            return state.serverOffset
        } : 0
        var request = DNSMessage.query(id: .random(in: .min ... .max), name: name, type: question.type)
        request.questions[0].class = question.class
        request.authenticatedData = conf.trustAD
        request.edns = DNSEDNS(udpPayloadSize: Self.udpPayloadSize)
        let query = request
        var lastError: (any Error)? = nil
        for _ in 0..<conf.attempts {
            for index in servers.indices {
                let server = servers[(offset + index) % servers.count]
                do {
                    return try await withDNSTimeout(conf.timeout) { [self] in
                        try await transport(for: server, useTCP: conf.useTCP, timeout: conf.timeout).exchange(query)
                    }
                } catch is CancellationError {
                    throw CancellationError()
                } catch {
                    lastError = error
                }
            }
        }
        throw lastError ?? DNSError.timeout
    }

    private func transport(for server: Destination, useTCP: Bool, timeout: Duration) -> any DNSTransport {
        state.withLock { state -> any DNSTransport in
            if useTCP {
                if let existing = state.tcp[server] { return existing }
                let created = TCPTransport(tag: tag, server: server, dialer: dialer, eventLoop: eventLoop, timeout: timeout)
                state.tcp[server] = created
                return created
            }
            if let existing = state.udp[server] { return existing }
            // One send per exchange: the attempts loop above does the retrying, as Go's resolver does.
            let created = UDPTransport(tag: tag, server: server, dialer: dialer, eventLoop: eventLoop, attempts: 1, retryInterval: timeout)
            state.udp[server] = created
            return created
        }
    }

    package func close() async {
        let (udp, tcp) = state.withLock { state in
            defer { state.udp = [:]; state.tcp = [:] }
            return (Array(state.udp.values), Array(state.tcp.values))
        }
        for transport in udp { await transport.close() }
        for transport in tcp { await transport.close() }
    }
}
