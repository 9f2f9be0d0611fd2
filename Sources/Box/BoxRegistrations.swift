// Registration hooks for protocol modules beyond direct and block. Each protocol engineer adds
// one line here when their module's `register(in:)` lands (kept in one file to keep merges small).
import Adapter

enum BoxRegistrations {
    static let all: [@Sendable (AdapterRegistry) -> Void] = []
}
