/// A configuration problem at a JSON path: `outbounds[2].transport.type: unknown type "grcp"`.
package struct ConfigError: Error, CustomStringConvertible, Equatable {
    /// Where the problem is, as `inbounds[0].listen_port`; empty for the whole document.
    package var path: String
    /// What is wrong, in sing-box's wording where it has one.
    package var message: String

    /// The file the problem was found in, when loading several (printed as Go does:
    /// "decode config at FILE: …").
    package var file: String?

    package init(path: String, message: String, file: String? = nil) {
        self.path = path
        self.message = message
        self.file = file
    }

    package var description: String {
        let located = path.isEmpty ? message : "\(path): \(message)"
        guard let file else { return located }
        return "decode config at \(file): \(located)"
    }
}

/// Builds JSON paths the way sing-box prints them: `a.b[2].c`.
enum JSONPath {
    static func key(_ base: String, _ key: String) -> String {
        base.isEmpty ? key : "\(base).\(key)"
    }

    static func index(_ base: String, _ index: Int) -> String {
        "\(base)[\(index)]"
    }
}
