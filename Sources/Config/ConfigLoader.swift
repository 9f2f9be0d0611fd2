import Foundation

/// The result of loading: the options and the deprecation warnings to log.
package struct LoadedConfig: Sendable, Equatable {
    package var options: Options
    package var warnings: [String]

    package init(options: Options, warnings: [String] = []) {
        self.options = options
        self.warnings = warnings
    }
}

/// Reads configuration files like `sing-box -c a.json -c b.json -C dir`: every file is read and
/// decoded on its own (errors name the file), all are sorted by path, merged as raw JSON
/// (`ConfigMerge`), and the merged document is decoded strictly. `-` or `stdin` reads standard input.
package enum ConfigLoader {
    /// The process environment, for the `ENABLE_DEPRECATED_*` switches.
    package static var processEnvironment: [String: String] { ProcessInfo.processInfo.environment }

    /// Loads, merges and decodes; applies the 1.12 deprecation rules. Does not check references
    /// (call `check`).
    package static func load(configPaths: [String], configDirectories: [String],
                             environment: [String: String] = processEnvironment) throws(ConfigError) -> LoadedConfig {
        var documents: [(path: String, value: JSONValue)] = []
        for path in configPaths {
            documents.append((path, try read(path: path, environment: environment)))
        }
        for directory in configDirectories {
            let names: [String]
            do {
                names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
            } catch {
                throw ConfigError(path: "", message: "read config directory at \(directory): \(describe(error))")
            }
            for name in names where name.hasSuffix(".json") {
                let path = (directory as NSString).appendingPathComponent(name)
                var isDirectory: ObjCBool = false
                if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue { continue }
                documents.append((path, try read(path: path, environment: environment)))
            }
        }
        // Go sorts every entry by its path before merging.
        documents.sort { $0.path < $1.path }
        if documents.count == 1 {
            return try decode(value: documents[0].value, file: documents[0].path, environment: environment)
        }
        guard let merged = try ConfigMerge.merge(documents.map(\.value)) else {
            return LoadedConfig(options: Options())
        }
        do {
            return try decode(value: merged, environment: environment)
        } catch {
            throw ConfigError(path: error.path, message: error.message, file: "merged config")
        }
    }

    /// Reads and decodes one file (so its own errors name it) and returns its JSON for merging.
    private static func read(path: String, environment: [String: String]) throws(ConfigError) -> JSONValue {
        let bytes: [UInt8]
        if path == "-" || path == "stdin" {
            bytes = Array(FileHandle.standardInput.readDataToEndOfFile())
        } else {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
                throw ConfigError(path: "", message: "read config at \(path): read \(path): is a directory")
            }
            guard let data = FileManager.default.contents(atPath: path) else {
                let reason = FileManager.default.fileExists(atPath: path) ? "permission denied" : "no such file or directory"
                throw ConfigError(path: "", message: "read config at \(path): open \(path): \(reason)")
            }
            bytes = Array(data)
        }
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes)
        } catch {
            throw ConfigError(path: error.path, message: error.message, file: path)
        }
        _ = try decode(value: value, file: path, environment: environment)
        return value
    }

    private static func describe(_ error: any Error) -> String {
        let nsError = error as NSError
        if nsError.code == NSFileReadNoSuchFileError { return "no such file or directory" }
        return nsError.localizedDescription
    }

    /// Decodes one JSON document (text) into options, with deprecation handling.
    package static func decode(json: String, environment: [String: String] = processEnvironment) throws(ConfigError) -> LoadedConfig {
        try decode(value: try JSONParser.parse(json), environment: environment)
    }

    /// Decodes one JSON document (bytes) into options, with deprecation handling.
    package static func decode(bytes: [UInt8], environment: [String: String] = processEnvironment) throws(ConfigError) -> LoadedConfig {
        try decode(value: try JSONParser.parse(bytes), environment: environment)
    }

    /// Decodes a parsed document. Errors carry `file` when given.
    package static func decode(value: JSONValue, file: String? = nil,
                               environment: [String: String] = processEnvironment) throws(ConfigError) -> LoadedConfig {
        do {
            let options = try Options(json: value, path: "")
            var reporter = DeprecationReporter(environment: environment)
            try ConfigValidator.checkDecoded(options)
            try ConfigValidator.reportDeprecations(options, into: &reporter)
            return LoadedConfig(options: options, warnings: reporter.warnings)
        } catch {
            var located = error
            located.file = located.file ?? file
            throw located
        }
    }

    /// Validates what Go validates when it builds the box (rules, removed features, resolvers)
    /// and, beyond Go, every tag reference and duplicate tag.
    /// Relative paths (local rule-set files) are taken from `workingDirectory`, else the
    /// current directory, as Go's `-D`.
    package static func check(_ options: Options, workingDirectory: String? = nil) throws(ConfigError) {
        try ConfigValidator.check(options, workingDirectory: workingDirectory)
    }

    /// `load` then `check`.
    package static func loadAndCheck(configPaths: [String], configDirectories: [String], workingDirectory: String? = nil,
                                     environment: [String: String] = processEnvironment) throws(ConfigError) -> LoadedConfig {
        let loaded = try load(configPaths: configPaths, configDirectories: configDirectories, environment: environment)
        try check(loaded.options, workingDirectory: workingDirectory)
        return loaded
    }
}
