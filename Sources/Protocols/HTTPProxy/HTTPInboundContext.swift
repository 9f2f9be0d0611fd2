// What every HTTP proxy server handler of one inbound shares.
package import Adapter
package import Config
package import NIOCore

/// Username/password pairs an HTTP proxy accepts (sing's `auth.Authenticator`). Empty means open.
package struct HTTPProxyUsers: Sendable {
    private var passwords: [String: String]

    /// Later duplicates win, as Go's map build does.
    package init(_ users: [(username: String, password: String)]) {
        var passwords: [String: String] = [:]
        for user in users { passwords[user.username] = user.password }
        self.passwords = passwords
    }

    /// True when no user is configured.
    package var isEmpty: Bool { passwords.isEmpty }

    /// True when `username` exists with exactly `password`.
    package func verify(username: String, password: String) -> Bool {
        passwords[username].map { $0 == password } ?? false
    }
}

/// The inbound-wide settings an `HTTPProxyServerHandler` needs.
package struct HTTPInboundContext: Sendable {
    /// The inbound's tag for `FlowMetadata.inbound`.
    package var tag: String
    /// The inbound's type (`http` or `mixed`).
    package var type: String
    /// Who may use the proxy; empty lets everyone in.
    package var users: HTTPProxyUsers
    /// Where requests go (the router).
    package var flowHandler: any FlowHandler
    /// `inbound/http[tag]`-named logger.
    package var logger: ContextLogger
    /// The inbound's listen fields, for the legacy per-flow ones (`sniff`, `domain_strategy`, …).
    package var listenOptions: ListenOptions?
    /// How long a client may take from accept to a complete request head.
    package var handshakeTimeout: TimeAmount
    /// Longest request head accepted; longer gets `431` and a close.
    package var maximumHeadLength: Int

    package init(tag: String, type: String, users: HTTPProxyUsers, flowHandler: any FlowHandler,
                 logger: ContextLogger, handshakeTimeout: TimeAmount = .seconds(30),
                 maximumHeadLength: Int = HTTPRequestHead.maximumLength) {
        self.tag = tag
        self.type = type
        self.users = users
        self.flowHandler = flowHandler
        self.logger = logger
        self.handshakeTimeout = handshakeTimeout
        self.maximumHeadLength = maximumHeadLength
    }
}
