import Foundation

/// A DNS record in a `predefined` answer: zone-file text ("a.example. 60 IN A 192.0.2.1") or
/// base64 wire form (Go's `option.DNSRecordOptions`). Text is parsed the way miekg/dns reads one
/// line (origin ".", TTL 3600, class IN by default) and written back in its canonical form
/// ("a.example.\t60\tIN\tA\t192.0.2.1"); wire form is kept as given.
package struct DNSRecordOption: JSONCodable, Equatable {
    package var name: String
    package var ttl: UInt32
    package var recordClass: String
    package var type: String
    /// The record data in presentation form, canonical for the common types.
    package var data: String
    /// Set when the record was given as base64 wire bytes; written back unchanged.
    package var wireBase64: String?

    package static var goTypeName: String { "option.DNSRecordOptions" }

    package init(json: JSONValue, path: String) throws(ConfigError) {
        let text = try String(json: json, path: path)
        if !text.isEmpty, Data(base64Encoded: text) != nil {
            name = ""
            ttl = 0
            recordClass = ""
            type = ""
            data = ""
            wireBase64 = text
            return
        }
        var tokens = try Self.tokenize(text, path: path)
        guard !tokens.isEmpty else { throw ConfigError(path: path, message: "dns: empty record") }
        name = Self.fqdn(tokens.removeFirst())
        ttl = 3600
        recordClass = "IN"
        var sawTTL = false, sawClass = false
        // TTL and class may come in either order before the type.
        while let token = tokens.first {
            if !sawTTL, let value = UInt32(token) {
                ttl = value
                sawTTL = true
            } else if !sawClass, ["IN", "CH", "HS", "NONE", "ANY"].contains(token.uppercased()) || token.uppercased().hasPrefix("CLASS") {
                recordClass = token.uppercased()
                sawClass = true
            } else {
                break
            }
            tokens.removeFirst()
        }
        guard let typeToken = tokens.first else { throw ConfigError(path: path, message: "dns: missing type in \"\(text)\"") }
        tokens.removeFirst()
        let upper = typeToken.uppercased()
        guard DNSQueryType.names.contains(where: { $0.0 == upper }) || upper.hasPrefix("TYPE") else {
            throw ConfigError(path: path, message: "dns: not a TTL: \"\(typeToken)\"")
        }
        type = upper
        wireBase64 = nil
        data = try Self.canonicalData(type: upper, tokens, path: path)
    }

    package func toJSON() -> JSONValue {
        if let wireBase64 { return .string(wireBase64) }
        return .string("\(name)\t\(ttl)\t\(recordClass)\t\(type)\t\(data)")
    }

    static func fqdn(_ name: String) -> String { name.hasSuffix(".") ? name : name + "." }

    /// Splits on blanks, keeping "quoted strings" (with their quotes) as one token.
    private static func tokenize(_ text: String, path: String) throws(ConfigError) -> [String] {
        var tokens: [String] = []
        var current = ""
        var quoted = false
        var escaped = false
        for c in text {
            if quoted {
                current.append(c)
                if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { quoted = false }
            } else if c == " " || c == "\t" {
                if !current.isEmpty { tokens.append(current); current = "" }
            } else {
                if c == "\"" { quoted = true }
                current.append(c)
            }
        }
        if quoted { throw ConfigError(path: path, message: "dns: bad TXT Txt: unterminated string") }
        if !current.isEmpty { tokens.append(current) }
        return tokens
    }

    private static func canonicalData(type: String, _ tokens: [String], path: String) throws(ConfigError) -> String {
        func bad(_ what: String) -> ConfigError {
            ConfigError(path: path, message: "dns: bad \(type) \(what): \"\(tokens.joined(separator: " "))\"")
        }
        switch type {
        case "A":
            guard tokens.count == 1, let address = IPAddressOption(tokens[0]), address.isIPv4 else { throw bad("A") }
            return address.text
        case "AAAA":
            guard tokens.count == 1, let address = IPAddressOption(tokens[0]), !address.isIPv4, !address.text.contains("%") else { throw bad("AAAA") }
            return address.text
        case "CNAME", "NS", "PTR", "DNAME":
            guard tokens.count == 1 else { throw bad(type) }
            return fqdn(tokens[0])
        case "MX":
            guard tokens.count == 2, UInt16(tokens[0]) != nil else { throw bad("MX") }
            return "\(tokens[0]) \(fqdn(tokens[1]))"
        case "SRV":
            guard tokens.count == 4, UInt16(tokens[0]) != nil, UInt16(tokens[1]) != nil, UInt16(tokens[2]) != nil else { throw bad("SRV") }
            return "\(tokens[0]) \(tokens[1]) \(tokens[2]) \(fqdn(tokens[3]))"
        case "TXT", "SPF":
            guard !tokens.isEmpty else { throw bad("TXT") }
            return tokens.map { $0.hasPrefix("\"") ? $0 : "\"\($0)\"" }.joined(separator: " ")
        default:
            return tokens.joined(separator: " ")
        }
    }
}
