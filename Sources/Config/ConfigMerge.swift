import Foundation

/// sing-box's `merge` semantics (sing's `badjson.MergeJSON`), on raw JSON documents:
/// objects merge key by key, recursively; arrays concatenate (earlier file first); for any other
/// value the one already there (the earlier file's) wins.
package enum ConfigMerge {
    /// Merges `documents` in order, the way `sing-box -c a -c b` does before decoding.
    package static func merge(_ documents: [JSONValue]) throws(ConfigError) -> JSONValue? {
        var merged: JSONValue?
        for document in documents {
            if let destination = merged {
                merged = try merge(source: document, into: destination, path: "")
            } else {
                merged = document
            }
        }
        return merged
    }

    /// Merges `source` (a later file) into `destination` (what earlier files built).
    package static func merge(source: JSONValue, into destination: JSONValue, path: String = "") throws(ConfigError) -> JSONValue {
        // Go's rules, `null` included: appended to arrays, refused into objects, kept as a scalar.
        switch destination {
        case .array(var items):
            if case .array(let more) = source { items += more } else { items.append(source) }
            return .array(items)
        case .object(var object):
            guard case .object(let incoming) = source else {
                throw ConfigError(path: path, message: "cannot merge json object into \(goKind(source))")
            }
            for entry in incoming.entries {
                if let old = object[entry.key] {
                    let merged: JSONValue
                    do {
                        merged = try merge(source: entry.value, into: old, path: JSONPath.key(path, entry.key))
                    } catch {
                        throw ConfigError(path: error.path, message: "merge object item \(entry.key): \(error.message)")
                    }
                    object[entry.key] = merged
                } else {
                    object.entries.append((entry.key, entry.value))
                }
            }
            return .object(object)
        default:
            return destination
        }
    }

    private static func goKind(_ value: JSONValue) -> String {
        switch value {
        case .null: "nil"
        case .bool: "bool"
        case .number: "json.Number"
        case .string: "string"
        case .array: "badjson.JSONArray"
        case .object: "*badjson.JSONObject"
        }
    }

    /// What Go's `merge` command does after merging: certificate, key and ECH files named by
    /// path are read and inlined (blank lines dropped); unreadable files are left alone.
    package static func inlinePathResources(_ options: inout Options) {
        func lines(_ path: String?) -> [String]? {
            guard let path, !path.isEmpty, let data = FileManager.default.contents(atPath: path) else { return nil }
            return String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
                .filter { !$0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }.map(String.init)
        }
        func inbound(_ tls: inout InboundTLSOptions?) {
            guard var value = tls else { return }
            if let content = lines(value.certificatePath) { value.certificate = content }
            if let content = lines(value.keyPath) { value.key = content }
            if var ech = value.ech, let content = lines(ech.keyPath) {
                ech.key = content
                value.ech = ech
            }
            tls = value
        }
        func outbound(_ tls: inout OutboundTLSOptions?) {
            guard var value = tls else { return }
            if let content = lines(value.certificatePath) { value.certificate = content }
            if var ech = value.ech, let content = lines(ech.configPath) {
                ech.config = content
                value.ech = ech
            }
            tls = value
        }
        for index in options.inbounds.indices {
            switch options.inbounds[index].options {
            case .http(var o): inbound(&o.tls); options.inbounds[index].options = .http(o)
            case .mixed(var o): inbound(&o.tls); options.inbounds[index].options = .mixed(o)
            case .vmess(var o): inbound(&o.tls); options.inbounds[index].options = .vmess(o)
            case .trojan(var o): inbound(&o.tls); options.inbounds[index].options = .trojan(o)
            case .naive(var o): inbound(&o.tls); options.inbounds[index].options = .naive(o)
            case .vless(var o): inbound(&o.tls); options.inbounds[index].options = .vless(o)
            case .anytls(var o): inbound(&o.tls); options.inbounds[index].options = .anytls(o)
            case .hysteria(var o): inbound(&o.tls); options.inbounds[index].options = .hysteria(o)
            case .tuic(var o): inbound(&o.tls); options.inbounds[index].options = .tuic(o)
            case .hysteria2(var o): inbound(&o.tls); options.inbounds[index].options = .hysteria2(o)
            default: break
            }
        }
        for index in options.outbounds.indices {
            switch options.outbounds[index].options {
            case .ssh(var o):
                if let content = lines(o.privateKeyPath) { o.privateKey = content }
                options.outbounds[index].options = .ssh(o)
            case .http(var o): outbound(&o.tls); options.outbounds[index].options = .http(o)
            case .vmess(var o): outbound(&o.tls); options.outbounds[index].options = .vmess(o)
            case .trojan(var o): outbound(&o.tls); options.outbounds[index].options = .trojan(o)
            case .shadowtls(var o): outbound(&o.tls); options.outbounds[index].options = .shadowtls(o)
            case .vless(var o): outbound(&o.tls); options.outbounds[index].options = .vless(o)
            case .anytls(var o): outbound(&o.tls); options.outbounds[index].options = .anytls(o)
            case .hysteria(var o): outbound(&o.tls); options.outbounds[index].options = .hysteria(o)
            case .tuic(var o): outbound(&o.tls); options.outbounds[index].options = .tuic(o)
            case .hysteria2(var o): outbound(&o.tls); options.outbounds[index].options = .hysteria2(o)
            default: break
            }
        }
    }
}
