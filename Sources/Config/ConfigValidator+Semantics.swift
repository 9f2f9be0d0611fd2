import Foundation

/// What Go's box refuses while building adapters (before anything starts), checked on options:
/// log level, certificate store, TLS server material, shadowsocks methods, socks versions,
/// WireGuard keys, DNS server addresses. The wording is sing-box's.
extension ConfigValidator {
    static let logLevels: Set<String> = ["trace", "debug", "info", "warn", "warning", "error", "fatal", "panic"]
    /// sing-shadowsocks2 (client side): none, AEAD, AEAD-2022 and stream ciphers.
    static let shadowsocksClientMethods: Set<String> = [
        "none", "aes-128-gcm", "aes-192-gcm", "aes-256-gcm", "chacha20-ietf-poly1305", "xchacha20-ietf-poly1305",
        "2022-blake3-aes-128-gcm", "2022-blake3-aes-256-gcm", "2022-blake3-chacha20-poly1305",
        "aes-128-ctr", "aes-192-ctr", "aes-256-ctr", "aes-128-cfb", "aes-192-cfb", "aes-256-cfb",
        "rc4-md5", "chacha20-ietf", "xchacha20",
    ]
    /// sing-shadowsocks (server side): none, AEAD and AEAD-2022.
    static let shadowsocksServerMethods: Set<String> = [
        "none", "aes-128-gcm", "aes-192-gcm", "aes-256-gcm", "chacha20-ietf-poly1305", "xchacha20-ietf-poly1305",
        "2022-blake3-aes-128-gcm", "2022-blake3-aes-256-gcm", "2022-blake3-chacha20-poly1305",
    ]

    static func checkSemantics(_ options: Options, workingDirectory: String? = nil) throws(ConfigError) {
        if let level = options.log?.level, !level.isEmpty, !logLevels.contains(level) {
            throw ConfigError(path: "log.level", message: "parse log level: unknown log level: \(level)")
        }
        if let clash = options.experimental?.clashAPI,
           clash.storeMode || clash.storeSelected || clash.storeFakeIP || !(clash.cacheFile ?? "").isEmpty || !(clash.cacheID ?? "").isEmpty {
            throw ConfigError(path: "experimental.clash_api", message: "cache_file and related fields in Clash API is deprecated in sing-box 1.8.0, use experimental.cache_file instead.")
        }
        if let store = options.certificate?.store, !["", "system", "mozilla", "none"].contains(store) {
            throw ConfigError(path: "certificate.store", message: "unknown certificate store: \(store)")
        }
        for (i, inbound) in options.inbounds.enumerated() {
            let path = "inbounds[\(i)]"
            if let tls = inbound.options.tls {
                if tls.enabled { try checkTLSVersions(min: tls.minVersion, max: tls.maxVersion, path: path + ".tls") }
                try checkServerTLS(tls, path: path + ".tls")
                try checkTLSFiles(tls.enabled && tls.reality?.enabled != true && (tls.acme?.domain ?? []).isEmpty,
                                  certificate: tls.certificate, certificatePath: tls.certificatePath,
                                  key: tls.key, keyPath: tls.keyPath, path: path + ".tls", workingDirectory: workingDirectory)
            }
            try checkInbound(inbound.options, path: path)
            if case .shadowsocks(let ss) = inbound.options, !shadowsocksServerMethods.contains(ss.method) {
                throw ConfigError(path: path + ".method", message: "unsupported method: \(ss.method)")
            }
        }
        for (i, outbound) in options.outbounds.enumerated() {
            let path = "outbounds[\(i)]"
            if let tls = outbound.options.outboundTLS {
                if tls.enabled { try checkTLSVersions(min: tls.minVersion, max: tls.maxVersion, path: path + ".tls") }
                try checkTLSFiles(tls.enabled, certificate: tls.certificate, certificatePath: tls.certificatePath,
                                  key: [], keyPath: nil, path: path + ".tls", workingDirectory: workingDirectory)
            }
            switch outbound.options {
            case .shadowsocks(let ss):
                if !shadowsocksClientMethods.contains(ss.method) {
                    throw ConfigError(path: path + ".method", message: "unknown method: \(ss.method)")
                }
                if ss.method != "none" && ss.password.isEmpty {
                    throw ConfigError(path: path + ".password", message: "missing password")
                }
                if ss.method.hasPrefix("2022-") {
                    // One key, or several joined by ":" (identity headers), each base64 of the key size.
                    let size = ss.method == "2022-blake3-aes-128-gcm" ? 16 : 32
                    for key in ss.password.split(separator: ":", omittingEmptySubsequences: false) {
                        if let problem = goBase64Error(String(key)) {
                            throw ConfigError(path: path + ".password", message: "decode key: \(problem)")
                        }
                        let length = Data(base64Encoded: String(key))?.count ?? 0
                        if length != size {
                            throw ConfigError(path: path + ".password", message: "bad key length, required \(size), got \(length)")
                        }
                    }
                }
            case .hysteria2(let hy2):
                try requireTLS(hy2.tls?.enabled, path: path)
                try checkObfs(hy2.obfs, path: path + ".obfs")
                try checkServerPorts(hy2.serverPorts, path: path)
            case .hysteria(let hy):
                try requireTLS(hy.tls?.enabled, path: path)
                try checkServerPorts(hy.serverPorts, path: path)
                try checkSpeeds(up: hy.up != nil || (hy.upMbps ?? 0) != 0, down: hy.down != nil || (hy.downMbps ?? 0) != 0, path: path)
            case .shadowtls(let o):
                try requireTLS(o.tls?.enabled, path: path)
            case .vmess(let o):
                try requireTLSForQUIC(o.transport, o.tls?.enabled, path: path)
                if !["", "auto", "none", "zero", "aes-128-gcm", "chacha20-poly1305", "aes-128-cfb"].contains(o.security) {
                    throw ConfigError(path: path + ".security", message: "vmess: unsupported security type: \(o.security)")
                }
                try checkPacketEncoding(o.packetEncoding, path: path)
            case .vless(let o):
                try requireTLSForQUIC(o.transport, o.tls?.enabled, path: path)
                // Go panics on an unknown vless packet encoding; we say what it is.
                try checkPacketEncoding(o.packetEncoding, path: path)
            case .trojan(let o):
                try requireTLSForQUIC(o.transport, o.tls?.enabled, path: path)
            case .tuic(let tuic):
                try requireTLS(tuic.tls?.enabled, path: path)
                if !isUUID(tuic.uuid ?? "") { throw ConfigError(path: path + ".uuid", message: "invalid uuid") }
                if tuic.udpOverStream && !(tuic.udpRelayMode ?? "").isEmpty {
                    throw ConfigError(path: path + ".udp_over_stream", message: "udp_over_stream is conflict with udp_relay_mode")
                }
            case .anytls(let anytls):
                try requireTLS(anytls.tls?.enabled, path: path)
                if anytls.dial.tcpFastOpen {
                    throw ConfigError(path: path + ".tcp_fast_open", message: "tcp_fast_open is not supported with anytls outbound")
                }
            case .socks(let socks):
                if let version = socks.version, !["", "4", "4a", "5"].contains(version) {
                    throw ConfigError(path: path + ".version", message: "unknown socks version: \(version)")
                }
            default:
                break
            }
        }
        for (i, endpoint) in options.endpoints.enumerated() {
            let path = "endpoints[\(i)]"
            if case .tailscale(let ts) = endpoint.options {
                for (j, route) in ts.advertiseRoutes.enumerated() where route.bits == 0 {
                    throw ConfigError(path: "\(path).advertise_routes[\(j)]", message: "`advertise_routes` cannot be default, use `advertise_exit_node` instead.")
                }
                if ts.advertiseExitNode && !(ts.exitNode ?? "").isEmpty {
                    throw ConfigError(path: path + ".exit_node", message: "cannot advertise an exit node and use an exit node at the same time.")
                }
            }
            guard case .wireguard(let wg) = endpoint.options else { continue }
            if !(wg.dial.detour ?? "").isEmpty && (wg.listenPort ?? 0) != 0 {
                throw ConfigError(path: path + ".listen_port", message: "`listen_port` is conflict with `detour`")
            }
            // Go decodes the keys as base64 (any length) when it builds the device.
            if wg.privateKey.isEmpty { throw ConfigError(path: path + ".private_key", message: "missing private key") }
            if let problem = goBase64Error(wg.privateKey) {
                throw ConfigError(path: path + ".private_key", message: "decode private key: \(problem)")
            }
            for (j, peer) in wg.peers.enumerated() {
                let peerPath = "\(path).peers[\(j)]"
                if let problem = goBase64Error(peer.publicKey ?? "") {
                    throw ConfigError(path: peerPath + ".public_key", message: "decode public key for peer \(j): \(problem)")
                }
                if let psk = peer.preSharedKey, !psk.isEmpty, let problem = goBase64Error(psk) {
                    throw ConfigError(path: peerPath + ".pre_shared_key", message: "decode pre shared key for peer \(j): \(problem)")
                }
                if peer.allowedIPs.isEmpty {
                    throw ConfigError(path: peerPath + ".allowed_ips", message: "missing allowed ips for peer \(j)")
                }
                if !peer.reserved.bytes.isEmpty && peer.reserved.bytes.count != 3 {
                    // Go's message prints the length of its own (fixed, 3-byte) field.
                    throw ConfigError(path: peerPath + ".reserved", message: "invalid reserved value for peer \(j), required 3 bytes, got 3")
                }
            }
        }
        for (i, service) in options.services.enumerated() {
            guard case .derp(let derp) = service.options else { continue }
            let path = "services[\(i)]"
            guard let tls = derp.tls, tls.enabled else { throw ConfigError(path: path + ".tls", message: "TLS is required for DERP server") }
            try checkServerTLS(tls, path: path + ".tls")
            if (derp.configPath ?? "").isEmpty { throw ConfigError(path: path + ".config_path", message: "missing config_path") }
            if !derp.meshWith.isEmpty && (derp.meshPSK ?? "").isEmpty && (derp.meshPSKFile ?? "").isEmpty {
                throw ConfigError(path: path + ".mesh_with", message: "missing mesh psk")
            }
            for (j, tag) in derp.verifyClientEndpoint.enumerated() {
                guard let endpoint = options.endpoints.first(where: { $0.tag == tag }) else {
                    throw ConfigError(path: "\(path).verify_client_endpoint[\(j)]", message: "verify_client_endpoint: endpoint not found: \(tag)")
                }
                guard case .tailscale = endpoint.options else {
                    throw ConfigError(path: "\(path).verify_client_endpoint[\(j)]", message: "verify_client_endpoint: endpoint is not Tailscale: \(tag)")
                }
            }
        }
        // The default DNS server is `dns.final`, else the first; it cannot be fakeip, and one
        // fakeip server is the most there may be.
        let servers = options.dns?.servers ?? []
        let finalTag = options.dns?.final ?? ""
        var sawFakeIP = false
        for (i, server) in servers.enumerated() {
            guard case .fakeip = server.options else { continue }
            if finalTag.isEmpty ? i == 0 : server.tag == finalTag {
                throw ConfigError(path: finalTag.isEmpty ? "dns.servers[\(i)]" : "dns.final", message: "default server cannot be fakeip")
            }
            if sawFakeIP { throw ConfigError(path: "dns.servers[\(i)]", message: "multiple fakeip server are not supported") }
            sawFakeIP = true
        }
        try checkCycles(options)
        for (i, server) in (options.dns?.servers ?? []).enumerated() {
            let remote: RemoteDNSServerOptions? = switch server.options {
            case .udp(let o), .tcp(let o): o
            case .tls(let o), .quic(let o): o.remote
            case .https(let o), .h3(let o): o.remote
            default: nil
            }
            let path = "dns.servers[\(i)]"
            // A legacy server that dials directly looks its address resolver up among the
            // servers created before it (Go creates them in order).
            if let legacy = server.legacy, (legacy.detour ?? "").isEmpty, let resolver = legacy.addressResolver, !resolver.isEmpty,
               !servers[..<i].contains(where: { $0.tag == resolver }) {
                throw ConfigError(path: path + ".address_resolver", message: "address resolver not found: \(resolver)")
            }
            guard let remote else { continue }
            if remote.server.isEmpty {
                throw ConfigError(path: path + ".server", message: "invalid server address: :\(remote.serverPort ?? defaultDNSPort(server.options))")
            }
            guard isDomainName(remote.server) else { continue }
            if let legacy = server.legacy {
                // A legacy server without detour dials directly and needs `address_resolver` for a name.
                if (legacy.detour ?? "").isEmpty && (legacy.addressResolver ?? "").isEmpty {
                    throw ConfigError(path: path + ".address", message: "missing address resolver for server: \(remote.server)")
                }
            } else if (remote.dial.detour ?? "").isEmpty && (remote.dial.domainResolver?.server ?? "").isEmpty {
                throw ConfigError(path: path + ".server", message: "missing domain resolver for domain server address")
            }
        }
    }

    private static func defaultDNSPort(_ options: DNSServerTypeOptions) -> UInt16 {
        switch options {
        case .tls, .quic: 853
        case .https, .h3: 443
        default: 53
        }
    }

    /// What Go's inbounds refuse when they are created.
    private static func checkInbound(_ options: InboundTypeOptions, path: String) throws(ConfigError) {
        switch options {
        case .tun(let tun):
            try checkTun(tun, path: path)
        case .shadowsocks(let ss):
            if ss.method.hasPrefix("2022-"), !ss.managed {
                // Go decodes the server key and every user key as base64 when it builds the service.
                if (ss.password ?? "").isEmpty {
                    throw ConfigError(path: path + ".password", message: "missing psk")
                }
                if let problem = goBase64Error(ss.password ?? "") {
                    throw ConfigError(path: path + ".password", message: "decode psk: \(problem)")
                }
                for (j, user) in ss.users.enumerated() {
                    if user.password.isEmpty {
                        throw ConfigError(path: "\(path).users[\(j)].password", message: "missing password")
                    }
                    if let problem = goBase64Error(user.password) {
                        throw ConfigError(path: "\(path).users[\(j)].password", message: "decode psk: \(problem)")
                    }
                }
            }
            if !ss.method.hasPrefix("2022-"), ss.method != "none", ss.users.isEmpty, (ss.password ?? "").isEmpty {
                throw ConfigError(path: path + ".password", message: "missing password")
            }
            if !ss.users.isEmpty && !ss.destinations.isEmpty {
                throw ConfigError(path: path + ".destinations", message: "users and destinations options must not be combined")
            }
            if ss.managed && (!ss.users.isEmpty || !ss.destinations.isEmpty) {
                throw ConfigError(path: path + ".managed", message: "users and destinations options are not supported in managed servers")
            }
        case .naive(let naive):
            if naive.network.effective.contains("udp"), naive.tls?.enabled != true {
                throw ConfigError(path: path + ".tls", message: "TLS is required for QUIC server")
            }
            if naive.users.isEmpty { throw ConfigError(path: path + ".users", message: "missing users") }
        case .trojan(let trojan):
            if !trojan.fallbackForALPN.entries.isEmpty, trojan.tls?.enabled != true {
                throw ConfigError(path: path + ".fallback_for_alpn", message: "fallback for ALPN is not supported without TLS")
            }
        case .tuic(let tuic):
            for (j, user) in tuic.users.enumerated() {
                if (user.uuid ?? "").isEmpty { throw ConfigError(path: "\(path).users[\(j)].uuid", message: "missing uuid for user \(j)") }
                if !isUUID(user.uuid ?? "") { throw ConfigError(path: "\(path).users[\(j)].uuid", message: "invalid uuid for user \(j)") }
            }
        case .hysteria2(let hy2):
            try requireTLS(hy2.tls?.enabled, path: path)
            try checkObfs(hy2.obfs, path: path + ".obfs")
        case .hysteria(let hy):
            try requireTLS(hy.tls?.enabled, path: path)
            try checkSpeeds(up: hy.up != nil || (hy.upMbps ?? 0) != 0, down: hy.down != nil || (hy.downMbps ?? 0) != 0, path: path)
        case .vmess(let o):
            try requireTLSForQUIC(o.transport, o.tls?.enabled, path: path)
        case .vless(let o):
            try requireTLSForQUIC(o.transport, o.tls?.enabled, path: path)
        default:
            break
        }
        if case .tuic(let tuic) = options { try requireTLS(tuic.tls?.enabled, path: path) }
        if case .trojan(let trojan) = options { try requireTLSForQUIC(trojan.transport, trojan.tls?.enabled, path: path) }
    }

    /// Protocols that only run over TLS (Go's `ErrTLSRequired`).
    private static func requireTLS(_ enabled: Bool?, path: String) throws(ConfigError) {
        if enabled != true { throw ConfigError(path: path + ".tls", message: "TLS required") }
    }

    /// The v2ray QUIC transport carries its own TLS and needs the TLS block.
    private static func requireTLSForQUIC(_ transport: V2RayTransportOptions?, _ enabled: Bool?, path: String) throws(ConfigError) {
        if case .quic = transport, enabled != true { throw ConfigError(path: path + ".tls", message: "TLS required") }
    }

    /// Port hopping ranges: "from:to", either end optional (sing-quic's `ParsePorts`).
    private static func checkServerPorts(_ ranges: [String], path: String) throws(ConfigError) {
        for (j, range) in ranges.enumerated() where !isPortRange(range) {
            throw ConfigError(path: "\(path).server_ports[\(j)]", message: "bad port range: \(range)")
        }
    }

    /// `packet_encoding`: none (""), "packetaddr" or "xudp".
    private static func checkPacketEncoding(_ encoding: String?, path: String) throws(ConfigError) {
        if let encoding, !["", "packetaddr", "xudp"].contains(encoding) {
            throw ConfigError(path: path + ".packet_encoding", message: "unknown packet encoding: \(encoding)")
        }
    }

    /// hysteria (v1) needs both directions' bandwidth.
    private static func checkSpeeds(up: Bool, down: Bool, path: String) throws(ConfigError) {
        if !up { throw ConfigError(path: path + ".up_mbps", message: "missing upload speed") }
        if !down { throw ConfigError(path: path + ".down_mbps", message: "missing download speed") }
    }

    private static func checkObfs(_ obfs: Hysteria2Obfs?, path: String) throws(ConfigError) {
        guard let obfs else { return }
        if (obfs.password ?? "").isEmpty { throw ConfigError(path: path + ".password", message: "missing obfs password") }
        if obfs.type != "salamander" { throw ConfigError(path: path + ".type", message: "unknown obfs type: \(obfs.type ?? "")") }
    }

    /// A UUID as `uuid.FromString` reads it: 36 characters with dashes, or 32 hex digits.
    static func isUUID(_ text: String) -> Bool {
        let hex = text.filter { $0 != "-" }
        guard hex.count == 32, hex.allSatisfy(\.isHexDigit) else { return false }
        if text.count == 32 { return true }
        guard text.count == 36 else { return false }
        let dashes = text.enumerated().filter { $0.element == "-" }.map(\.offset)
        return dashes == [8, 13, 18, 23]
    }

    /// What Go's tun inbound refuses when it is created.
    private static func checkTun(_ tun: TunInboundOptions, path: String) throws(ConfigError) {
        if tun.autoRedirect && !tun.autoRoute {
            throw ConfigError(path: path + ".auto_redirect", message: "`auto_route` is required by `auto_redirect`")
        }
        for (key, list) in [("include_uid_range", tun.includeUIDRange), ("exclude_uid_range", tun.excludeUIDRange)] {
            for (j, range) in list.enumerated() {
                let entryPath = "\(path).\(key)[\(j)]"
                guard let colon = range.firstIndex(of: ":") else {
                    throw ConfigError(path: entryPath, message: "parse \(key): missing ':' in range: \(range)")
                }
                if colon == range.startIndex {
                    throw ConfigError(path: entryPath, message: "parse \(key): missing range start: \(range)")
                }
                if range.index(after: colon) == range.endIndex {
                    throw ConfigError(path: entryPath, message: "parse \(key): missing range end: \(range)")
                }
                if parseGoUInt(String(range[..<colon]), bits: 32) == nil {
                    throw ConfigError(path: entryPath, message: "parse \(key): parse range start")
                }
                if parseGoUInt(String(range[range.index(after: colon)...]), bits: 32) == nil {
                    throw ConfigError(path: entryPath, message: "parse \(key): parse range end")
                }
            }
        }
    }

    /// Go finds dependency cycles only when it starts (`circular outbound dependency: a -> b -> a`);
    /// we report them at check, with Go's words.
    private static func checkCycles(_ options: Options) throws(ConfigError) {
        var outboundDependencies: [String: [String]] = [:]
        var outboundPaths: [String: String] = [:]
        for (i, outbound) in options.outbounds.enumerated() where !outbound.tag.isEmpty {
            var dependencies: [String] = []
            if let detour = outbound.options.dial?.detour, !detour.isEmpty { dependencies.append(detour) }
            switch outbound.options {
            case .selector(let o): dependencies += o.outbounds
            case .urltest(let o): dependencies += o.outbounds
            default: break
            }
            outboundDependencies[outbound.tag] = dependencies
            outboundPaths[outbound.tag] = "outbounds[\(i)]"
        }
        for (i, endpoint) in options.endpoints.enumerated() where !endpoint.tag.isEmpty {
            if let detour = endpoint.options.dial.detour, !detour.isEmpty { outboundDependencies[endpoint.tag] = [detour] }
            outboundPaths[endpoint.tag] = "endpoints[\(i)]"
        }
        try findCycle(outboundDependencies, order: options.outbounds.map(\.tag) + options.endpoints.map(\.tag),
                      paths: outboundPaths, kind: "outbound")
        var dnsDependencies: [String: [String]] = [:]
        var dnsPaths: [String: String] = [:]
        for (i, server) in (options.dns?.servers ?? []).enumerated() where !server.tag.isEmpty {
            if let resolver = server.options.dial?.domainResolver?.server, !resolver.isEmpty { dnsDependencies[server.tag] = [resolver] }
            dnsPaths[server.tag] = "dns.servers[\(i)]"
        }
        try findCycle(dnsDependencies, order: (options.dns?.servers ?? []).map(\.tag), paths: dnsPaths, kind: "server")
    }

    private static func findCycle(_ dependencies: [String: [String]], order: [String], paths: [String: String], kind: String) throws(ConfigError) {
        var done: Set<String> = []
        func visit(_ tag: String, _ trail: [String]) -> [String]? {
            if let start = trail.firstIndex(of: tag) { return Array(trail[start...]) + [tag] }
            if done.contains(tag) { return nil }
            for next in dependencies[tag] ?? [] {
                if let cycle = visit(next, trail + [tag]) { return cycle }
            }
            done.insert(tag)
            return nil
        }
        for tag in order where !tag.isEmpty {
            if let cycle = visit(tag, []) {
                throw ConfigError(path: paths[cycle[0]] ?? "", message: "circular \(kind) dependency: \(cycle.joined(separator: " -> "))")
            }
        }
    }

    /// `min_version` / `max_version`: "1.0" to "1.3" (Go's `ParseTLSVersion`).
    private static func checkTLSVersions(min: String?, max: String?, path: String) throws(ConfigError) {
        for (key, value) in [("min_version", min), ("max_version", max)] {
            if let value, !value.isEmpty, !["1.0", "1.1", "1.2", "1.3"].contains(value) {
                throw ConfigError(path: "\(path).\(key)", message: "parse \(key): unknown tls version:\(value)")
            }
        }
    }

    /// Go reads certificate and key files when it builds a TLS config; inline content wins.
    private static func checkTLSFiles(_ enabled: Bool, certificate: [String], certificatePath: String?, key: [String], keyPath: String?,
                                      path: String, workingDirectory: String?) throws(ConfigError) {
        guard enabled else { return }
        func exists(_ file: String) -> Bool {
            let full = file.hasPrefix("/") || workingDirectory == nil ? file : "\(workingDirectory ?? "")/\(file)"
            return FileManager.default.isReadableFile(atPath: full)
        }
        if certificate.isEmpty, let file = certificatePath, !file.isEmpty, !exists(file) {
            throw ConfigError(path: path + ".certificate_path", message: "read certificate: open \(file): no such file or directory")
        }
        if key.isEmpty, let file = keyPath, !file.isEmpty, !exists(file) {
            throw ConfigError(path: path + ".key_path", message: "read key: open \(file): no such file or directory")
        }
    }

    /// Go's `base64.StdEncoding.DecodeString` complaint about `text`, or nil when it decodes.
    static func goBase64Error(_ text: String) -> String? {
        if Data(base64Encoded: text) != nil { return nil }
        let alphabet = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        for (i, c) in text.enumerated() where !alphabet.contains(c) && c != "=" {
            return "illegal base64 data at input byte \(i)"
        }
        return "illegal base64 data at input byte \(max(0, text.count - text.count % 4))"
    }

    /// Go's TLS server needs a certificate and key unless it uses reality, ACME, or self-signs
    /// (`insecure` with neither given).
    private static func checkServerTLS(_ tls: InboundTLSOptions, path: String) throws(ConfigError) {
        guard tls.enabled else { return }
        if tls.reality?.enabled == true { return }
        if let acme = tls.acme, !acme.domain.isEmpty { return }
        let hasCertificate = !tls.certificate.isEmpty || !(tls.certificatePath ?? "").isEmpty
        let hasKey = !tls.key.isEmpty || !(tls.keyPath ?? "").isEmpty
        if !hasCertificate && !hasKey && tls.insecure { return }
        if !hasCertificate { throw ConfigError(path: path + ".certificate", message: "missing certificate") }
        if !hasKey { throw ConfigError(path: path + ".key", message: "missing key") }
    }
}
