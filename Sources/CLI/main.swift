// CLI: the `sing-box` executable — cobra-shaped commands over the box.
//
// Global flags (anywhere on the line): -c/--config (repeatable), -C/--config-directory
// (repeatable), -D/--directory (chdir first), --disable-color. Commands: run, check, format [-w],
// merge <output>, version [-n], generate … (delegated to GenerateCommand).
// Exit status: 0 on success, 1 with a `FATAL[0000] …` line on any error, as Go's sing-box.
import Box
import CLinux
import ControlAPI
#if canImport(Glibc)
import Glibc
#endif

// Freed packet buffers stay in the heap (CLinux.h). Measured on netstack-bench upload, where page faults
// on fresh 128 KiB TUN read buffers took 20 % of the CPU: 5.5 → 10.2 Gbit/s, 88 → 46 CPU ticks per GB.
clinux_keep_packet_buffers()

// The box builds its Clash API server through this (it may not import ControlAPI itself).
SingBox.clashAPIServerFactory = { try ClashAPIServer(setup: $0) }

let arguments = Arguments(Array(CommandLine.arguments.dropFirst()))
Console.disableColor = arguments.disableColor

func exitWithUsageError(_ message: String) -> Never {
    FileHandleOutput.standardError("Error: \(message)\nRun 'sing-box --help' for usage.\n")
    exit(Console.fatal(message))
}

if let error = arguments.error { exitWithUsageError(error) }
if arguments.help || arguments.command == "help" || arguments.command == nil {
    FileHandleOutput.standardOutput(Commands.usage)
    exit(0)
}
if let directory = arguments.directory, chdir(directory) != 0 {
    exit(Console.fatal("chdir \(directory): no such file or directory"))
}

let status: Int32
switch arguments.command! {
case "generate":
    status = GenerateCommand.run(arguments.passthrough)
case "rule-set":
    status = RuleSetCommand.run(arguments.passthrough)
case "run":
    status = await RunCommand.run(arguments)
case "check":
    status = await Commands.check(arguments)
case "format":
    status = Commands.format(arguments)
case "merge":
    status = Commands.merge(arguments)
case "version":
    FileHandleOutput.standardOutput(Commands.versionText(nameOnly: arguments.localFlags.contains("name-only")))
    status = 0
case let other:
    exitWithUsageError("unknown command \"\(other)\" for \"sing-box\"")
}
exit(status)
