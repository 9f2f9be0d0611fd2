// Command-line parsing in cobra's shape: persistent flags anywhere, one subcommand.

/// The parsed command line.
struct Arguments {
    var command: String?
    var positional: [String] = []
    var configPaths: [String] = []
    var configDirectories: [String] = []
    var directory: String?
    var disableColor = false
    var help = false
    /// Subcommand-local flags that were seen (`-w`, `-n`).
    var localFlags: Set<String> = []
    /// Everything after `generate` or `rule-set` is passed through untouched.
    var passthrough: [String] = []

    /// The error cobra would print (`unknown flag: --x`), if any.
    var error: String?

    /// Subcommand-local boolean flags each command accepts.
    static let localBooleans: [String: [String: String]] = [
        "format": ["-w": "write", "--write": "write"],
        "version": ["-n": "name-only", "--name-only": "name-only"],
    ]

    init(_ argv: [String]) {
        var index = 0
        func value(for flag: String, inline: String?) -> String? {
            if let inline { return inline }
            index += 1
            guard index < argv.count else {
                error = "flag needs an argument: \(flag)"
                return nil
            }
            return argv[index]
        }
        while index < argv.count {
            let arg = argv[index]
            if command == "generate" || command == "rule-set" {
                passthrough.append(contentsOf: argv[index...])
                break
            }
            if arg == "--" {
                positional.append(contentsOf: argv[(index + 1)...])
                break
            }
            if arg.hasPrefix("-") && arg != "-" {
                let parts = arg.split(separator: "=", maxSplits: 1).map(String.init)
                let name = parts[0]
                let inline = parts.count > 1 ? parts[1] : nil
                switch name {
                case "-c", "--config":
                    if let v = value(for: "-c", inline: inline) { configPaths.append(v) }
                case "-C", "--config-directory":
                    if let v = value(for: "-C", inline: inline) { configDirectories.append(v) }
                case "-D", "--directory":
                    if let v = value(for: "-D", inline: inline) { directory = v }
                case "--disable-color":
                    disableColor = true
                case "-h", "--help":
                    help = true
                default:
                    if name.hasPrefix("-c") && !name.hasPrefix("--") && name.count > 2 {
                        configPaths.append(String(name.dropFirst(2)))   // -cfile, as pflag allows
                    } else if let command, let local = Arguments.localBooleans[command]?[name] {
                        localFlags.insert(local)
                    } else if error == nil {
                        error = name.hasPrefix("--") ? "unknown flag: \(name)" : "unknown shorthand flag: '\(name.dropFirst().prefix(1))' in \(arg)"
                    }
                }
            } else if command == nil {
                command = arg
            } else {
                positional.append(arg)
            }
            index += 1
        }
    }
}
