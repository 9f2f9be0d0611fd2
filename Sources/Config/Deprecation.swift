/// A sing-box deprecation note (Go's `experimental/deprecated`): what it is, when it was
/// deprecated and is removed, and the env variable that keeps it working past its time.
package struct Deprecation: Sendable, Equatable {
    package var name: String
    package var description: String
    package var deprecatedVersion: String
    package var scheduledVersion: String
    package var envName: String
    package var migrationLink: String

    /// Go's `MessageWithLink`.
    package var message: String {
        "\(description) is deprecated in sing-box \(deprecatedVersion) and will be removed in sing-box \(scheduledVersion), checkout documentation for migration: \(migrationLink)"
    }

    /// Go's `Impending` for version 1.12: removal due in 1.13 or earlier makes it fatal.
    package var isImpending: Bool {
        let minor = Int(scheduledVersion.split(separator: ".").dropFirst().first ?? "") ?? 0
        return minor - 12 <= 1
    }

    /// The error when an impending deprecation is used without its env variable.
    package var fatalMessage: String {
        "to continuing using this feature, set environment variable ENABLE_DEPRECATED_\(envName)=true"
    }

    static let badMatchSource = Deprecation(
        name: "bad-match-source", description: "legacy match source rule item", deprecatedVersion: "1.10.0",
        scheduledVersion: "1.11.0", envName: "BAD_MATCH_SOURCE",
        migrationLink: "https://sing-box.sagernet.org/deprecated/#match-source-rule-items-are-renamed")
    static let tunAddressX = Deprecation(
        name: "tun-address-x", description: "legacy tun address fields", deprecatedVersion: "1.10.0",
        scheduledVersion: "1.12.0", envName: "TUN_ADDRESS_X",
        migrationLink: "https://sing-box.sagernet.org/migration/#tun-address-fields-are-merged")
    static let specialOutbounds = Deprecation(
        name: "special-outbounds", description: "legacy special outbounds", deprecatedVersion: "1.11.0",
        scheduledVersion: "1.13.0", envName: "SPECIAL_OUTBOUNDS",
        migrationLink: "https://sing-box.sagernet.org/migration/#migrate-legacy-special-outbounds-to-rule-actions")
    static let destinationOverrideFields = Deprecation(
        name: "destination-override-fields", description: "destination override fields in direct outbound",
        deprecatedVersion: "1.11.0", scheduledVersion: "1.13.0", envName: "DESTINATION_OVERRIDE_FIELDS",
        migrationLink: "https://sing-box.sagernet.org/migration/#migrate-destination-override-fields-to-route-options")
    static let wireGuardOutbound = Deprecation(
        name: "wireguard-outbound", description: "legacy wireguard outbound", deprecatedVersion: "1.11.0",
        scheduledVersion: "1.13.0", envName: "WIREGUARD_OUTBOUND",
        migrationLink: "https://sing-box.sagernet.org/migration/#migrate-wireguard-outbound-to-endpoint")
    static let wireGuardGSO = Deprecation(
        name: "wireguard-gso", description: "GSO option in wireguard outbound", deprecatedVersion: "1.11.0",
        scheduledVersion: "1.13.0", envName: "WIREGUARD_GSO",
        migrationLink: "https://sing-box.sagernet.org/migration/#migrate-wireguard-outbound-to-endpoint")
    static let tunGSO = Deprecation(
        name: "tun-gso", description: "GSO option in tun", deprecatedVersion: "1.11.0",
        scheduledVersion: "1.12.0", envName: "TUN_GSO",
        migrationLink: "https://sing-box.sagernet.org/deprecated/#gso-option-in-tun")
    static let legacyDNSTransport = Deprecation(
        name: "legacy-dns-transport", description: "legacy DNS servers", deprecatedVersion: "1.12.0",
        scheduledVersion: "1.14.0", envName: "LEGACY_DNS_SERVERS",
        migrationLink: "https://sing-box.sagernet.org/migration/#migrate-to-new-dns-server-formats")
    static let legacyDNSFakeIPOptions = Deprecation(
        name: "legacy-dns-fakeip-options", description: "legacy DNS fakeip options", deprecatedVersion: "1.12.0",
        scheduledVersion: "1.14.0", envName: "LEGACY_DNS_FAKEIP_OPTIONS",
        migrationLink: "https://sing-box.sagernet.org/migration/#migrate-to-new-dns-server-formats")
    static let outboundDNSRuleItem = Deprecation(
        name: "outbound-dns-rule-item", description: "outbound DNS rule item", deprecatedVersion: "1.12.0",
        scheduledVersion: "1.14.0", envName: "OUTBOUND_DNS_RULE_ITEM",
        migrationLink: "https://sing-box.sagernet.org/migration/#migrate-outbound-dns-rule-items-to-domain-resolver")
    static let missingDomainResolver = Deprecation(
        name: "missing-domain-resolver",
        description: "missing `route.default_domain_resolver` or `domain_resolver` in dial fields",
        deprecatedVersion: "1.12.0", scheduledVersion: "1.14.0", envName: "MISSING_DOMAIN_RESOLVER",
        migrationLink: "https://sing-box.sagernet.org/migration/#migrate-outbound-dns-rule-items-to-domain-resolver")
    static let legacyECHOptions = Deprecation(
        name: "legacy-ech-options", description: "legacy ECH options", deprecatedVersion: "1.12.0",
        scheduledVersion: "1.13.0", envName: "LEGACY_ECH_OPTIONS",
        migrationLink: "https://sing-box.sagernet.org/deprecated/#legacy-ech-fields")
    static let legacyDomainStrategyOptions = Deprecation(
        name: "legacy-domain-strategy-options", description: "legacy domain strategy options",
        deprecatedVersion: "1.12.0", scheduledVersion: "1.14.0", envName: "LEGACY_DOMAIN_STRATEGY_OPTIONS",
        migrationLink: "https://sing-box.sagernet.org/migration/#migrate-domain-strategy-options")
}

/// Collects deprecation reports once per note, as Go's stderr manager does: a warning when the
/// removal is not due, an error unless `ENABLE_DEPRECATED_<NAME>` parses as true when it is.
struct DeprecationReporter {
    let environment: [String: String]
    var warnings: [String] = []
    private var reported: Set<String> = []

    init(environment: [String: String]) { self.environment = environment }

    mutating func report(_ note: Deprecation, at path: String) throws(ConfigError) {
        guard !reported.contains(note.name) else { return }
        reported.insert(note.name)
        if !note.isImpending || Self.parseBool(environment["ENABLE_DEPRECATED_" + note.envName]) == true {
            warnings.append(note.message)
            return
        }
        throw ConfigError(path: path, message: "\(note.message); \(note.fatalMessage)")
    }

    /// Go's `strconv.ParseBool`.
    static func parseBool(_ text: String?) -> Bool? {
        switch text {
        case "1", "t", "T", "TRUE", "true", "True": true
        case "0", "f", "F", "FALSE", "false", "False": false
        default: nil
        }
    }
}
