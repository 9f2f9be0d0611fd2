// The router's process finder: Linux sock_diag + /proc, wired only when something needs it.
import Adapter
import Config
import LinuxSockets
import Router
import Rules

extension SingBox {
    /// Go's `needFindProcess` at build: `route.find_process`, or a route rule (or a rule-set it
    /// names) or a DNS rule that reads the owning process, or any rule-set loaded so far that does.
    static func needsProcessFinder(route: RouteOptions, rules: [RouteRule], ruleSets: [String: RuleSet], dnsNeedsProcess: Bool) -> Bool {
        route.findProcess || dnsNeedsProcess || rules.contains(where: { $0.condition.needsProcess })
            || ruleSets.values.contains(where: \.needsProcess)
    }

    /// Go's `processSearcher` for the router: the Linux one (sock_diag + /proc).
    static func makeProcessFinder() -> any ProcessFinder { LinuxProcessFinder() }
}
