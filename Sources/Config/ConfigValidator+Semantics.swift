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

    static func checkSemantics(_ options: Options) throws(ConfigError) {
        if let level = options.log?.level, !level.isEmpty, !logLevels.contains(level) {
            throw ConfigError(path: "log.level", message: "parse log level: unknown log level: \(level)")
        }
        if let store = options.certificate?.store, !["", "system", "mozilla", "none"].contains(store) {
            throw ConfigError(path: "certificate.store", message: "unknown certificate store: \(store)")
        }
        for (i, inbound) in options.inbounds.enumerated() {
            let path = "inbounds[\(i)]"
            if let tls = inbound.options.tls { try checkServerTLS(tls, path: path + ".tls") }
            if case .shadowsocks(let ss) = inbound.options, !shadowsocksServerMethods.contains(ss.method) {
                throw ConfigError(path: path + ".method", message: "unsupported method: \(ss.method)")
            }
        }
        for (i, outbound) in options.outbounds.enumerated() {
            let path = "outbounds[\(i)]"
            switch outbound.options {
            case .shadowsocks(let ss):
                if !shadowsocksClientMethods.contains(ss.method) {
                    throw ConfigError(path: path + ".method", message: "unknown method: \(ss.method)")
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
            guard case .wireguard(let wg) = endpoint.options else { continue }
            let path = "endpoints[\(i)]"
            if !isWireGuardKey(wg.privateKey) {
                throw ConfigError(path: path + ".private_key", message: "decode private key: illegal base64 data at input byte 0")
            }
            for (j, peer) in wg.peers.enumerated() {
                if !isWireGuardKey(peer.publicKey ?? "") {
                    throw ConfigError(path: "\(path).peers[\(j)].public_key", message: "decode public key for peer \(j): illegal base64 data at input byte 0")
                }
                if let psk = peer.preSharedKey, !psk.isEmpty, !isWireGuardKey(psk) {
                    throw ConfigError(path: "\(path).peers[\(j)].pre_shared_key", message: "decode pre shared key for peer \(j): illegal base64 data at input byte 0")
                }
            }
        }
        for (i, server) in (options.dns?.servers ?? []).enumerated() {
            let remote: RemoteDNSServerOptions? = switch server.options {
            case .udp(let o), .tcp(let o): o
            case .tls(let o), .quic(let o): o.remote
            case .https(let o), .h3(let o): o.remote
            default: nil
            }
            if let remote, remote.server.isEmpty {
                throw ConfigError(path: "dns.servers[\(i)].server", message: "invalid server address: :\(remote.serverPort ?? defaultDNSPort(server.options))")
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

    /// A WireGuard key: base64 of 32 bytes.
    static func isWireGuardKey(_ text: String) -> Bool {
        Data(base64Encoded: text)?.count == 32
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
