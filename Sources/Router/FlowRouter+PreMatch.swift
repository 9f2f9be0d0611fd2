// FlowRouter as a `FlowPreMatcher`: Go 1.12 `Router.PreMatch` → `matchRule(preMatch: true)`.
package import Adapter
import Rules

extension FlowRouter: FlowPreMatcher {
    /// Walks the rules as `match` does with what the first packet tells: `route-options` apply and
    /// continue; `sniff` and `resolve` end the walk undecided (they need payload or DNS, which Go's
    /// pre-match does not have either); the first final action decides, and only `reject` refuses.
    package func preMatch(_ metadata: FlowMetadata) -> PreMatchVerdict {
        var metadata = metadata
        for (index, rule) in rules.enumerated() where rule.condition.matches(metadata) {
            switch rule.action {
            case .routeOptions(let options):
                options.apply(to: &metadata)
            case .direct:
                continue
            case .sniff, .resolve:
                return .accept
            case .route, .hijackDNS:
                return .accept
            case .reject(let method, _):
                let text = rule.description
                logger.debug(text.isEmpty ? "pre-match[\(index)] => \(rule.action)" : "pre-match[\(index)] \(text) => \(rule.action)",
                             flow: metadata.flowID)
                let (effective, flooded) = rule.rejectMethod(method)
                if flooded { logger.debug("dropped due to flooding", flow: metadata.flowID) }
                return effective == .drop ? .drop : .reject
            }
        }
        return .accept
    }
}
