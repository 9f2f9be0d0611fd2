/// A value that decodes from a `JSONValue` strictly (Go's rules) and encodes back to the form
/// Go's `json.Marshal` produces for the matching sing-box option type.
package protocol JSONCodable: Sendable {
    /// Decodes `json` found at `path`; `null` never reaches this (it means "absent").
    init(json: JSONValue, path: String) throws(ConfigError)
    /// The value as Go marshals it.
    func toJSON() -> JSONValue
    /// Whether Go's `omitempty` drops the value (false, 0, "", empty slice or map).
    var isGoZero: Bool { get }
    /// Go's name for the type in "cannot unmarshal X into Go value of type T".
    static var goTypeName: String { get }
}

extension JSONCodable {
    package var isGoZero: Bool { false }

    /// What Go makes of `null` where a value of this type is required (an array element):
    /// the zero value, which for option structs means decoding an empty object.
    package static func decodeNull(path: String) throws(ConfigError) -> Self {
        try Self(json: .object(JSONObject()), path: path)
    }
}

/// The error Go's decoder gives for a JSON value of the wrong kind.
@inline(never)
/// Go names the number itself only when it was meant for a number and did not fit.
func typeMismatch(_ json: JSONValue, _ typeName: String, _ path: String, numeric: Bool = false) -> ConfigError {
    let what: String = if numeric, case .number(let text) = json { "number \(text)" } else { json.kindName }
    return ConfigError(path: path, message: "json: cannot unmarshal \(what) into Go value of type \(typeName)")
}

extension String: JSONCodable {
    package init(json: JSONValue, path: String) throws(ConfigError) {
        guard case .string(let text) = json else { throw typeMismatch(json, "string", path) }
        self = text
    }
    package func toJSON() -> JSONValue { .string(self) }
    package var isGoZero: Bool { isEmpty }
    package static var goTypeName: String { "string" }
    package static func decodeNull(path: String) -> String { "" }
}

extension Bool: JSONCodable {
    package init(json: JSONValue, path: String) throws(ConfigError) {
        guard case .bool(let value) = json else { throw typeMismatch(json, "bool", path) }
        self = value
    }
    package func toJSON() -> JSONValue { .bool(self) }
    package var isGoZero: Bool { !self }
    package static var goTypeName: String { "bool" }
    package static func decodeNull(path: String) -> Bool { false }
}

/// Integer decoding as Go does it: the literal must be an integer in range (no fraction or exponent).
package protocol GoInteger: FixedWidthInteger, JSONCodable {}

extension GoInteger {
    package init(json: JSONValue, path: String) throws(ConfigError) {
        guard case .number(let text) = json else { throw typeMismatch(json, Self.goTypeName, path) }
        guard let value = Self(text, radix: 10) else { throw typeMismatch(json, Self.goTypeName, path, numeric: true) }
        self = value
    }
    package func toJSON() -> JSONValue { .number(String(self)) }
    package var isGoZero: Bool { self == 0 }
    package static func decodeNull(path: String) -> Self { 0 }
}

extension UInt8: GoInteger { package static var goTypeName: String { "uint8" } }
extension UInt16: GoInteger { package static var goTypeName: String { "uint16" } }
extension UInt32: GoInteger { package static var goTypeName: String { "uint32" } }
extension UInt64: GoInteger { package static var goTypeName: String { "uint64" } }
extension Int32: GoInteger { package static var goTypeName: String { "int32" } }
extension Int64: GoInteger { package static var goTypeName: String { "int64" } }
extension Int: GoInteger { package static var goTypeName: String { "int" } }

extension Double: JSONCodable {
    package init(json: JSONValue, path: String) throws(ConfigError) {
        guard case .number(let text) = json, let value = Double(text) else { throw typeMismatch(json, "float64", path, numeric: true) }
        self = value
    }
    package func toJSON() -> JSONValue {
        if self == rounded(), abs(self) < 1e21 { return .number(String(Int64(self))) }
        return .number(String(self))
    }
    package var isGoZero: Bool { self == 0 }
    package static var goTypeName: String { "float64" }
}

/// A plain Go slice `[]T`: only a JSON array decodes into it.
extension Array: JSONCodable where Element: JSONCodable {
    package init(json: JSONValue, path: String) throws(ConfigError) {
        guard case .array(let items) = json else { throw typeMismatch(json, "[]" + Element.goTypeName, path) }
        var result: [Element] = []
        result.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            if case .null = item {
                result.append(try Element.decodeNull(path: JSONPath.index(path, i)))
                continue
            }
            result.append(try Element(json: item, path: JSONPath.index(path, i)))
        }
        self = result
    }
    package func toJSON() -> JSONValue { .array(map { $0.toJSON() }) }
    package var isGoZero: Bool { isEmpty }
    package static var goTypeName: String { "[]" + Element.goTypeName }
}

/// Go's `badoption.Listable[T]`: a single value or an array; one element marshals as the value.
package enum Listable {
    static func decode<T: JSONCodable>(_ json: JSONValue, path: String) throws(ConfigError) -> [T] {
        // Go tries the single value first, then the array, and reports both: "(single | array)",
        // with an element's index inside the second message.
        let single: String
        if case .array = json {
            single = "json: cannot unmarshal array into Go value of type \(T.goTypeName)"
        } else {
            do {
                return [try T(json: json, path: path)]
            } catch {
                single = error.message
            }
        }
        do {
            return try [T](json: json, path: path)
        } catch {
            let array = error.path == path ? error.message : "\(error.path.dropFirst(path.count)): \(error.message)"
            throw ConfigError(path: path, message: "(\(single) | \(array))")
        }
    }

    static func encode<T: JSONCodable>(_ values: [T]) -> JSONValue {
        values.count == 1 ? values[0].toJSON() : .array(values.map { $0.toJSON() })
    }
}

/// A JSON object read as a Go map with string keys; kept in document order. Go writes maps
/// with sorted keys, and so do we.
package struct StringMap<Value: JSONCodable>: JSONCodable, Equatable where Value: Equatable {
    package var entries: [(key: String, value: Value)]

    package init(_ entries: [(key: String, value: Value)] = []) { self.entries = entries }

    package static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.entries.count == rhs.entries.count && zip(lhs.entries, rhs.entries).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }

    package subscript(key: String) -> Value? { entries.last { $0.key == key }?.value }

    package init(json: JSONValue, path: String) throws(ConfigError) {
        guard case .object(let object) = json else { throw typeMismatch(json, Self.goTypeName, path) }
        var result: [(key: String, value: Value)] = []
        for entry in object.entries {
            if case .null = entry.value { continue }
            result.append((entry.key, try Value(json: entry.value, path: JSONPath.key(path, entry.key))))
        }
        entries = result
    }
    package func toJSON() -> JSONValue {
        .object(JSONObject(entries.sorted { $0.key < $1.key }.map { ($0.key, $0.value.toJSON()) }))
    }
    package var isGoZero: Bool { entries.isEmpty }
    package static var goTypeName: String { "map[string]" + Value.goTypeName }
}

/// A map whose values are `Listable` (Go's `badoption.HTTPHeader`, DNS hosts).
package struct ListableMap: JSONCodable, Equatable {
    package var entries: [(key: String, values: [String])]

    package init(_ entries: [(key: String, values: [String])] = []) { self.entries = entries }

    package static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.entries.count == rhs.entries.count && zip(lhs.entries, rhs.entries).allSatisfy { $0.key == $1.key && $0.values == $1.values }
    }

    package init(json: JSONValue, path: String) throws(ConfigError) {
        guard case .object(let object) = json else { throw typeMismatch(json, Self.goTypeName, path) }
        var result: [(key: String, values: [String])] = []
        for entry in object.entries {
            if case .null = entry.value { result.append((entry.key, [])); continue }
            result.append((entry.key, try Listable.decode(entry.value, path: JSONPath.key(path, entry.key))))
        }
        entries = result
    }
    package func toJSON() -> JSONValue {
        .object(JSONObject(entries.sorted { $0.key < $1.key }.map { ($0.key, Listable.encode($0.values)) }))
    }
    package var isGoZero: Bool { entries.isEmpty }
    package static var goTypeName: String { "map[string]badoption.Listable[string]" }
}

/// Any JSON value kept as written (Go's `json.RawMessage` / `any` fields).
extension JSONValue: JSONCodable {
    package init(json: JSONValue, path: String) throws(ConfigError) { self = json }
    package func toJSON() -> JSONValue { self }
    package static var goTypeName: String { "interface {}" }
}
