// Config: the sing-box 1.12 configuration schema as typed `…Options`, read strictly the way Go
// sing-box 1.12.12 reads it, and written back the way its `format` and `merge` commands write it.
//
// What the module owns
// 1. JSON: `JSONParser` (comments allowed, as sing's comment filter), `JSONValue`, Go-style writer.
// 2. Decoding: every options type is a `ConfigObject` with a field table in Go's declaration
//    order; `ObjectReader` reports leftovers as `json: unknown field "k"`. Errors are `ConfigError`
//    with the JSON path (`outbounds[2].detour`) and sing-box's wording.
// 3. Loading: `ConfigLoader.load(configPaths:configDirectories:)` (files sorted by path, merged by
//    `ConfigMerge`, legacy DNS servers upgraded, deprecations reported or made fatal as in 1.12).
// 4. Checking: `ConfigLoader.check` refuses what Go refuses when it builds the box, plus dangling
//    tag references and duplicate tags of every kind.
// 5. Writing: `formatJSON` (Go's `format`, byte for byte), `mergeJSON` (Go's `merge`).
//
// Invariants: input never traps; decode errors always name a path; nothing here touches a socket.
// Imports: Foundation only (files, environment, base64); nothing of ours (floor 0).

/// The module's name, for log lines and diagnostics.
package enum ConfigModule {
    package static let name = "Config"
}
