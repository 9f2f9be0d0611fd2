// The Clash API's routes: what each request gets, as Go's clashapi package answers it.
package import Adapter
import Config
import Foundation
import Group
package import NIOCore
package import NIOHTTP1

/// One response: status, headers, body bytes.
package struct ClashAPIResponse: Sendable {
    package var status: HTTPResponseStatus
    package var headers: HTTPHeaders
    package var body: [UInt8]
    /// Set for a stream (`/traffic`, `/memory`, `/logs`, `/connections` over WebSocket): the head is
    /// sent without a length and the pump's lines follow (or the request upgrades to WebSocket).
    var stream: ClashAPIStream?

    /// A JSON body as Go's `render.JSON` writes it: compact, then a newline.
    init(status: HTTPResponseStatus = .ok, json: JSONValue) {
        self.status = status
        headers = HTTPHeaders([("Content-Type", "application/json")])
        body = Array((json.compactSerialized() + "\n").utf8)
    }

    /// Go's `HTTPError`: `{"message":…}`.
    init(status: HTTPResponseStatus, message: String) {
        self.init(status: status, json: .object(JSONObject([("message", .string(message))])))
    }

    /// A status without a body (`204 No Content`, a preflight).
    init(status: HTTPResponseStatus, headers: HTTPHeaders = HTTPHeaders()) {
        self.status = status
        self.headers = headers
        body = []
    }

    /// A stream of JSON lines (see `ClashAPIStreams.swift`).
    static func streaming(_ stream: ClashAPIStream) -> ClashAPIResponse {
        var response = ClashAPIResponse(status: .ok, headers: HTTPHeaders([("Content-Type", "application/json")]))
        response.stream = stream
        return response
    }

    /// Go's router for a path it does not serve.
    static let notFound: ClashAPIResponse = {
        var response = ClashAPIResponse(status: .notFound)
        response.headers = HTTPHeaders([("Content-Type", "text/plain; charset=utf-8"), ("X-Content-Type-Options", "nosniff")])
        response.body = Array("404 page not found\n".utf8)
        return response
    }()
}

/// Answers requests for one box.
package final class ClashAPIRoutes: Sendable {
    let setup: ClashAPISetup
    let history: URLTestHistory
    /// `external_ui`: `/ui`, the `/` redirect and `/upgrade/ui` (ClashAPIExternalUI.swift).
    let externalUI: ClashAPIExternalUI
    /// Go's default test URL when a request names none (or an `http://` one, which Go drops).
    static let defaultTestURL = "https://www.gstatic.com/generate_204"

    package init(setup: ClashAPISetup) {
        self.setup = setup
        externalUI = ClashAPIExternalUI(setup: setup)
        // The urltest groups' history when there is one (Go's shared storage), else our own.
        history = setup.outbounds.all.lazy.compactMap { ($0 as? URLTestOutbound)?.history }.first ?? URLTestHistory()
    }

    /// The response to one request: CORS, then the secret, then the route.
    package func respond(to head: HTTPRequestHead, body: [UInt8]) async -> ClashAPIResponse {
        let origin = head.headers.first(name: "Origin")
        if head.method == .OPTIONS, origin != nil, let requested = head.headers.first(name: "Access-Control-Request-Method") {
            return preflight(head, origin: origin!, requestedMethod: requested)
        }
        var response: ClashAPIResponse
        if let files = externalUI.serve(head) {
            response = files  // Go mounts /ui outside the secret's group
        } else if let unrouted = Self.unrouted(head) {
            response = unrouted
        } else {
            response = await authorized(head) ? await route(head, body: body) : ClashAPIResponse(status: .unauthorized, message: "Unauthorized")
        }
        // Go's cors handler marks every response as depending on Origin.
        response.headers.add(name: "Vary", value: "Origin")
        if let origin, let allowed = allowedOrigin(origin) {
            response.headers.replaceOrAdd(name: "Access-Control-Allow-Origin", value: allowed)
        }
        return response
    }

    /// Go's chi router answers a path that no route or mount matches with 404, and a GET-only
    /// route asked with another method with 405, before the secret's middleware runs.
    static func unrouted(_ head: HTTPRequestHead) -> ClashAPIResponse? {
        let parts = split(head.uri).path.split(separator: "/", omittingEmptySubsequences: true)
        guard let first = parts.first else { return head.method == .GET ? nil : ClashAPIResponse(status: .methodNotAllowed) }
        switch first {
        case "logs", "traffic", "version", "memory":
            guard parts.count == 1 else { return .notFound }
            return head.method == .GET ? nil : ClashAPIResponse(status: .methodNotAllowed)
        case "configs", "proxies", "rules", "connections", "script", "profile", "cache", "dns", "group", "upgrade":
            return nil
        case "providers" where parts.count >= 2 && (parts[1] == "proxies" || parts[1] == "rules"):
            return nil
        default:
            return .notFound
        }
    }

    // MARK: CORS (Go's cors options: the configured origins or "*", GET POST PUT PATCH DELETE,
    // Content-Type and Authorization, max age 300, private network when enabled)

    private func allowedOrigin(_ origin: String) -> String? {
        let allowed = setup.options.accessControlAllowOrigin.isEmpty ? ["*"] : setup.options.accessControlAllowOrigin
        if allowed.contains("*") { return "*" }
        return allowed.contains { $0.lowercased() == origin.lowercased() } ? origin : nil
    }

    private func preflight(_ head: HTTPRequestHead, origin: String, requestedMethod: String) -> ClashAPIResponse {
        var headers = HTTPHeaders()
        headers.add(name: "Vary", value: "Origin")
        headers.add(name: "Vary", value: "Access-Control-Request-Method")
        headers.add(name: "Vary", value: "Access-Control-Request-Headers")
        let methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        guard let allowed = allowedOrigin(origin), methods.contains(requestedMethod.uppercased()) else {
            return ClashAPIResponse(status: .ok, headers: headers)
        }
        let requestedHeaders = head.headers.first(name: "Access-Control-Request-Headers")?
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } ?? []
        let permitted = ["content-type", "authorization", "origin"]
        guard requestedHeaders.allSatisfy({ permitted.contains($0.lowercased()) }) else {
            return ClashAPIResponse(status: .ok, headers: headers)
        }
        headers.add(name: "Access-Control-Allow-Origin", value: allowed)
        headers.add(name: "Access-Control-Allow-Methods", value: requestedMethod.uppercased())
        if !requestedHeaders.isEmpty {
            headers.add(name: "Access-Control-Allow-Headers", value: requestedHeaders.map(Self.canonicalHeaderName).joined(separator: ", "))
        }
        headers.add(name: "Access-Control-Max-Age", value: "300")
        if setup.options.accessControlAllowPrivateNetwork, head.headers.first(name: "Access-Control-Request-Private-Network") == "true" {
            headers.add(name: "Access-Control-Allow-Private-Network", value: "true")
        }
        // Go's cors package answers a preflight 200 with no body.
        return ClashAPIResponse(status: .ok, headers: headers)
    }

    /// Go's `http.CanonicalHeaderKey`: `content-type` → `Content-Type`.
    static func canonicalHeaderName(_ name: String) -> String {
        name.split(separator: "-", omittingEmptySubsequences: false).map { $0.prefix(1).uppercased() + $0.dropFirst().lowercased() }
            .joined(separator: "-")
    }

    // MARK: Authentication (Go's `authentication`)

    private func authorized(_ head: HTTPRequestHead) async -> Bool {
        let secret = setup.options.secret ?? ""
        if secret.isEmpty { return true }
        let (_, query) = Self.split(head.uri)
        if head.headers.first(name: "Upgrade")?.lowercased() == "websocket", let token = query["token"], !token.isEmpty {
            return token == secret
        }
        guard let header = head.headers.first(name: "Authorization"), let space = header.firstIndex(of: " ") else { return false }
        return header[..<space] == "Bearer" && header[header.index(after: space)...] == secret
    }

    // MARK: Routing

    private func route(_ head: HTTPRequestHead, body: [UInt8]) async -> ClashAPIResponse {
        if let response = await externalUI.route(head) { return response }
        let (path, query) = Self.split(head.uri)
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        switch (head.method, parts.count, parts.first) {
        case (.GET, 0, _):
            return ClashAPIResponse(json: .object(JSONObject([("hello", .string("clash"))])))
        case (.GET, 1, "version"?):
            // Go renders a map: keys in sorted order.
            return ClashAPIResponse(json: .object(JSONObject([("meta", .bool(true)), ("premium", .bool(true)),
                                                              ("version", .string("sing-box 1.12.12"))])))
        case (.GET, 1, "configs"?):
            return ClashAPIResponse(json: configs())
        case (.PUT, 1, "configs"?):
            return ClashAPIResponse(status: .noContent)
        case (.PATCH, 1, "configs"?):
            return patchConfigs(body)
        case (.GET, 1, "traffic"?):
            return .streaming(.traffic)
        case (.GET, 1, "memory"?):
            return .streaming(.memory)
        case (.GET, 1, "logs"?):
            // Go: an unknown level is a bad request; a box without logging has nothing to subscribe to.
            let name = query["level"].flatMap { $0.isEmpty ? nil : $0 } ?? "info"
            guard let level = LogLevel(name: name) else { return ClashAPIResponse(status: .badRequest, message: "Body invalid") }
            guard let core = setup.logCore, core.level != nil else { return ClashAPIResponse(status: .noContent) }
            return .streaming(.logs(level))
        case (.GET, 1, "connections"?):
            guard Self.wantsWebSocket(head) else {
                return ClashAPIResponse(json: ClashAPIStreamPump.snapshot(setup.connections))
            }
            var interval: Int64 = 1000
            if let text = query["interval"], !text.isEmpty {
                // Go's ticker panics on a non-positive interval; refuse it instead.
                guard let value = Int64(text), value > 0 else { return ClashAPIResponse(status: .badRequest, message: "Body invalid") }
                interval = value
            }
            return .streaming(.connections(intervalMilliseconds: interval))
        case (.DELETE, 1, "connections"?):
            setup.connections?.closeAll()
            return ClashAPIResponse(status: .noContent)
        case (.DELETE, 2, "connections"?):
            // Go closes the flow with that id if one is live, and answers 204 either way.
            setup.connections?.close(id: parts[1])
            return ClashAPIResponse(status: .noContent)
        case (.GET, 1, "proxies"?):
            return Self.sniffedText(ClashAPIResponse(json: .object(JSONObject([("proxies", proxies())]))))
        case (_, 2, "proxies"?), (_, 3, "proxies"?):
            guard let name = parts[1].removingPercentEncoding, let proxy = setup.outbounds.outbound(name) else {
                return ClashAPIResponse(status: .notFound, message: "Resource not found")
            }
            switch (head.method, parts.count == 3 ? parts[2] : nil) {
            case (.GET, nil): return Self.sniffedText(ClashAPIResponse(json: info(proxy)))
            case (.PUT, nil): return select(proxy, body: body)
            case (.GET, "delay"?): return await delay(proxy, query: query)
            default: return parts.count == 3 ? .notFound : ClashAPIResponse(status: .methodNotAllowed)
            }
        default:
            return await resourceRoute(head, parts: parts, query: query) ?? .notFound
        }
    }

    /// Go's `configSchema` with the fields sing-box fills.
    private func configs() -> JSONValue {
        .object(JSONObject([
            ("port", .number("0")), ("socks-port", .number("0")), ("redir-port", .number("0")), ("tproxy-port", .number("0")),
            ("mixed-port", .number("0")), ("allow-lan", .bool(false)), ("bind-address", .string("*")),
            ("mode", .string(setup.modes.mode)), ("mode-list", .array(setup.modes.modes.map { .string($0) })),
            ("log-level", .string(setup.logLevel)), ("ipv6", .bool(false)), ("tun", .null),
        ]))
    }

    private func patchConfigs(_ body: [UInt8]) -> ClashAPIResponse {
        guard case .object(let object)? = try? JSONParser.parse(body) else {
            return ClashAPIResponse(status: .badRequest, message: "Body invalid")
        }
        switch object["mode"] {
        case .string(let mode)?:
            if !mode.isEmpty, setup.modes.set(mode) { setup.logger.info("updated mode: \(setup.modes.mode)") }
        case nil, .null?:
            break
        default:
            return ClashAPIResponse(status: .badRequest, message: "Body invalid")
        }
        return ClashAPIResponse(status: .noContent)
    }

    /// Every outbound and endpoint with a tag, and Go's `GLOBAL` entry for dashboards.
    private func proxies() -> JSONValue {
        let all = setup.outbounds.all.filter { !($0 is any Endpoint) } + setup.outbounds.all.filter { $0 is any Endpoint }
        let defaultTag = setup.outbounds.defaultOutbound?.tag ?? ""
        var names = all.filter { !["direct", "block", "dns"].contains($0.type) && !$0.tag.isEmpty }.map(\.tag)
        // Go's stable sort with "is the default" as the order: the default first.
        names = names.filter { $0 == defaultTag } + names.filter { $0 != defaultTag }
        var map = JSONObject([("GLOBAL", .object(JSONObject([
            ("type", .string("Fallback")), ("name", .string("GLOBAL")), ("udp", .bool(true)), ("history", .array([])),
            ("all", .array(names.map { .string($0) })), ("now", .string(defaultTag)),
        ])))])
        for outbound in all where !outbound.tag.isEmpty { map[outbound.tag] = info(outbound) }
        return .object(map)
    }

    /// Go's `proxyInfo`.
    func info(_ outbound: any Outbound) -> JSONValue {
        var object = JSONObject([
            ("type", .string(Self.displayName(outbound.type))), ("name", .string(outbound.tag)),
            ("udp", .bool(outbound.networks.contains(.udp))),
        ])
        let tag = (outbound as? any OutboundGroup)?.nowTag ?? outbound.tag
        if let entry = history.load(tag) {
            object["history"] = .array([.object(JSONObject([("time", .string(Self.rfc3339(entry.wallTime))),
                                                            ("delay", .number(String(entry.delay)))]))])
        } else {
            object["history"] = .array([])
        }
        if let group = outbound as? any OutboundGroup {
            object["now"] = .string(group.nowTag ?? "")
            object["all"] = .array(group.members.map { .string($0) })
        }
        return .object(object)
    }

    /// Go's `updateProxy`: only a selector takes a member.
    private func select(_ outbound: any Outbound, body: [UInt8]) -> ClashAPIResponse {
        guard case .object(let object)? = try? JSONParser.parse(body) else {
            return ClashAPIResponse(status: .badRequest, message: "Body invalid")
        }
        guard let selector = outbound as? SelectorOutbound else {
            return ClashAPIResponse(status: .badRequest, message: "Must be a Selector")
        }
        let name: String
        switch object["name"] {
        case .string(let text)?: name = text
        case nil, .null?: name = ""
        default: return ClashAPIResponse(status: .badRequest, message: "Body invalid")
        }
        guard selector.select(name) else {
            return ClashAPIResponse(status: .badRequest, message: "Selector update error: not found")
        }
        return ClashAPIResponse(status: .noContent)
    }

    /// Go's `getProxyDelay`: a HEAD of `url` through the proxy within `timeout` milliseconds.
    private func delay(_ outbound: any Outbound, query: [String: String]) async -> ClashAPIResponse {
        var requested = query["url"] ?? ""
        if requested.hasPrefix("http://") { requested = "" }  // Go drops plain-HTTP test URLs
        let url = requested.isEmpty ? Self.defaultTestURL : requested
        guard let timeout = Int16(query["timeout"] ?? "") else {
            return ClashAPIResponse(status: .badRequest, message: "Body invalid")
        }
        let tag = (outbound as? any OutboundGroup)?.nowTag ?? outbound.tag
        let start = NIODeadline.now()
        let probe = setup.probe
        enum Outcome { case done, failed, timedOut }
        let outcome: Outcome = await withTaskGroup(of: Outcome.self) { group in
            group.addTask {
                do { try await probe(outbound, url); return .done } catch { return .failed }
            }
            group.addTask {
                try? await Task.sleep(nanoseconds: UInt64(max(timeout, 0)) * 1_000_000)
                return .timedOut
            }
            let first = await group.next() ?? .failed
            group.cancelAll()
            return first
        }
        let delay = UInt16(clamping: (NIODeadline.now() - start).nanoseconds / 1_000_000)
        guard outcome == .done, delay > 0 else {
            history.delete(tag)
            return outcome == .timedOut ? ClashAPIResponse(status: .gatewayTimeout, message: "Timeout")
                : ClashAPIResponse(status: .serviceUnavailable, message: "An error occurred in the delay test")
        }
        history.store(tag, delay: delay)
        return ClashAPIResponse(json: .object(JSONObject([("delay", .number(String(delay)))])))
    }

    // MARK: Helpers

    /// Go's test for a WebSocket request: `Upgrade` is exactly `websocket`.
    static func wantsWebSocket(_ head: HTTPRequestHead) -> Bool {
        head.headers.first(name: "Upgrade") == "websocket"
    }

    /// Go writes the proxies' JSON without a content type; its server sniffs it as text.
    static func sniffedText(_ response: ClashAPIResponse) -> ClashAPIResponse {
        var response = response
        response.headers.replaceOrAdd(name: "Content-Type", value: "text/plain; charset=utf-8")
        return response
    }

    /// Path and query of a request target (query values percent-decoded).
    static func split(_ uri: String) -> (path: String, query: [String: String]) {
        guard let mark = uri.firstIndex(of: "?") else { return (uri, [:]) }
        var query: [String: String] = [:]
        for pair in uri[uri.index(after: mark)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).replacingOccurrences(of: "+", with: " ") }
            guard let key = parts.first?.removingPercentEncoding, query[key] == nil else { continue }
            query[key] = parts.count > 1 ? (parts[1].removingPercentEncoding ?? parts[1]) : ""
        }
        return (String(uri[..<mark]), query)
    }

    /// Go's `C.ProxyDisplayName`, with block as Clash's "Reject".
    static func displayName(_ type: String) -> String {
        let names = ["tun": "TUN", "redirect": "Redirect", "tproxy": "TProxy", "direct": "Direct", "block": "Reject",
                     "dns": "DNS", "socks": "SOCKS", "http": "HTTP", "mixed": "Mixed", "shadowsocks": "Shadowsocks",
                     "vmess": "VMess", "trojan": "Trojan", "naive": "Naive", "wireguard": "WireGuard", "hysteria": "Hysteria",
                     "tor": "Tor", "ssh": "SSH", "shadowtls": "ShadowTLS", "shadowsocksr": "ShadowsocksR", "vless": "VLESS",
                     "tuic": "TUIC", "hysteria2": "Hysteria2", "anytls": "AnyTLS", "selector": "Selector", "urltest": "URLTest"]
        return names[type] ?? "Unknown"
    }

    /// Go's `time.Time` JSON (RFC 3339 with nanoseconds, trailing zeros dropped), in UTC.
    static func rfc3339(_ seconds: Double) -> String {
        var whole = time_t(seconds.rounded(.down))
        var parts = tm()
        gmtime_r(&whole, &parts)
        let nanos = Int(((seconds - Double(whole)) * 1e9).rounded())
        var fraction = ""
        if nanos > 0 {
            fraction = String(nanos)
            fraction = String(repeating: "0", count: 9 - fraction.count) + fraction
            while fraction.hasSuffix("0") { fraction.removeLast() }
            fraction = "." + fraction
        }
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))\(fraction)Z"
    }
}
