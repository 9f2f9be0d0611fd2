// The subcommands: run, check, format, merge, version (generate lives in Generate.swift).
import Adapter
import Box
import Config
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

enum Commands {
    static let version = "1.12.12"

    static let usage = """
        Usage:
          sing-box [command]

        Available Commands:
          check       Check configuration
          format      Format configuration
          generate    Generate things
          help        Help about any command
          merge       Merge configurations
          rule-set    Manage rule-sets
          run         Run service
          version     Print current version of sing-box

        Flags:
          -c, --config stringArray             set configuration file path
          -C, --config-directory stringArray   set configuration directory path
          -D, --directory string               set working directory
              --disable-color                  disable color output
          -h, --help                           help for sing-box

        Use "sing-box [command] --help" for more information about a command.

        """

    /// Config paths as Go resolves them: `config.json` when neither -c nor -C is given.
    static func paths(_ arguments: Arguments) -> (files: [String], directories: [String]) {
        if arguments.configPaths.isEmpty && arguments.configDirectories.isEmpty { return (["config.json"], []) }
        return (arguments.configPaths, arguments.configDirectories)
    }

    /// Loads, merges, decodes and checks the configuration.
    static func load(_ arguments: Arguments) throws(ConfigError) -> LoadedConfig {
        let (files, directories) = paths(arguments)
        return try ConfigLoader.loadAndCheck(configPaths: files, configDirectories: directories)
    }

    // MARK: check

    static func check(_ arguments: Arguments) async -> Int32 {
        let loaded: LoadedConfig
        do { loaded = try load(arguments) } catch { return Console.fatal(error.description) }
        let console = ContextLogger(core: Console.logCore(), name: "")
        for warning in loaded.warnings { console.warn(warning) }
        do {
            let box = try SingBox(options: loaded.options, logCore: .disabled)
            await box.close()
        } catch {
            return Console.fatal(error.description)
        }
        return 0
    }

    // MARK: format

    static func format(_ arguments: Arguments) -> Int32 {
        let (files, _) = paths(arguments)
        for path in files {
            guard let bytes = SystemFile.read(path) else {
                return Console.fatal("read config at \(path): open \(path): no such file or directory")
            }
            let options: Options
            do { options = try ConfigLoader.decode(bytes: bytes).options } catch {
                var located = error
                located.file = located.file ?? path
                return Console.fatal(located.description)
            }
            let text = formatJSON(options)
            if !arguments.localFlags.contains("write") {
                FileHandleOutput.standardOutput(text)
                continue
            }
            if Array(text.utf8) == bytes { continue }
            guard writeFile(path, text) else { return Console.fatal("write \(path): permission denied") }
            FileHandleOutput.standardError(absolute(path) + "\n")
        }
        return 0
    }

    // MARK: merge

    static func merge(_ arguments: Arguments) -> Int32 {
        guard arguments.positional.count == 1 else {
            FileHandleOutput.standardError("Error: accepts 1 arg(s), received \(arguments.positional.count)\n")
            return Console.fatal("accepts 1 arg(s), received \(arguments.positional.count)")
        }
        let output = arguments.positional[0]
        let (files, directories) = paths(arguments)
        let loaded: LoadedConfig
        do {
            loaded = try ConfigLoader.load(configPaths: files, configDirectories: directories)
        } catch {
            return Console.fatal(error.description)
        }
        var options = loaded.options
        ConfigMerge.inlinePathResources(&options)
        let text = mergeJSON(options)
        if SystemFile.read(output) == Array(text.utf8) { return 0 }
        guard writeFile(output, text) else { return Console.fatal("write \(output): permission denied") }
        FileHandleOutput.standardError(absolute(output) + "\n")
        return 0
    }

    // MARK: version

    static func versionText(nameOnly: Bool) -> String {
        if nameOnly { return version + "\n" }
        let registry = SingBox.defaultRegistry()
        let types = registry.registeredTypes
        let protocols = Set(types.inbounds + types.outbounds + types.endpoints + types.services)
        var text = "sing-box version \(version)\n\n"
        #if os(Linux)
        let os = "linux"
        #else
        let os = "darwin"
        #endif
        #if arch(x86_64)
        let arch = "amd64"
        #else
        let arch = "arm64"
        #endif
        #if compiler(>=6.3)
        let swift = "swift6.3"
        #else
        let swift = "swift6"
        #endif
        text += "Environment: \(swift) \(os)/\(arch)\n"
        text += "Protocols: \(protocols.sorted().joined(separator: ","))\n"
        text += "Implementation: Swift (SwiftNIO)\n"
        return text
    }

    // MARK: files


    static func writeFile(_ path: String, _ text: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return false }
        FileDescriptorLogSink(fd: fd, ownsDescriptor: true).write(line: text)
        return true
    }

    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX))
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        let cwd = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return cwd + "/" + (path.hasPrefix("./") ? String(path.dropFirst(2)) : path)
    }
}
