/// The whole sing-box 1.12 configuration (Go's `option.Options`).
package struct Options: ConfigObject, Equatable {
    package var schema: String?
    package var log: LogOptions?
    package var dns: DNSOptions?
    package var ntp: NTPOptions?
    package var certificate: CertificateOptions?
    package var endpoints: [EndpointOptions] = []
    package var inbounds: [InboundOptions] = []
    package var outbounds: [OutboundOptions] = []
    package var route: RouteOptions?
    package var services: [ServiceOptions] = []
    package var experimental: ExperimentalOptions?

    package init() {}

    package static var goTypeName: String { "option._Options" }

    package static var fields: [ConfigField<Self>] { [
        .init("$schema", \.schema),
        .init("log", \.log, .omitNil),
        .init("dns", \.dns, .omitNil),
        .init("ntp", \.ntp, .omitNil),
        .init("certificate", \.certificate, .omitNil),
        .init("endpoints", \.endpoints),
        .init("inbounds", \.inbounds),
        .init("outbounds", \.outbounds),
        .init("route", \.route, .omitNil),
        .init("services", \.services),
        .init("experimental", \.experimental, .omitNil),
    ] }
}

/// `log`.
package struct LogOptions: ConfigObject, Equatable {
    package var disabled = false
    package var level: String?
    package var output: String?
    package var timestamp = false

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("disabled", \.disabled),
        .init("level", \.level),
        .init("output", \.output),
        .init("timestamp", \.timestamp),
    ] }
}

/// `ntp`: time synchronisation.
package struct NTPOptions: ConfigObject, Equatable {
    package var enabled = false
    package var interval: ConfigDuration?
    package var writeToSystem = false
    package var server = ServerOptions()
    package var dial = DialerOptions()

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("enabled", \.enabled),
        .init("interval", \.interval),
        .init("write_to_system", \.writeToSystem),
        .embed(\.server),
        .embed(\.dial),
    ] }
}

/// `certificate`: the trust store (`system` by default, `mozilla`, `none`) plus extra roots.
package struct CertificateOptions: ConfigObject, Equatable {
    package var store: String?
    package var certificate: [String] = []
    package var certificatePath: [String] = []
    package var certificateDirectoryPath: [String] = []

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        ConfigField(keys: ["store"], decode: { (root: inout Self, reader: inout ObjectReader) throws(ConfigError) in
            root.store = try reader.read("store")
        }, encode: { root, writer in
            // Go writes the default store ("system") as absent.
            if let store = root.store, !store.isEmpty, store != "system" { writer.put("store", .string(store)) }
        }),
        .list("certificate", \.certificate),
        .list("certificate_path", \.certificatePath),
        .list("certificate_directory_path", \.certificateDirectoryPath),
    ] }

    /// The store in effect.
    package var effectiveStore: String { (store ?? "").isEmpty ? "system" : store ?? "system" }
}

/// `experimental`.
package struct ExperimentalOptions: ConfigObject, Equatable {
    package var cacheFile: CacheFileOptions?
    package var clashAPI: ClashAPIOptions?
    package var v2rayAPI: V2RayAPIOptions?
    package var debug: DebugOptions?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("cache_file", \.cacheFile, .omitNil),
        .init("clash_api", \.clashAPI, .omitNil),
        .init("v2ray_api", \.v2rayAPI, .omitNil),
        .init("debug", \.debug, .omitNil),
    ] }
}

/// `experimental.cache_file`: the bbolt cache of selections, fakeip and rejected lookups.
package struct CacheFileOptions: ConfigObject, Equatable {
    package var enabled = false
    package var path: String?
    package var cacheID: String?
    package var storeFakeIP = false
    package var storeRDRC = false
    package var rdrcTimeout: ConfigDuration?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("enabled", \.enabled),
        .init("path", \.path),
        .init("cache_id", \.cacheID),
        .init("store_fakeip", \.storeFakeIP),
        .init("store_rdrc", \.storeRDRC),
        .init("rdrc_timeout", \.rdrcTimeout),
    ] }
}

/// `experimental.clash_api`.
package struct ClashAPIOptions: ConfigObject, Equatable {
    package var externalController: String?
    package var externalUI: String?
    package var externalUIDownloadURL: String?
    package var externalUIDownloadDetour: String?
    package var secret: String?
    package var defaultMode: String?
    package var accessControlAllowOrigin: [String] = []
    package var accessControlAllowPrivateNetwork = false
    /// Deprecated (moved to `cache_file`); ignored by 1.12.
    package var cacheFile: String?
    package var cacheID: String?
    package var storeMode = false
    package var storeSelected = false
    package var storeFakeIP = false

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("external_controller", \.externalController),
        .init("external_ui", \.externalUI),
        .init("external_ui_download_url", \.externalUIDownloadURL),
        .init("external_ui_download_detour", \.externalUIDownloadDetour),
        .init("secret", \.secret),
        .init("default_mode", \.defaultMode),
        .list("access_control_allow_origin", \.accessControlAllowOrigin),
        .init("access_control_allow_private_network", \.accessControlAllowPrivateNetwork),
        .init("cache_file", \.cacheFile),
        .init("cache_id", \.cacheID),
        .init("store_mode", \.storeMode),
        .init("store_selected", \.storeSelected),
        .init("store_fakeip", \.storeFakeIP),
    ] }
}

/// `experimental.v2ray_api` (stats over gRPC).
package struct V2RayAPIOptions: ConfigObject, Equatable {
    package var listen: String?
    package var stats: V2RayStatsServiceOptions?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("listen", \.listen),
        .init("stats", \.stats, .omitNil),
    ] }
}

/// What the v2ray API counts.
package struct V2RayStatsServiceOptions: ConfigObject, Equatable {
    package var enabled = false
    package var inbounds: [String] = []
    package var outbounds: [String] = []
    package var users: [String] = []

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("enabled", \.enabled),
        .init("inbounds", \.inbounds),
        .init("outbounds", \.outbounds),
        .init("users", \.users),
    ] }
}

/// `experimental.debug`: Go runtime knobs; read and written back, not otherwise used.
package struct DebugOptions: ConfigObject, Equatable {
    package var listen: String?
    package var gcPercent: Int?
    package var maxStack: Int?
    package var maxThreads: Int?
    package var panicOnFault: Bool?
    package var traceBack: String?
    package var memoryLimit: MemoryBytes?
    package var oomKiller: Bool?

    package init() {}

    package static var fields: [ConfigField<Self>] { [
        .init("listen", \.listen),
        .init("gc_percent", \.gcPercent, .omitNil),
        .init("max_stack", \.maxStack, .omitNil),
        .init("max_threads", \.maxThreads, .omitNil),
        .init("panic_on_fault", \.panicOnFault, .omitNil),
        .init("trace_back", \.traceBack),
        .init("memory_limit", \.memoryLimit, .omitNil),
        .init("oom_killer", \.oomKiller, .omitNil),
    ] }
}
