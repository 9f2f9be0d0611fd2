// The `dhcp` DNS server (sing-box 1.12 dns/transport/dhcp/dhcp.go): the DNS servers come from a
// DHCP server on the named interface (else the interface of the default route).
//
// 1. fetch: a DHCPDISCOVER (RFC 2131 §4.4.1, broadcast flag set, asking for options 15, 6 and 119)
//    goes out of port 68 on the interface; the first OFFER with our transaction ID gives the servers
//    (option 6, RFC 2132 §3.8). No REQUEST follows: nothing is leased, as in Go.
// 2. the servers are kept for `C.DHCPTTL` (one hour), then fetched again on the next query;
//    concurrent queries share one fetch
// 3. exchange: the servers are asked in order over UDP port 53 through the dialer (dial fields),
//    the first answer wins

package import Adapter
import Config
import Net
package import NIOCore
import Synchronization

/// DHCP messages: the DISCOVER we send and the OFFER we read. Untrusted input never traps.
package enum DHCPMessage {
    /// RFC 2131 §3: the magic cookie 99.130.83.99 starts the options.
    static let magicCookie: [UInt8] = [99, 130, 83, 99]

    /// A DHCPDISCOVER for `hardwareAddress` (6 octets), padded to BOOTP's 300 octets.
    package static func discover(transactionID: UInt32, hardwareAddress: [UInt8]) -> [UInt8] {
        var packet = [UInt8](repeating: 0, count: 236)
        packet[0] = 1  // op: BOOTREQUEST
        packet[1] = 1  // htype: Ethernet
        packet[2] = 6  // hlen
        withUnsafeBytes(of: transactionID.bigEndian) { packet.replaceSubrange(4..<8, with: $0) }
        packet[10] = 0x80  // flags: broadcast (we have no address to receive a unicast reply on)
        for (index, octet) in hardwareAddress.prefix(16).enumerated() { packet[28 + index] = octet }
        packet += magicCookie
        packet += [53, 1, 1]                // DHCP message type: DISCOVER
        packet += [55, 3, 15, 6, 119]       // parameter request list: domain name, DNS servers, search list
        packet += [255]
        if packet.count < 300 { packet += [UInt8](repeating: 0, count: 300 - packet.count) }
        return packet
    }

    /// What an OFFER told us.
    package struct Offer: Equatable, Sendable {
        package var servers: [IPAddress]
        package var domainName: String?
    }

    /// Reads `packet` as an OFFER answering `transactionID`; nil for anything else (another
    /// message type or client, a truncated or malformed packet).
    package static func parseOffer(_ packet: [UInt8], transactionID: UInt32) -> Offer? {
        guard packet.count >= 240, packet[0] == 2 else { return nil }
        let xid = UInt32(packet[4]) << 24 | UInt32(packet[5]) << 16 | UInt32(packet[6]) << 8 | UInt32(packet[7])
        guard xid == transactionID, Array(packet[236..<240]) == magicCookie else { return nil }
        var index = 240
        var messageType: UInt8?
        var offer = Offer(servers: [])
        while index < packet.count {
            let code = packet[index]
            if code == 0 { index += 1; continue }     // pad
            if code == 255 { break }                  // end
            guard index + 1 < packet.count else { return nil }
            let length = Int(packet[index + 1])
            let start = index + 2
            guard start + length <= packet.count else { return nil }
            let value = packet[start..<start + length]
            switch code {
            case 53 where length == 1: messageType = value.first
            case 6 where length % 4 == 0:
                for offset in stride(from: start, to: start + length, by: 4) {
                    let raw = UInt32(packet[offset]) << 24 | UInt32(packet[offset + 1]) << 16 | UInt32(packet[offset + 2]) << 8 | UInt32(packet[offset + 3])
                    offer.servers.append(.v4(raw))
                }
            case 15: offer.domainName = String(decoding: value, as: UTF8.self)
            default: break
            }
            index = start + length
        }
        guard messageType == 2 else { return nil }  // OFFER
        return offer
    }
}

/// The `dhcp` DNS server.
package final class DHCPTransport: DNSTransport {
    package let tag: String
    package var type: String { "dhcp" }
    /// The configured interface; nil means the default route's.
    package let interface: String?
    private let dialer: any Dialer
    private let eventLoop: any EventLoop
    private let ttl: Duration
    private let fetchTimeout: Duration
    private let logger: ContextLogger?
    private let state = Mutex<State>(State())

    private struct State {
        var servers: [UDPTransport] = []
        var updatedAt: ContinuousClock.Instant?
        var fetch: Task<[UDPTransport], any Error>?
    }

    /// `ttl` and `fetchTimeout` are sing-box's `C.DHCPTTL` and `C.DHCPTimeout` by default.
    package init(tag: String, interface: String?, dialer: any Dialer, eventLoop: any EventLoop,
                 ttl: Duration = .seconds(3600), fetchTimeout: Duration = .seconds(60), logger: ContextLogger? = nil) {
        self.tag = tag
        self.interface = interface.flatMap { $0.isEmpty ? nil : $0 }
        self.dialer = dialer
        self.eventLoop = eventLoop
        self.ttl = ttl
        self.fetchTimeout = fetchTimeout
        self.logger = logger
    }

    /// The servers learned so far (empty before the first fetch).
    package var servers: [Destination] { state.withLock { $0.servers.map(\.server) } }

    package func exchange(_ message: DNSMessage) async throws -> DNSMessage {
        let servers = try await currentServers()
        guard !servers.isEmpty else { throw AdapterError(.other, "dhcp: empty DNS servers from response") }
        var lastError: (any Error)?
        for server in servers {
            do { return try await server.exchange(message) } catch { lastError = error }
        }
        throw lastError ?? DNSError.timeout
    }

    package func close() async {
        let servers = state.withLock { state -> [UDPTransport] in
            state.fetch?.cancel()
            defer { state.servers = [] }
            return state.servers
        }
        for server in servers { await server.close() }
    }

    /// The cached servers while fresh, else one shared fetch.
    private func currentServers() async throws -> [UDPTransport] {
        let now = ContinuousClock.now
        let task = state.withLock { state -> Task<[UDPTransport], any Error>? in
            if let updatedAt = state.updatedAt, updatedAt.duration(to: now) < ttl { return nil }
            if let fetch = state.fetch { return fetch }
            let fetch = Task { try await self.fetchServers() }
            state.fetch = fetch
            return fetch
        }
        guard let task else { return state.withLock { $0.servers } }
        do {
            let fresh = try await task.value
            let old = state.withLock { state -> [UDPTransport] in
                guard state.fetch == task else { return [] }
                state.fetch = nil
                let old = state.servers
                state.servers = fresh
                state.updatedAt = ContinuousClock.now
                return old
            }
            for server in old where !fresh.contains(where: { $0 === server }) { await server.close() }
            return fresh
        } catch {
            state.withLock { state in if state.fetch == task { state.fetch = nil } }
            throw error
        }
    }

    private func fetchServers() async throws -> [UDPTransport] {
        guard let name = interface ?? Self.defaultRouteInterface() else {
            throw AdapterError(.other, "dhcp: prepare interface: missing default interface")
        }
        guard let hardwareAddress = Self.hardwareAddress(of: name) else {
            throw AdapterError(.other, "dhcp: prepare interface: no hardware address for \(name)")
        }
        logger?.info("dhcp: query DNS servers on \(name)")
        let transactionID = UInt32.random(in: 1 ... .max)
        let request = DHCPMessage.discover(transactionID: transactionID, hardwareAddress: hardwareAddress)
        let reply = try await DHCPSocket.exchange(request, interface: name, timeout: fetchTimeout) { packet in
            DHCPMessage.parseOffer(packet, transactionID: transactionID) != nil
        }
        guard let offer = DHCPMessage.parseOffer(reply, transactionID: transactionID), !offer.servers.isEmpty else {
            throw AdapterError(.other, "dhcp: empty DNS servers response")
        }
        logger?.info("dhcp: updated DNS servers from \(name): [\(offer.servers.map { "\($0):53" }.joined(separator: ","))]")
        let existing = state.withLock { $0.servers }
        return offer.servers.map { address in
            let destination = Destination(ip: address, port: 53)
            if let kept = existing.first(where: { $0.server == destination }) { return kept }
            return UDPTransport(tag: tag, server: destination, dialer: dialer, eventLoop: eventLoop)
        }
    }

    /// The interface of the IPv4 default route (/proc/net/route, destination 00000000, lowest metric).
    static func defaultRouteInterface() -> String? {
        guard let bytes = SystemFile.read("/proc/net/route") else { return nil }
        // Columns: Iface Destination Gateway Flags RefCnt Use Metric Mask …
        var best: (name: String, metric: Int)?
        for line in SystemFile.lines(bytes).dropFirst() {
            let fields = line.split(whereSeparator: { $0 == "\t" || $0 == " " })
            guard fields.count > 6, fields[1] == "00000000" else { continue }
            let metric = Int(fields[6]) ?? 0
            if let current = best, current.metric <= metric { continue }
            best = (String(fields[0]), metric)
        }
        return best?.name
    }

    /// The interface's MAC address from sysfs.
    static func hardwareAddress(of name: String) -> [UInt8]? {
        guard !name.contains("/"), let bytes = SystemFile.read("/sys/class/net/\(name)/address") else { return nil }
        let text = String(decoding: bytes.filter { $0 > 0x20 }, as: UTF8.self)
        let octets = text.split(separator: ":").compactMap { UInt8($0, radix: 16) }
        return octets.count == 6 ? octets : nil
    }
}
