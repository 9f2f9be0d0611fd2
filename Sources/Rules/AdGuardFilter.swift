// AdGuardFilter: an AdGuard DNS filter text to rule-set rules, as Go's
// common/convertor/adguard.ToOptions (what `sing-box rule-set convert --type adguard` compiles).
//
// Per line (bufio.Scanner lines; "" and `!`/`#` comments skipped):
//   1. a bare domain name (Go's net.isDomainName) is kept raw;
//   2. a hosts line `<addr> <domain>`: with 0.0.0.0 / :: it is `|domain^`, any other address
//      drops the line silently, a bad domain falls through to 3;
//   3. otherwise a filter rule: `$` modifiers (only `important`, `dnsrewrite=<unspecified>`,
//      and the ignored `app`, `network`, `dnstype` keep it), `@@` exception, `||` / `|` / `^`
//      anchors, `/regex/`, `scheme://` (a suffix rule); paths, queries, cosmetic filters, `~`,
//      IP-like and port-carrying patterns are dropped with Go's debug line.
// Then: all raw domains → one `domain` rule; else `adguard_domain` + `domain_regex` rules nested
// as Go nests them: (normal AND NOT exceptions) OR important, AND NOT important exceptions.

package import Config
import Adapter

/// Converts AdGuard DNS filter text to rule-set rules (Go's `adguard.ToOptions`).
package enum AdGuardFilter {
    /// A log line the converter emits, with Go's level and wording.
    package enum LogLine: Equatable, Sendable {
        case debug(String)
        case info(String)
    }

    /// One accepted filter line (Go's `agdguardRuleLine`).
    struct Line {
        var rule: String
        var isRawDomain = false
        var isExclude = false
        var isSuffix = false
        var hasStart = false
        var hasEnd = false
        var isRegexp = false
        var isImportant = false
    }

    /// Parses `text` and builds the one rule Go builds. `log` receives Go's debug lines for every
    /// dropped line and the `parsed rules: n/m` info line. Throws Go's error when nothing is left.
    package static func rules(from text: [UInt8], log: (LogLine) -> Void = { _ in }) throws(RuleError) -> [HeadlessRuleOptions] {
        var lines: [Line] = []
        var ignored = 0
        func drop(_ message: String) {
            ignored += 1
            log(.debug(message))
        }
        for raw in scanLines(text) {
            let line = String(decoding: raw, as: UTF8.self)
            if line.isEmpty || line.hasPrefix("!") || line.hasPrefix("#") { continue }
            if isDomainName(raw[...]) {
                lines.append(Line(rule: line, isRawDomain: true))
                continue
            }
            switch hostLine(raw) {
            case .domain(let domain):
                lines.append(Line(rule: domain, isRawDomain: true, hasStart: true, hasEnd: true))
                continue
            case .skip:
                continue
            case .notHostLine:
                break
            }
            if let parsed = filterLine(raw, origin: line, drop: drop) { lines.append(parsed) }
        }
        guard !lines.isEmpty else { throw RuleError("AdGuard rule-set is empty or all rules are unsupported") }
        if lines.allSatisfy(\.isRawDomain) {
            var rule = DefaultHeadlessRuleOptions()
            rule.domain = lines.map(\.rule)
            return [.default(rule)]
        }
        // mapDomain: the anchors back on the stripped rule.
        func spelled(_ line: Line) -> String {
            var rule = line.rule
            if line.isSuffix { rule = "||" + rule } else if line.hasStart { rule = "|" + rule }
            if line.hasEnd { rule += "^" }
            return rule
        }
        func select(important: Bool, regexp: Bool, exclude: Bool) -> [String] {
            lines.filter { $0.isImportant == important && $0.isRegexp == regexp && $0.isExclude == exclude }.map(spelled)
        }
        func item(_ domains: [String], _ regexes: [String], invert: Bool) -> HeadlessRuleOptions {
            var rule = DefaultHeadlessRuleOptions()
            rule.adGuardDomain = domains
            rule.domainRegex = regexes
            rule.invert = invert
            return .default(rule)
        }
        var current = item(select(important: false, regexp: false, exclude: false),
                           select(important: false, regexp: true, exclude: false), invert: false)
        let exclude = select(important: false, regexp: false, exclude: true)
        let excludeRegex = select(important: false, regexp: true, exclude: true)
        if !exclude.isEmpty || !excludeRegex.isEmpty {
            current = .logical(mode: "and", rules: [item(exclude, excludeRegex, invert: true), current], invert: false)
        }
        let important = select(important: true, regexp: false, exclude: false)
        let importantRegex = select(important: true, regexp: true, exclude: false)
        if !important.isEmpty || !importantRegex.isEmpty {
            current = .logical(mode: "or", rules: [item(important, importantRegex, invert: false), current], invert: false)
        }
        let importantExclude = select(important: true, regexp: false, exclude: true)
        let importantExcludeRegex = select(important: true, regexp: true, exclude: true)
        if !importantExclude.isEmpty || !importantExcludeRegex.isEmpty {
            current = .logical(mode: "and", rules: [item(importantExclude, importantExcludeRegex, invert: true), current],
                               invert: false)
        }
        if ignored > 0 { log(.info("parsed rules: \(lines.count)/\(lines.count + ignored)")) }
        return [current]
    }

    // MARK: one filter line

    /// Step 3 of the file header for one line; nil when Go drops it (after logging why).
    static func filterLine(_ raw: ArraySlice<UInt8>, origin: String, drop: (String) -> Void) -> Line? {
        var rule = raw[...]
        if rule.last == UInt8(ascii: "|") { rule = rule.dropLast() }
        var result = Line(rule: "")
        if rule.first != UInt8(ascii: "/"), let dollar = rule.firstIndex(of: UInt8(ascii: "$")) {
            // Every modifier must be one Go keeps, else the whole line goes.
            for param in rule[(dollar + 1)...].split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
                let parts = param.split(separator: UInt8(ascii: "="), omittingEmptySubsequences: false)
                var kept = false
                if parts.count <= 2 {
                    switch String(decoding: parts[0], as: UTF8.self) {
                    case "important":
                        kept = true
                        result.isImportant = true
                    case "dnsrewrite":
                        if parts.count == 2, isUnspecifiedAddr(parts[1]) { kept = true }
                    default:
                        break  // app, network, dnstype: "maybe supported later" in Go, dropped today
                    }
                }
                if !kept {
                    drop("ignored unsupported rule with modifier: \(String(decoding: parts[0], as: UTF8.self)): \(origin)")
                    return nil
                }
            }
            rule = rule[..<dollar]
        }
        if rule.starts(with: "@@".utf8) {
            rule = rule.dropFirst(2)
            result.isExclude = true
        }
        if rule.last == UInt8(ascii: "|") { rule = rule.dropLast() }
        if rule.starts(with: "||".utf8) {
            rule = rule.dropFirst(2)
            result.isSuffix = true
        } else if rule.first == UInt8(ascii: "|") {
            rule = rule.dropFirst()
            result.hasStart = true
        }
        if rule.last == UInt8(ascii: "^") {
            rule = rule.dropLast()
            result.hasEnd = true
        }
        if rule.count >= 1, rule.first == UInt8(ascii: "/"), rule.last == UInt8(ascii: "/") {
            // Go slices [1:len-1]: a lone "/" is both ends, and Go's slice [1:0] would panic; we
            // drop it as a bad pattern instead.
            guard rule.count >= 2 else {
                drop("ignored unsupported rule with invalid domain: \(origin)")
                return nil
            }
            rule = rule.dropFirst().dropLast()
            if ignoresIPCIDRRegexp(rule) {
                drop("ignored unsupported rule with IPCIDR regexp: \(origin)")
                return nil
            }
            result.isRegexp = true
        } else {
            if let scheme = firstRange(of: "://", in: rule) {
                rule = rule[scheme.upperBound...]
                result.isSuffix = true
            }
            if rule.contains(UInt8(ascii: "/")) {
                drop("ignored unsupported rule with path: \(origin)")
                return nil
            }
            if rule.contains(UInt8(ascii: "?")) || rule.contains(UInt8(ascii: "&")) {
                drop("ignored unsupported rule with query: \(origin)")
                return nil
            }
            if rule.contains(where: { "[]()!#".utf8.contains($0) }) {
                drop("ignored unsupported cosmetic filter: \(origin)")
                return nil
            }
            if rule.contains(UInt8(ascii: "~")) {
                drop("ignored unsupported rule modifier: \(origin)")
                return nil
            }
            if rule.isEmpty {
                drop("ignored unsupported rule with empty domain\(origin)")  // sic: Go has no separator
                return nil
            }
            var check = Array(rule)
            if check.first == UInt8(ascii: ".") || check.first == UInt8(ascii: "-") { check.insert(UInt8(ascii: "r"), at: 0) }
            for index in check.indices where check[index] == UInt8(ascii: "*") { check[index] = UInt8(ascii: "x") }
            if !isDomainName(check[...]) {
                if isIPCIDRLine(rule) {
                    drop("ignored unsupported rule with IPCIDR: \(origin)")
                } else if hasPort(check) {
                    drop("ignored unsupported rule with port: \(origin)")
                } else {
                    drop("ignored unsupported rule with invalid domain: \(origin)")
                }
                return nil
            }
        }
        result.rule = String(decoding: rule, as: UTF8.self)
        return result
    }

    // MARK: Go helpers, byte for byte

    /// bufio.Scanner with ScanLines: split at '\n', drop one trailing '\r', the last line may lack
    /// '\n'. A line that does not fit the 64 KiB token buffer stops the scan (Go ignores the
    /// scanner's ErrTooLong and just sees the end).
    static func scanLines(_ text: [UInt8]) -> [ArraySlice<UInt8>] {
        let maxToken = 64 * 1024
        var out: [ArraySlice<UInt8>] = []
        var start = 0
        while start < text.count {
            let end = text[start...].firstIndex(of: UInt8(ascii: "\n"))
            let stop = end ?? text.count
            if stop - start + (end == nil ? 0 : 1) > maxToken { break }
            var line = text[start..<stop]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            out.append(line)
            start = stop + 1
        }
        return out
    }

    /// Go's `net.isDomainName` (RFC 1035 presentation form, '_' allowed, not all-numeric).
    package static func isDomainName(_ s: ArraySlice<UInt8>) -> Bool {
        if s.elementsEqual(".".utf8) { return true }
        let count = s.count
        if count == 0 || count > 254 || count == 254 && s.last != UInt8(ascii: ".") { return false }
        var last = UInt8(ascii: ".")
        var nonNumeric = false
        var partLength = 0
        for c in s {
            switch c {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "_"):
                nonNumeric = true
                partLength += 1
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                partLength += 1
            case UInt8(ascii: "-"):
                if last == UInt8(ascii: ".") { return false }
                partLength += 1
                nonNumeric = true
            case UInt8(ascii: "."):
                if last == UInt8(ascii: ".") || last == UInt8(ascii: "-") { return false }
                if partLength > 63 || partLength == 0 { return false }
                partLength = 0
            default:
                return false
            }
            last = c
        }
        if last == UInt8(ascii: "-") || partLength > 63 { return false }
        return nonNumeric
    }

    enum HostLine { case domain(String), skip, notHostLine }

    /// Go's `parseAdGuardHostLine`: `<address> <domain>` split at the first space.
    static func hostLine(_ raw: ArraySlice<UInt8>) -> HostLine {
        guard let space = raw.firstIndex(of: UInt8(ascii: " ")) else { return .notHostLine }
        guard let address = parseNetipAddr(raw[..<space]) else { return .notHostLine }
        guard address.unspecified else { return .skip }
        let domain = raw[(space + 1)...]
        guard isDomainName(domain) else { return .notHostLine }
        return .domain(String(decoding: domain, as: UTF8.self))
    }

    /// Go's `netip.ParseAddr`: our parser plus IPv6 zones (`fe80::1%eth0`), which Go accepts and
    /// never calls unspecified.
    static func parseNetipAddr(_ text: ArraySlice<UInt8>) -> (address: IPAddress, unspecified: Bool)? {
        if let percent = text.firstIndex(of: UInt8(ascii: "%")) {
            guard percent + 1 < text.endIndex, let address = IPAddress(String(decoding: text[..<percent], as: UTF8.self)),
                  address.isIPv6 else { return nil }
            return (address, false)
        }
        guard let address = IPAddress(String(decoding: text, as: UTF8.self)) else { return nil }
        return (address, address.isUnspecified)
    }

    /// `M.ParseAddr(s).IsUnspecified()`: brackets stripped, false when not an address.
    static func isUnspecifiedAddr(_ text: ArraySlice<UInt8>) -> Bool {
        var text = text
        if text.count >= 2, text.first == UInt8(ascii: "["), text.last == UInt8(ascii: "]") { text = text.dropFirst().dropLast() }
        return parseNetipAddr(text)?.unspecified ?? false
    }

    /// Go's `ignoreIPCIDRRegexp`: a regex that starts like a dotted number (after an optional
    /// `(http?:\/\/)`, `(https?:\/\/)` or `^`) is an IP pattern, which a domain rule cannot use.
    static func ignoresIPCIDRRegexp(_ rule: ArraySlice<UInt8>) -> Bool {
        var rule = rule
        if rule.starts(with: #"(http?:\/\/)"#.utf8) {
            rule = rule.dropFirst(12)
        } else if rule.starts(with: #"(https?:\/\/)"#.utf8) {
            rule = rule.dropFirst(13)
        } else if rule.first == UInt8(ascii: "^") {
            rule = rule.dropFirst()
        }
        func before(_ separator: String) -> ArraySlice<UInt8> {
            guard let range = firstRange(of: separator, in: rule) else { return rule }
            return rule[..<range.lowerBound]
        }
        return parseUInt8(before(#"\."#)) != nil || parseUInt8(before(".")) != nil
    }

    /// Go's `parseADGuardIPCIDRLine` succeeding: 4 dotted octets, or fewer ending in '.'.
    static func isIPCIDRLine(_ rule: ArraySlice<UInt8>) -> Bool {
        var rule = rule
        var isPrefix = false
        if rule.last == UInt8(ascii: ".") {
            isPrefix = true
            rule = rule.dropLast()
        }
        let parts = rule.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        if parts.count > 4 || parts.count < 4 && !isPrefix { return false }
        return parts.allSatisfy { parseUInt8($0) != nil }
    }

    /// `M.ParseSocksaddr(s).Port != 0`: net.SplitHostPort succeeds and the port is a non-zero
    /// number (a service name would be looked up by Go; filters do not carry them).
    static func hasPort(_ s: [UInt8]) -> Bool {
        guard let colon = s.lastIndex(of: UInt8(ascii: ":")) else { return false }
        var host = s[..<colon]
        if host.first == UInt8(ascii: "[") {
            guard host.last == UInt8(ascii: "]") else { return false }
            host = host.dropFirst().dropLast()
        } else if host.contains(UInt8(ascii: ":")) {
            return false  // "too many colons"
        }
        if host.contains(UInt8(ascii: "[")) || host.contains(UInt8(ascii: "]")) { return false }
        let port = s[(colon + 1)...]
        guard !port.isEmpty, port.count <= 5, port.allSatisfy({ (0x30...0x39).contains($0) }),
              let value = Int(String(decoding: port, as: UTF8.self)) else { return false }
        return (1...65535).contains(value)
    }

    /// strconv.ParseUint(s, 10, 8) succeeding: 1–3 ASCII digits (leading zeros allowed) ≤ 255.
    static func parseUInt8(_ s: ArraySlice<UInt8>) -> UInt8? {
        guard !s.isEmpty, s.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        var value = 0
        for c in s {
            value = value * 10 + Int(c - 0x30)
            if value > 255 { return nil }
        }
        return UInt8(value)
    }

    static func firstRange(of needle: String, in haystack: ArraySlice<UInt8>) -> Range<Int>? {
        let pattern = Array(needle.utf8)
        guard haystack.count >= pattern.count else { return nil }
        var index = haystack.startIndex
        while index + pattern.count <= haystack.endIndex {
            if haystack[index..<(index + pattern.count)].elementsEqual(pattern) { return index..<(index + pattern.count) }
            index += 1
        }
        return nil
    }
}
