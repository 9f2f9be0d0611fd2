// The box's side of the Clash API: the mode store (built whenever `experimental.clash_api` is set,
// as Go's clash server exists then even without `external_controller`) and the setup the server
// gets. The server itself lives in ControlAPI; the CLI, which may import both, joins them through
// `SingBox.clashAPIServerFactory`.
package import Adapter
package import Config

extension SingBox {
    /// Builds the Clash API server from the box's parts (set by the CLI; nil: not served).
    nonisolated(unsafe) package static var clashAPIServerFactory: (@Sendable (ClashAPISetup) throws -> any Lifecycle)?

    /// The mode store for `options`, nil without `experimental.clash_api`.
    static func makeClashModes(_ options: Options) -> ClashModeStore? {
        guard let clash = options.experimental?.clashAPI else { return nil }
        let named = clashModes(in: options.route?.rules ?? []) + clashModes(in: options.dns?.rules ?? [])
        return ClashModeStore(defaultMode: clash.defaultMode, ruleModes: ClashModeStore.modeList(named))
    }

    private static func clashModes(in rules: [RuleOptions]) -> [String] {
        rules.flatMap { rule -> [String] in
            switch rule {
            case .default(let options): (options.clashMode ?? "").isEmpty ? [] : [options.clashMode!]
            case .logical(let options): clashModes(in: options.rules)
            }
        }
    }

    private static func clashModes(in rules: [DNSRuleOptions]) -> [String] {
        rules.flatMap { rule -> [String] in
            switch rule {
            case .default(let options): (options.clashMode ?? "").isEmpty ? [] : [options.clashMode!]
            case .logical(let options): clashModes(in: options.rules)
            }
        }
    }

    /// Go's `/configs` log level: trace shows as debug, fatal and panic as error.
    static func clashLogLevel(_ options: Options) -> String {
        let level = options.log?.level.flatMap { LogLevel(name: $0) } ?? .info
        switch level {
        case .trace: return "debug"
        case .panic, .fatal: return "error"
        default: return level.description
        }
    }
}
