// CLI: the `sing-box` executable. Dispatch lands with the engine; until then only `generate` and `version`.
#if canImport(Glibc)
import Glibc
#endif

/// Writes to the standard streams without Foundation.
enum FileHandleOutput {
    static func standardError(_ text: String) { write(2, text) }
    static func standardOutput(_ text: String) { write(1, text) }
    private static func write(_ fd: Int32, _ text: String) {
        var text = text
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if n <= 0 { return }
                offset += n
            }
        }
    }
}

let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case "generate":
    exit(GenerateCommand.run(Array(arguments.dropFirst())))
default:
    FileHandleOutput.standardError("sing-box: the engine is not built yet\n")
    exit(1)
}
