// RouteRule: a headless condition paired with a route action.
package import Rules

/// One entry of `route.rules`.
package struct RouteRule: Sendable, CustomStringConvertible {
    package var condition: HeadlessRule
    package var action: RouteAction

    package init(condition: HeadlessRule, action: RouteAction) {
        self.condition = condition
        self.action = action
    }

    package var description: String { condition.description }
}
