// The router's process finder: Linux sock_diag + /proc, wired only when something needs it.
import Adapter
import Config
import LinuxSockets
import Router
import Rules

extension SingBox {
    /// Go's `processSearcher`: built when `route.find_process` is set or a rule (or a rule-set it
    /// names) reads the owning process; otherwise nil, so no flow pays for the lookup.
    static func processFinder(route: RouteOptions, rules: [RouteRule]) -> (any ProcessFinder)? {
        guard route.findProcess || rules.contains(where: { $0.condition.needsProcess }) else { return nil }
        return LinuxProcessFinder()
    }
}
