// ClashAPISetup: what the box hands the Clash API server (ControlAPI), which may not import the box.
package import Config
package import NIOCore

/// The parts of a built box the Clash API reads and changes.
package struct ClashAPISetup: Sendable {
    /// `experimental.clash_api`.
    package var options: ClashAPIOptions
    /// Every outbound and endpoint, and the default.
    package var outbounds: OutboundManager
    /// The mode the rules read.
    package var modes: ClashModeStore
    /// The box's log level as Go's `/configs` shows it (trace as debug, below error as error).
    package var logLevel: String
    /// Loops for the server and the delay tests.
    package var group: any EventLoopGroup
    /// `clash-api` lines.
    package var logger: ContextLogger
    /// `HEAD url` through an outbound (the box's HTTP client); returns when the response head came.
    package var probe: @Sendable (_ outbound: any Outbound, _ url: String) async throws -> Void
    /// The routed flows and byte totals (`/connections`, `/traffic`); nil: none tracked.
    package var connections: ConnectionTracker?
    /// The box's log core, whose lines `/logs` streams; nil: no log stream.
    package var logCore: LogCore?
    /// `route.rules` as Go's `/rules` lists them.
    package var rules: [ClashAPIRule] = []
    /// The DNS router's side of `/cache/fakeip/flush` and `/dns/query`; nil: no DNS router.
    package var dns: ClashAPIDNS?
    /// `GET url` through an outbound, redirects followed (the box's HTTP client): the status code,
    /// Go's status text (`404 Not Found`) and the body. The external UI's download; the box sets it.
    package var download: @Sendable (_ outbound: any Outbound, _ url: String) async throws
        -> (code: Int, status: String, body: [UInt8]) = { _, _ in
            throw AdapterError(.notImplemented, "not implemented: HTTP download without a box")
        }

    package init(options: ClashAPIOptions, outbounds: OutboundManager, modes: ClashModeStore, logLevel: String,
                 group: any EventLoopGroup, logger: ContextLogger, connections: ConnectionTracker? = nil, logCore: LogCore? = nil,
                 probe: @escaping @Sendable (_ outbound: any Outbound, _ url: String) async throws -> Void) {
        self.connections = connections
        self.logCore = logCore
        self.options = options
        self.outbounds = outbounds
        self.modes = modes
        self.logLevel = logLevel
        self.group = group
        self.logger = logger
        self.probe = probe
    }
}

/// One route rule for `/rules`: Go's `rule.Type()` ("default" or "logical"), `rule.String()` and
/// `rule.Action().String()`, the texts of the router's `match[i] <rule> => <action>` lines.
package struct ClashAPIRule: Sendable, Equatable {
    package var type: String
    package var payload: String
    package var proxy: String

    package init(type: String, payload: String, proxy: String) {
        self.type = type
        self.payload = payload
        self.proxy = proxy
    }
}

/// What the Clash API asks of the DNS router.
package struct ClashAPIDNS: Sendable {
    /// Forgets the fakeip mappings; nil when the box keeps no cache file (Go then does nothing).
    package var resetFakeIP: (@Sendable () -> Void)?
    /// One query through the DNS router (rules, cache, servers): DNS message bytes in, the answer's out.
    package var exchange: @Sendable (_ query: [UInt8]) async throws -> [UInt8]

    package init(resetFakeIP: (@Sendable () -> Void)?, exchange: @escaping @Sendable (_ query: [UInt8]) async throws -> [UInt8]) {
        self.resetFakeIP = resetFakeIP
        self.exchange = exchange
    }
}
