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
    package mutating func take(_ key: String) -> JSONValue? {
        var found: Int?
        if let exact = object.entries.lastIndex(where: { $0.key == key }) {
            found = exact
        } else {
            let folded = key.lowercased()
            found = object.entries.lastIndex { $0.key.lowercased() == folded }
        }
        guard let index = found else { return nil }
        consumed.insert(index)
        // An earlier duplicate of the same key is superseded, not unknown.
        for (i, entry) in object.entries.enumerated() where entry.key == object.entries[index].key { consumed.insert(i) }
        if case .null = object.entries[index].value { return nil }
        return object.entries[index].value
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
        guard let json = take(key) else { return nil }
        return try T(json: json, path: path(key))
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

    package init(decode: @escaping (inout Root, inout ObjectReader) throws(ConfigError) -> Void,
                 encode: @escaping (Root, inout ObjectWriter) -> Void) {
        self.decode = decode
        self.encode = encode
    }

    /// An optional field (a Go pointer or a value with `omitempty`).
    package init<T: JSONCodable>(_ key: String, _ keyPath: WritableKeyPath<Root, T?>, _ emit: EmitRule = .omitZero) {
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
        ConfigField(decode: { (root: inout Root, reader: inout ObjectReader) throws(ConfigError) in
            guard let json = reader.take(key) else { return }
            root[keyPath: keyPath] = try Listable.decode(json, path: reader.path(key))
        }, encode: { root, writer in
            let values = root[keyPath: keyPath]
            if !values.isEmpty { writer.put(key, Listable.encode(values)) }
        })
    }

    /// An embedded Go struct: its keys live in the same JSON object.
    package static func embed<E: ConfigObject>(_ keyPath: WritableKeyPath<Root, E>) -> ConfigField {
        ConfigField(decode: { (root: inout Root, reader: inout ObjectReader) throws(ConfigError) in
            try E.readFields(into: &root[keyPath: keyPath], from: &reader)
        }, encode: { root, writer in
            root[keyPath: keyPath].writeFields(into: &writer)
        })
    }

    /// An embedded Go pointer-to-struct (written only when present).
    package static func embed<E: ConfigObject>(_ keyPath: WritableKeyPath<Root, E?>) -> ConfigField {
        ConfigField(decode: { (root: inout Root, reader: inout ObjectReader) throws(ConfigError) in
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
