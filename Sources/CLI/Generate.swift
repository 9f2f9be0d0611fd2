// `sing-box generate …`: uuid, rand, wg-keypair, reality-keypair, vapid-keypair, tls-keypair, ech-keypair.
//
// Output, flags, help and errors match Go sing-box 1.12.12 (cobra + pflag + its logrus-style FATAL line):
// 1. parse the arguments the way cobra does (flags anywhere, `--` ends flags, `-h/--help` wins);
// 2. a parse or argument-count error prints `Error: …`, the usage, a blank line, then a FATAL line, exit 1;
// 3. an error inside the command itself prints only the FATAL line, exit 1;
// 4. the generators write to stdout exactly what Go writes (PEM blocks, `PrivateKey: …` lines).
// Keys and randomness come from libsodium and OpenSSL (RSA, X.509, P-256).
import COpenSSL
import CSodium
#if canImport(Glibc)
import Glibc
#endif

/// The `generate` subcommand family. Returns the process exit code.
enum GenerateCommand {
    static func run(_ arguments: [String]) -> Int32 {
        guard sodium_init() >= 0 else {
            GenerateOutput.fatal("libsodium initialization failed", colored: true)
            return 1
        }
        // cobra finds the subcommand as the first argument that is not a flag.
        guard let nameIndex = arguments.firstIndex(where: { !$0.hasPrefix("-") }),
              let command = GenerateSubcommand.all.first(where: { $0.name == arguments[nameIndex] })
        else {
            return runParent(arguments)
        }
        var rest = arguments
        rest.remove(at: nameIndex)
        return command.run(rest)
    }

    /// `sing-box generate` without a known subcommand: cobra prints help (exit 0) unless a flag is bad.
    private static func runParent(_ arguments: [String]) -> Int32 {
        var parser = FlagParser(arguments: arguments, flags: [])
        switch parser.parse() {
        case .failure(let message):
            GenerateOutput.usageError(message, usage: GenerateSubcommand.parentUsage)
            return 1
        case .success:
            GenerateOutput.standardOutput(GenerateSubcommand.parentHelp)
            return 0
        }
    }
}

/// One `generate` subcommand: its cobra metadata and its action.
private struct GenerateSubcommand: Sendable {
    enum Arguments { case none, exactlyOne, any }

    var name: String
    var use: String
    var short: String
    var flags: [FlagSpec]
    var flagsHelp: String
    var arguments: Arguments
    var action: @Sendable (_ positional: [String], _ values: FlagValues) -> Result<String, GenerateFailure>

    static let globalFlagsHelp = """
        Global Flags:
          -c, --config stringArray             set configuration file path
          -C, --config-directory stringArray   set configuration directory path
          -D, --directory string               set working directory
              --disable-color                  disable color output

        """

    static let all: [GenerateSubcommand] = [
        GenerateSubcommand(name: "ech-keypair", use: "ech-keypair <plain_server_name>", short: "Generate TLS ECH key pair",
                           flags: [], flagsHelp: helpOnly("ech-keypair"), arguments: .exactlyOne) { positional, _ in
            Generators.echKeyPair(publicName: positional[0])
        },
        GenerateSubcommand(name: "rand", use: "rand <length>", short: "Generate random bytes",
                           flags: [FlagSpec(long: "base64", kind: .bool), FlagSpec(long: "hex", kind: .bool)],
                           flagsHelp: """
                               Flags:
                                     --base64   Generate base64 string
                                 -h, --help     help for rand
                                     --hex      Generate hex string


                               """, arguments: .exactlyOne) { positional, values in
            Generators.random(lengthText: positional[0], base64: values.bool("base64"), hex: values.bool("hex"))
        },
        GenerateSubcommand(name: "reality-keypair", use: "reality-keypair", short: "Generate reality key pair",
                           flags: [], flagsHelp: helpOnly("reality-keypair"), arguments: .none) { _, _ in
            Generators.x25519KeyPair(encoding: .base64RawURL)
        },
        GenerateSubcommand(name: "tls-keypair", use: "tls-keypair <server_name>", short: "Generate TLS self sign key pair",
                           flags: [FlagSpec(long: "months", short: "m", kind: .int)],
                           flagsHelp: """
                               Flags:
                                 -h, --help         help for tls-keypair
                                 -m, --months int   Valid months (default 1)


                               """, arguments: .exactlyOne) { positional, values in
            Generators.tlsKeyPair(serverName: positional[0], months: values.int("months") ?? 1)
        },
        GenerateSubcommand(name: "uuid", use: "uuid", short: "Generate UUID string",
                           flags: [], flagsHelp: helpOnly("uuid"), arguments: .none) { _, _ in
            Generators.uuid()
        },
        // 1.12 declares no argument rule for vapid-keypair, so extra arguments are ignored.
        GenerateSubcommand(name: "vapid-keypair", use: "vapid-keypair", short: "Generate VAPID key pair",
                           flags: [], flagsHelp: helpOnly("vapid-keypair"), arguments: .any) { _, _ in
            Generators.vapidKeyPair()
        },
        GenerateSubcommand(name: "wg-keypair", use: "wg-keypair", short: "Generate WireGuard key pair",
                           flags: [], flagsHelp: helpOnly("wg-keypair"), arguments: .none) { _, _ in
            Generators.x25519KeyPair(encoding: .base64Standard)
        },
    ]

    static func helpOnly(_ name: String) -> String {
        "Flags:\n  -h, --help   help for \(name)\n\n"
    }

    static var parentUsage: String {
        var text = "Usage:\n  sing-box generate [command]\n\nAvailable Commands:\n"
        for command in all {
            text += "  " + command.name.padding(toLength: 16) + command.short + "\n"
        }
        text += "\n" + helpOnly("generate") + globalFlagsHelp
        text += "\nUse \"sing-box generate [command] --help\" for more information about a command.\n"
        return text
    }

    static var parentHelp: String { "Generate things\n\n" + parentUsage }

    var usage: String {
        "Usage:\n  sing-box generate \(use) [flags]\n\n" + flagsHelp + Self.globalFlagsHelp
    }

    func run(_ commandLine: [String]) -> Int32 {
        var parser = FlagParser(arguments: commandLine, flags: flags)
        switch parser.parse() {
        case .failure(let message):
            GenerateOutput.usageError(message, usage: usage)
            return 1
        case .success:
            break
        }
        if parser.values.help {
            GenerateOutput.standardOutput(short + "\n\n" + usage)
            return 0
        }
        let positional = parser.positional
        switch arguments {
        case .none where !positional.isEmpty:
            GenerateOutput.usageError("unknown command \(goQuote(positional[0])) for \"sing-box generate \(name)\"", usage: usage)
            return 1
        case .exactlyOne where positional.count != 1:
            GenerateOutput.usageError("accepts 1 arg(s), received \(positional.count)", usage: usage)
            return 1
        default:
            break
        }
        // Go's preRun: --disable-color switches the logger, -D changes the working directory.
        let colored = !parser.values.bool("disable-color")
        if let directory = parser.values.strings["directory"]?.last, !directory.isEmpty {
            _ = mkdir(directory, 0o777)
            if chdir(directory) != 0 {
                GenerateOutput.fatal("chdir \(directory): \(String(cString: strerror(errno)))", colored: colored)
                return 1
            }
        }
        switch action(positional, parser.values) {
        case .success(let output):
            GenerateOutput.standardOutput(output)
            return 0
        case .failure(let failure):
            GenerateOutput.fatal(failure.message, colored: colored)
            return 1
        }
    }
}

/// A failure inside a generator, printed as Go's `log.Fatal(err)` line.
private struct GenerateFailure: Error {
    var message: String
}

// MARK: - Flag parsing the way cobra/pflag do it

private struct FlagSpec: Sendable {
    enum Kind { case bool, int, string }
    var long: String
    var short: Character?
    var kind: Kind

    /// The persistent flags every sing-box command accepts.
    static let global: [FlagSpec] = [
        FlagSpec(long: "config", short: "c", kind: .string),
        FlagSpec(long: "config-directory", short: "C", kind: .string),
        FlagSpec(long: "directory", short: "D", kind: .string),
        FlagSpec(long: "disable-color", kind: .bool),
        FlagSpec(long: "help", short: "h", kind: .bool),
    ]

    /// pflag's name in error messages: `-m, --months` or `--base64`.
    var displayName: String {
        if let short { return "-\(short), --\(long)" }
        return "--\(long)"
    }
}

private struct FlagValues {
    var bools: [String: Bool] = [:]
    var ints: [String: Int] = [:]
    var strings: [String: [String]] = [:]
    var help: Bool { bools["help"] ?? false }
    func bool(_ name: String) -> Bool { bools[name] ?? false }
    func int(_ name: String) -> Int? { ints[name] }
}

private struct FlagParser {
    var arguments: [String]
    var flags: [FlagSpec]
    var values = FlagValues()
    var positional: [String] = []

    init(arguments: [String], flags: [FlagSpec]) {
        self.arguments = arguments
        self.flags = flags + FlagSpec.global
    }

    enum Outcome { case success, failure(String) }

    mutating func parse() -> Outcome {
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "--" {
                positional += arguments[index...]
                break
            }
            if argument.hasPrefix("--") {
                let body = argument.dropFirst(2)
                let name: String
                var inline: String?
                if let equals = body.firstIndex(of: "=") {
                    name = String(body[..<equals])
                    inline = String(body[body.index(after: equals)...])
                } else {
                    name = String(body)
                }
                guard let spec = flags.first(where: { $0.long == name }) else {
                    return .failure("unknown flag: --\(name)")
                }
                if spec.kind != .bool && inline == nil {
                    guard index < arguments.count else { return .failure("flag needs an argument: --\(name)") }
                    inline = arguments[index]
                    index += 1
                }
                if let message = set(spec, inline) { return .failure(message) }
            } else if argument.hasPrefix("-") && argument.count > 1 {
                // A run of shorthand flags: `-hm3`, `-m 3`, `-m=3`.
                var shorthands = Substring(argument.dropFirst())
                while let letter = shorthands.first {
                    shorthands = shorthands.dropFirst()
                    guard let spec = flags.first(where: { $0.short == letter }) else {
                        return .failure("unknown shorthand flag: '\(letter)' in \(argument)")
                    }
                    if spec.kind == .bool {
                        var value: String?
                        if shorthands.first == "=" {
                            value = String(shorthands.dropFirst())
                            shorthands = ""
                        }
                        if let message = set(spec, value) { return .failure(message) }
                        continue
                    }
                    var value: String
                    if shorthands.first == "=" {
                        value = String(shorthands.dropFirst())
                    } else if !shorthands.isEmpty {
                        value = String(shorthands)
                    } else {
                        guard index < arguments.count else {
                            return .failure("flag needs an argument: '\(letter)' in -\(letter)")
                        }
                        value = arguments[index]
                        index += 1
                    }
                    shorthands = ""
                    if let message = set(spec, value) { return .failure(message) }
                }
            } else {
                positional.append(argument)
            }
        }
        return .success
    }

    /// Stores one flag value; returns pflag's error text on a bad value.
    private mutating func set(_ spec: FlagSpec, _ value: String?) -> String? {
        switch spec.kind {
        case .bool:
            guard let value else {
                values.bools[spec.long] = true
                return nil
            }
            switch value {
            case "1", "t", "T", "TRUE", "true", "True": values.bools[spec.long] = true
            case "0", "f", "F", "FALSE", "false", "False": values.bools[spec.long] = false
            default:
                return "invalid argument \(goQuote(value)) for \"\(spec.displayName)\" flag: strconv.ParseBool: parsing \(goQuote(value)): invalid syntax"
            }
        case .int:
            let text = value ?? ""
            switch GoInteger.parse(text) {
            case .success(let number): values.ints[spec.long] = number
            case .failure(let reason):
                return "invalid argument \(goQuote(text)) for \"\(spec.displayName)\" flag: strconv.ParseInt: parsing \(goQuote(text)): \(reason)"
            }
        case .string:
            values.strings[spec.long, default: []].append(value ?? "")
        }
        return nil
    }
}

/// Go's strconv.Atoi/ParseInt(s, 0, 64) as cobra uses them, with Go's two error reasons.
private enum GoInteger {
    enum Failure: Error, CustomStringConvertible {
        case syntax, range
        var description: String { self == .syntax ? "invalid syntax" : "value out of range" }
    }

    static func parse(_ text: String) -> Result<Int, Failure> {
        var digits = Substring(text)
        var negative = false
        if let sign = digits.first, sign == "+" || sign == "-" {
            negative = sign == "-"
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return .failure(.syntax) }
        var magnitude: UInt64 = 0
        for digit in digits.utf8 {
            let (times10, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(digit - 48))
            if o1 || o2 { return .failure(.range) }
            magnitude = sum
        }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { return .failure(.range) }
            return .success(magnitude == UInt64(Int64.max) + 1 ? Int.min : -Int(magnitude))
        }
        guard magnitude <= UInt64(Int64.max) else { return .failure(.range) }
        return .success(Int(magnitude))
    }
}

/// Go's `%q` for the strings that reach our messages: quotes, backslashes and control bytes escaped.
private func goQuote(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7f {
                out += "\\x" + hexByte(UInt8(scalar.value))
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}

private func hexByte(_ byte: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 15)])
}

extension String {
    fileprivate func padding(toLength length: Int) -> String {
        count >= length ? self : self + String(repeating: " ", count: length - count)
    }
}

// MARK: - Output

private enum GenerateOutput {
    static func standardOutput(_ text: String) { FileHandleOutput.standardOutput(text) }

    /// Go's `log.Fatal`: `FATAL[0000] message`, red unless --disable-color (even when stderr is no terminal).
    static func fatal(_ message: String, colored: Bool) {
        let level = colored ? "\u{1b}[31mFATAL\u{1b}[0m" : "FATAL"
        FileHandleOutput.standardError("\(level)[0000] \(message)\n")
    }

    /// cobra's failure: `Error: …`, the usage, a blank line; then sing-box's FATAL line.
    static func usageError(_ message: String, usage: String) {
        FileHandleOutput.standardError("Error: \(message)\n\(usage)\n")
        fatal(message, colored: true)
    }
}

// MARK: - Generators

private enum Generators {
    enum KeyEncoding { case base64Standard, base64RawURL }

    static func uuid() -> Result<String, GenerateFailure> {
        var bytes = randomBytes(16)
        bytes[6] = (bytes[6] & 0x0f) | 0x40  // version 4
        bytes[8] = (bytes[8] & 0x3f) | 0x80  // RFC 4122 variant
        let hex = bytes.map(hexByte).joined()
        let parts = [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { range in
            String(Array(hex)[range])
        }
        return .success(parts.joined(separator: "-") + "\n")
    }

    static func random(lengthText: String, base64: Bool, hex: Bool) -> Result<String, GenerateFailure> {
        let length: Int
        switch GoInteger.parse(lengthText) {
        case .success(let value): length = value
        case .failure(let reason):
            return .failure(GenerateFailure(message: "strconv.Atoi: parsing \(goQuote(lengthText)): \(reason)"))
        }
        guard length >= 0 else {
            // Go panics in make([]byte, n); we refuse with its runtime message instead of crashing.
            return .failure(GenerateFailure(message: "runtime error: makeslice: len out of range"))
        }
        let bytes = randomBytes(length)
        if base64 { return .success(Base64.encode(bytes, alphabet: .standard, padded: true) + "\n") }
        if hex { return .success(bytes.map(hexByte).joined() + "\n") }
        // Raw bytes: write them directly, they need not be UTF-8.
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(1, raw.baseAddress! + offset, raw.count - offset)
                if n <= 0 { break }
                offset += n
            }
        }
        return .success("")
    }

    /// wg-keypair and reality-keypair: a clamped Curve25519 private key (wgtypes.GeneratePrivateKey) and its public key.
    static func x25519KeyPair(encoding: KeyEncoding) -> Result<String, GenerateFailure> {
        var privateKey = randomBytes(32)
        privateKey[0] &= 248
        privateKey[31] = (privateKey[31] & 127) | 64
        let publicKey = x25519Public(privateKey)
        let encode: ([UInt8]) -> String = {
            encoding == .base64Standard
                ? Base64.encode($0, alphabet: .standard, padded: true)
                : Base64.encode($0, alphabet: .url, padded: false)
        }
        return .success("PrivateKey: \(encode(privateKey))\nPublicKey: \(encode(publicKey))\n")
    }

    static func x25519Public(_ privateKey: [UInt8]) -> [UInt8] {
        var publicKey = [UInt8](repeating: 0, count: 32)
        _ = crypto_scalarmult_curve25519_base(&publicKey, privateKey)
        return publicKey
    }

    /// ECH key pair as Go's tls.ECHKeygenDefault: config id 0, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 with
    /// AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305, maximum_name_length 0, no extensions
    /// (draft-ietf-tls-esni ECHConfig, version 0xfe0d).
    static func echKeyPair(publicName: String) -> Result<String, GenerateFailure> {
        let nameBytes = Array(publicName.utf8)
        guard nameBytes.count <= 255 else {
            return .failure(GenerateFailure(message: "cryptobyte: pending child length \(nameBytes.count) exceeds 1-byte length prefix"))
        }
        let privateKey = randomBytes(32)
        let publicKey = x25519Public(privateKey)
        var contents: [UInt8] = [0]  // config_id
        contents += uint16(0x0020) + lengthPrefixed16(publicKey)
        var suites: [UInt8] = []
        for aead: UInt16 in [0x0001, 0x0002, 0x0003] { suites += uint16(0x0001) + uint16(aead) }
        contents += lengthPrefixed16(suites)
        contents.append(0)  // maximum_name_length
        contents.append(UInt8(nameBytes.count))
        contents += nameBytes
        contents += uint16(0)  // extensions
        let echConfig = uint16(0xfe0d) + lengthPrefixed16(contents)
        let configList = lengthPrefixed16(echConfig)
        let keys = lengthPrefixed16(privateKey) + lengthPrefixed16(echConfig)
        return .success(pem("ECH CONFIGS", configList) + pem("ECH KEYS", keys))
    }

    /// VAPID: a P-256 key, private scalar and uncompressed public point, base64 raw URL.
    static func vapidKeyPair() -> Result<String, GenerateFailure> {
        guard let context = EVP_PKEY_CTX_new_from_name(nil, "EC", nil) else { return .failure(openSSLFailure()) }
        defer { EVP_PKEY_CTX_free(context) }
        var key: OpaquePointer?
        guard EVP_PKEY_keygen_init(context) == 1, EVP_PKEY_CTX_set_group_name(context, "P-256") == 1,
              EVP_PKEY_generate(context, &key) == 1, let key
        else { return .failure(openSSLFailure()) }
        defer { EVP_PKEY_free(key) }
        var scalar: OpaquePointer?
        guard EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &scalar) == 1, let scalar else {
            return .failure(openSSLFailure())
        }
        defer { BN_clear_free(scalar) }
        var privateKey = [UInt8](repeating: 0, count: 32)
        guard BN_bn2binpad(scalar, &privateKey, 32) == 32 else { return .failure(openSSLFailure()) }
        var publicKey = [UInt8](repeating: 0, count: 65)
        var publicLength = 0
        guard EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, &publicKey, 65, &publicLength) == 1,
              publicLength == 65
        else { return .failure(openSSLFailure()) }
        return .success("PrivateKey: \(Base64.encode(privateKey, alphabet: .url, padded: false))\n"
            + "PublicKey: \(Base64.encode(publicKey, alphabet: .url, padded: false))\n")
    }

    /// A self-signed RSA-2048 certificate as Go's tls.GenerateCertificate makes it: random 128-bit serial,
    /// valid from an hour ago until now + months, key usage digitalSignature|keyEncipherment (critical),
    /// extended key usage serverAuth, basic constraints CA:FALSE (critical), the name as CN and DNS SAN.
    static func tlsKeyPair(serverName: String, months: Int) -> Result<String, GenerateFailure> {
        // Go's x509 refuses a SAN that is not IA5 (ASCII).
        guard serverName.unicodeScalars.allSatisfy({ $0.isASCII }) else {
            return .failure(GenerateFailure(message: "x509: \(goQuote(serverName)) cannot be encoded as an IA5String"))
        }
        guard let keyContext = EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, nil) else { return .failure(openSSLFailure()) }
        defer { EVP_PKEY_CTX_free(keyContext) }
        var key: OpaquePointer?
        guard EVP_PKEY_keygen_init(keyContext) == 1, EVP_PKEY_CTX_set_rsa_keygen_bits(keyContext, 2048) == 1,
              EVP_PKEY_keygen(keyContext, &key) == 1, let key
        else { return .failure(openSSLFailure()) }
        defer { EVP_PKEY_free(key) }

        guard let certificate = X509_new() else { return .failure(openSSLFailure()) }
        defer { X509_free(certificate) }
        X509_set_version(certificate, 2)  // v3

        // Serial: uniform in [0, 2^128) like rand.Int(rand.Reader, 1<<128); zero is not a valid serial.
        var serialBytes = randomBytes(16)
        if serialBytes.allSatisfy({ $0 == 0 }) { serialBytes[15] = 1 }
        guard let serial = BN_bin2bn(serialBytes, 16, nil) else { return .failure(openSSLFailure()) }
        defer { BN_free(serial) }
        guard BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(certificate)) != nil else { return .failure(openSSLFailure()) }

        let now = time(nil)
        guard X509_time_adj_ex(X509_getm_notBefore(certificate), 0, -3600, nil) != nil,
              let notAfter = addMonths(now, months),
              X509_time_adj_ex(X509_getm_notAfter(certificate), 0, notAfter - now, nil) != nil
        else { return .failure(openSSLFailure()) }

        // Subject = issuer = CN; Go encodes a printable name as PrintableString, else UTF8String.
        guard let name = X509_NAME_new() else { return .failure(openSSLFailure()) }
        defer { X509_NAME_free(name) }
        let printable = serverName.unicodeScalars.allSatisfy { scalar in
            guard scalar.isASCII else { return false }
            let c = Character(scalar)
            return c.isLetter || c.isNumber || " '()+,-./:=?".contains(c)
        }
        let stringType = printable ? V_ASN1_PRINTABLESTRING : MBSTRING_UTF8
        let nameBytes = Array(serverName.utf8)
        // An empty common name is left out, as Go's pkix.Name does (the subject is then empty).
        if !nameBytes.isEmpty {
            guard X509_NAME_add_entry_by_txt(name, "CN", stringType, nameBytes, Int32(nameBytes.count), -1, 0) == 1 else {
                return .failure(openSSLFailure())
            }
        }
        guard X509_set_subject_name(certificate, name) == 1, X509_set_issuer_name(certificate, name) == 1,
              X509_set_pubkey(certificate, key) == 1
        else { return .failure(openSSLFailure()) }

        var context = X509V3_CTX()
        X509V3_set_ctx(&context, certificate, certificate, nil, nil, 0)
        let extensions: [(Int32, String)] = [
            (NID_key_usage, "critical,digitalSignature,keyEncipherment"),
            (NID_ext_key_usage, "serverAuth"),
            (NID_basic_constraints, "critical,CA:FALSE"),
        ]
        for (nid, value) in extensions {
            guard let ext = X509V3_EXT_conf_nid(nil, &context, nid, value) else { return .failure(openSSLFailure()) }
            defer { X509_EXTENSION_free(ext) }
            guard X509_add_ext(certificate, ext, -1) == 1 else { return .failure(openSSLFailure()) }
        }
        // The DNS SAN, built by hand so an empty name works too; RFC 5280 (and Go) mark it critical when the
        // subject is empty.
        guard let names = GENERAL_NAMES_new() else { return .failure(openSSLFailure()) }
        defer { GENERAL_NAMES_free(names) }
        guard let general = GENERAL_NAME_new() else { return .failure(openSSLFailure()) }
        guard let dnsName = ASN1_IA5STRING_new() else {
            GENERAL_NAME_free(general)
            return .failure(openSSLFailure())
        }
        _ = ASN1_STRING_set(dnsName, nameBytes, Int32(nameBytes.count))
        GENERAL_NAME_set0_value(general, GEN_DNS, UnsafeMutableRawPointer(dnsName))
        guard OPENSSL_sk_push(names, UnsafeRawPointer(general)) > 0,
              X509_add1_ext_i2d(certificate, NID_subject_alt_name, UnsafeMutableRawPointer(names),
                                nameBytes.isEmpty ? 1 : 0, UInt(X509V3_ADD_DEFAULT)) == 1
        else { return .failure(openSSLFailure()) }
        guard X509_sign(certificate, key, EVP_sha256()) > 0 else { return .failure(openSSLFailure()) }

        guard let keyPEM = withMemoryBIO({ PEM_write_bio_PKCS8PrivateKey($0, key, nil, nil, 0, nil, nil) == 1 }),
              let certificatePEM = withMemoryBIO({ PEM_write_bio_X509($0, certificate) == 1 })
        else { return .failure(openSSLFailure()) }
        return .success(keyPEM + "\n" + certificatePEM + "\n")
    }

    /// Go's time.AddDate(0, months, 0) in UTC: the day of month is kept and overflow normalizes forward.
    static func addMonths(_ now: time_t, _ months: Int) -> time_t? {
        var clock = now
        var parts = tm()
        guard gmtime_r(&clock, &parts) != nil else { return nil }
        let (newMonth, overflow) = Int(parts.tm_mon).addingReportingOverflow(months)
        guard !overflow, let month = Int32(exactly: newMonth) else { return nil }
        parts.tm_mon = month
        let result = timegm(&parts)
        return result == -1 ? nil : result
    }

    static func withMemoryBIO(_ body: (OpaquePointer) -> Bool) -> String? {
        guard let bio = BIO_new(BIO_s_mem()) else { return nil }
        defer { BIO_free(bio) }
        guard body(bio) else { return nil }
        var pointer: UnsafeMutablePointer<CChar>?
        let length = BIO_ctrl(bio, BIO_CTRL_INFO, 0, &pointer)
        guard length > 0, let pointer else { return nil }
        return String(decoding: UnsafeRawBufferPointer(start: pointer, count: length), as: UTF8.self)
    }

    static func openSSLFailure() -> GenerateFailure {
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(ERR_get_error(), &buffer, buffer.count)
        let text = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return GenerateFailure(message: "openssl: \(text)")
    }

    static func randomBytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        if count > 0 { randombytes_buf(&bytes, count) }
        return bytes
    }

    static func uint16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xff)] }

    static func lengthPrefixed16(_ bytes: [UInt8]) -> [UInt8] { uint16(UInt16(bytes.count)) + bytes }

    /// Go's pem.EncodeToMemory: base64 in 64-character lines.
    static func pem(_ type: String, _ bytes: [UInt8]) -> String {
        let encoded = Array(Base64.encode(bytes, alphabet: .standard, padded: true))
        var text = "-----BEGIN \(type)-----\n"
        var index = 0
        while index < encoded.count {
            let end = min(index + 64, encoded.count)
            text += String(encoded[index..<end]) + "\n"
            index = end
        }
        return text + "-----END \(type)-----\n"
    }
}

/// RFC 4648 base64, standard and URL alphabets.
enum Base64 {
    enum Alphabet { case standard, url }

    static func encode(_ bytes: [UInt8], alphabet: Alphabet, padded: Bool) -> String {
        let table = Array((alphabet == .standard
            ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
            : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_").utf8)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index + 3 <= bytes.count {
            let value = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            for shift in [18, 12, 6, 0] { out.append(table[Int((value >> UInt32(shift)) & 63)]) }
            index += 3
        }
        let remaining = bytes.count - index
        if remaining > 0 {
            var value = UInt32(bytes[index]) << 16
            if remaining == 2 { value |= UInt32(bytes[index + 1]) << 8 }
            out.append(table[Int((value >> 18) & 63)])
            out.append(table[Int((value >> 12) & 63)])
            if remaining == 2 { out.append(table[Int((value >> 6) & 63)]) }
            if padded { out += Array(repeating: UInt8(ascii: "="), count: 3 - remaining) }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
