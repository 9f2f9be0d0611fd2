/// Reads the keys of one JSON object, remembering which were used so that what is left over is
/// reported as Go's `json: unknown field "k"`. Keys match exactly first, then case-insensitively
/// (Go's `encoding/json` does both).
package struct ObjectReader {
    package let object: JSONObject
    package let path: String
    private var consumed: Set<Int> = []

    package init(_ object: JSONObject, path: String) {
        self.object = object
        self.path = path
    }

    /// The path of a key of this object.
    package func path(_ key: String) -> String { JSONPath.key(path, key) }

    /// Takes the value of `key`; `nil` when absent or `null` (Go leaves the field at its zero).
    package mutating func take(_ key: String) -> JSONValue? { takeEntry(key)?.value }

    /// Like `take`, with the key as the document spells it (Go's paths use that spelling).
    package mutating func takeEntry(_ key: String) -> (key: String, value: JSONValue)? {
        // Go matches keys case-insensitively and applies them in document order, so the last
        // spelling of the key wins and every spelling is used up.
        let folded = key.lowercased()
        let matches = object.entries.indices.filter { object.entries[$0].key.lowercased() == folded }
        guard let index = matches.last else { return nil }
        consumed.formUnion(matches)
        if case .null = object.entries[index].value { return nil }
        return object.entries[index]
    }

    /// The keys other than `excluded` (exact spelling, as Go removes them), as sing's
    /// `badjson.UnmarshallExcluded` hands them on: it
    /// re-encodes them through its own writer, which drops every empty object and array (and
    /// those holding only empty ones), so `"listen_port": []` inside an inbound is no error.
    package func remainder(excluding excluded: Set<String>) -> ObjectReader {
        let kept = object.entries.filter { !excluded.contains($0.key) && !isBadJSONEmpty($0.value) }
        return ObjectReader(JSONObject(kept.map { ($0.key, pruneEmpty($0.value)) }), path: path)
    }

    /// Whether `key` is present (even as null) without consuming it.
    package func has(_ key: String) -> Bool { object.entries.contains { $0.key == key } }

    /// Marks every remaining key as used (for objects kept as raw JSON).
    package mutating func consumeAll() { consumed = Set(object.entries.indices) }

    /// Throws for the first key nobody read.
    package func finish() throws(ConfigError) {
        for (i, entry) in object.entries.enumerated() where !consumed.contains(i) {
            throw ConfigError(path: path(entry.key), message: "json: unknown field \"\(entry.key)\"")
        }
    }

    /// Reads a value of any codable type at `key`.
    package mutating func read<T: JSONCodable>(_ key: String, as _: T.Type = T.self) throws(ConfigError) -> T? {
        guard let entry = takeEntry(key) else { return nil }
        return try T(json: entry.value, path: path(entry.key))
    }
}

/// Collects the keys of an object being written, in Go's field order.
package struct ObjectWriter {
    package var object = JSONObject()

    package init() {}

    package mutating func put(_ key: String, _ value: JSONValue) { object.entries.append((key, value)) }
}

/// How a field is left out when writing, mirroring the Go struct tag.
package enum EmitRule: Sendable {
    /// `omitempty` on a value type: left out when zero.
    case omitZero
    /// `omitempty` on a pointer: left out only when absent.
    case omitNil
    /// no `omitempty`: always written.
    case always
}

/// One JSON key of an options struct: how to read it into and write it out of `Root`.
package struct ConfigField<Root> {
    let decode: (inout Root, inout ObjectReader) throws(ConfigError) -> Void
    let encode: (Root, inout ObjectWriter) -> Void
    /// The JSON keys this field owns (an embedded struct owns all of its own).
    let keys: [String]

    package init(keys: [String] = [], decode: @escaping (inout Root, inout ObjectReader) throws(ConfigError) -> Void,
                 encode: @escaping (Root, inout ObjectWriter) -> Void) {
        self.keys = keys
        self.decode = decode
        self.encode = encode
    }

    /// An optional field (a Go pointer or a value with `omitempty`).
    package init<T: JSONCodable>(_ key: String, _ keyPath: WritableKeyPath<Root, T?>, _ emit: EmitRule = .omitZero) {
        keys = [key]
        decode = { (root: inout Root, reader: inout ObjectReader) throws(ConfigError) in
            if let value: T = try reader.read(key) { root[keyPath: keyPath] = value }
        }
        encode = { root, writer in
            guard let value = root[keyPath: keyPath] else { return }
            if emit == .omitZero, value.isGoZero { return }
            writer.put(key, value.toJSON())
        }
    }

    /// A non-optional field: a Go value, written unless zero (or always, without `omitempty`).
    package init<T: JSONCodable>(_ key: String, _ keyPath: WritableKeyPath<Root, T>, _ emit: EmitRule = .omitZero) {
        keys = [key]
        decode = { (root: inout Root, reader: inout ObjectReader) throws(ConfigError) in
            if let value: T = try reader.read(key) { root[keyPath: keyPath] = value }
        }
        encode = { root, writer in
            let value = root[keyPath: keyPath]
            if emit != .always, value.isGoZero { return }
            writer.put(key, value.toJSON())
        }
    }

    /// A `badoption.Listable[T]` field: one value or an array.
    package static func list<T: JSONCodable>(_ key: String, _ keyPath: WritableKeyPath<Root, [T]>) -> ConfigField {
        ConfigField(keys: [key], decode: { (root: inout Root, reader: inout ObjectReader) throws(ConfigError) in
            guard let entry = reader.takeEntry(key) else { return }
            root[keyPath: keyPath] = try Listable.decode(entry.value, path: reader.path(entry.key))
        }, encode: { root, writer in
            let values = root[keyPath: keyPath]
            if !values.isEmpty { writer.put(key, Listable.encode(values)) }
        })
    }

    /// An embedded Go struct: its keys live in the same JSON object.
    package static func embed<E: ConfigObject>(_ keyPath: WritableKeyPath<Root, E>) -> ConfigField {
        ConfigField(keys: E.fieldKeys, decode: { (root: inout Root, reader: inout ObjectReader) throws(ConfigError) in
            try E.readFields(into: &root[keyPath: keyPath], from: &reader)
        }, encode: { root, writer in
            root[keyPath: keyPath].writeFields(into: &writer)
        })
    }

    /// An embedded Go pointer-to-struct (written only when present).
    package static func embed<E: ConfigObject>(_ keyPath: WritableKeyPath<Root, E?>) -> ConfigField {
        ConfigField(keys: E.fieldKeys, decode: { (root: inout Root, reader: inout ObjectReader) throws(ConfigError) in
            var value = root[keyPath: keyPath] ?? E()
            try E.readFields(into: &value, from: &reader)
            root[keyPath: keyPath] = value
        }, encode: { root, writer in
            root[keyPath: keyPath]?.writeFields(into: &writer)
        })
    }
}

/// An options struct described by its field table, in Go's declaration order.
package protocol ConfigObject: JSONCodable {
    init()
    static var fields: [ConfigField<Self>] { get }
    /// Checks the decoded value as the Go type's `UnmarshalJSON` does (e.g. "empty route option action").
    func validate(path: String) throws(ConfigError)
}

extension ConfigObject {
    package func validate(path: String) throws(ConfigError) {}

    package static var goTypeName: String { "option.\(Self.self)" }

    /// Every JSON key of this type, as Go's `cJSON.ObjectKeys` lists a struct's.
    package static var fieldKeys: [String] { fields.flatMap(\.keys) }

    /// Reads this type's keys from `reader` into `value`, without checking for leftovers.
    package static func readFields(into value: inout Self, from reader: inout ObjectReader) throws(ConfigError) {
        for field in fields { try field.decode(&value, &reader) }
        try value.validate(path: reader.path)
    }

    package func writeFields(into writer: inout ObjectWriter) {
        for field in Self.fields { field.encode(self, &writer) }
    }

    package init(json: JSONValue, path: String) throws(ConfigError) {
        guard case .object(let object) = json else { throw typeMismatch(json, Self.goTypeName, path) }
        var reader = ObjectReader(object, path: path)
        self.init()
        try Self.readFields(into: &self, from: &reader)
        try reader.finish()
    }

    package func toJSON() -> JSONValue {
        var writer = ObjectWriter()
        writeFields(into: &writer)
        return .object(writer.object)
    }
}
