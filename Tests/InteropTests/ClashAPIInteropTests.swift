// The Clash API, ours and Go sing-box 1.12.12 asked the same things with curl: version, configs and
// the mode (which `clash_mode` rules follow), proxies, switching a selector (flows follow it),
// Go's error bodies, the secret, CORS preflight, delay tests that fail; and `clash_mode` without a
// controller (Go's clash server exists with the default mode).
import Foundation
import Testing

@Suite(.serialized) struct ClashAPIInteropTests {
    /// An HTTP request with curl: status and body.
    private static func request(_ method: String, _ url: String, secret: String? = "s3", body: String? = nil,
                                headers: [String] = []) throws -> (status: Int, body: String, headers: String) {
        var arguments = ["--silent", "--max-time", "5", "-X", method, "-D", "-", url]
        if let secret { arguments += ["-H", "Authorization: Bearer \(secret)"] }
        if let body { arguments += ["--data-binary", body] }
        for header in headers { arguments += ["-H", header] }
        let result = try runTool(Peers.curl, arguments, timeout: 10)
        let text = String(decoding: result.stdout, as: UTF8.self)
        let split = text.range(of: "\r\n\r\n")
        let head = split.map { String(text[..<$0.lowerBound]) } ?? text
        let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
        return (status, split.map { String(text[$0.upperBound...]) } ?? "", head)
    }

    private static func json(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    /// Whether a download through the mixed inbound works now.
    private static func reaches(_ proxyPort: UInt16, _ files: FileServer) -> Bool {
        (try? curl(["--socks5-hostname", "127.0.0.1:\(proxyPort)", files.blobURL])) == files.blob
    }

    @Test(arguments: [Implementation.ours, .go])
    func modesSelectorsAndErrorsAsGo(implementation: Implementation) throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let api = try freePort(), proxy = try freePort()
        let config = """
            {"log":{"level":"info","timestamp":false},
             "experimental":{"clash_api":{"external_controller":"127.0.0.1:\(api)","secret":"s3"}},
             "inbounds":[\(ConfigJSON.mixed(port: proxy))],
             "outbounds":[{"type":"selector","tag":"sel","outbounds":["direct","block"]},\(ConfigJSON.direct),\(ConfigJSON.block),
                          {"type":"urltest","tag":"auto","outbounds":["direct"],"url":"\(files.blobURL)"}],
             "route":{"rules":[{"clash_mode":"Direct","outbound":"direct"},{"clash_mode":"Global","outbound":"block"}],"final":"sel"}}
            """
        let box = try SingBox(implementation, config: config, waitPort: api, in: work)
        defer { box.stop() }
        let base = "http://127.0.0.1:\(api)"

        // The secret.
        let denied = try Self.request("GET", "\(base)/version", secret: nil)
        #expect(denied.status == 401 && Self.json(denied.body)["message"] as? String == "Unauthorized", "\(denied)")
        #expect(try Self.request("GET", "\(base)/version", secret: "wrong").status == 401)
        let version = Self.json(try Self.request("GET", "\(base)/version").body)
        #expect(version["version"] as? String == "sing-box 1.12.12" && version["meta"] as? Bool == true)
        #expect(Self.json(try Self.request("GET", "\(base)/").body)["hello"] as? String == "clash")
        // Go's router answers before the secret is checked: unknown paths 404, GET-only routes 405.
        let unrouted = try Self.request("GET", "\(base)/nowhere", secret: nil)
        #expect(unrouted.status == 404 && unrouted.body == "404 page not found\n", "\(implementation): \(unrouted)")
        #expect(try Self.request("GET", "\(base)/version/more", secret: nil).status == 404)
        #expect(try Self.request("POST", "\(base)/version", secret: nil).status == 405)
        #expect(try Self.request("DELETE", "\(base)/", secret: nil).status == 405)
        #expect(try Self.request("GET", "\(base)/configs/nowhere", secret: nil).status == 401)

        // Configs: the default mode and the modes the rules name, in Go's order.
        var configs = Self.json(try Self.request("GET", "\(base)/configs").body)
        #expect(configs["mode"] as? String == "Rule" && configs["mode-list"] as? [String] == ["Rule", "Global", "Direct"], "\(configs)")
        #expect(configs["log-level"] as? String == "info" && configs["bind-address"] as? String == "*")

        // Proxies, with Go's GLOBAL entry.
        let proxies = Self.json(try Self.request("GET", "\(base)/proxies").body)["proxies"] as? [String: Any] ?? [:]
        #expect(Set(proxies.keys) == ["GLOBAL", "sel", "direct", "block", "auto"], "\(proxies.keys)")
        let global = proxies["GLOBAL"] as? [String: Any] ?? [:]
        #expect(global["all"] as? [String] == ["sel", "auto"] && global["now"] as? String == "sel" && global["type"] as? String == "Fallback")
        let selector = proxies["sel"] as? [String: Any] ?? [:]
        #expect(selector["type"] as? String == "Selector" && selector["now"] as? String == "direct" && selector["all"] as? [String] == ["direct", "block"])
        #expect((proxies["block"] as? [String: Any])?["type"] as? String == "Reject")
        #expect((proxies["auto"] as? [String: Any])?["type"] as? String == "URLTest")
        let missing = try Self.request("GET", "\(base)/proxies/nope")
        #expect(missing.status == 404 && Self.json(missing.body)["message"] as? String == "Resource not found")

        // The selector decides where flows go, and says why it refuses.
        #expect(Self.reaches(proxy, files), "\(box.log)")
        #expect(try Self.request("PUT", "\(base)/proxies/sel", body: #"{"name":"block"}"#).status == 204)
        #expect((Self.json(try Self.request("GET", "\(base)/proxies/sel").body))["now"] as? String == "block")
        #expect(!Self.reaches(proxy, files))
        let unknown = try Self.request("PUT", "\(base)/proxies/sel", body: #"{"name":"nope"}"#)
        #expect(unknown.status == 400 && Self.json(unknown.body)["message"] as? String == "Selector update error: not found")
        let notSelector = try Self.request("PUT", "\(base)/proxies/auto", body: #"{"name":"direct"}"#)
        #expect(notSelector.status == 400 && Self.json(notSelector.body)["message"] as? String == "Must be a Selector")
        let garbage = try Self.request("PUT", "\(base)/proxies/sel", body: "garbage")
        #expect(garbage.status == 400 && Self.json(garbage.body)["message"] as? String == "Body invalid")
        #expect(try Self.request("PUT", "\(base)/proxies/sel", body: #"{"name":"direct"}"#).status == 204)
        #expect(Self.reaches(proxy, files))

        // The mode decides which clash_mode rule matches; names compare ignoring case, unknown ones are ignored.
        #expect(try Self.request("PATCH", "\(base)/configs", body: #"{"mode":"global"}"#).status == 204)
        configs = Self.json(try Self.request("GET", "\(base)/configs").body)
        #expect(configs["mode"] as? String == "Global")
        #expect(!Self.reaches(proxy, files))
        #expect(try Self.request("PATCH", "\(base)/configs", body: #"{"mode":"Weird"}"#).status == 204)
        #expect(Self.json(try Self.request("GET", "\(base)/configs").body)["mode"] as? String == "Global")
        #expect(try Self.request("PATCH", "\(base)/configs", body: #"{"mode":5}"#).status == 400)
        #expect(try Self.request("PATCH", "\(base)/configs", body: #"{"mode":"Direct"}"#).status == 204)
        // Direct mode routes to direct even with the selector on block.
        #expect(try Self.request("PUT", "\(base)/proxies/sel", body: #"{"name":"block"}"#).status == 204)
        #expect(Self.reaches(proxy, files), "\(box.log)")

        // Delay tests: a bad timeout, and a URL nothing answers.
        #expect(try Self.request("GET", "\(base)/proxies/direct/delay?timeout=xx").status == 400)
        let failed = try Self.request("GET", "\(base)/proxies/direct/delay?timeout=2000&url=https%3A%2F%2F127.0.0.1%3A1%2F")
        #expect(failed.status == 503 && Self.json(failed.body)["message"] as? String == "An error occurred in the delay test", "\(failed)")

        // CORS: a browser's preflight passes without the secret.
        let preflight = try Self.request("OPTIONS", "\(base)/proxies/sel", secret: nil,
                                         headers: ["Origin: http://ui.example", "Access-Control-Request-Method: PUT",
                                                   "Access-Control-Request-Headers: authorization,content-type"])
        #expect(preflight.status == 200, "\(preflight)")
        for line in ["Access-Control-Allow-Origin: *", "Access-Control-Allow-Methods: PUT",
                     "Access-Control-Allow-Headers: Authorization, Content-Type", "Access-Control-Max-Age: 300"] {
            #expect(preflight.headers.contains(line), "\(implementation) missing \(line): \(preflight.headers)")
        }
    }

    /// `clash_api` without `external_controller`: nothing listens, yet the mode exists (Go's default
    /// "Rule", or `default_mode`), so `clash_mode` rules match; without `clash_api` they never do.
    @Test(arguments: [Implementation.ours, .go])
    func clashModeRulesWithoutAController(implementation: Implementation) throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        for (experimental, blocked) in [(#""experimental":{"clash_api":{}},"#, true),
                                        (#""experimental":{"clash_api":{"default_mode":"Other"}},"#, false),
                                        ("", false)] {
            let proxy = try freePort()
            let config = """
                {"log":{"level":"info","timestamp":false},\(experimental)
                 "inbounds":[\(ConfigJSON.mixed(port: proxy))],
                 "outbounds":[\(ConfigJSON.direct),\(ConfigJSON.block)],
                 "route":{"rules":[{"clash_mode":"rule","outbound":"block"}]}}
                """
            let box = try SingBox(implementation, config: config, waitPort: proxy, in: work, name: "\(implementation)-\(proxy)")
            defer { box.stop() }
            #expect(Self.reaches(proxy, files) == !blocked, "\(implementation) \(experimental)\n\(box.log)")
        }
    }

    /// `/rules`, the provider/script/profile stubs, `/cache/*/flush`, `/dns/query` and `/group`: the
    /// same requests to Go and ours with one config, the same statuses and bodies (DNS TTLs and
    /// delays aside).
    @Test func resourceRoutesAsGo() throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let dns = try Dnsmasq(["--address=/a.example/10.1.2.3", "--mx-host=m.example,mail.m.example,10",
                               "--txt-record=t.example,\"hello world\""], in: work)
        defer { dns.stop() }
        func config(api: UInt16, proxy: UInt16, cache: String) -> String {
            """
            {"log":{"level":"info","timestamp":false},
             "experimental":{"clash_api":{"external_controller":"127.0.0.1:\(api)","secret":"s3"},
                             "cache_file":{"enabled":true,"path":"\(work.file(cache))","store_fakeip":true}},
             "dns":{"servers":[{"type":"udp","tag":"up","server":"127.0.0.1","server_port":\(dns.port)},
                               {"type":"fakeip","tag":"fake","inet4_range":"198.18.0.0/15","inet6_range":"fc00::/18"}],
                    "rules":[{"domain_suffix":["fake.example"],"server":"fake"}],"final":"up"},
             "inbounds":[\(ConfigJSON.mixed(port: proxy))],
             "outbounds":[{"type":"selector","tag":"sel","outbounds":["direct","block"]},\(ConfigJSON.direct),\(ConfigJSON.block),
                          {"type":"urltest","tag":"auto","outbounds":["direct"],"url":"\(files.blobURL)"}],
             "route":{"rules":[{"action":"sniff"},{"protocol":"dns","action":"hijack-dns"},
                               {"domain_suffix":[".test",".example"],"port":[80,443],"outbound":"sel"},
                               {"type":"logical","mode":"or","rules":[{"ip_cidr":["10.0.0.0/8"]},{"network":"udp","invert":true}],
                                "action":"reject","method":"drop"},
                               {"clash_mode":"Direct","outbound":"direct"}],"final":"sel"}}
            """
        }
        let goAPI = try freePort(), goProxy = try freePort(), ourAPI = try freePort(), ourProxy = try freePort()
        let go = try SingBox(.go, config: config(api: goAPI, proxy: goProxy, cache: "go.db"), waitPort: goAPI, in: work)
        defer { go.stop() }
        let ours = try SingBox(.ours, config: config(api: ourAPI, proxy: ourProxy, cache: "ours.cache"), waitPort: ourAPI, in: work)
        defer { ours.stop() }
        let bases = ["go": "http://127.0.0.1:\(goAPI)", "ours": "http://127.0.0.1:\(ourAPI)"]
        /// Both answers to one request: statuses equal and, unless `normalize` says otherwise, bodies equal.
        func both(_ method: String, _ path: String, body: String? = nil,
                  normalize: (String) -> String = { $0 }) throws -> (status: Int, body: String) {
            let g = try Self.request(method, bases["go"]! + path, body: body)
            let o = try Self.request(method, bases["ours"]! + path, body: body)
            #expect(g.status == o.status, "\(method) \(path): Go \(g.status) \(g.body), ours \(o.status) \(o.body)")
            #expect(normalize(g.body) == normalize(o.body), "\(method) \(path):\nGo   \(g.body)\nours \(o.body)")
            return (o.status, o.body)
        }
        // Rules: type, Go's rule text and action text.
        let rules = try both("GET", "/rules")
        #expect(rules.status == 200 && rules.body.contains(#""type":"logical""#), "\(rules)")
        // Providers, script, profile: Go's stubs.
        #expect(try both("GET", "/providers/proxies").body == "{\"providers\":{}}\n")
        #expect(try both("GET", "/providers/rules").body == "{\"providers\":[]}\n")
        #expect(try both("GET", "/providers/proxies/x").status == 404)
        #expect(try both("GET", "/providers/proxies/x/healthcheck").status == 404)
        #expect(try both("PUT", "/providers/rules/x").status == 404)
        #expect(try both("POST", "/script", body: "{}").status == 400)
        #expect(try both("PATCH", "/script", body: "{}").status == 204)
        #expect(try both("GET", "/profile/tracing").status == 404)
        #expect(try both("DELETE", "/rules").status == 405)
        // DNS queries through the router: TTLs aside, the same answer.
        let ttl = { (text: String) in text.replacingOccurrences(of: #""TTL":\d+"#, with: #""TTL":0"#, options: .regularExpression) }
        for query in ["?name=a.example", "?name=a.example.&type=A", "?name=m.example&type=MX", "?name=t.example&type=TXT",
                      "?name=none.example&type=AAAA"] {
            let answer = try both("GET", "/dns/query" + query, normalize: ttl)
            #expect(answer.status == 200, "\(query): \(answer)")
        }
        #expect(try both("GET", "/dns/query?name=a.example&type=NOPE").status == 400)
        // fakeip: the flush forgets the mappings and new ones continue after the last address. (Go's
        // flush fails with "bucket not found" unless both families have mappings in its cache file.)
        let first = try both("GET", "/dns/query?name=one.fake.example", normalize: ttl)
        #expect(first.body.contains(#""data":"198.18.0.3""#), "\(first)")
        _ = try both("GET", "/dns/query?name=two.fake.example", normalize: ttl)
        _ = try both("GET", "/dns/query?name=two.fake.example&type=AAAA", normalize: ttl)
        #expect(try both("POST", "/cache/dns/flush").status == 404)  // not in 1.12
        #expect(try both("POST", "/cache/fakeip/flush").status == 204)
        let again = try both("GET", "/dns/query?name=one.fake.example", normalize: ttl)
        #expect(again.body.contains(#""data":"198.18.0.5""#), "\(again)")
        // Groups: the list, one group, a member that is no group, a missing one, delays.
        let history = { (text: String) in text.replacingOccurrences(of: #""history":\[[^\]]*\]"#, with: "", options: .regularExpression) }
        let groups = try both("GET", "/group", normalize: history)
        #expect(groups.body.contains(#""name":"sel""#) && groups.body.contains(#""name":"auto""#), "\(groups)")
        #expect(try both("GET", "/group/sel", normalize: history).status == 200)
        #expect(try both("GET", "/group/direct").status == 404)
        #expect(try both("GET", "/group/nope").status == 404)
        #expect(try both("GET", "/group/sel/delay?timeout=x").status == 400)
        // Every member fails against a port nothing serves: an empty map.
        #expect(try both("GET", "/group/sel/delay?timeout=2000&url=https%3A%2F%2F127.0.0.1%3A1%2F").body == "{}\n")
        // A urltest group tests with its own URL (the local file server): direct answers.
        let delays = try both("GET", "/group/auto/delay?timeout=5000",
                              normalize: { $0.replacingOccurrences(of: #":\d+"#, with: ":0", options: .regularExpression) })
        #expect(delays.body.hasPrefix(#"{"direct":"#), "\(delays)")
    }
}
