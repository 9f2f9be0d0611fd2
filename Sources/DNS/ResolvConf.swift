import Adapter
import Config
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `/etc/resolv.conf` read the way Go's resolver (and so sing-box's `local` server) reads it on Linux:
/// at most three `nameserver` IP literals on port 53, the last `domain` or `search` line, and the
/// options `ndots` (0...15), `timeout` (≥ 1 s), `attempts` (≥ 1), `rotate`, `single-request`
/// (`-reopen` too), `use-vc`/`usevc`/`tcp`, `trust-ad`, `no-reload`. Lines starting with `;` or `#`
/// are comments. Without nameservers it uses 127.0.0.1 and ::1; without a search list, the domain of
/// the host name.
package struct ResolvConf: Equatable, Sendable {
    /// Nameserver addresses (port 53 is added by the transport).
    package var servers: [String] = []
    /// Search suffixes, each ending in a dot.
    package var search: [String] = []
    package var ndots = 1
    package var timeout: Duration = .seconds(5)
    package var attempts = 2
    package var rotate = false
    package var singleRequest = false
    package var useTCP = false
    package var trustAD = false
    package var noReload = false

    /// Go's `defaultNS`.
    package static let defaultServers = ["127.0.0.1", "::1"]

    package init() {}

    /// Parses resolv.conf text; `hostname` supplies the default search domain.
    package init(parsing bytes: [UInt8], hostname: String? = ResolvConf.hostname()) {
        for line in SystemFile.lines(bytes) {
            if line.hasPrefix(";") || line.hasPrefix("#") { continue }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            guard let keyword = fields.first else { continue }
            switch keyword {
            case "nameserver":
                if fields.count > 1, servers.count < 3, IPAddressText.isLiteral(fields[1]) {
                    servers.append(String(fields[1]))
                }
            case "domain":
                if fields.count > 1 { search = [Self.rooted(fields[1])] }
            case "search":
                search = fields.dropFirst().map(Self.rooted).filter { $0 != "." }
            case "options":
                for option in fields.dropFirst() {
                    if option.hasPrefix("ndots:") {
                        ndots = min(max(Self.leadingNumber(option.dropFirst(6)), 0), 15)
                    } else if option.hasPrefix("timeout:") {
                        timeout = .seconds(max(Self.leadingNumber(option.dropFirst(8)), 1))
                    } else if option.hasPrefix("attempts:") {
                        attempts = max(Self.leadingNumber(option.dropFirst(9)), 1)
                    } else if option == "rotate" {
                        rotate = true
                    } else if option == "single-request" || option == "single-request-reopen" {
                        singleRequest = true
                    } else if option == "use-vc" || option == "usevc" || option == "tcp" {
                        useTCP = true
                    } else if option == "trust-ad" {
                        trustAD = true
                    } else if option == "no-reload" {
                        noReload = true
                    }
                }
            default:
                continue
            }
        }
        if servers.isEmpty { servers = Self.defaultServers }
        if search.isEmpty { search = Self.defaultSearch(hostname: hostname) }
    }

    /// The configuration used when the file cannot be read.
    package static func fallback(hostname: String? = ResolvConf.hostname()) -> ResolvConf {
        var conf = ResolvConf()
        conf.servers = defaultServers
        conf.search = defaultSearch(hostname: hostname)
        return conf
    }

    /// The names to try for `name`, in order (Go's `dnsConfig.nameList`): a rooted name only as is;
    /// otherwise the name first when it has at least `ndots` dots, then each search suffix, then the
    /// name last when it had fewer. Names over 254 octets and `.onion` names are never sent.
    package func nameList(_ name: String) -> [String] {
        let length = name.utf8.count
        let rooted = name.hasSuffix(".")
        if length > 254 || length == 254 && !rooted { return [] }
        if rooted { return Self.avoidDNS(name) ? [] : [name] }
        let hasNdots = name.utf8.count(where: { $0 == UInt8(ascii: ".") }) >= ndots
        let absolute = name + "."
        var names: [String] = []
        if hasNdots && !Self.avoidDNS(absolute) { names.append(absolute) }
        for suffix in search {
            let candidate = absolute + suffix
            if !Self.avoidDNS(candidate) && candidate.utf8.count <= 254 { names.append(candidate) }
        }
        if !hasNdots && !Self.avoidDNS(absolute) { names.append(absolute) }
        return names
    }

    /// RFC 7686: `.onion` names must not be resolved through DNS.
    static func avoidDNS(_ name: String) -> Bool {
        if name.isEmpty { return true }
        let trimmed = name.hasSuffix(".") ? name.dropLast() : Substring(name)
        return trimmed.hasSuffix(".onion")
    }

    static func rooted(_ name: some StringProtocol) -> String {
        name.hasSuffix(".") ? String(name) : name + "."
    }

    /// Go's `dtoi` on a prefix of digits; 0 when there are none.
    static func leadingNumber(_ text: Substring) -> Int {
        var value = 0
        for byte in text.utf8 {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { break }
            value = min(value * 10 + Int(byte - UInt8(ascii: "0")), 0xFFFFFF)
        }
        return value
    }

    /// Go's `dnsDefaultSearch`: the part of the host name after its first dot.
    static func defaultSearch(hostname: String?) -> [String] {
        guard let hostname, let dot = hostname.firstIndex(of: "."), hostname.index(after: dot) < hostname.endIndex else { return [] }
        return [rooted(hostname[hostname.index(after: dot)...])]
    }

    /// This machine's host name.
    package static func hostname() -> String? {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Text checks for addresses without building them.
enum IPAddressText {
    /// An IP literal. Go also takes a zoned IPv6 (`fe80::1%eth0`); a zone cannot be dialed through our
    /// `Destination`, so such a line is skipped.
    static func isLiteral(_ text: some StringProtocol) -> Bool {
        IPAddress(text) != nil
    }
}
