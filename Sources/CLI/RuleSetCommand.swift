// `sing-box rule-set compile | convert | decompile | format | match | merge | upgrade`, as Go 1.12's cmd/sing-box.
//
// Each subcommand reads its own flags (Go's cobra flags: -o/--output, -f/--format, -w/--write,
// -c/--config and -C/--config-directory for merge, -t/--type for convert) plus the global -D and --disable-color.
// Errors end in one `FATAL[0000] …` line with Go's wording and exit status 1.
import Adapter
import Config
import Rules
#if canImport(Glibc)
import Glibc
#endif

enum RuleSetCommand {
    static let usage = """
        Manage rule-sets

        Usage:
          sing-box rule-set [command]

        Available Commands:
          compile     Compile rule-set json to binary
          convert     Convert adguard DNS filter to rule-set
          decompile   Decompile rule-set binary to json
          format      Format rule-set json
          match       Check if an IP address or a domain matches the rule-set
          merge       Merge rule-set source files
          upgrade     Upgrade rule-set json

        Flags:
          -h, --help   help for rule-set

        Global Flags:
          -c, --config stringArray             set configuration file path
          -C, --config-directory stringArray   set configuration directory path
          -D, --directory string               set working directory
              --disable-color                  disable color output

        Use "sing-box rule-set [command] --help" for more information about a command.

        """

    /// The parsed subcommand line.
    struct Options {
        var subcommand: String?
        var positional: [String] = []
        var output: String?
        var format: String?
        /// `convert`'s `-t/--type` (only `adguard` exists).
        var type: String?
        var write = false
        var configs: [String] = []
        var directories: [String] = []
        var help = false
    }

    /// Parses `argv` (everything after `rule-set`); returns the options or cobra's error text.
    static func parse(_ argv: [String]) -> Result<Options, UsageError> {
        var options = Options()
        var index = 0
        func value(_ flag: String, _ inline: String?) throws(UsageError) -> String {
            if let inline { return inline }
            index += 1
            guard index < argv.count else { throw UsageError(message: "flag needs an argument: \(flag)") }
            return argv[index]
        }
        do throws(UsageError) {
            while index < argv.count {
                let arg = argv[index]
                if arg.hasPrefix("-") && arg != "-" {
                    let parts = arg.split(separator: "=", maxSplits: 1).map(String.init)
                    let inline = parts.count > 1 ? parts[1] : nil
                    switch parts[0] {
                    case "-o", "--output": options.output = try value("-o", inline)
                    case "-f", "--format": options.format = try value("-f", inline)
                    case "-w", "--write": options.write = true
                    // Only `convert` has -t; cobra calls it unknown elsewhere (a `where` guards one pattern only).
                    case "-t" where options.subcommand == "convert", "--type" where options.subcommand == "convert":
                        options.type = try value("-t", inline)
                    case "-c", "--config": options.configs.append(try value("-c", inline))
                    case "-C", "--config-directory": options.directories.append(try value("-C", inline))
                    case "-D", "--directory":
                        let directory = try value("-D", inline)
                        guard chdir(directory) == 0 else { throw UsageError(message: "chdir \(directory): no such file or directory") }
                    case "--disable-color": Console.disableColor = true
                    case "-h", "--help": options.help = true
                    default:
                        let name = parts[0]
                        throw UsageError(message: name.hasPrefix("--") ? "unknown flag: \(name)"
                                         : "unknown shorthand flag: '\(name.dropFirst().prefix(1))' in \(arg)")
                    }
                } else if options.subcommand == nil {
                    options.subcommand = arg
                } else {
                    options.positional.append(arg)
                }
                index += 1
            }
        } catch {
            return .failure(error)
        }
        return .success(options)
    }

    struct UsageError: Error { var message: String }

    /// Runs the subcommand; returns the exit status.
    static func run(_ argv: [String]) -> Int32 {
        let options: Options
        switch parse(argv) {
        case .success(let parsed): options = parsed
        case .failure(let error):
            FileHandleOutput.standardError("Error: \(error.message)\n")
            return Console.fatal(error.message)
        }
        guard let subcommand = options.subcommand else {
            FileHandleOutput.standardOutput(usage)
            return 0
        }
        let arity = subcommand == "match" ? 2 : 1
        let known = ["compile", "convert", "decompile", "format", "match", "merge", "upgrade"]
        guard known.contains(subcommand) else {
            FileHandleOutput.standardOutput(usage)
            return 0
        }
        if options.help {
            FileHandleOutput.standardOutput(usage)
            return 0
        }
        guard options.positional.count == arity else {
            let message = "accepts \(arity) arg(s), received \(options.positional.count)"
            FileHandleOutput.standardError("Error: \(message)\n")
            return Console.fatal(message)
        }
        let path = options.positional[0]
        do throws(CommandError) {
            switch subcommand {
            case "compile": try compile(path, output: options.output)
            case "convert": try convert(path, type: options.type ?? "", output: options.output)
            case "decompile": try decompile(path, output: options.output)
            case "format": try format(path, write: options.write, upgrade: false)
            case "upgrade": try format(path, write: options.write, upgrade: true)
            case "match": try match(path, options.positional[1], format: options.format ?? "source")
            default: try merge(output: path, configs: options.configs, directories: options.directories)
            }
        } catch {
            return Console.fatal(error.message)
        }
        return 0
    }

    struct CommandError: Error {
        var message: String
        init(_ message: String) { self.message = message }
    }

    // MARK: subcommands

    /// `compile [source-path]`: source JSON to `.srs` (`<file_name>.srs` by default).
    static func compile(_ path: String, output: String?) throws(CommandError) {
        let source = try readSource(path)
        let bytes: [UInt8]
        do { bytes = try BinaryRuleSet.write(source.rules, version: source.version) } catch {
            throw CommandError(error.message)
        }
        let outputPath = output ?? (path.hasSuffix(".json") ? String(path.dropLast(5)) + ".srs" : path + ".srs")
        guard writeBytes(outputPath, bytes) else { throw CommandError("open \(outputPath): permission denied") }
    }

    /// `convert [source-path]`: an AdGuard DNS filter to a version-2 `.srs` (`<file_name>.srs` by
    /// default, a `.txt` suffix replaced). Go opens the source before it looks at `--type`, logs
    /// every dropped line at debug level, and writes nothing when the filter has no usable rule.
    static func convert(_ path: String, type: String, output: String?) throws(CommandError) {
        let text = try readInput(path, context: nil)
        let rules: [HeadlessRuleOptions]
        switch type {
        case "adguard":
            let log = Console.logCore()
            do {
                rules = try AdGuardFilter.rules(from: text) { line in
                    switch line {
                    case .debug(let message): log.write(.debug, name: "", message: message, flow: nil)
                    case .info(let message): log.write(.info, name: "", message: message, flow: nil)
                    }
                }
            } catch {
                throw CommandError(error.message)
            }
        case "": throw CommandError("source type is required")
        default: throw CommandError("unsupported source type: \(type)")
        }
        let bytes: [UInt8]
        do { bytes = try BinaryRuleSet.write(rules, version: 2) } catch { throw CommandError(error.message) }
        let outputPath = output ?? (path.hasSuffix(".txt") ? String(path.dropLast(4)) + ".srs" : path + ".srs")
        guard writeBytes(outputPath, bytes) else { throw CommandError("open \(outputPath): permission denied") }
    }

    /// `decompile [binary-path]`: `.srs` to source JSON (`<file_name>.json` by default).
    static func decompile(_ path: String, output: String?) throws(CommandError) {
        let bytes = try readInput(path, context: nil)
        let plain: PlainRuleSetOptions
        do {
            plain = try BinaryRuleSet(bytes: bytes).sourceOptions()
        } catch let error as SRSError {
            throw CommandError(error.description)
        } catch let error as RuleError {
            throw CommandError(error.message)
        } catch {
            throw CommandError("\(error)")
        }
        let outputPath = output ?? (path.hasSuffix(".srs") ? String(path.dropLast(4)) + ".json" : path + ".json")
        let text = plain.toJSON().serialized() + "\n"
        guard writeBytes(outputPath, Array(text.utf8)) else { throw CommandError("open \(outputPath): permission denied") }
    }

    /// `format` / `upgrade`: print (or with -w rewrite) the source JSON; upgrade lifts version 1 to 3.
    static func format(_ path: String, write: Bool, upgrade: Bool) throws(CommandError) {
        let original = try readInput(path, context: nil)
        var plain = try readSource(path, bytes: original)
        if upgrade {
            guard plain.version == 1 else {
                Console.logCore().write(.info, name: "", message: "already up-to-date", flow: nil)
                return
            }
            plain.version = BinaryRuleSet.currentVersion
        }
        let text = plain.toJSON().serialized() + "\n"
        if !write || path == "stdin" {
            FileHandleOutput.standardOutput(text + "\n")
            return
        }
        if Array(text.utf8) == original { return }
        guard writeBytes(path, Array(text.utf8)) else { throw CommandError("open output: open \(path): permission denied") }
        FileHandleOutput.standardError(Commands.absolute(path) + "\n")
    }

    /// `match <rule-set path> <IP address/domain>`: prints `match rules.[i]: <rule>` on stderr
    /// for each matching rule (Go prints with `println`).
    static func match(_ path: String, _ target: String, format: String) throws(CommandError) {
        let bytes = try readInput(path, context: "read rule-set")
        var format = format
        if format.isEmpty {
            if path.hasSuffix(".json") { format = "source" } else if path.hasSuffix(".srs") { format = "binary" }
        }
        let rules: [HeadlessRule]
        switch format {
        case "source":
            let plain = try readSource(path, bytes: bytes)
            do { rules = try RuleSet.compile(plain.rules) } catch { throw CommandError(error.message) }
        case "binary":
            do { rules = try RuleSet.compileBinary(bytes) } catch { throw CommandError(error.message) }
        default:
            throw CommandError("unknown rule-set format: \(format)")
        }
        var address = Substring(target)
        if address.hasPrefix("[") && address.hasSuffix("]") { address = address.dropFirst().dropLast() }
        let destination: Destination
        if let ip = IPAddress(address) {
            destination = Destination(ip: ip, port: 0)
        } else {
            destination = Destination(domain: target, port: 0)
        }
        let metadata = FlowMetadata(inbound: "", inboundType: "", network: .tcp, source: nil, destination: destination)
        // Go never resets the match cache between the rules here, so once a group is satisfied
        // every later rule that has only that group matches too; we print the same lines.
        var state = RuleMatchState()
        var out = ""
        for (index, rule) in rules.enumerated() where rule.matches(metadata, state: &state) {
            out += "match rules.[\(index)]: \(rule)\n"
        }
        FileHandleOutput.standardError(out)
    }

    /// `merge <output-path>`: source files from -c / -C merged (sing's badjson merge), the highest
    /// version kept.
    static func merge(output: String, configs: [String], directories: [String]) throws(CommandError) {
        var entries: [(path: String, json: JSONValue, version: UInt8)] = []
        func add(_ path: String) throws(CommandError) {
            let bytes = try readInput(path, context: "read config at \(path)")
            do {
                let json = try JSONParser.parse(bytes)
                let plain = try PlainRuleSetOptions(json: json, path: "")
                entries.append((path, json, plain.version))
            } catch {
                throw CommandError("decode config at \(path): \(error)")
            }
        }
        for path in configs { try add(path) }
        for directory in directories {
            guard let names = listDirectory(directory) else {
                throw CommandError("read rule-set directory at \(directory): open \(directory): no such file or directory")
            }
            for name in names.sorted() where name.hasSuffix(".json") { try add(directory + "/" + name) }
        }
        entries.sort { $0.path < $1.path }
        var merged: PlainRuleSetOptions
        if entries.count == 1 {
            merged = try decodeSource(entries[0].json, path: entries[0].path)
        } else {
            var document: JSONValue?
            for entry in entries {
                do {
                    document = try document.map { (current) throws(ConfigError) in
                        try ConfigMerge.merge(source: entry.json, into: current)
                    } ?? entry.json
                } catch {
                    throw CommandError("merge config at \(entry.path): \(error)")
                }
            }
            guard let document else { throw CommandError("decode config at : missing rule-set version") }
            do { merged = try PlainRuleSetOptions(json: document, path: "") } catch {
                throw CommandError("unmarshal merged config: \(error)")
            }
            merged.version = entries.map(\.version).max() ?? merged.version
        }
        let text = merged.toJSON().serialized() + "\n"
        guard writeBytes(output, Array(text.utf8)) else { throw CommandError("open \(output): permission denied") }
        FileHandleOutput.standardError(Commands.absolute(output) + "\n")
    }

    // MARK: files

    static func readInput(_ path: String, context: String?) throws(CommandError) -> [UInt8] {
        let bytes = path == "stdin" ? SystemFile.readAll(0) : SystemFile.read(path)
        guard let bytes else {
            let message = "open \(path): no such file or directory"
            throw CommandError(context.map { "\($0): \(message)" } ?? message)
        }
        return bytes
    }

    static func readSource(_ path: String, bytes: [UInt8]? = nil) throws(CommandError) -> PlainRuleSetOptions {
        let content: [UInt8]
        if let bytes { content = bytes } else { content = try readInput(path, context: nil) }
        do {
            return try PlainRuleSetOptions(json: try JSONParser.parse(content), path: "")
        } catch {
            throw CommandError(error.description)
        }
    }

    static func decodeSource(_ json: JSONValue, path: String) throws(CommandError) -> PlainRuleSetOptions {
        do { return try PlainRuleSetOptions(json: json, path: "") } catch {
            throw CommandError("decode config at \(path): \(error)")
        }
    }


    static func writeBytes(_ path: String, _ bytes: [UInt8]) -> Bool {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }

    static func listDirectory(_ path: String) -> [String]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}
