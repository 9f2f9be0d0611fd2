package import Adapter
import Config
import Synchronization

/// A hosts file (`/etc/hosts` format), re-read when its mtime or size changes, at most every
/// 5 seconds (sing-box `hosts.File`, `cacheMaxAge`). Names are matched case-insensitively; an address
/// listed for a name more than once is kept each time, in file order, as Go does.
package final class HostsFile: Sendable {
    package let path: String
    private struct State {
        var byName: [DNSName: [IPAddress]] = [:]
        var stamp: SystemFile.Stamp? = nil
        var checkedAt: ContinuousClock.Instant? = nil
    }
    private let state = Mutex(State())
    private let now: @Sendable () -> ContinuousClock.Instant

    /// sing-box's `cacheMaxAge`: how long a parsed file is trusted before its stamp is checked again.
    package static let cacheMaxAge: Duration = .seconds(5)

    package init(path: String, now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }) {
        self.path = path
        self.now = now
    }

    /// The addresses listed for `name` (any case, with or without the trailing dot).
    package func lookup(_ name: DNSName) -> [IPAddress] {
        let current = now()
        return state.withLock { state in
            refresh(&state, now: current)
            return state.byName[name.lowercased()] ?? []
        }
    }

    private func refresh(_ state: inout State, now current: ContinuousClock.Instant) {
        if let checkedAt = state.checkedAt, current < checkedAt.advanced(by: Self.cacheMaxAge), !state.byName.isEmpty { return }
        // A missing file keeps what was read before, like Go's update() returning on a stat error.
        guard let stamp = SystemFile.stamp(path) else { return }
        if stamp == state.stamp {
            state.checkedAt = current
            return
        }
        guard let bytes = SystemFile.read(path) else { return }
        state.byName = Self.parse(bytes)
        state.stamp = stamp
        state.checkedAt = current
    }

    /// Parses hosts text: `#` starts a comment, the first field is an address, the rest are names.
    package static func parse(_ bytes: [UInt8]) -> [DNSName: [IPAddress]] {
        var byName: [DNSName: [IPAddress]] = [:]
        for var line in SystemFile.lines(bytes) {
            if let hash = line.firstIndex(of: "#") { line = line[..<hash] }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, let address = IPAddress(fields[0]) else { continue }
            for field in fields.dropFirst() {
                guard let name = try? DNSName(field) else { continue }
                byName[name.lowercased(), default: []].append(address)
            }
        }
        return byName
    }
}

/// The `hosts` DNS server (sing-box 1.12 `dns/transport/hosts`): answers A and AAAA from `predefined`
/// first, then each file in order; everything else, and names found nowhere, get NXDOMAIN.
/// A name that is found but has no address of the asked family gets an empty NOERROR (Go's
/// `FixedResponse` filters by type after the lookup succeeded).
package final class HostsTransport: DNSTransport {
    package let tag: String
    package var type: String { "hosts" }
    package let files: [HostsFile]
    private let predefined: [DNSName: [IPAddress]]

    /// sing-box's `hosts.DefaultPath` on Linux.
    package static let defaultPath = "/etc/hosts"

    /// `paths` empty means `/etc/hosts`. `predefined` maps names to addresses (`predefined` option).
    package init(tag: String, paths: [String] = [], predefined: [(String, [IPAddress])] = [],
                 now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }) throws(DNSWireError) {
        self.tag = tag
        files = (paths.isEmpty ? [Self.defaultPath] : paths).map { HostsFile(path: $0, now: now) }
        var table: [DNSName: [IPAddress]] = [:]
        for (domain, addresses) in predefined {
            table[try DNSName(domain).lowercased()] = addresses
        }
        self.predefined = table
    }

    package func exchange(_ message: DNSMessage) async throws -> DNSMessage {
        guard let question = message.question else { throw DNSError.noQuestion }
        if question.type == .a || question.type == .aaaa {
            let name = question.name.lowercased()
            if let addresses = predefined[name] {
                return DNSFixedResponse.addresses(id: message.id, question: question, addresses: addresses, ttl: defaultDNSTTL)
            }
            for file in files {
                let addresses = file.lookup(name)
                if !addresses.isEmpty {
                    return DNSFixedResponse.addresses(id: message.id, question: question, addresses: addresses, ttl: defaultDNSTTL)
                }
            }
        }
        // Go answers with only QR and NXDOMAIN set here (no AA/RD/RA).
        return DNSMessage(id: message.id, isResponse: true, rcode: .nameError, questions: [question])
    }
}
