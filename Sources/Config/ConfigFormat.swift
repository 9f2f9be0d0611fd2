/// Prints `options` in the 1.12 form as Go's `sing-box format` does: Go's field order, zero
/// values left out, empty objects and arrays pruned (sing's `badjson.Omitempty`), two-space
/// indent, one trailing newline.
package func formatJSON(_ options: Options) -> String {
    pruneEmpty(options.toJSON()).serialized() + "\n"
}

/// Prints `options` as Go's `sing-box merge` writes them: like format, but without pruning
/// empty objects and arrays (Go encodes the typed options directly there).
package func mergeJSON(_ options: Options) -> String {
    options.toJSON().serialized() + "\n"
}

/// Whether sing's `badjson` counts the value as empty: an object or array with nothing in it
/// but empty objects and arrays.
func isBadJSONEmpty(_ value: JSONValue) -> Bool {
    switch value {
    case .object(let object): object.entries.allSatisfy { isBadJSONEmpty($0.value) }
    case .array(let items): items.allSatisfy { isBadJSONEmpty($0) }
    default: false
    }
}

/// Drops object entries whose value is empty in badjson's sense, recursively (arrays keep
/// their elements, as badjson's array writer does).
func pruneEmpty(_ value: JSONValue) -> JSONValue {
    switch value {
    case .object(let object):
        return .object(JSONObject(object.entries.compactMap { entry in
            isBadJSONEmpty(entry.value) ? nil : (entry.key, pruneEmpty(entry.value))
        }))
    case .array(let items):
        return .array(items.map(pruneEmpty))
    default:
        return value
    }
}
