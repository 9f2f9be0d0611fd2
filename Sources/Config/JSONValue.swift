/// A parsed JSON document that keeps object key order and number spelling, so that decoding can
/// report exact paths and `format`/`merge` can write values back unchanged.
package indirect enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    /// The number as written (validated JSON number syntax); typed readers convert it.
    case number(String)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// Go's `json` word for the kind of value, used in "cannot unmarshal X into …".
    var kindName: String {
        switch self {
        case .null: "null"
        case .bool: "bool"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    /// Semantic equality: objects compare as maps (order ignored), numbers by value.
    package func semanticallyEquals(_ other: JSONValue) -> Bool {
        switch (self, other) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.number(a), .number(b)): return a == b || Double(a) == Double(b)
        case let (.string(a), .string(b)): return a == b
        case let (.array(a), .array(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.semanticallyEquals($1) }
        case let (.object(a), .object(b)):
            guard a.entries.count == b.entries.count else { return false }
            for entry in a.entries {
                guard let value = b[entry.key], value.semanticallyEquals(entry.value) else { return false }
            }
            return true
        default: return false
        }
    }
}

/// A JSON object with its keys in document order. Duplicate keys keep the last value (Go's
/// decoder lets a later key overwrite an earlier one).
package struct JSONObject: Equatable, Sendable {
    package var entries: [(key: String, value: JSONValue)]

    package init(_ entries: [(key: String, value: JSONValue)] = []) {
        self.entries = entries
    }

    package static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        lhs.entries.count == rhs.entries.count
            && zip(lhs.entries, rhs.entries).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }

    package subscript(key: String) -> JSONValue? {
        get { entries.last { $0.key == key }?.value }
        set {
            if let index = entries.firstIndex(where: { $0.key == key }) {
                if let newValue { entries[index].value = newValue } else { entries.remove(at: index) }
            } else if let newValue {
                entries.append((key, newValue))
            }
        }
    }

    package var isEmpty: Bool { entries.isEmpty }
}

// MARK: - Parsing

/// An RFC 8259 parser with sing-box's leniencies: `//`, `/* */` and `#` comments outside
/// strings are ignored (sing's `json.NewCommentFilter`), one trailing comma may end an object or
/// array, and anything after the first value is ignored (Go's `Decoder.Decode`).
package struct JSONParser {
    private let bytes: [UInt8]
    private var index = 0

    private init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// Parses one document; trailing content other than whitespace and comments is an error.
    package static func parse(_ bytes: [UInt8]) throws(ConfigError) -> JSONValue {
        var parser = JSONParser(bytes)
        try parser.skipWhitespace()
        if parser.index == bytes.count { throw ConfigError(path: "", message: "EOF") }
        // Go's decoder reads one value and ignores whatever follows it.
        return try parser.parseValue(depth: 0)
    }

    package static func parse(_ text: String) throws(ConfigError) -> JSONValue {
        try parse(Array(text.utf8))
    }

    private func quoted(_ byte: UInt8) -> String {
        byte >= 0x20 && byte < 0x7f ? "'\(Character(Unicode.Scalar(byte)))'" : String(format: byte)
    }

    private func syntaxError(_ message: String) -> ConfigError {
        // Go appends the position of a syntax error as "row R, column C".
        let prefix = bytes[..<min(index, bytes.count)]
        let row = prefix.count { $0 == UInt8(ascii: "\n") } + 1
        let lastNewline = prefix.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0
        // Go counts the offending byte in the column.
        return ConfigError(path: "", message: "\(message): row \(row), column \(prefix.count - lastNewline + 1)")
    }

    private var eof: ConfigError { ConfigError(path: "", message: "unexpected EOF") }

    private mutating func skipWhitespace() throws(ConfigError) {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0a, 0x0d:
                index += 1
            case UInt8(ascii: "#"):
                while index < bytes.count, bytes[index] != 0x0a { index += 1 }
            case UInt8(ascii: "/") where index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "/"):
                while index < bytes.count, bytes[index] != 0x0a { index += 1 }
            case UInt8(ascii: "/") where index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "*"):
                index += 2
                while index + 1 < bytes.count, !(bytes[index] == UInt8(ascii: "*") && bytes[index + 1] == UInt8(ascii: "/")) {
                    index += 1
                }
                guard index + 1 < bytes.count else { throw eof }
                index += 2
            default:
                return
            }
        }
    }

    private mutating func parseValue(depth: Int) throws(ConfigError) -> JSONValue {
        // Go allows 10000 levels; no configuration comes near 512, and recursion that deep
        // would risk a small thread stack.
        guard depth < 512 else { throw syntaxError("exceeded max depth") }
        try skipWhitespace()
        guard index < bytes.count else { throw eof }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            index += 1
            var object = JSONObject()
            try skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                index += 1
                return .object(object)
            }
            while true {
                try skipWhitespace()
                guard index < bytes.count else { throw eof }
                guard bytes[index] == UInt8(ascii: "\"") else {
                    throw syntaxError("invalid character \(quoted(bytes[index])) looking for beginning of object key string")
                }
                let key = try parseString()
                try skipWhitespace()
                guard index < bytes.count else { throw eof }
                guard bytes[index] == UInt8(ascii: ":") else {
                    throw syntaxError("invalid character \(quoted(bytes[index])) after object key")
                }
                index += 1
                let value = try parseValue(depth: depth + 1)
                if let existing = object.entries.firstIndex(where: { $0.key == key }) {
                    object.entries.remove(at: existing)
                }
                object.entries.append((key, value))
                try skipWhitespace()
                guard index < bytes.count else { throw eof }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                    // sing's decoder accepts one trailing comma before the closing brace.
                    try skipWhitespace()
                    if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return .object(object) }
                    continue
                }
                if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(object) }
                throw syntaxError("invalid character \(quoted(bytes[index])) after object key:value pair")
            }
        case UInt8(ascii: "["):
            index += 1
            var array: [JSONValue] = []
            try skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                index += 1
                return .array(array)
            }
            while true {
                array.append(try parseValue(depth: depth + 1))
                try skipWhitespace()
                guard index < bytes.count else { throw eof }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                    try skipWhitespace()
                    if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return .array(array) }
                    continue
                }
                if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(array) }
                throw syntaxError("invalid character \(quoted(bytes[index])) after array element")
            }
        case UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "t"):
            try literal("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try literal("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try literal("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .number(try parseNumber())
        default:
            throw syntaxError("invalid character \(quoted(bytes[index])) looking for beginning of value")
        }
    }

    private mutating func literal(_ word: String) throws(ConfigError) {
        for expected in word.utf8 {
            guard index < bytes.count else { throw eof }
            guard bytes[index] == expected else {
                throw syntaxError("invalid character \(quoted(bytes[index])) in literal \(word) (expecting '\(Character(Unicode.Scalar(expected)))')")
            }
            index += 1
        }
    }

    private mutating func parseNumber() throws(ConfigError) -> String {
        let start = index
        func digit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count else { throw eof }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else if digit(bytes[index]) {
            while index < bytes.count, digit(bytes[index]) { index += 1 }
        } else {
            throw syntaxError("invalid character \(quoted(bytes[index])) in numeric literal")
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard index < bytes.count else { throw eof }
            guard digit(bytes[index]) else { throw syntaxError("invalid character \(quoted(bytes[index])) after decimal point in numeric literal") }
            while index < bytes.count, digit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count else { throw eof }
            guard digit(bytes[index]) else { throw syntaxError("invalid character \(quoted(bytes[index])) in exponent of numeric literal") }
            while index < bytes.count, digit(bytes[index]) { index += 1 }
        }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    private mutating func hex4() throws(ConfigError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw eof }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[index]
            let nibble: UInt32
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = UInt32(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = UInt32(b - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = UInt32(b - UInt8(ascii: "A") + 10)
            default: throw syntaxError("invalid character \(quoted(b)) in \\u hexadecimal character escape")
            }
            value = value << 4 | nibble
            index += 1
        }
        return value
    }

    private mutating func parseString() throws(ConfigError) -> String {
        index += 1  // opening quote
        var runStart = index
        var out = ""
        while true {
            guard index < bytes.count else { throw eof }
            let b = bytes[index]
            if b == UInt8(ascii: "\"") {
                out += String(decoding: bytes[runStart..<index], as: UTF8.self)
                index += 1
                return out
            }
            if b < 0x20 {
                throw syntaxError("invalid character \(quoted(b)) in string literal")
            }
            if b != UInt8(ascii: "\\") {
                index += 1
                continue
            }
            out += String(decoding: bytes[runStart..<index], as: UTF8.self)
            index += 1
            guard index < bytes.count else { throw eof }
            let escape = bytes[index]
            index += 1
            switch escape {
            case UInt8(ascii: "\""): out += "\""
            case UInt8(ascii: "\\"): out += "\\"
            case UInt8(ascii: "/"): out += "/"
            case UInt8(ascii: "b"): out += "\u{08}"
            case UInt8(ascii: "f"): out += "\u{0C}"
            case UInt8(ascii: "n"): out += "\n"
            case UInt8(ascii: "r"): out += "\r"
            case UInt8(ascii: "t"): out += "\t"
            case UInt8(ascii: "u"):
                var code = try hex4()
                if (0xD800..<0xDC00).contains(code), index + 1 < bytes.count,
                   bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") {
                    let save = index
                    index += 2
                    let low = try hex4()
                    if (0xDC00..<0xE000).contains(low) {
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        index = save
                    }
                }
                // Go replaces unpaired surrogates with U+FFFD.
                out.unicodeScalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
            default:
                throw syntaxError("invalid character \(quoted(escape)) in string escape code")
            }
            runStart = index
        }
    }
}

private extension String {
    init(format byte: UInt8) {
        let hex = String(byte, radix: 16)
        self = "'\\x" + (hex.count == 1 ? "0" + hex : hex) + "'"
    }
}

// MARK: - Writing

extension JSONValue {
    /// Writes the value as Go's `json.Encoder` with `SetIndent("", "  ")` does, including its
    /// HTML-safe escapes, followed by no newline.
    package func serialized(indent: String = "  ") -> String {
        var out = ""
        write(into: &out, indent: indent, level: 0)
        return out
    }

    /// Writes the value as Go's `json.Marshal` does: no spaces, HTML-safe escapes.
    package func compactSerialized() -> String {
        var out = ""
        writeCompact(into: &out)
        return out
    }

    private func writeCompact(into out: inout String) {
        switch self {
        case .null, .bool, .number, .string: write(into: &out, indent: "", level: 0)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.writeCompact(into: &out)
            }
            out += "]"
        case .object(let object):
            out += "{"
            for (i, entry) in object.entries.enumerated() {
                if i > 0 { out += "," }
                JSONValue.writeString(entry.key, into: &out)
                out += ":"
                entry.value.writeCompact(into: &out)
            }
            out += "}"
        }
    }

    private func write(into out: inout String, indent: String, level: Int) {
        switch self {
        case .null: out += "null"
        case .bool(let value): out += value ? "true" : "false"
        case .number(let text): out += text
        case .string(let text): JSONValue.writeString(text, into: &out)
        case .array(let items):
            if items.isEmpty { out += "[]"; return }
            out += "[\n"
            for (i, item) in items.enumerated() {
                out += String(repeating: indent, count: level + 1)
                item.write(into: &out, indent: indent, level: level + 1)
                out += i == items.count - 1 ? "\n" : ",\n"
            }
            out += String(repeating: indent, count: level) + "]"
        case .object(let object):
            if object.entries.isEmpty { out += "{}"; return }
            out += "{\n"
            for (i, entry) in object.entries.enumerated() {
                out += String(repeating: indent, count: level + 1)
                JSONValue.writeString(entry.key, into: &out)
                out += ": "
                entry.value.write(into: &out, indent: indent, level: level + 1)
                out += i == object.entries.count - 1 ? "\n" : ",\n"
            }
            out += String(repeating: indent, count: level) + "}"
        }
    }

    static func writeString(_ text: String, into out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "<": out += "\\u003c"
            case ">": out += "\\u003e"
            case "&": out += "\\u0026"
            case "\u{2028}": out += "\\u2028"
            case "\u{2029}": out += "\\u2029"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}
