// swift-tools-version:6.1
// The sing-box 1.12 gateway appliance. Module map and import direction: ../shared/STYLE.md §1.
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableExperimentalFeature("Lifetimes"),
]

let nioCore: Target.Dependency = .product(name: "NIOCore", package: "swift-nio")
let nioPosix: Target.Dependency = .product(name: "NIOPosix", package: "swift-nio")

/// The packet path's settings: release builds skip the dynamic exclusivity checks (swift_beginAccess
/// on every `Stack` property access was ~2 % of the stack loop's time in bench/netstack.sh); debug
/// builds, which the tests run, keep them.
let packetPathSettings = swiftSettings + [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

/// A Swift target with the project's settings.
func swiftTarget(_ name: String, path: String, _ deps: [Target.Dependency] = [], packetPath: Bool = false) -> Target {
    .target(name: name, dependencies: deps, path: path, swiftSettings: packetPath ? packetPathSettings : swiftSettings)
}

/// A Swift Testing target under Tests/<name>.
func testTarget(_ name: String, _ deps: [Target.Dependency]) -> Target {
    .testTarget(name: name, dependencies: deps, path: "Tests/\(name)", swiftSettings: swiftSettings)
}

/// A system library found through pkg-config, imported through a shim header.
func systemLibrary(_ name: String, path: String, pkgConfig: String, apt: String) -> Target {
    .systemLibrary(name: name, path: path, pkgConfig: pkgConfig, providers: [.apt([apt])])
}

let package = Package(
    name: "sing-box",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "sing-box", targets: ["CLI"]),
        .executable(name: "netstack-bench", targets: ["NetstackBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-nio-ssh.git", from: "0.15.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),  // SSH's keys (NIOSSH uses it too)
        // QUIC's TLS 1.3: BoringSSL's QUIC API (SSL_set_quic_method), reached as nio-ssl's vendored CNIOBoringSSL.
        // Pinned exactly: CNIOBoringSSL is not a product and BoringSSL has no stable API (SWIFT-LINUX.md §8).
        .package(url: "https://github.com/apple/swift-nio-ssl.git", exact: "2.37.6"),
    ],
    targets: [
        // Floor 0–3: the netstack (pure Swift, sans-I/O; only NetstackNIO touches an event loop).
        swiftTarget("NetstackWire", path: "Netstack/Wire", packetPath: true),
        swiftTarget("NetstackTCP", path: "Netstack/TCP", ["NetstackWire"], packetPath: true),
        swiftTarget("Netstack", path: "Netstack/Stack", ["NetstackTCP", "NetstackWire"], packetPath: true),
        swiftTarget("NetstackNIO", path: "Netstack/NIO", ["Netstack", nioCore], packetPath: true),
        swiftTarget("NetstackTesting", path: "Netstack/Testing", ["Netstack", "NetstackWire"]),
        swiftTarget("NetstackNIOTesting", path: "Netstack/NIOTesting", [nioCore]),

        // C system libraries and shims.
        systemLibrary("CMnl", path: "Appliance/CMnl", pkgConfig: "libmnl", apt: "libmnl-dev"),
        systemLibrary("CNftnl", path: "Appliance/CNftnl", pkgConfig: "libnftnl", apt: "libnftnl-dev"),
        systemLibrary("CSystemd", path: "Appliance/CSystemd", pkgConfig: "libsystemd", apt: "libsystemd-dev"),
        systemLibrary("CSodium", path: "Sources/CSodium", pkgConfig: "libsodium", apt: "libsodium-dev"),
        systemLibrary("COpenSSL", path: "Sources/COpenSSL", pkgConfig: "openssl", apt: "libssl-dev"),
        systemLibrary("CZlib", path: "Sources/CZlib", pkgConfig: "zlib", apt: "zlib1g-dev"),
        .target(name: "CLinux", path: "Appliance/CLinux"),

        // Floor 0–1: configuration and the adapter protocols.
        swiftTarget("Config", path: "Sources/Config"),
        swiftTarget("Adapter", path: "Sources/Adapter", ["Config", nioCore]),

        // Floor 4–7: kernel sockets, rules, router, DNS.
        swiftTarget("Net", path: "Sources/Net", ["Adapter", "CLinux", nioCore, nioPosix]),
        swiftTarget("TLS", path: "Sources/TLS", ["Adapter", "Config", "COpenSSL", nioCore]),
        swiftTarget("Rules", path: "Sources/Rules", ["Adapter", "Config", "CZlib"]),
        swiftTarget("Router", path: "Sources/Router", ["Rules", "Net", "Adapter", "Config", "COpenSSL", nioCore]),
        swiftTarget("DNS", path: "Sources/DNS", ["Rules", "Net", "TLS", "Adapter", "Config", "COpenSSL", nioCore, nioPosix,
                                                  .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                                                  .product(name: "NIOHPACK", package: "swift-nio-http2")]),

        // Floor 5: sans-I/O QUIC (RFC 9000/9001/9002). BoringSSL comes in through NIOSSL (see QUIC.swift).
        swiftTarget("QUIC", path: "Sources/QUIC", ["NetstackWire", nioCore, .product(name: "NIOSSL", package: "swift-nio-ssl")]),
        // QUIC connections over one NIO UDP channel (the only QUIC target touching an event loop).
        swiftTarget("QUICNIO", path: "Sources/QUICNIO", ["QUIC", "NetstackWire", nioCore, nioPosix]),

        // Floor 6: what carries protocols' bytes (UDP-over-TCP).
        swiftTarget("Transport", path: "Sources/Transport", ["Adapter", "Net", "TLS", "Config", "COpenSSL", nioCore,
                                                              .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                                                              .product(name: "NIOHPACK", package: "swift-nio-http2")]),

        // Floor 8: protocols.
        swiftTarget("SOCKS", path: "Sources/Protocols/SOCKS", ["Adapter", "Net", "Transport", "Config", nioCore]),
        swiftTarget("HTTPProxy", path: "Sources/Protocols/HTTPProxy", ["Adapter", "Net", "Transport", "TLS", "Config", nioCore]),
        swiftTarget("Mixed", path: "Sources/Protocols/Mixed", ["SOCKS", "HTTPProxy", "Adapter", "Net", "Transport", "TLS", "Config", nioCore]),
        swiftTarget("SSH", path: "Sources/Protocols/SSH", ["Adapter", "Net", "Config", nioCore,
                                                           .product(name: "NIOSSH", package: "swift-nio-ssh"),
                                                           .product(name: "Crypto", package: "swift-crypto")]),
        swiftTarget("Shadowsocks", path: "Sources/Protocols/Shadowsocks", ["Adapter", "Net", "Transport", "Config", "COpenSSL", "CSodium", nioCore]),
        swiftTarget("Trojan", path: "Sources/Protocols/Trojan", ["SOCKS", "TLS", "Transport", "Adapter", "Net", "Config", "COpenSSL", nioCore]),
        swiftTarget("Naive", path: "Sources/Protocols/Naive", ["HTTPProxy", "TLS", "Transport", "Adapter", "Net", "Config", nioCore]),
        swiftTarget("AnyTLS", path: "Sources/Protocols/AnyTLS", ["TLS", "Transport", "Adapter", "Net", "Config", "COpenSSL", nioCore,
                                                                 .product(name: "NIOConcurrencyHelpers", package: "swift-nio")]),
        swiftTarget("TUIC", path: "Sources/Protocols/TUIC", ["QUIC", "QUICNIO", "NetstackWire", "Transport", "Adapter", "Net", "Config", nioCore,
                                                             .product(name: "NIOConcurrencyHelpers", package: "swift-nio")]),
        swiftTarget("VMess", path: "Sources/Protocols/VMess", ["TLS", "Adapter", "Net", "Transport", "Config", "COpenSSL", "CZlib", nioCore]),
        swiftTarget("VLESS", path: "Sources/Protocols/VLESS", ["VMess", "TLS", "Transport", "Adapter", "Net", "Config", nioCore]),
        swiftTarget("Direct", path: "Sources/Protocols/Direct", ["Adapter", "Net", "Config", nioCore]),
        swiftTarget("Block", path: "Sources/Protocols/Block", ["Adapter", "Config", nioCore]),
        swiftTarget("Group", path: "Sources/Protocols/Group", ["Adapter", "Config", nioCore]),
        swiftTarget("Redirect", path: "Sources/Protocols/Redirect", ["Adapter", "Net", "Config", nioCore]),
        swiftTarget("TProxy", path: "Sources/Protocols/TProxy", ["Adapter", "Net", "Config", nioCore]),
        swiftTarget("Tun", path: "Sources/Protocols/Tun", ["Adapter", "Net", "Config", "Netstack", "NetstackNIO", "NetstackWire", nioCore]),
        swiftTarget("WireGuard", path: "Sources/Protocols/WireGuard", ["Adapter", "Config", "Net", "NetstackNIO", "Netstack", "NetstackWire", "COpenSSL", "CSodium", nioCore]),

        // Floor 8: Linux integration.
        swiftTarget("TunDevice", path: "Appliance/TunDevice", ["Adapter", "NetstackNIO", "Netstack", "NetstackWire", "CLinux", nioCore, nioPosix], packetPath: true),
        swiftTarget("LinuxSockets", path: "Appliance/LinuxSockets", ["Adapter", "CLinux", nioCore]),
        swiftTarget("Netlink", path: "Appliance/Netlink", ["Adapter", "CMnl", "CLinux", nioCore, nioPosix]),
        swiftTarget("Nftables", path: "Appliance/Nftables", ["Adapter", "CMnl", "CNftnl", "CLinux"]),
        swiftTarget("Systemd", path: "Appliance/Systemd", ["Adapter", "CSystemd", "CLinux"]),
        swiftTarget("Resolve1", path: "Appliance/Resolve1", ["Adapter", "DNS", "Config", "CSystemd", nioCore, nioPosix]),

        // Floor 9–10: the box and the executable.
        swiftTarget("Box", path: "Sources/Box", [
            "Config", "Adapter", "Net", "Rules", "Router", "DNS",
            "SOCKS", "HTTPProxy", "Mixed", "Direct", "Block", "Group", "WireGuard", "SSH", "Shadowsocks", "Trojan", "Naive", "AnyTLS", "TUIC", "VMess", "VLESS",
            "TunDevice", "Netlink", "Nftables", "Systemd", "LinuxSockets", nioCore, nioPosix,
            "Tun", "Redirect", "TProxy", "Resolve1",
            "COpenSSL",  // remote rule-set downloads over https
        ]),
        // Stream-parser fuzzer (mux, anytls, gun, simple-obfs, mux.cool, websocket): short in TransportTests,
        // long in `netstack-bench fuzz-parsers` (scripts/fuzz-parsers.sh).
        swiftTarget("ParserFuzzing", path: "Tests/Fuzz", ["Transport", "AnyTLS", "TUIC", "Adapter", nioCore, .product(name: "NIOEmbedded", package: "swift-nio")]),
        // Bench and long-fuzz tool for the netstack and the stream parsers (bench/netstack.sh, scripts/fuzz-netstack.sh,
        // scripts/fuzz-parsers.sh).
        .executableTarget(name: "NetstackBench", dependencies: ["TunDevice", "CLinux", "NetstackNIO", "Netstack", "NetstackWire", "NetstackTesting", "NetstackNIOTesting", "ParserFuzzing", nioCore, nioPosix],
                          path: "bench/NetstackBench", swiftSettings: swiftSettings),
        swiftTarget("ControlAPI", path: "Sources/ControlAPI", ["Adapter", "Config", "DNS", "Group", "Transport", "Rules", nioCore, nioPosix,
                                                               .product(name: "NIOHTTP1", package: "swift-nio")]),
        .executableTarget(name: "CLI", dependencies: ["Box", "ControlAPI", "Config", "COpenSSL", "CSodium", "Systemd", "CLinux", nioCore, nioPosix],
                          path: "Sources/CLI", swiftSettings: swiftSettings),

        // Tests (Swift Testing). InteropTests run the built binary against real peers, as root.
        // TestSupport: what the test targets share (child processes without Foundation's reaper).
        .target(name: "TestSupport", dependencies: ["CLinux"], path: "Tests/Support", swiftSettings: swiftSettings),
        testTarget("NetstackWireTests", ["NetstackWire", "NetstackTesting"]),
        testTarget("NetstackTCPTests", ["NetstackTCP", "NetstackWire"]),
        testTarget("NetstackTests", ["TestSupport", "Netstack", "NetstackTesting", "NetstackNIOTesting", "NetstackWire", "NetstackNIO", nioCore, nioPosix,
                                     .product(name: "NIOEmbedded", package: "swift-nio")]),
        .testTarget(name: "ConfigTests", dependencies: ["Config", "TestSupport"], path: "Tests/ConfigTests",
                    exclude: ["Corpus"], swiftSettings: swiftSettings),  // Corpus: JSON configs the tests read
        testTarget("EngineTests", ["TestSupport", "Adapter", "Net", "Rules", "Router", "SOCKS", "HTTPProxy", "Mixed", "Direct", "Block", "Group", "Box", nioCore, nioPosix,
                                   .product(name: "NIOEmbedded", package: "swift-nio")]),
        .testTarget(name: "RulesTests", dependencies: ["TestSupport", "Rules", "Router", "Config", "Adapter", "LinuxSockets", nioCore],
                    path: "Tests/RulesTests", exclude: ["Cases"], swiftSettings: swiftSettings),  // Cases: route decision table
        testTarget("DNSTests", ["TestSupport", "DNS", "Adapter", "Config", "Net", nioCore, nioPosix]),
        testTarget("WireGuardTests", ["TestSupport", "WireGuard", "NetstackWire", "COpenSSL", nioCore, nioPosix]),
        testTarget("ApplianceTests", ["TestSupport", "TunDevice", "Netlink", "Nftables", "Systemd", "LinuxSockets", "NetstackNIO", "Netstack", "NetstackWire", nioCore, nioPosix]),
        testTarget("TransportTests", ["Transport", "ParserFuzzing", "TestSupport", "Adapter", "Config", "Net", nioCore, nioPosix, .product(name: "NIOEmbedded", package: "swift-nio"),
                                      .product(name: "NIOHPACK", package: "swift-nio-http2")]),
        testTarget("ShadowsocksTests", ["Shadowsocks", "TestSupport", "Transport", "Adapter", "Config", "Net", "CSodium", "COpenSSL", nioCore, nioPosix]),
        testTarget("TLSTests", ["TLS", "Net", "Adapter", "Config", "TestSupport", nioCore, nioPosix]),
        testTarget("TrojanTests", ["Trojan", "TestSupport", "Adapter", "Net", nioCore, .product(name: "NIOEmbedded", package: "swift-nio")]),
        testTarget("NaiveTests", ["Naive", "Adapter", nioCore, .product(name: "NIOEmbedded", package: "swift-nio")]),
        testTarget("AnyTLSTests", ["AnyTLS", "Adapter", "Config", "Net", "TLS", "TestSupport", nioCore, nioPosix,
                                   .product(name: "NIOEmbedded", package: "swift-nio")]),
        testTarget("TUICTests", ["TUIC", "QUIC", "QUICNIO", "TestSupport", "Adapter", "Config", "Net", nioCore, nioPosix]),
        testTarget("VMessTests", ["VMess", "TestSupport", "Adapter", "Config", "COpenSSL", "Net", nioCore, .product(name: "NIOEmbedded", package: "swift-nio")]),
        testTarget("VLESSTests", ["VLESS", "VMess", "TestSupport", "Adapter", "Config", "Net", nioCore, .product(name: "NIOEmbedded", package: "swift-nio")]),
        testTarget("ProxyTests", ["SOCKS", "HTTPProxy", "Mixed", "TestSupport", "Adapter", "Net", nioCore, nioPosix,
                                  .product(name: "NIOEmbedded", package: "swift-nio")]),
        testTarget("ControlAPITests", ["ControlAPI", "Rules", nioCore, .product(name: "NIOHTTP1", package: "swift-nio")]),
        testTarget("InteropTests", ["CLI", "TestSupport"]),
        testTarget("TransparentTests", ["CLI", "TestSupport", "TProxy", "Adapter", nioCore,
                                       .product(name: "NIOEmbedded", package: "swift-nio")]),
        .testTarget(name: "QUICTests", dependencies: ["QUIC", "QUICNIO", "NetstackWire", "TestSupport", nioCore, nioPosix], path: "Tests/QUICTests",
                    exclude: ["Peers"], swiftSettings: swiftSettings),  // Peers: the aioquic peer script
        testTarget("SniffTests", ["Router", "Adapter", "TestSupport", nioCore, nioPosix]),
        testTarget("ResolvedTests", ["CLI", "TestSupport"]),
        testTarget("WireGuardEndpointTests", ["CLI", "TestSupport"]),
        testTarget("GatewayTests", ["CLI", "TestSupport", "Tun", "Adapter", "Config"]),
    ]
)
