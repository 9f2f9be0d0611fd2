// `sing-box generate …`: uuid, rand, wg-keypair, reality-keypair, tls-keypair, ech-keypair.

/// The `generate` subcommand family. Returns the process exit code.
enum GenerateCommand {
    static func run(_ arguments: [String]) -> Int32 {
        FileHandleOutput.standardError("FATAL[0000] generate: not available in this build yet\n")
        return 1
    }
}
